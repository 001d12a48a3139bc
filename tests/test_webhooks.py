"""Webhooks to the seller's app through a real HTTP receiver on loopback: endpoint CRUD in the admin API,
Standard Webhooks signatures (checked with the ``standardwebhooks`` package and Polar's SDK), Polar's payload
shapes, retries with backoff and the delivery log, and no lost delivery across an app restart."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import TestClient
from polar import deserialize
from polar.v2026_10 import outputs
from polar.v2026_10 import webhooks as polar_webhooks
from polar.webhooks import validate_event as validate_polar_event
from standardwebhooks.webhooks import Webhook

from portal.clock import Clock, iso
from portal.db import Database
from portal.notifications.mute import muted
from portal.orders import service as order_service
from portal.settings import Settings
from portal.webhooks import signing
from tests.admin_support import api, bearer, create_org, mint_token
from tests.apps import app_for
from tests.notification_support import Received, Shop, fast, make_shop, pay, receiver, rows, subscribe, wait_until
from tests.signin_helpers import csrf, sign_in_browser

BASE = "http://testserver.local"
ALL_EVENTS = [
    "order.paid",
    "order.refunded",
    "subscription.updated",
    "subscription.canceled",
    "subscription.uncanceled",
    "benefit_grant.created",
    "benefit_grant.revoked",
    "customer.updated",
    "license_key.activated",
    "license_key.deactivated",
]


def _endpoint(client: Any, shop: Shop, url: str, events: list[str]) -> dict[str, Any]:
    return api(client, shop.token, "POST", "/v1/webhooks/endpoints", 201, json={"url": url, "events": events})  # type: ignore[no-any-return]


def _verify(request: Received, secret: str) -> dict[str, Any]:
    """The ``standardwebhooks`` package accepts the signature; Polar's SDK accepts the signature and parses the
    payload into its typed model (for Polar's events; the license-key events are Portal's own). Returns the JSON."""
    payload: dict[str, Any] = Webhook(secret).verify(request.body, request.headers)
    if not payload["type"].startswith("license_key."):
        # The SDK's own check, loading just this event's model (its union of every event is slow to build).
        model = getattr(
            polar_webhooks, "Webhook" + re.sub(r"[._]", " ", payload["type"]).title().replace(" ", "") + "Payload"
        )
        typed = validate_polar_event(
            request.body, request.headers, secret, frozenset({payload["type"]}), lambda data: deserialize(data, model)
        )
        assert isinstance(typed, model) and typed.type == payload["type"]
    return payload


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    return fast(settings)


@pytest.fixture
def fast_client(app_settings: Settings, clock: Clock):  # type: ignore[no-untyped-def]
    with TestClient(app_for(app_settings, clock=clock), base_url=BASE) as client:
        yield client


def test_endpoint_crud_secret_and_validation(fast_client, app_settings: Settings) -> None:  # type: ignore[no-untyped-def]
    client = fast_client
    shop = make_shop(client, app_settings)
    created = _endpoint(client, shop, "https://example.com/hooks", ["order.paid"])
    assert created["secret"].startswith("whsec_") and len(signing.signing_key(created["secret"])) == 32
    assert created["organization_id"] == shop.org["id"] and created["enabled"] is True
    assert created["format"] == "raw" and created["uses_standard_webhook_signature"] is True
    deserialize(created, outputs.WebhookEndpoint)
    path = f"/v1/webhooks/endpoints/{created['id']}"
    assert api(client, shop.token, "GET", path, 200) == created
    changed = api(client, shop.token, "PATCH", path, 200, json={"events": ["order.paid", "order.refunded"]})
    assert changed["events"] == ["order.paid", "order.refunded"] and changed["url"] == created["url"]
    disabled = api(client, shop.token, "PATCH", path, 200, json={"enabled": False})
    assert disabled["enabled"] is False
    rotated = api(client, shop.token, "PATCH", f"{path}/secret", 200)
    assert rotated["secret"] != created["secret"] and rotated["secret"].startswith("whsec_")
    listed = api(client, shop.token, "GET", "/v1/webhooks/endpoints", 200)
    assert listed["pagination"]["total_count"] == 1
    # Only http(s) URLs and known events.
    for url in ("ftp://example.com/x", "javascript:alert(1)", "/relative", "https://user:pw@example.com/"):
        problem = api(client, shop.token, "POST", "/v1/webhooks/endpoints", 422, json={"url": url, "events": []})
        assert problem["detail"][0]["loc"] == ["body", "url"], url
    assert client.post(
        "/v1/webhooks/endpoints", json={"url": "https://x.example", "events": ["nope"]}, headers=bearer(shop.token)
    ).status_code in (400, 422)
    # Another organization's token sees nothing of it.
    other = create_org(client, shop.admin, "globex")
    other_token = mint_token(app_settings, other["id"])
    assert client.get(path, headers=bearer(other_token)).status_code == 404
    assert api(client, other_token, "GET", "/v1/webhooks/endpoints", 200)["items"] == []
    assert client.delete(path, headers=bearer(other_token)).status_code == 404
    assert client.delete(path, headers=bearer(shop.token)).status_code == 204
    assert client.get(path, headers=bearer(shop.token)).status_code == 404


def test_portal_cancel_delivers_a_signed_subscription_canceled(fast_client, app_settings: Settings) -> None:  # type: ignore[no-untyped-def]
    client = fast_client
    shop = make_shop(client, app_settings)
    sub = subscribe(client, shop, period_start=iso(datetime.now(UTC) - timedelta(days=3)))
    with receiver() as hook:
        endpoint = _endpoint(client, shop, hook.url, ["subscription.canceled"])
        sign_in_browser(client, app_settings, "acme", shop.org["id"], shop.customer["id"])
        answer = client.post(
            f"/acme/portal/subscriptions/{sub['id']}/cancel",
            data={"_csrf_token": csrf(client), "cancellation_reason": "too_expensive"},
            follow_redirects=False,
        )
        assert answer.status_code == 303
        [request] = hook.wait_for(1)
        time.sleep(0.2)
        assert len(hook.requests) == 1  # only the subscribed event
    payload = _verify(request, endpoint["secret"])
    assert request.path == "/hooks/polar" and request.headers["content-type"] == "application/json"
    assert payload["type"] == "subscription.canceled"
    assert payload["data"]["id"] == sub["id"] and payload["data"]["cancel_at_period_end"] is True
    assert payload["data"]["customer_cancellation_reason"] == "too_expensive"
    assert payload["data"]["customer"]["email"] == "ada@example.com"
    # Tampering breaks the signature.
    with pytest.raises(Exception, match="signature"):
        Webhook(endpoint["secret"]).verify(request.body.replace(b"too_expensive", b"too_cheap"), request.headers)
    log = api(client, shop.token, "GET", f"/v1/webhooks/endpoints/{endpoint['id']}/deliveries", 200)
    assert log["pagination"]["total_count"] == 1
    [delivery] = log["items"]
    assert delivery["succeeded"] is True and delivery["http_code"] == 200
    assert delivery["webhook_event"]["id"] == request.headers["webhook-id"]
    assert delivery["webhook_event"]["type"] == "subscription.canceled"
    assert delivery["webhook_event"]["status"] == "succeeded"
    polar_log = api(client, shop.token, "GET", f"/v1/webhooks/deliveries?endpoint_id={endpoint['id']}", 200)
    assert polar_log["items"] == log["items"]


def test_failing_receiver_gets_retries_with_backoff(settings: Settings, clock: Clock) -> None:
    app_settings = fast(settings, retry_backoff_base=0.3)
    with TestClient(app_for(app_settings, clock=clock), base_url=BASE) as client:
        shop = make_shop(client, app_settings)
        with receiver(statuses=[500, 500, 204]) as hook:
            endpoint = _endpoint(client, shop, hook.url, ["order.paid"])
            pay(client, shop)
            first, second, third = hook.wait_for(3)
            time.sleep(0.3)
            assert len(hook.requests) == 3
        log = api(client, shop.token, "GET", f"/v1/webhooks/endpoints/{endpoint['id']}/deliveries?limit=10", 200)
    # 0.3 s after the first failure, then 0.6 s after the second.
    assert second.at - first.at >= 0.3 and third.at - second.at >= 0.6
    # The same message every time: one webhook-id, the same body; a fresh timestamp and signature each try.
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == third.headers["webhook-id"]
    assert first.body == second.body == third.body
    for request in (first, second, third):
        assert _verify(request, endpoint["secret"])["type"] == "order.paid"
    attempts = sorted(log["items"], key=lambda d: d["attempt"])
    assert [(d["attempt"], d["succeeded"], d["http_code"]) for d in attempts] == [
        (1, False, 500),
        (2, False, 500),
        (3, True, 204),
    ]
    assert attempts[0]["response"] == "boom"
    assert attempts[-1]["webhook_event"]["status"] == "succeeded"


def test_gives_up_after_max_attempts_and_can_redeliver(settings: Settings, clock: Clock) -> None:
    app_settings = fast(settings, retry_backoff_base=0.05, retry_max_attempts=2)
    with TestClient(app_for(app_settings, clock=clock), base_url=BASE) as client:
        shop = make_shop(client, app_settings)
        with receiver(statuses=[503, 503, 200]) as hook:
            _endpoint(client, shop, hook.url, ["customer.updated"])
            api(client, shop.token, "PATCH", f"/v1/customers/{shop.customer['id']}", 200, json={"name": "Ada L."})
            hook.wait_for(2)
            [event] = wait_until(lambda: rows(app_settings, "SELECT * FROM webhook_events WHERE status = 'failed'"))
            assert event["attempts"] == 2 and event["last_http_code"] == 503
            time.sleep(0.2)
            assert len(hook.requests) == 2
            assert (
                client.post(f"/v1/webhooks/events/{event['id']}/redeliver", headers=bearer(shop.token)).status_code
                == 202
            )
            hook.wait_for(3)
            wait_until(lambda: rows(app_settings, "SELECT status FROM webhook_events")[0]["status"] == "succeeded")
    payload = json.loads(hook.requests[2].body)
    assert payload["type"] == "customer.updated" and payload["data"]["name"] == "Ada L."


def test_restart_in_between_loses_no_delivery(settings: Settings, clock: Clock) -> None:
    app_settings = fast(settings, retry_backoff_base=0.2)
    with receiver(statuses=[500, 500, 500, 200]) as hook:
        with TestClient(app_for(app_settings, clock=clock), base_url=BASE) as client:
            shop = make_shop(client, app_settings)
            sub = subscribe(client, shop, period_start=iso(datetime.now(UTC) - timedelta(days=3)))
            endpoint = _endpoint(client, shop, hook.url, ["subscription.canceled"])
            sign_in_browser(client, app_settings, "acme", shop.org["id"], shop.customer["id"])
            client.post(
                f"/acme/portal/subscriptions/{sub['id']}/cancel",
                data={"_csrf_token": csrf(client)},
                follow_redirects=False,
            )
            hook.wait_for(1)
        # Stopped after a failed attempt; the event waits in the database.
        [event] = rows(app_settings, "SELECT * FROM webhook_events")
        assert event["status"] == "pending" and event["attempts"] >= 1
        hook.statuses = [200]
        with TestClient(app_for(app_settings, clock=clock), base_url=BASE):
            wait_until(lambda: rows(app_settings, "SELECT status FROM webhook_events")[0]["status"] == "succeeded")
            time.sleep(0.2)
    # Exactly one successful delivery, the last request: nothing lost, nothing sent after it.
    assert [r.status for r in hook.requests][-1] == 200
    assert sum(r.status == 200 for r in hook.requests) == 1
    assert len({r.headers["webhook-id"] for r in hook.requests}) == 1
    assert _verify(hook.requests[-1], endpoint["secret"])["data"]["id"] == sub["id"]
    deliveries = rows(app_settings, "SELECT succeeded FROM webhook_deliveries ORDER BY attempt")
    assert [d["succeeded"] for d in deliveries] == [0] * (len(deliveries) - 1) + [1]


def test_order_grant_and_license_key_events_in_polar_shapes(fast_client, app_settings: Settings) -> None:  # type: ignore[no-untyped-def]
    client = fast_client
    shop = make_shop(client, app_settings)
    with receiver() as hook:
        endpoint = _endpoint(client, shop, hook.url, ALL_EVENTS)
        order = pay(client, shop)
        key = rows(app_settings, "SELECT key FROM license_keys")[0]["key"]
        activated = client.post(
            "/v1/customer-portal/license-keys/activate",
            json={"key": key, "organization_id": shop.org["id"], "label": "laptop"},
        )
        assert activated.status_code == 200, activated.text
        deactivated = client.post(
            "/v1/customer-portal/license-keys/deactivate",
            json={"key": key, "organization_id": shop.org["id"], "activation_id": activated.json()["id"]},
        )
        assert deactivated.status_code == 204
        api(client, shop.token, "PATCH", f"/v1/orders/{order['id']}", 200, json={"status": "refunded"})
        requests = hook.wait_for(6)
        time.sleep(0.2)
    payloads = [_verify(request, endpoint["secret"]) for request in hook.requests]
    types = [payload["type"] for payload in payloads]
    assert sorted(types) == sorted(
        [
            "benefit_grant.created",
            "order.paid",
            "license_key.activated",
            "license_key.deactivated",
            "benefit_grant.revoked",
            "order.refunded",
        ]
    ), types
    by_type = {payload["type"]: payload for payload in payloads}
    assert by_type["order.paid"]["data"]["id"] == order["id"] and by_type["order.paid"]["data"]["paid"] is True
    assert by_type["order.refunded"]["data"]["status"] == "refunded"
    assert by_type["benefit_grant.created"]["data"]["properties"]["display_key"].startswith("****-")
    assert by_type["benefit_grant.revoked"]["data"]["is_revoked"] is True
    activation = by_type["license_key.activated"]["data"]
    assert activation["label"] == "laptop" and activation["license_key"]["key"] == key
    assert by_type["license_key.deactivated"]["data"]["id"] == activation["id"]
    assert len(requests) == 6


def test_disabled_endpoints_and_seeding_get_nothing(settings: Settings, clock: Clock) -> None:
    app_settings = fast(settings)
    with TestClient(app_for(app_settings, clock=clock), base_url=BASE) as client:
        shop = make_shop(client, app_settings)
        with receiver() as hook:
            endpoint = _endpoint(client, shop, hook.url, ["order.paid"])
            api(client, shop.token, "PATCH", f"/v1/webhooks/endpoints/{endpoint['id']}", 200, json={"enabled": False})
            pay(client, shop)
            time.sleep(0.3)
            assert hook.requests == []
    assert rows(app_settings, "SELECT COUNT(*) AS n FROM webhook_events")[0]["n"] == 0

    async def pay_muted() -> None:
        db = await Database(app_settings.db_path, readers=1).open()
        try:
            async with db.write() as tx:
                await tx.execute("UPDATE webhook_endpoints SET enabled = 1")
                order_id = await order_service.create_order(
                    tx,
                    shop.org["id"],
                    order_service.OrderInput(
                        customer_id=shop.customer["id"],
                        currency="usd",
                        product_id=shop.product["id"],
                        items=[order_service.OrderItemInput(label="Toolkit", unit_amount=4900)],
                    ),
                    now=clock.now(),
                )
                with muted():
                    await order_service.mark_order_paid(tx, order_id, now=clock.now())
        finally:
            await db.close()

    asyncio.run(pay_muted())
    assert rows(app_settings, "SELECT COUNT(*) AS n FROM webhook_events")[0]["n"] == 0
    assert rows(app_settings, "SELECT COUNT(*) AS n FROM email_outbox WHERE kind = 'receipt'")[0]["n"] == 1


def test_rolled_back_change_queues_nothing(settings: Settings, clock: Clock) -> None:
    app_settings = fast(settings)
    with TestClient(app_for(app_settings, clock=clock), base_url=BASE) as client:
        shop = make_shop(client, app_settings)
        _endpoint(client, shop, "http://127.0.0.1:9/never", ["order.paid"])

    async def pay_then_fail() -> None:
        db = await Database(app_settings.db_path, readers=1).open()
        try:
            async with db.write() as tx:
                order_id = await order_service.create_order(
                    tx,
                    shop.org["id"],
                    order_service.OrderInput(
                        customer_id=shop.customer["id"],
                        currency="usd",
                        product_id=shop.product["id"],
                        items=[order_service.OrderItemInput(label="Toolkit", unit_amount=4900)],
                    ),
                    now=clock.now(),
                )
                await order_service.mark_order_paid(tx, order_id, now=clock.now())
                queued = await tx.fetchval("SELECT COUNT(*) FROM webhook_events")
                emails = await tx.fetchval("SELECT COUNT(*) FROM email_outbox")
                assert (queued, emails) == (1, 1)
                raise RuntimeError("the change fails after the hooks ran")
        finally:
            await db.close()

    with pytest.raises(RuntimeError):
        asyncio.run(pay_then_fail())
    assert rows(app_settings, "SELECT COUNT(*) AS n FROM webhook_events")[0]["n"] == 0
    assert rows(app_settings, "SELECT COUNT(*) AS n FROM email_outbox")[0]["n"] == 0
    assert rows(app_settings, "SELECT COUNT(*) AS n FROM orders")[0]["n"] == 0
