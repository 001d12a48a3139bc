"""Admin-API orders with a historical ``created_at`` (imports, issue 22): the order is dated then (created and
paid), a backdated order sends the customer no receipt email (aiosmtpd on loopback sees none, the outbox has
none) while an order of now does; a created_at in the future, or without a time zone, is a 422 naming the field."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from litestar.testing import TestClient

from portal.clock import Clock, iso
from portal.settings import Settings
from tests.admin_support import api
from tests.apps import app_for
from tests.conftest import SMTPInbox
from tests.notification_support import fast, make_shop, rows

BASE = "http://testserver.local"


def receipts(settings: Settings) -> list[dict]:  # type: ignore[type-arg]
    return rows(settings, "SELECT to_address, context FROM email_outbox WHERE kind = 'receipt'")


def test_backdated_orders_keep_their_date_and_send_no_receipt(
    smtp_settings: Settings, smtp_server: tuple[SMTPInbox, int], clock: Clock
) -> None:
    inbox, _ = smtp_server
    settings = fast(smtp_settings)
    with TestClient(app_for(settings, clock=clock), base_url=BASE) as client:
        shop = make_shop(client, settings)
        body = {"customer_id": shop.customer["id"], "product_id": shop.product["id"]}
        imported = api(
            client, shop.token, "POST", "/v1/orders/", 201, json={**body, "created_at": "2024-03-05T10:00:00Z"}
        )
        assert imported["created_at"].startswith("2024-03-05T10:00:00")
        assert imported["status"] == "paid"
        stored = rows(settings, "SELECT created_at, paid_at FROM orders WHERE id = ?", (imported["id"],))[0]
        assert stored["created_at"].startswith("2024-03-05T10:00:00") and stored["paid_at"] == stored["created_at"]
        # Its benefits are granted as for any paid order.
        assert rows(settings, "SELECT id FROM benefit_grants WHERE order_id = ?", (imported["id"],))
        # An order of now, then one recorded ten minutes late: both are receipts the customer gets.
        api(client, shop.token, "POST", "/v1/orders/", 201, json=body)
        late = iso(datetime.now(UTC) - timedelta(minutes=10))
        api(client, shop.token, "POST", "/v1/orders/", 201, json={**body, "created_at": late})
        delivered = inbox.wait_for(2)
        time.sleep(0.5)  # the worker had time to send a third one, if there were one
        assert len(inbox.messages) == 2, [m["Subject"] for m in inbox.messages]
        assert all("receipt" in m["Subject"] for m in delivered)
        assert len(receipts(settings)) == 2
        assert all(imported["id"] not in row["context"] for row in receipts(settings))


def test_created_at_in_the_future_or_without_zone_is_refused(settings: Settings, clock: Clock) -> None:
    with TestClient(app_for(settings, clock=clock), base_url=BASE) as client:
        shop = make_shop(client, settings)
        body = {"customer_id": shop.customer["id"], "product_id": shop.product["id"]}
        future = iso(datetime.now(UTC) + timedelta(days=1))
        for value in (future, "2024-03-05T10:00:00", "yesterday"):
            answer = api(client, shop.token, "POST", "/v1/orders/", 422, json={**body, "created_at": value})
            assert answer["detail"][0]["loc"] == ["body", "created_at"], (value, answer)
        assert rows(settings, "SELECT id FROM orders WHERE customer_id = ?", (shop.customer["id"],)) == []
