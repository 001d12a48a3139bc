"""The Gumroad connector (issue 20): form-encoded pings authenticated by the secret in the URL (wrong or missing:
400, nothing stored; too many wrong ones: every delivery refused for a while), each sale or subscriber re-fetched
from Gumroad's API (a faked loopback API in Gumroad's shapes) before anything is applied; duplicates; license keys
carried over (the key Gumroad sold validates through Portal); ingest only (no local cancel); the paginated,
resumable ``portal import gumroad``."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import msgspec
import pytest
from bs4 import BeautifulSoup
from litestar import Litestar
from litestar.testing import TestClient

from portal.clock import Clock
from portal.connectors import store
from portal.connectors.gumroad import importer, processor
from portal.db import Database
from portal.settings import Settings
from tests.admin_support import api, create_org, mint_token
from tests.apps import app_for
from tests.gumroad_fake import ACCESS_TOKEN, FakeGumroad, fake_gumroad
from tests.polar_support import seller_catalog
from tests.signin_helpers import insert_session, sign_in_browser

SLUG = "acme"
URL_SECRET = "gumroad-url-secret-4f1c9a0e7b2d"
HOOK = f"/v1/integrations/gumroad/{SLUG}/webhook"
KEY = "85DB562A-C11D4B06-A2335A6B-8C079166"


@pytest.fixture
def gumroad() -> Iterator[FakeGumroad]:
    with fake_gumroad() as running:
        yield running


@pytest.fixture
def gumroad_settings(settings: Settings, gumroad: FakeGumroad) -> Settings:
    return msgspec.structs.replace(settings, gumroad_api_base=gumroad.base_url)


@pytest.fixture(autouse=True)
def _fresh_throttle() -> Iterator[None]:
    processor._bad_secrets.clear()
    yield
    processor._bad_secrets.clear()


class Shop:
    def __init__(self, client: TestClient[Litestar], settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.org = create_org(client, mint_token(settings), SLUG)
        self.token = mint_token(settings, self.org["id"])
        self.products = seller_catalog(self.call, self.org["id"], "ACME")
        self.call("PUT", "/v1/connectors/gumroad", 200, json={"api_key": ACCESS_TOKEN, "webhook_secret": URL_SECRET})
        for gumroad_product, name in (("gum_guide", "Guide"), ("gum_member", "Pro")):
            body = {"product_id": self.products[name]["id"]}
            self.call("PUT", f"/v1/connectors/gumroad/prices/{gumroad_product}", 200, json=body)

    def call(self, method: str, path: str, expect: int | None = None, **kwargs: Any) -> Any:
        return api(self.client, self.token, method, path, expect, **kwargs)

    def ping(self, form: dict[str, Any], secret: str | None = URL_SECRET) -> Any:
        query = f"?secret={secret}" if secret is not None else ""
        return self.client.post(
            HOOK + query, content=urlencode(form), headers={"Content-Type": "application/x-www-form-urlencoded"}
        )

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        conn = sqlite3.connect(self.settings.db_path)
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def orders(self) -> list[sqlite3.Row]:
        return self.rows("SELECT * FROM orders WHERE organization_id = ? ORDER BY created_at", (self.org["id"],))

    def validate(self, key: str) -> Any:
        body = {"key": key, "organization_id": self.org["id"]}
        return self.client.post("/v1/customer-portal/license-keys/validate", json=body)


@pytest.fixture
def shop(gumroad_settings: Settings) -> Iterator[Shop]:
    with TestClient(app_for(gumroad_settings), base_url="http://testserver.local") as client:
        yield Shop(client, gumroad_settings)


def _ping_of(sale: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """Gumroad's ping for a sale (its documented form fields)."""
    return {
        "sale_id": sale["id"],
        "sale_timestamp": sale["created_at"],
        "order_number": sale["order_id"],
        "seller_id": sale["seller_id"],
        "product_id": sale["product_id"],
        "product_permalink": "https://seller.gumroad.com/l/guide",
        "short_product_id": "guide",
        "product_name": sale["product_name"],
        "email": sale["email"],
        "price": sale["price"],
        "gumroad_fee": sale["gumroad_fee"],
        "currency": "usd",
        "quantity": 1,
        "license_key": sale["license_key"] or "",
        "refunded": "false",
        "test": "false",
        **overrides,
    }


