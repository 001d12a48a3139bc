"""``portal.connectors.stripe.mapping`` called directly, as ``portal import stripe`` does: history keeps Stripe's
dates and sends no email and no webhook; the seller's ``revoke_on_full_refund`` decides whether a full refund
revokes the order's benefits; a price mapped to another organization's product is not used."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from portal.clock import Clock
from portal.connectors import store
from portal.connectors.base import ApplyContext, NeedObject
from portal.connectors.stripe import mapping
from portal.db import Database
from portal.settings import Settings
from tests import stripe_events as se
from tests.admin_support import api, create_org, mint_token
from tests.apps import app_for
from tests.stripe_fake import FakeStripe, fake_stripe

CREATED = 1_767_225_600  # 2026-01-01T00:00:00Z


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with fake_stripe() as running:
        yield running


@pytest.fixture
def stripe_settings(settings: Settings, fake: FakeStripe) -> Settings:
    return msgspec.structs.replace(settings, stripe_api_base=fake.base_url)


@pytest.fixture
def client(stripe_settings: Settings) -> Iterator[TestClient[Litestar]]:
    with TestClient(app_for(stripe_settings), base_url="http://testserver.local") as test_client:
        yield test_client


def _shop(client: TestClient[Litestar], settings: Settings, fake: FakeStripe, slug: str) -> dict[str, Any]:
    org = create_org(client, mint_token(settings), slug)
    token = mint_token(settings, org["id"])
    key = {"type": "license_keys", "description": "Key", "properties": {"prefix": "KEY"}}
    benefit = api(client, token, "POST", "/v1/benefits/", 201, json=key)
    product = api(
        client,
        token,
        "POST",
        "/v1/products/",
        201,
        json={
            "name": "Guide",
            "prices": [{"amount_type": "fixed", "price_amount": 2900, "price_currency": "usd"}],
            "benefits": [benefit["id"]],
        },
    )
    api(client, token, "PUT", "/v1/connectors/stripe", 200, json={"api_key": fake.api_key, "webhook_secret": "whsec"})
    return {"org": org, "token": token, "product": product}


def _session(product_id: str) -> dict[str, Any]:
    session = se.checkout_session(
        "cs_hist", created=CREATED, email="old@example.com", name="Old Buyer", amount=2900, payment_intent="pi_hist"
    )
    price = se.price("price_hist", 2900, product="prod_hist", metadata={"portal_product_id": product_id})
    return {**session, "line_items": {"object": "list", "data": [se.line_item("li_hist", price, "Guide")]}}


def _apply(settings: Settings, organization_id: str, history: bool, *objects: tuple[str, dict[str, Any]]) -> list[str]:
    async def run() -> list[str]:
        db = await Database(settings.db_path).open()
        try:
            connection = await store.require_connection(db, organization_id, "stripe")
            ctx = ApplyContext(connection=connection, now=Clock().now(), history=history)
            results = []
            for kind, obj in objects:
                async with db.write() as tx:
                    outcome = await getattr(mapping, f"apply_{kind}")(tx, ctx, obj)
                results.append(outcome.status)
            return results
        finally:
            await db.close()

    return asyncio.run(run())


def _rows(settings: Settings, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(settings.db_path)
    try:
        return [tuple(row) for row in conn.execute(sql, params)]
    finally:
        conn.close()


def test_history_keeps_stripe_dates_and_sends_nothing(
    client: TestClient[Litestar], stripe_settings: Settings, fake: FakeStripe
) -> None:
    shop = _shop(client, stripe_settings, fake, "acme")
    org_id = shop["org"]["id"]
    charge = se.charge("ch_hist", payment_intent="pi_hist", amount=2900, refunded=900, created=CREATED + 60)
    statuses = _apply(
        stripe_settings, org_id, True, ("checkout_session", _session(shop["product"]["id"])), ("charge", charge)
    )
    assert statuses == ["applied", "applied"]
    ((created_at, paid_at, status, refunded),) = _rows(
        stripe_settings,
        "SELECT created_at, paid_at, status, refunded_amount FROM orders WHERE organization_id = ?",
        org_id,
    )
    stamp = datetime.fromtimestamp(CREATED, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    assert created_at == stamp and paid_at == stamp
    assert (status, refunded) == ("partially_refunded", 900)
    assert _rows(stripe_settings, "SELECT kind FROM email_outbox WHERE organization_id = ?", org_id) == []
    assert _rows(stripe_settings, "SELECT type FROM webhook_events WHERE organization_id = ?", org_id) == []
    # Applied again (the import resumed, or a live event for the same sale): nothing changes.
    assert _apply(
        stripe_settings, org_id, True, ("checkout_session", _session(shop["product"]["id"])), ("charge", charge)
    ) == ["ignored", "ignored"]
    assert len(_rows(stripe_settings, "SELECT id FROM orders WHERE organization_id = ?", org_id)) == 1


@pytest.mark.parametrize("revoke", [True, False])
def test_full_refund_revokes_benefits_per_the_seller_setting(
    client: TestClient[Litestar], stripe_settings: Settings, fake: FakeStripe, revoke: bool
) -> None:
    shop = _shop(client, stripe_settings, fake, "acme")
    api(client, shop["token"], "PATCH", "/v1/connectors/stripe", 200, json={"revoke_on_full_refund": revoke})
    org_id = shop["org"]["id"]
    full = se.charge("ch_hist", payment_intent="pi_hist", amount=2900, refunded=2900, created=CREATED + 60)
    assert _apply(
        stripe_settings, org_id, False, ("checkout_session", _session(shop["product"]["id"])), ("charge", full)
    ) == ["applied", "applied"]
    ((status,),) = _rows(stripe_settings, "SELECT status FROM orders WHERE organization_id = ?", org_id)
    assert status == "refunded"
    grants = _rows(
        stripe_settings, "SELECT revoked_at IS NOT NULL FROM benefit_grants WHERE organization_id = ?", org_id
    )
    assert grants == [(1 if revoke else 0,)]
    kinds = [k for (k,) in _rows(stripe_settings, "SELECT kind FROM email_outbox WHERE organization_id = ?", org_id)]
    assert kinds == ["receipt", "refund"]  # live: the same emails an admin-API order and refund send


def test_another_organizations_product_is_never_used(
    client: TestClient[Litestar], stripe_settings: Settings, fake: FakeStripe
) -> None:
    acme = _shop(client, stripe_settings, fake, "acme")
    other = _shop(client, stripe_settings, fake, "other")
    # The price's metadata names acme's product; applied for "other" it is unmapped, never acme's.
    statuses = _apply(stripe_settings, other["org"]["id"], False, ("checkout_session", _session(acme["product"]["id"])))
    assert statuses == ["unmapped"]
    assert _rows(stripe_settings, "SELECT id FROM orders") == []


def test_a_subscription_whose_customer_is_unknown_asks_for_it(
    client: TestClient[Litestar], stripe_settings: Settings, fake: FakeStripe
) -> None:
    shop = _shop(client, stripe_settings, fake, "acme")
    recurring = api(
        client,
        shop["token"],
        "POST",
        "/v1/products/",
        201,
        json={
            "name": "Pro",
            "recurring_interval": "month",
            "prices": [{"amount_type": "fixed", "price_amount": 1000, "price_currency": "usd"}],
        },
    )
    price = se.price(
        "price_pro", 1000, product="prod_pro", interval="month", metadata={"portal_product_id": recurring["id"]}
    )
    sub = se.subscription("sub_1", customer_id="cus_1", the_price=price, created=CREATED, period_start=CREATED)
    with pytest.raises(NeedObject) as need:
        _apply(stripe_settings, shop["org"]["id"], True, ("subscription", sub))
    assert (need.value.kind, need.value.object_id) == ("customers", "cus_1")
    customer = se.customer("cus_1", "ada@example.com", "Ada", CREATED)
    assert _apply(stripe_settings, shop["org"]["id"], True, ("customer", customer), ("subscription", sub)) == [
        "applied",
        "applied",
    ]
    ((status, created_at),) = _rows(stripe_settings, "SELECT status, created_at FROM subscriptions")
    assert status == "active" and created_at.startswith("2026-01-01T00:00:00")
