"""The Polar connector (issue 20): a served Portal plays Polar (its admin API answers Polar's shapes) and a second
Portal (in process) is connected to it. Signed deliveries in Polar's payload shapes (Standard Webhooks), their
failures (wrong secret, tampered, stale: 400, nothing stored), duplicates and out-of-order deliveries, refunds,
license keys carried over (the same key validates through Portal), the paginated, resumable import, and
write-back through ``PATCH /v1/subscriptions/{id}`` (success, refusal, unreachable)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
import standardwebhooks
from litestar import Litestar
from litestar.testing import TestClient

from portal.clock import Clock
from portal.connectors import store
from portal.connectors.polar import importer
from portal.db import Database
from portal.settings import Settings
from tests.admin_support import api, create_org, mint_token
from tests.apps import app_for
from tests.polar_support import WEBHOOK_SECRET, FakePolar, fake_polar, seller_catalog, signed, stale
from tests.signin_helpers import insert_session

SLUG = "acme"
HOOK = f"/v1/integrations/polar/{SLUG}/webhook"


@pytest.fixture
def polar(tmp_path: Path) -> Iterator[FakePolar]:
    with fake_polar(tmp_path / "polar") as running:
        yield running


@pytest.fixture
def portal_settings(settings: Settings, polar: FakePolar) -> Settings:
    return msgspec.structs.replace(settings, polar_api_base=polar.base_url)


class Shop:
    """Organization ``acme`` on the connected Portal: the same catalog, each product mapped to Polar's."""

    def __init__(self, client: TestClient[Litestar], settings: Settings, polar: FakePolar) -> None:
        self.client = client
        self.settings = settings
        admin = mint_token(settings)
        self.org = create_org(client, admin, SLUG)
        self.token = mint_token(settings, self.org["id"])
        self.products = seller_catalog(self.call, self.org["id"], "ACME")
        body = {"api_key": polar.token, "webhook_secret": WEBHOOK_SECRET}
        self.call("PUT", "/v1/connectors/polar", 200, json=body)
        for name, product in polar.products.items():
            mapping = {"product_id": self.products[name]["id"]}
            self.call("PUT", f"/v1/connectors/polar/prices/{product['id']}", 200, json=mapping)

    def call(self, method: str, path: str, expect: int | None = None, **kwargs: Any) -> Any:
        return api(self.client, self.token, method, path, expect, **kwargs)

    def deliver(self, body: bytes, headers: dict[str, str]) -> Any:
        return self.client.post(HOOK, content=body, headers=headers)

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        conn = sqlite3.connect(self.settings.db_path)
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def validate(self, key: str) -> Any:
        body = {"key": key, "organization_id": self.org["id"]}
        return self.client.post("/v1/customer-portal/license-keys/validate", json=body)


@pytest.fixture
def shop(portal_settings: Settings, polar: FakePolar) -> Iterator[Shop]:
    with TestClient(app_for(portal_settings), base_url="http://testserver.local") as client:
        yield Shop(client, portal_settings, polar)