def test_a_sale_ping_is_refetched_and_brings_customer_order_and_the_same_key(shop: Shop, gumroad: FakeGumroad) -> None:
    sale = gumroad.sale("sale_A==", "ada@example.com", "gum_guide", 2900, license_key=KEY)
    # The ping claims another price and buyer: only what Gumroad's API answers is applied.
    answer = shop.ping(_ping_of(sale, price=1, email="mallory@example.com"))
    assert answer.status_code == 200 and answer.json()["status"] == "applied", answer.text
    assert "/v2/sales/sale_A==" in gumroad.requests
    (order,) = shop.orders()
    assert order["total_amount"] == 2900 and order["status"] == "paid" and order["external_id"] == "gumroad:sale_A=="
    (customer,) = shop.rows("SELECT email FROM customers WHERE organization_id = ?", (shop.org["id"],))
    assert customer["email"] == "ada@example.com"
    assert shop.validate(KEY).status_code == 200 and shop.validate(KEY).json()["status"] == "granted"
    # Gumroad retries a ping it thinks failed: the same sale is applied once.
    assert shop.ping(_ping_of(sale)).json()["status"] == "duplicate"
    assert len(shop.orders()) == 1


def test_a_ping_for_a_sale_gumroad_does_not_know_stores_a_failure_and_no_order(shop: Shop) -> None:
    forged = {"sale_id": "forged==", "email": "mallory@example.com", "product_id": "gum_guide", "price": "0"}
    answer = shop.ping(forged)
    assert answer.status_code == 200 and answer.json()["status"] == "failed", answer.text
    assert "Gumroad refused" in answer.json()["reason"]
    assert shop.orders() == []


@pytest.mark.parametrize("secret", ["wrong-secret", None, URL_SECRET[:-1]])
def test_a_wrong_or_missing_url_secret_is_refused_and_nothing_is_stored(
    shop: Shop, gumroad: FakeGumroad, secret: str | None
) -> None:
    sale = gumroad.sale("sale_B==", "ada@example.com", "gum_guide", 2900)
    answer = shop.ping(_ping_of(sale), secret=secret)
    assert answer.status_code == 400 and "secret" in answer.json()["detail"], answer.text
    assert shop.rows("SELECT * FROM connector_events") == [] and shop.orders() == []
    # A secret in a header instead of the URL is not taken either.
    sneaky = shop.client.post(HOOK, content=urlencode(_ping_of(sale)), headers={"X-Portal-Url-Secret": URL_SECRET})
    assert sneaky.status_code == 400


def test_too_many_wrong_secrets_refuse_every_delivery_for_a_while(shop: Shop, gumroad: FakeGumroad) -> None:
    sale = gumroad.sale("sale_C==", "ada@example.com", "gum_guide", 2900)
    for _ in range(processor.MAX_BAD_SECRETS):
        assert shop.ping(_ping_of(sale), secret="guess").status_code == 400
    refused = shop.ping(_ping_of(sale))
    assert refused.status_code == 400 and "too many" in refused.json()["detail"]
    assert shop.orders() == []
    processor._bad_secrets.clear()  # the window passed
    assert shop.ping(_ping_of(sale)).json()["status"] == "applied"


def test_refund_ping_refunds_the_order_and_revokes_the_key(shop: Shop, gumroad: FakeGumroad) -> None:
    sale = gumroad.sale("sale_D==", "ada@example.com", "gum_guide", 2900, license_key=KEY)
    assert shop.ping(_ping_of(sale)).json()["status"] == "applied"
    sale["refunded"] = True
    answer = shop.ping({**_ping_of(sale, refunded="true"), "resource_name": "refund"})
    assert answer.json()["status"] == "applied", answer.text
    (order,) = shop.orders()
    assert order["status"] == "refunded" and order["refunded_amount"] == 2900
    (key,) = shop.rows("SELECT status FROM license_keys WHERE key = ?", (KEY,))
    assert key["status"] == "revoked"