def _sale(polar: FakePolar, email: str = "ada@example.com") -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A one-time Guide order on Polar: (order, its benefit grant, its license key)."""
    customer = polar.customer(email, "Ada Lovelace")
    order = polar.order(customer, "Guide")
    (grant,) = polar.grants(order_id=order["id"])
    return order, grant, polar.key_of(grant)


def test_signed_order_and_grant_bring_customer_order_and_the_same_key(shop: Shop, polar: FakePolar) -> None:
    order, grant, key = _sale(polar)
    deliveries = [
        signed("order.paid", order, message_id="msg_order_paid"),
        signed("benefit_grant.created", grant, message_id="msg_grant_created"),
    ]
    for body, headers in deliveries:
        answer = shop.deliver(body, headers)
        assert answer.status_code == 200 and answer.json()["status"] == "applied", answer.text
    for body, headers in deliveries:  # Polar retries: each delivery is applied once
        assert shop.deliver(body, headers).json()["status"] == "duplicate"

    (customer,) = shop.rows("SELECT * FROM customers WHERE organization_id = ?", (shop.org["id"],))
    assert customer["email"] == "ada@example.com" and customer["name"] == "Ada Lovelace"
    (row,) = shop.rows("SELECT * FROM orders WHERE organization_id = ?", (shop.org["id"],))
    assert row["status"] == "paid" and row["total_amount"] == 2900 and row["external_id"] == f"polar:{order['id']}"
    (portal_key,) = shop.rows("SELECT * FROM license_keys WHERE organization_id = ?", (shop.org["id"],))
    assert portal_key["key"] == key["key"] and key["key"].startswith("POLAR-")
    assert portal_key["limit_activations"] == 3 and portal_key["status"] == "granted"

    receipts = shop.rows("SELECT to_address FROM email_outbox WHERE kind = 'receipt'")
    assert [r["to_address"] for r in receipts] == ["ada@example.com"]  # a live sale: Portal's receipt, once

    valid = shop.validate(key["key"])
    assert valid.status_code == 200 and valid.json()["status"] == "granted", valid.text
    assert shop.validate(key["key"].replace("POLAR", "ACME")).status_code == 404


@pytest.mark.parametrize("failure", ["wrong secret", "tampered", "stale", "unsigned"])
def test_a_delivery_that_does_not_verify_is_refused_and_nothing_is_stored(
    shop: Shop, polar: FakePolar, failure: str
) -> None:
    order, _grant, _key = _sale(polar)
    secret = "whsec_" + "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZyEh" if failure == "wrong secret" else WEBHOOK_SECRET
    when = stale() if failure == "stale" else None
    body, headers = signed("order.paid", order, message_id="msg_bad", secret=secret, when=when)
    if failure == "tampered":
        body = body.replace(b'"total_amount": 2900', b'"total_amount": 1')
        assert b'"total_amount": 1,' in body
    if failure == "unsigned":
        del headers["webhook-signature"]
    answer = shop.deliver(body, headers)
    assert answer.status_code == 400, answer.text
    assert "signature" in answer.json()["detail"]
    assert shop.rows("SELECT * FROM connector_events") == []
    assert shop.rows("SELECT * FROM orders WHERE organization_id = ?", (shop.org["id"],)) == []


def test_out_of_order_grant_first_fetches_the_order_and_ends_the_same(shop: Shop, polar: FakePolar) -> None:
    order, grant, key = _sale(polar)
    first = shop.deliver(*signed("benefit_grant.created", grant, message_id="msg_g"))
    assert first.status_code == 200 and first.json()["status"] == "applied", first.text
    # The grant needed its key (fetched), the key its order (fetched, applied first): all there already.
    (row,) = shop.rows("SELECT * FROM orders WHERE organization_id = ?", (shop.org["id"],))
    assert row["status"] == "paid"
    assert shop.deliver(*signed("order.paid", order, message_id="msg_o")).json()["status"] == "applied"
    assert len(shop.rows("SELECT * FROM orders WHERE organization_id = ?", (shop.org["id"],))) == 1
    (portal_key,) = shop.rows("SELECT key FROM license_keys WHERE organization_id = ?", (shop.org["id"],))
    assert portal_key["key"] == key["key"]


def test_refunds_are_cumulative_and_a_full_refund_revokes_the_key(shop: Shop, polar: FakePolar) -> None:
    order, grant, key = _sale(polar)
    shop.deliver(*signed("order.paid", order, message_id="m1"))
    shop.deliver(*signed("benefit_grant.created", grant, message_id="m2"))
    part = polar.call("PATCH", f"/v1/orders/{order['id']}", 200, json={"refund_amount": 900})
    full = polar.call("PATCH", f"/v1/orders/{order['id']}", 200, json={"refund_amount": 2000})
    assert full["status"] == "refunded"
    # Out of order: the full refund first, then the older partial one (which changes nothing).
    assert shop.deliver(*signed("order.refunded", full, message_id="m4")).json()["status"] == "applied"
    assert shop.deliver(*signed("order.refunded", part, message_id="m3")).json()["status"] == "applied"
    (row,) = shop.rows("SELECT * FROM orders WHERE organization_id = ?", (shop.org["id"],))
    assert row["status"] == "refunded" and row["refunded_amount"] == 2900
    refused = shop.validate(key["key"])
    assert refused.status_code == 404 and "no longer active" in refused.text, refused.text


def test_subscription_states_apply_newest_last_whatever_the_order(shop: Shop, polar: FakePolar) -> None:
    customer = polar.customer("grace@example.com", "Grace Hopper")
    created = polar.subscription(customer, "Pro")
    time.sleep(1.1)  # Polar's modified_at orders the states (seconds)
    canceled = polar.call("PATCH", f"/v1/subscriptions/{created['id']}", 200, json={"cancel_at_period_end": True})
    assert shop.deliver(*signed("subscription.canceled", canceled, message_id="s2")).json()["status"] == "applied"
    stale_state = shop.deliver(*signed("subscription.created", created, message_id="s1")).json()
    assert stale_state["status"] == "ignored" and "stale" in stale_state["reason"]
    (row,) = shop.rows("SELECT * FROM subscriptions WHERE organization_id = ?", (shop.org["id"],))
    assert row["status"] == "active" and row["cancel_at_period_end"] == 1
    assert row["product_id"] == shop.products["Pro"]["id"]
    (grant,) = polar.grants(subscription_id=created["id"])
    assert shop.deliver(*signed("benefit_grant.created", grant, message_id="s3")).json()["status"] == "applied"
    (portal_key,) = shop.rows("SELECT key FROM license_keys WHERE organization_id = ?", (shop.org["id"],))
    assert portal_key["key"] == polar.key_of(grant)["key"]


def test_an_unmapped_product_waits_for_its_mapping(shop: Shop, polar: FakePolar) -> None:
    other = polar.call(
        "POST",
        "/v1/products/",
        201,
        json={"name": "Extra", "prices": [{"amount_type": "fixed", "price_amount": 500, "price_currency": "usd"}]},
    )
    customer = polar.customer("lin@example.com", "Lin")
    body = {"customer_id": customer["id"], "currency": "usd", "product_id": other["id"]}
    order = polar.call("POST", "/v1/orders/", 201, json={**body, "items": [{"label": "Extra", "unit_amount": 500}]})
    answer = shop.deliver(*signed("order.paid", order, message_id="u1")).json()
    assert answer["status"] == "unmapped"
    guide = {"product_id": shop.products["Guide"]["id"]}
    shop.call("PUT", f"/v1/connectors/polar/prices/{other['id']}", 200, json=guide)
    (row,) = shop.rows("SELECT * FROM orders WHERE organization_id = ?", (shop.org["id"],))
    assert row["total_amount"] == 500


# --- import ------------------------------------------------------------------------------------------------------


def _run_import(settings: Settings, org_id: str, **kwargs: Any) -> importer.ImportReport:
    async def work() -> importer.ImportReport:
        db = await Database(settings.db_path, readers=1).open()
        try:
            connection = await store.get_connection(db, org_id, "polar")
            assert connection is not None
            return await importer.run_import(db, settings, connection, now=Clock().now, **kwargs)
        finally:
            await db.close()

    return asyncio.run(work())


class Stop(Exception):
    pass


def test_import_pages_resumes_and_keeps_keys_validating(shop: Shop, polar: FakePolar) -> None:
    keys = []
    for index in range(5):
        _order, _grant, key = _sale(polar, f"buyer{index}@example.com")
        keys.append(key["key"])
    grace = polar.customer("grace@example.com", "Grace Hopper")
    polar.subscription(grace, "Pro")
    # An activation made on Polar comes over with its key.
    activated = polar.call(
        "POST",
        "/v1/customer-portal/license-keys/activate",
        200,
        json={"key": keys[0], "organization_id": polar.org["id"], "label": "laptop"},
    )
    assert activated["label"] == "laptop"

    def interrupt(report: importer.StreamReport) -> None:
        if report.name == "orders" and report.pages == 1:
            raise Stop

    with pytest.raises(Stop):
        _run_import(shop.settings, shop.org["id"], page_size=2, progress=interrupt)
    assert len(shop.rows("SELECT * FROM orders WHERE organization_id = ?", (shop.org["id"],))) == 2
    seen: list[tuple[str, int]] = []
    report = _run_import(shop.settings, shop.org["id"], page_size=2, progress=lambda r: seen.append((r.name, r.pages)))
    assert report.interrupted is None
    by_name = {stream.name: stream for stream in report.streams}
    assert by_name["customers"].skipped and by_name["subscriptions"].skipped
    assert by_name["orders"].resumed and by_name["orders"].seen == 3
    assert by_name["license-keys"].outcomes["applied"] == 6 and by_name["license-keys"].pages == 3
    assert len(shop.rows("SELECT * FROM orders WHERE organization_id = ?", (shop.org["id"],))) == 5
    assert len(shop.rows("SELECT * FROM customers WHERE organization_id = ?", (shop.org["id"],))) == 6
    (sub,) = shop.rows("SELECT * FROM subscriptions WHERE organization_id = ?", (shop.org["id"],))
    assert sub["status"] == "active"
    for key in keys:
        answer = shop.validate(key)
        assert answer.status_code == 200 and answer.json()["status"] == "granted", answer.text
    activations = shop.rows(
        "SELECT a.label FROM license_key_activations a JOIN license_keys k ON k.id = a.license_key_id WHERE k.key = ?",
        (keys[0],),
    )
    assert [a["label"] for a in activations] == ["laptop"]
    # History: no email for anything imported (no receipt, no subscription confirmation).
    assert shop.rows("SELECT kind FROM email_outbox WHERE organization_id = ?", (shop.org["id"],)) == []

    again = _run_import(shop.settings, shop.org["id"], page_size=2)  # a finished import runs again as a no-op
    assert again.interrupted is None
    assert len(shop.rows("SELECT * FROM orders WHERE organization_id = ?", (shop.org["id"],))) == 5
    assert len(shop.rows("SELECT * FROM license_keys WHERE organization_id = ?", (shop.org["id"],))) == 6


# --- write-back --------------------------------------------------------------------------------------------------


def _subscribed(shop: Shop, polar: FakePolar) -> tuple[dict[str, Any], str, dict[str, str]]:
    customer = polar.customer("grace@example.com", "Grace Hopper")
    remote = polar.subscription(customer, "Pro")
    assert shop.deliver(*signed("subscription.created", remote, message_id="w1")).json()["status"] == "applied"
    (row,) = shop.rows("SELECT id, customer_id FROM subscriptions WHERE organization_id = ?", (shop.org["id"],))
    token = insert_session(shop.settings, shop.org["id"], row["customer_id"], kind="api")
    return remote, row["id"], {"Authorization": f"Bearer {token}"}


def test_cancel_uncancel_and_plan_change_go_to_polar_first(shop: Shop, polar: FakePolar) -> None:
    remote, local, headers = _subscribed(shop, polar)
    path = f"/v1/customer-portal/subscriptions/{local}"
    answer = shop.client.patch(path, json={"cancel_at_period_end": True}, headers=headers)
    assert answer.status_code == 200 and answer.json()["cancel_at_period_end"] is True, answer.text
    assert polar.call("GET", f"/v1/subscriptions/{remote['id']}", 200)["cancel_at_period_end"] is True
    answer = shop.client.patch(path, json={"cancel_at_period_end": False}, headers=headers)
    assert answer.status_code == 200 and answer.json()["cancel_at_period_end"] is False
    assert polar.call("GET", f"/v1/subscriptions/{remote['id']}", 200)["cancel_at_period_end"] is False
    answer = shop.client.patch(path, json={"product_id": shop.products["Team"]["id"]}, headers=headers)
    assert answer.status_code == 200 and answer.json()["product_id"] == shop.products["Team"]["id"], answer.text
    assert polar.call("GET", f"/v1/subscriptions/{remote['id']}", 200)["product_id"] == polar.products["Team"]["id"]


def test_a_refusal_or_an_unreachable_polar_changes_nothing(shop: Shop, polar: FakePolar) -> None:
    remote, local, headers = _subscribed(shop, polar)
    path = f"/v1/customer-portal/subscriptions/{local}"
    # Polar refuses: the subscription is gone there (revoked), so it cannot be canceled at period end.
    polar.call("DELETE", f"/v1/subscriptions/{remote['id']}", 200)
    answer = shop.client.patch(path, json={"cancel_at_period_end": True}, headers=headers)
    assert answer.status_code == 422, answer.text
    assert "Polar refused" in answer.json()["detail"][0]["msg"]
    (row,) = shop.rows("SELECT cancel_at_period_end FROM subscriptions WHERE id = ?", (local,))
    assert row["cancel_at_period_end"] == 0

    unreachable = msgspec.structs.replace(shop.settings, polar_api_base="http://127.0.0.1:9")
    with TestClient(app_for(unreachable), base_url="http://testserver.local") as offline:
        answer = offline.patch(path, json={"cancel_at_period_end": True}, headers=headers)
        assert answer.status_code == 502 and "Polar" in answer.json()["detail"], answer.text
    (row,) = shop.rows("SELECT cancel_at_period_end FROM subscriptions WHERE id = ?", (local,))
    assert row["cancel_at_period_end"] == 0


def test_admin_license_keys_answer_polars_shape_and_only_to_their_organization(shop: Shop, polar: FakePolar) -> None:
    order, grant, key = _sale(polar)
    assert key["key"].startswith("POLAR-") and key["order_id"] == order["id"] and key["activations"] == []
    assert key["customer"]["email"] == "ada@example.com" and key["limit_activations"] == 3
    listed = polar.call("GET", "/v1/license-keys/", 200, params={"limit": 1})
    assert listed["pagination"] == {"total_count": 1, "max_page": 1}
    assert listed["items"][0]["key"] == key["key"] and "activations" not in listed["items"][0]
    # Another organization's token sees none of it.
    other = create_org(shop.client, mint_token(shop.settings), "other")
    other_token = mint_token(shop.settings, other["id"])
    shop.deliver(*signed("order.paid", order, message_id="k1"))
    shop.deliver(*signed("benefit_grant.created", grant, message_id="k2"))
    (mine,) = shop.call("GET", "/v1/license-keys/", 200)["items"]
    assert mine["key"] == key["key"]
    assert api(shop.client, other_token, "GET", f"/v1/license-keys/{mine['id']}").get("detail")
    assert (
        shop.client.get(
            f"/v1/license-keys/{mine['id']}", headers={"Authorization": f"Bearer {other_token}"}
        ).status_code
        == 404
    )
    assert api(shop.client, other_token, "GET", "/v1/license-keys/", 200)["items"] == []
    assert shop.client.get("/v1/license-keys/").status_code == 401


def test_a_polar_dashboard_secret_signs_with_its_own_bytes(shop: Shop, polar: FakePolar) -> None:
    """Polar's dashboard secrets are not base64: Polar signs with the secret's bytes (as its SDK verifies)."""
    raw = "polar_whs_Xq3vT9kLm2Pw8RzN4cYb6HdJ"
    shop.call("PUT", "/v1/connectors/polar", 200, json={"api_key": polar.token, "webhook_secret": raw})
    order, _grant, _key = _sale(polar)
    moment = datetime.now(UTC)
    body = json.dumps({"type": "order.paid", "timestamp": moment.isoformat(), "data": order}).encode()
    signature = standardwebhooks.Webhook(raw.encode()).sign("msg_raw", moment, body.decode())
    headers = {
        "webhook-id": "msg_raw",
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signature,
    }
    answer = shop.deliver(body, headers)
    assert answer.status_code == 200 and answer.json()["status"] == "applied", answer.text
    # The same delivery signed with another key is refused.
    wrong = standardwebhooks.Webhook(b"another-key").sign("msg_raw2", moment, body.decode())
    refused = shop.deliver(body, {**headers, "webhook-id": "msg_raw2", "webhook-signature": wrong})
    assert refused.status_code == 400


def test_a_revoked_grant_revokes_the_key_and_an_updated_one_brings_new_usage(shop: Shop, polar: FakePolar) -> None:
    order, grant, key = _sale(polar)
    shop.deliver(*signed("order.paid", order, message_id="r1"))
    shop.deliver(*signed("benefit_grant.created", grant, message_id="r2"))
    used = polar.call(
        "POST",
        "/v1/customer-portal/license-keys/validate",
        200,
        json={"key": key["key"], "organization_id": polar.org["id"], "increment_usage": 2},
    )
    assert used["usage"] == 2
    assert shop.deliver(*signed("benefit_grant.updated", grant, message_id="r3")).json()["status"] == "applied"
    (row,) = shop.rows("SELECT usage, status FROM license_keys WHERE key = ?", (key["key"],))
    assert row["usage"] == 2 and row["status"] == "granted"
    revoked = polar.call("DELETE", f"/v1/benefit-grants/{grant['id']}", 200)
    assert shop.deliver(*signed("benefit_grant.revoked", revoked, message_id="r4")).json()["status"] == "applied"
    (row,) = shop.rows("SELECT status FROM license_keys WHERE key = ?", (key["key"],))
    assert row["status"] == "revoked"
    refused = shop.validate(key["key"])
    assert refused.status_code == 404 and "no longer active" in refused.text, refused.text


def _polar_downloads(polar: FakePolar, files: dict[str, bytes]) -> dict[str, Any]:
    """Files uploaded on Polar, in a downloadables benefit added to Polar's Guide."""
    uploaded = [
        polar.call("POST", "/v1/files/", 201, files={"file": (name, content, "application/zip")})["id"]
        for name, content in files.items()
    ]
    benefit = polar.call(
        "POST",
        "/v1/benefits/",
        201,
        json={"type": "downloadables", "description": "Guide downloads", "properties": {"files": uploaded}},
    )
    guide = polar.products["Guide"]
    current = [b["id"] for b in guide["benefits"]]
    polar.call("POST", f"/v1/products/{guide['id']}/benefits", 200, json={"benefits": [*current, benefit["id"]]})
    return benefit  # type: ignore[no-any-return]