def _membership(gumroad: FakeGumroad, status: str = "alive") -> dict[str, Any]:
    gumroad.subscribers["sub_G=="] = {
        "id": "sub_G==",
        "product_id": "gum_member",
        "product_name": "Membership",
        "user_id": "u1",
        "user_email": "grace@example.com",
        "purchase_ids": ["sale_M1=="],
        "created_at": "2026-11-01T10:00:00Z",
        "user_requested_cancellation_at": None,
        "charge_occurrence_count": 2,
        "recurrence": "monthly",
        "cancelled_at": None,
        "ended_at": None,
        "failed_at": None,
        "free_trial_ends_at": None,
        "status": status,
    }
    return gumroad.sale(
        "sale_M1==", "grace@example.com", "gum_member", 1000, license_key="MEMBER-KEY-0001", subscription_id="sub_G=="
    )


def test_a_subscription_sale_brings_the_subscriber_and_is_ingest_only(shop: Shop, gumroad: FakeGumroad) -> None:
    sale = _membership(gumroad)
    assert shop.ping(_ping_of(sale, subscription_id="sub_G==")).json()["status"] == "applied"
    (sub,) = shop.rows("SELECT * FROM subscriptions WHERE organization_id = ?", (shop.org["id"],))
    assert sub["status"] == "active" and sub["current_period_start"].startswith("2026-12-01")
    (order,) = shop.orders()
    assert order["billing_reason"] == "subscription_create" and order["subscription_id"] == sub["id"]
    assert shop.validate("MEMBER-KEY-0001").json()["status"] == "granted"

    # Gumroad may leave out when the cancellation was asked for: still canceling at the period's end.
    gumroad.subscribers["sub_G=="].update(status="pending_cancellation")
    cancel = {"resource_name": "cancellation", "subscription_id": "sub_G==", "cancelled_at": "2026-12-05T00:00:00Z"}
    assert shop.ping(cancel).json()["status"] == "applied"
    (sub,) = shop.rows("SELECT * FROM subscriptions WHERE organization_id = ?", (shop.org["id"],))
    assert sub["cancel_at_period_end"] == 1

    # Gumroad's API takes no subscription actions: Portal offers none and refuses them, changing nothing.
    token = insert_session(shop.settings, shop.org["id"], sub["customer_id"], kind="api")
    headers = {"Authorization": f"Bearer {token}"}
    path = f"/v1/customer-portal/subscriptions/{sub['id']}"
    refused = shop.client.patch(path, json={"cancel_at_period_end": False}, headers=headers)
    assert refused.status_code == 403 and "managed by" in refused.json()["detail"], refused.text
    (after,) = shop.rows("SELECT cancel_at_period_end FROM subscriptions WHERE id = ?", (sub["id"],))
    assert after["cancel_at_period_end"] == 1

    # The subscription page offers no cancel/uncancel form and links to Gumroad's own manage page instead.
    sign_in_browser(shop.client, shop.settings, SLUG, shop.org["id"], sub["customer_id"])
    page = shop.client.get(f"/{SLUG}/portal/subscriptions/{sub['id']}")
    assert page.status_code == 200
    soup = BeautifulSoup(page.text, "html.parser")
    actions = [str(form.get("action")) for form in soup.find_all("form")]
    assert not any(action.endswith(("/cancel", "/uncancel")) for action in actions), actions
    managed = soup.select_one('[data-field="managed-by"]')
    assert managed is not None and "Gumroad" in managed.get_text()
    link = soup.select_one('[data-field="manage-url"]')
    assert link is not None and link["href"] == "https://app.gumroad.com/subscriptions/sub_G%3D%3D/manage"

    gumroad.subscribers["sub_G=="].update(status="cancelled", ended_at="2026-12-31T10:00:00Z")
    ended = {"resource_name": "subscription_ended", "subscription_id": "sub_G==", "ended_at": "2026-12-31T10:00:00Z"}
    assert shop.ping(ended).json()["status"] == "applied"
    (sub,) = shop.rows("SELECT status FROM subscriptions WHERE organization_id = ?", (shop.org["id"],))
    assert sub["status"] == "canceled"