def test_import_brings_downloadables_with_their_bytes_for_the_imported_customers(shop: Shop, polar: FakePolar) -> None:
    from urllib.parse import urlsplit

    files = {"guide.zip": b"PK\x03\x04 the guide" * 40, "samples.zip": b"PK\x03\x04 samples"}
    benefit = _polar_downloads(polar, files)
    # Portal answers Polar's ``GET /v1/files/?ids=…`` (the importer describes the files with it).
    first_file = benefit["properties"]["files"][0]
    only = polar.call("GET", "/v1/files/", 200, params={"ids": [first_file]})["items"]
    assert [f["id"] for f in only] == [first_file] and only[0]["name"] == "guide.zip"
    # Before anybody holds the benefit, Polar gives no download link: the import says so and tries again next time.
    report = _run_import(shop.settings, shop.org["id"])
    assert report.interrupted is None
    (benefits,) = [s for s in report.streams if s.name == "benefits"]
    assert [object_id for object_id, _ in benefits.failures] == [benefit["id"]]
    polar.order(polar.customer("ada@example.com", "Ada Lovelace"), "Guide")
    report = _run_import(shop.settings, shop.org["id"])
    assert report.interrupted is None, report.interrupted
    (benefits,) = [s for s in report.streams if s.name == "benefits"]
    assert benefits.failures == [] and benefits.outcomes["applied"] == 1 and benefits.outcomes["files fetched"] == 2

    (customer,) = shop.rows(
        "SELECT id FROM customers WHERE organization_id = ? AND email = ?", (shop.org["id"], "ada@example.com")
    )
    headers = {"Authorization": f"Bearer {insert_session(shop.settings, shop.org['id'], customer['id'], kind='api')}"}
    listed = shop.client.get("/v1/customer-portal/downloadables/", headers=headers)
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert sorted(item["file"]["name"] for item in items) == sorted(files)
    for item in items:
        first = shop.client.get(urlsplit(item["file"]["download"]["url"]).path, follow_redirects=False)
        assert first.status_code == 302, first.text
        target = urlsplit(first.headers["location"])
        got = shop.client.get(f"{target.path}?{target.query}")
        assert got.status_code == 200 and got.content == files[item["file"]["name"]]

    # Again: nothing fetched twice, one benefit on the mapped Guide.
    again = _run_import(shop.settings, shop.org["id"])
    assert again.interrupted is None
    (benefits,) = [s for s in again.streams if s.name == "benefits"]
    assert benefits.outcomes["files fetched"] == 0 and benefits.failures == []
    assert len(shop.rows("SELECT id FROM files WHERE organization_id = ?", (shop.org["id"],))) == 2
    guide = shop.call("GET", f"/v1/products/{shop.products['Guide']['id']}", 200)
    assert [b["type"] for b in guide["benefits"]].count("downloadables") == 1