def _run_import(settings: Settings, org_id: str, **kwargs: Any) -> importer.ImportReport:
    async def work() -> importer.ImportReport:
        db = await Database(settings.db_path, readers=1).open()
        try:
            connection = await store.get_connection(db, org_id, "gumroad")
            assert connection is not None
            return await importer.run_import(db, settings, connection, now=Clock().now, **kwargs)
        finally:
            await db.close()

    return asyncio.run(work())


class Stop(Exception):
    pass


def test_import_pages_with_page_key_resumes_and_keys_keep_validating(shop: Shop, gumroad: FakeGumroad) -> None:
    keys = [f"IMPORT-KEY-{index:04d}" for index in range(5)]
    for index, key in enumerate(keys):
        gumroad.sale(
            f"sale_{index}==",
            f"buyer{index}@example.com",
            "gum_guide",
            2900,
            license_key=key,
            created_at=f"2025-0{index + 1}-15T12:00:00Z",
        )
    gumroad.sales[1]["refunded"] = True
    _membership(gumroad)

    def interrupt(report: importer.ImportReport) -> None:
        if report.pages == 1:
            raise Stop

    with pytest.raises(Stop):
        _run_import(shop.settings, shop.org["id"], progress=interrupt)
    assert len(shop.orders()) == 2
    report = _run_import(shop.settings, shop.org["id"])
    assert report.interrupted is None and report.resumed and report.pages == 2, report
    assert report.outcomes["applied"] == 4
    orders = shop.orders()
    assert len(orders) == 6
    assert orders[0]["created_at"].startswith("2025-01-15")  # Gumroad's dates kept
    assert sorted(o["status"] for o in orders).count("refunded") == 1
    for index, key in enumerate(keys):
        expected = "revoked" if index == 1 else "granted"
        (row,) = shop.rows("SELECT status FROM license_keys WHERE key = ?", (key,))
        assert row["status"] == expected
    assert shop.validate(keys[0]).json()["status"] == "granted"
    assert shop.rows("SELECT kind FROM email_outbox WHERE organization_id = ?", (shop.org["id"],)) == []
    again = _run_import(shop.settings, shop.org["id"])
    assert again.interrupted is None and len(shop.orders()) == 6


def test_partial_refund_pings_refund_part_then_the_rest(shop: Shop, gumroad: FakeGumroad) -> None:
    sale = gumroad.sale("sale_P==", "ada@example.com", "gum_guide", 2900, license_key=KEY)
    assert shop.ping(_ping_of(sale)).json()["status"] == "applied"
    # Gumroad's sale after a $9.50 partial refund: partially_refunded, $19.50 still refundable.
    sale.update(partially_refunded=True, amount_refundable_in_currency="19.50")
    refund = {"resource_name": "refund", "partially_refunded": "true", "amount_refunded_in_cents": "950"}
    answer = shop.ping({**_ping_of(sale), **refund})
    assert answer.json()["status"] == "applied", answer.text
    (order,) = shop.orders()
    assert order["status"] == "partially_refunded" and order["refunded_amount"] == 950
    (key,) = shop.rows("SELECT status FROM license_keys WHERE key = ?", (KEY,))
    assert key["status"] == "granted"  # a partial refund keeps the benefits
    # The same state pinged again changes nothing; a second partial refund (as cents) adds the difference.
    assert shop.ping({**_ping_of(sale), **refund}).json()["status"] == "duplicate"
    assert shop.orders()[0]["refunded_amount"] == 950
    sale.update(amount_refunded_in_cents=2000, amount_refundable_in_currency="9")
    second = {**refund, "amount_refunded_in_cents": "2000"}
    assert shop.ping({**_ping_of(sale), **second}).json()["status"] == "applied"
    assert shop.orders()[0]["refunded_amount"] == 2000
    # Then the rest: refunded in full.
    sale.update(refunded=True, partially_refunded=False, amount_refundable_in_currency="0")
    last = {"resource_name": "refund", "partially_refunded": "false", "amount_refunded_in_cents": "2900"}
    assert shop.ping({**_ping_of(sale, refunded="true"), **last}).json()["status"] == "applied"
    (order,) = shop.orders()
    assert order["status"] == "refunded" and order["refunded_amount"] == 2900
