"""Lemon Squeezy connector (issue 20): signed deliveries to ``POST /v1/integrations/lemonsqueezy/{slug}/webhook`` in
Lemon Squeezy's documented shapes, stored once (by the body's digest), in or out of order; variants mapped to Portal
products; license keys keeping their string, limit and activations and validating through Portal; customer actions
out against a fake Lemon Squeezy API on loopback; ``portal import lemonsqueezy`` with pagination and resume."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from portal.cli import main
from portal.settings import Settings
from tests import lemonsqueezy_fake as ls
from tests.admin_support import api, create_org, mint_token
from tests.apps import app_for
from tests.lemonsqueezy_fake import FakeLemonSqueezy, fake_lemonsqueezy
from tests.signin_helpers import insert_session

SECRET = "ls-webhook-signing-secret"
NOW = int(time.time())
DAY = 86400
KEY = "38b1460a-5104-4067-a91d-77b872934d51"
SUB_KEY = "9f0c2d4e-6a8b-4c1d-9e2f-3a4b5c6d7e8f"


@pytest.fixture
def fake() -> Iterator[FakeLemonSqueezy]:
    with fake_lemonsqueezy() as running:
        yield running


@pytest.fixture
def ls_settings(settings: Settings, fake: FakeLemonSqueezy) -> Settings:
    return msgspec.structs.replace(settings, lemonsqueezy_api_base=fake.base_url)


@pytest.fixture
def client(ls_settings: Settings) -> Iterator[TestClient[Litestar]]:
    with TestClient(app_for(ls_settings), base_url="http://testserver.local") as test_client:
        yield test_client


class Shop:
    """An organization with a one-time Toolkit (variant 11) and monthly Pro (21) and Team (22) plans, each with a
    license-keys benefit, connected to the fake Lemon Squeezy with the variants mapped."""

    def __init__(self, client: TestClient[Litestar], settings: Settings, fake: FakeLemonSqueezy, slug: str) -> None:
        self.client = client
        self.slug = slug
        self.org = create_org(client, mint_token(settings), slug)
        self.token = mint_token(settings, self.org["id"])
        key = {"type": "license_keys", "description": "Key", "properties": {"activations": {"limit": 5}}}
        benefit = api(client, self.token, "POST", "/v1/benefits/", 201, json=key)
        self.products: dict[str, dict[str, Any]] = {}
        for name, amount, recurring in (("Toolkit", 4900, False), ("Pro", 1000, True), ("Team", 3000, True)):
            self.products[name] = api(
                client,
                self.token,
                "POST",
                "/v1/products/",
                201,
                json={
                    "name": name,
                    "prices": [{"amount_type": "fixed", "price_amount": amount, "price_currency": "usd"}],
                    "benefits": [benefit["id"]],
                    **({"recurring_interval": "month"} if recurring else {}),
                },
            )
        body = {"api_key": fake.api_key, "webhook_secret": SECRET}
        api(client, self.token, "PUT", "/v1/connectors/lemonsqueezy", 200, json=body)
        for variant, name in (("11", "Toolkit"), ("21", "Pro"), ("22", "Team")):
            path = f"/v1/connectors/lemonsqueezy/prices/{variant}"
            api(client, self.token, "PUT", path, 200, json={"product_id": self.products[name]["id"]})

    def deliver(self, event: str, resource: dict[str, Any], *, secret: str = SECRET, tamper: bool = False) -> Any:
        body = ls.webhook(event, resource)
        signature = ls.signature(body, secret)
        if tamper:
            body = body.replace(b'"paid"', b'"PAID"')
        return self.client.post(
            f"/v1/integrations/lemonsqueezy/{self.slug}/webhook",
            content=body,
            headers={"X-Signature": signature, "Content-Type": "application/json"},
        )

    def validate(self, key: str, **extra: Any) -> Any:
        body = {"key": key, "organization_id": self.org["id"], **extra}
        return self.client.post("/v1/customer-portal/license-keys/validate", json=body)

    def state(self, db_path: Path) -> dict[str, Any]:
        conn = sqlite3.connect(db_path)
        try:
            org = self.org["id"]
            return {
                "orders": conn.execute(
                    "SELECT external_id, status, total_amount, refunded_amount, billing_reason FROM orders "
                    "WHERE organization_id = ? ORDER BY external_id",
                    (org,),
                ).fetchall(),
                "subscriptions": conn.execute(
                    "SELECT s.status, p.name, s.cancel_at_period_end, s.current_period_end FROM subscriptions s "
                    "JOIN products p ON p.id = s.product_id WHERE s.organization_id = ?",
                    (org,),
                ).fetchall(),
                # Keys Portal issued itself are random: only their status and limit compare.
                "keys": sorted(
                    (key if key in (KEY, SUB_KEY) else "(issued by Portal)", status, limit)
                    for key, status, limit in conn.execute(
                        "SELECT key, status, limit_activations FROM license_keys WHERE organization_id = ?", (org,)
                    )
                ),
                "customers": conn.execute(
                    "SELECT email, name FROM customers WHERE organization_id = ? ORDER BY email", (org,)
                ).fetchall(),
            }
        finally:
            conn.close()


def _story() -> list[tuple[str, dict[str, Any]]]:
    """A one-time Toolkit purchase with its license key, then refunded; a Pro subscription started, renewed,
    switched to Team, cancelled at period end."""
    t0 = NOW - 40 * DAY
    buyer = {"email": "ada@example.com", "name": "Ada Lovelace", "customer": 7}
    sub = {"email": "bob@example.com", "name": "Bob", "customer": 8}
    toolkit = {"variant": 11, **buyer, "total": 4900, "created": t0}
    common = {"variant": 21, "order_id": 501, **sub, "created": t0}
    return [
        ("order_created", ls.order(500, **toolkit)),
        ("license_key_created", ls.license_key(900, order_id=500, key=KEY, created=t0, limit=3)),
        ("order_created", ls.order(501, variant=21, total=1000, created=t0, **sub)),
        ("subscription_created", ls.subscription(600, status="active", updated=t0, renews_at=t0 + 30 * DAY, **common)),
        ("subscription_payment_success", ls.invoice(700, sub_id=600, total=1000, created=t0, customer=8)),
        # The subscription's key names its first order: Portal's key of that subscription takes it.
        ("license_key_created", ls.license_key(901, order_id=501, key=SUB_KEY, created=t0, limit=None)),
        (
            "subscription_updated",
            ls.subscription(600, status="active", updated=t0 + 30 * DAY, renews_at=t0 + 60 * DAY, **common),
        ),
        (
            "subscription_payment_success",
            ls.invoice(701, sub_id=600, total=1000, created=t0 + 30 * DAY, reason="renewal", customer=8),
        ),
        (
            "subscription_updated",
            ls.subscription(
                600, status="active", updated=t0 + 31 * DAY, renews_at=t0 + 60 * DAY, **{**common, "variant": 22}
            ),
        ),
        (
            "subscription_cancelled",
            ls.subscription(
                600,
                status="cancelled",
                cancelled=True,
                updated=t0 + 32 * DAY,
                renews_at=t0 + 60 * DAY,
                ends_at=t0 + 60 * DAY,
                **{**common, "variant": 22},
            ),
        ),
        (
            "order_refunded",
            ls.order(500, **toolkit, status="refunded", refunded_amount=4900, updated=t0 + 33 * DAY),
        ),
    ]


def test_events_in_order_shuffled_and_twice_end_the_same(
    client: TestClient[Litestar], ls_settings: Settings, fake: FakeLemonSqueezy
) -> None:
    db_path = ls_settings.data_dir / "portal.db"
    in_order = Shop(client, ls_settings, fake, "inorder")
    for event, resource in _story():
        answer = in_order.deliver(event, resource)
        # A subscription's first order is linked only (its invoices make the Portal orders).
        wanted = "ignored" if resource["id"] == "501" else "applied"
        assert answer.status_code == 200 and answer.json()["status"] == wanted, (event, answer.text)
    expected = in_order.state(db_path)
    assert [row[0] for row in expected["orders"]] == [
        "lemonsqueezy:invoice:700",
        "lemonsqueezy:invoice:701",
        "lemonsqueezy:order:500",
    ]
    assert expected["orders"][2][1:4] == ("refunded", 4900, 4900)
    assert [row[4] for row in expected["orders"][:2]] == ["subscription_create", "subscription_cycle"]
    assert expected["subscriptions"] == [("active", "Team", 1, expected["subscriptions"][0][3])]
    assert expected["keys"] == [(KEY, "revoked", 3), (SUB_KEY, "granted", None)]

    # The same events in a reversed order, each delivered twice: the second answers duplicate, the end is the same.
    # (The API holds the current states the out-of-order events need.)
    for event, resource in _story():
        if event.startswith("subscription_") and resource["type"] == "subscriptions":
            fake.add(resource)
    fake.add(ls.order(501, variant=21, total=1000, created=NOW, email="bob@example.com", name="Bob", customer=8))
    shuffled = Shop(client, ls_settings, fake, "shuffled")
    for event, resource in reversed(_story()):
        first = shuffled.deliver(event, resource)
        again = shuffled.deliver(event, resource)
        assert first.status_code == 200 and first.json()["status"] != "failed", (event, first.text)
        assert again.json()["status"] == "duplicate"
    assert shuffled.state(db_path) == expected


def test_bad_signatures_store_nothing(
    client: TestClient[Litestar], ls_settings: Settings, fake: FakeLemonSqueezy
) -> None:
    shop = Shop(client, ls_settings, fake, "signed")
    resource = ls.order(1, variant=11, email="eve@example.com", name="Eve", total=4900, created=NOW)
    for kwargs in ({"secret": "wrong-secret"}, {"tamper": True}):
        answer = shop.deliver("order_created", resource, **kwargs)  # type: ignore[arg-type]
        assert answer.status_code == 400, answer.text
    missing = client.post("/v1/integrations/lemonsqueezy/signed/webhook", content=ls.webhook("order_created", resource))
    assert missing.status_code == 400
    latin = client.post(
        "/v1/integrations/lemonsqueezy/signed/webhook",
        content=ls.webhook("order_created", resource),
        headers={"X-Signature": "\u00e9".encode("latin-1") * 64},
    )
    assert latin.status_code == 400
    assert shop.state(ls_settings.data_dir / "portal.db")["orders"] == []
    health = api(client, shop.token, "GET", "/v1/connectors/lemonsqueezy/health", 200)
    assert health["last_event"] is None


def test_unmapped_variant_waits_for_its_mapping(
    client: TestClient[Litestar], ls_settings: Settings, fake: FakeLemonSqueezy
) -> None:
    shop = Shop(client, ls_settings, fake, "unmapped")
    resource = ls.order(2, variant=99, email="joe@example.com", name="Joe", total=4900, created=NOW)
    answer = shop.deliver("order_created", resource)
    assert answer.json()["status"] == "unmapped"
    path = "/v1/connectors/lemonsqueezy/prices/99"
    api(client, shop.token, "PUT", path, 200, json={"product_id": shop.products["Toolkit"]["id"]})
    orders = shop.state(ls_settings.data_dir / "portal.db")["orders"]
    assert orders == [("lemonsqueezy:order:2", "paid", 4900, 0, "purchase")]


def test_license_key_keeps_validating_with_its_string_and_limit(
    client: TestClient[Litestar], ls_settings: Settings, fake: FakeLemonSqueezy
) -> None:
    shop = Shop(client, ls_settings, fake, "keys")
    order = ls.order(3, variant=11, email="kim@example.com", name="Kim", total=4900, created=NOW - DAY)
    fake.add(order)
    # The key's event first: its order is fetched from the API and applied first.
    key = ls.license_key(30, order_id=3, key=KEY, created=NOW - DAY, limit=2)
    assert shop.deliver("license_key_created", key).json()["status"] == "applied"
    assert shop.deliver("order_created", order).json()["status"] == "ignored"  # applied already, via the API
    assert shop.validate(KEY).status_code == 200
    limits = shop.state(ls_settings.data_dir / "portal.db")["keys"]
    assert limits == [(KEY, "granted", 2)]
    # Disabled in Lemon Squeezy (a newer updated_at): refused; the older state arriving late changes nothing.
    disabled = ls.license_key(30, order_id=3, key=KEY, created=NOW - DAY, updated=NOW, status="disabled")
    assert shop.deliver("license_key_updated", disabled).json()["status"] == "applied"
    assert shop.validate(KEY).status_code == 404
    stale = ls.license_key(30, order_id=3, key=KEY, created=NOW - DAY, updated=NOW - 10, limit=9)
    assert shop.deliver("license_key_updated", stale).json()["status"] == "ignored"
    assert shop.validate(KEY).status_code == 404


def _customer_headers(settings: Settings, shop: Shop, email: str) -> dict[str, str]:
    conn = sqlite3.connect(settings.data_dir / "portal.db")
    try:
        (customer_id,) = conn.execute(
            "SELECT id FROM customers WHERE organization_id = ? AND email = ?", (shop.org["id"], email)
        ).fetchone()
    finally:
        conn.close()
    return {"Authorization": f"Bearer {insert_session(settings, shop.org['id'], customer_id, kind='api')}"}


def test_customer_actions_go_to_lemonsqueezy_first(
    client: TestClient[Litestar], ls_settings: Settings, fake: FakeLemonSqueezy
) -> None:
    shop = Shop(client, ls_settings, fake, "actions")
    sub = ls.subscription(
        40,
        variant=21,
        order_id=41,
        email="lia@example.com",
        name="Lia",
        status="active",
        created=NOW - DAY,
        updated=NOW - DAY,
        renews_at=NOW + 29 * DAY,
    )
    fake.add(sub)
    assert shop.deliver("subscription_created", sub).json()["status"] == "applied"
    headers = _customer_headers(ls_settings, shop, "lia@example.com")
    (portal_sub,) = api(client, shop.token, "GET", "/v1/subscriptions/", 200)["items"]
    path = f"/v1/customer-portal/subscriptions/{portal_sub['id']}"

    answer = client.delete(path, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["cancel_at_period_end"] is True
    assert (fake.requests[-1].method, fake.requests[-1].path) == ("DELETE", "/v1/subscriptions/40")
    assert fake.resources["subscriptions"]["40"]["attributes"]["cancelled"] is True

    answer = client.patch(path, json={"cancel_at_period_end": False}, headers=headers)
    assert answer.status_code == 200 and answer.json()["cancel_at_period_end"] is False, answer.text
    patch = fake.requests[-1]
    assert patch.method == "PATCH" and patch.body["data"]["attributes"] == {"cancelled": False}

    answer = client.patch(path, json={"product_id": shop.products["Team"]["id"]}, headers=headers)
    assert answer.status_code == 200 and answer.json()["product_id"] == shop.products["Team"]["id"], answer.text
    assert fake.requests[-1].body["data"]["attributes"]["variant_id"] == 22

    # Refused by Lemon Squeezy, then unreachable: a clear message, nothing changed in Portal.
    for failure in ("refused", "down"):
        if failure == "refused":
            fake.fail_with = 422
        else:
            fake.fail_with, fake.down = None, True
        answer = client.delete(path, headers=headers)
        assert answer.status_code in (409, 422, 502, 503), answer.text
        assert "Lemon Squeezy" in answer.text
        current = api(client, shop.token, "GET", f"/v1/subscriptions/{portal_sub['id']}", 200)
        assert current["cancel_at_period_end"] is False
    fake.down = False


def test_connect_cli_checks_the_key_and_prints_the_webhook(
    client: TestClient[Litestar],
    ls_settings: Settings,
    fake: FakeLemonSqueezy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    create_org(client, mint_token(ls_settings), "cli")
    monkeypatch.setenv("PORTAL_DATA_DIR", str(ls_settings.data_dir))
    monkeypatch.setenv("PORTAL_SECRET_KEY", ls_settings.secret_key)
    monkeypatch.setenv("PORTAL_LEMONSQUEEZY_API_BASE", fake.base_url)
    monkeypatch.setenv("LEMONSQUEEZY_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("LEMONSQUEEZY_API_KEY", "wrong")
    assert main(["connect", "lemonsqueezy", "--org", "cli"]) == 1
    assert "refused the API key" in capsys.readouterr().err
    monkeypatch.setenv("LEMONSQUEEZY_API_KEY", fake.api_key)
    assert main(["connect", "lemonsqueezy", "--org", "cli"]) == 0
    out = capsys.readouterr().out
    assert "/v1/integrations/lemonsqueezy/cli/webhook" in out and "license_key_created" in out


def test_import_pages_resumes_and_keeps_keys_validating(
    client: TestClient[Litestar],
    ls_settings: Settings,
    fake: FakeLemonSqueezy,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from portal.connectors.lemonsqueezy import importer

    shop = Shop(client, ls_settings, fake, "moving")
    t0 = NOW - 400 * DAY
    for n in range(1, 6):  # five one-time buyers, each with a key and one activation
        email = f"buyer{n}@example.com"
        fake.add(ls.order(n, variant=11, email=email, name=f"Buyer {n}", total=4900, created=t0 + n, customer=n))
        fake.add(ls.license_key(n, order_id=n, key=f"LS-KEY-{n:04d}", created=t0 + n, limit=2, customer=n))
        fake.add(ls.instance(n, key_id=n, identifier=f"inst-{n}", name=f"laptop {n}", created=t0 + n + 5))
    fake.add(
        ls.subscription(
            60,
            variant=21,
            order_id=99,
            email="sub@example.com",
            name="Sub",
            status="active",
            created=t0,
            updated=NOW - DAY,
            renews_at=NOW + 20 * DAY,
            customer=9,
        )
    )
    for n, reason in ((70, "initial"), (71, "renewal")):
        fake.add(ls.invoice(n, sub_id=60, total=1000, created=t0 + (n - 70) * 30 * DAY, reason=reason, customer=9))
    monkeypatch.setattr(importer, "PAGE_SIZE", 2)
    monkeypatch.setenv("PORTAL_DATA_DIR", str(ls_settings.data_dir))
    monkeypatch.setenv("PORTAL_SECRET_KEY", ls_settings.secret_key)
    monkeypatch.setenv("PORTAL_LEMONSQUEEZY_API_BASE", fake.base_url)

    fake.lists_before_failing = 3  # customers' one page, then two pages of orders: the import stops there
    assert main(["import", "lemonsqueezy", "--org", "moving"]) == 1
    assert "run the same command to resume" in capsys.readouterr().err
    db_path = ls_settings.data_dir / "portal.db"
    assert len(shop.state(db_path)["orders"]) == 4
    fake.lists_before_failing = None
    fake.requests.clear()
    assert main(["import", "lemonsqueezy", "--org", "moving"]) == 0
    out = capsys.readouterr().out
    assert "(resumed)" in out
    orders_pages = [r.query["page[number]"] for r in fake.requests if r.path == "/v1/orders"]
    assert orders_pages == ["3"]  # resumed after the last page done
    state = shop.state(db_path)
    assert [row[0] for row in state["orders"]] == [
        "lemonsqueezy:invoice:70",
        "lemonsqueezy:invoice:71",
        *[f"lemonsqueezy:order:{n}" for n in range(1, 6)],
    ]
    assert state["subscriptions"][0][:3] == ("active", "Pro", 0)
    conn = sqlite3.connect(db_path)
    try:
        shipped = conn.execute(
            "SELECT key, status, limit_activations FROM license_keys WHERE key LIKE 'LS-KEY-%' ORDER BY key"
        ).fetchall()
        assert shipped == [(f"LS-KEY-{n:04d}", "granted", 2) for n in range(1, 6)]
    finally:
        conn.close()
    # The key shipped by Lemon Squeezy validates through Portal, with the activation apps already hold.
    assert shop.validate("LS-KEY-0003", activation_id="inst-3").status_code == 200
    assert shop.validate("LS-KEY-0003", activation_id="inst-4").status_code == 404
    # History sent no email: no receipt queued for imported orders.
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("SELECT COUNT(*) FROM email_outbox").fetchone()[0] == 0
    finally:
        conn.close()
    # Running it again changes nothing.
    assert main(["import", "lemonsqueezy", "--org", "moving"]) == 0
    assert shop.state(db_path) == state


def test_payment_failed_paused_expired_and_partial_refund(
    client: TestClient[Litestar], ls_settings: Settings, fake: FakeLemonSqueezy
) -> None:
    shop = Shop(client, ls_settings, fake, "states")
    db_path = ls_settings.data_dir / "portal.db"
    t0 = NOW - 10 * DAY
    base = {"variant": 21, "order_id": 80, "email": "max@example.com", "name": "Max", "created": t0, "customer": 5}

    def sub(status: str, updated: int, **extra: Any) -> dict[str, Any]:
        return ls.subscription(81, status=status, updated=updated, renews_at=t0 + 30 * DAY, **base, **extra)

    assert shop.deliver("subscription_created", sub("active", t0)).json()["status"] == "applied"
    failed = ls.invoice(82, sub_id=81, total=1000, created=t0 + DAY, reason="renewal", status="pending", customer=5)
    assert shop.deliver("subscription_payment_failed", failed).json()["status"] == "applied"
    assert shop.state(db_path)["subscriptions"][0][0] == "past_due"
    conn = sqlite3.connect(db_path)
    try:
        mails = conn.execute("SELECT kind, to_address FROM email_outbox").fetchall()
    finally:
        conn.close()
    assert any("max@example.com" in str(row) and "fail" in str(row).lower() for row in mails), mails
    recovered = ls.invoice(
        82, sub_id=81, total=1000, created=t0 + DAY, reason="renewal", customer=5, updated=t0 + 2 * DAY
    )
    assert shop.deliver("subscription_payment_recovered", recovered).json()["status"] == "applied"
    assert shop.deliver("subscription_updated", sub("active", t0 + 2 * DAY)).json()["status"] == "applied"
    assert shop.state(db_path)["subscriptions"][0][0] == "active"
    assert shop.deliver("subscription_paused", sub("paused", t0 + 3 * DAY)).json()["status"] == "applied"
    assert shop.state(db_path)["subscriptions"][0][0] == "unpaid"
    assert shop.deliver("subscription_unpaused", sub("active", t0 + 4 * DAY)).json()["status"] == "applied"
    assert shop.state(db_path)["subscriptions"][0][0] == "active"
    expired = sub("expired", t0 + 5 * DAY, ends_at=t0 + 5 * DAY, cancelled=True)
    assert shop.deliver("subscription_expired", expired).json()["status"] == "applied"
    assert shop.state(db_path)["subscriptions"][0][:3] == ("canceled", "Pro", 0)

    # A partial refund, then the rest: cumulative refunded_amount.
    one = {"variant": 11, "email": "max@example.com", "name": "Max", "total": 4900, "created": t0, "customer": 5}
    assert shop.deliver("order_created", ls.order(90, **one)).json()["status"] == "applied"
    part = ls.order(90, **one, status="partial_refund", refunded_amount=1000, updated=t0 + DAY)
    assert shop.deliver("order_refunded", part).json()["status"] == "applied"
    orders = dict((row[0], row[1:4]) for row in shop.state(db_path)["orders"])
    assert orders["lemonsqueezy:order:90"] == ("partially_refunded", 4900, 1000)
    full = ls.order(90, **one, status="refunded", refunded_amount=4900, updated=t0 + 2 * DAY)
    assert shop.deliver("order_refunded", full).json()["status"] == "applied"
    assert shop.deliver("order_refunded", part).json()["status"] == "duplicate"
    orders = dict((row[0], row[1:4]) for row in shop.state(db_path)["orders"])
    assert orders["lemonsqueezy:order:90"] == ("refunded", 4900, 4900)
    assert orders["lemonsqueezy:invoice:82"] == ("paid", 1000, 0)


def test_subscription_key_before_anything_else_fetches_its_order_and_subscription(
    client: TestClient[Litestar], ls_settings: Settings, fake: FakeLemonSqueezy
) -> None:
    shop = Shop(client, ls_settings, fake, "subkey")
    person = {"email": "sue@example.com", "name": "Sue", "customer": 3}
    fake.add(ls.order(301, variant=21, total=1000, created=NOW - DAY, **person))
    fake.add(
        ls.subscription(
            302,
            variant=21,
            order_id=301,
            status="active",
            created=NOW - DAY,
            updated=NOW - DAY,
            renews_at=NOW + 29 * DAY,
            **person,
        )
    )
    key = ls.license_key(303, order_id=301, key=SUB_KEY, created=NOW - DAY, limit=1)
    answer = shop.deliver("license_key_created", key)
    assert answer.status_code == 200 and answer.json()["status"] == "applied", answer.text
    asked = [(r.path, r.query.get("filter[order_id]")) for r in fake.requests if r.method == "GET"]
    assert ("/v1/orders/301", None) in asked and ("/v1/subscriptions", "301") in asked
    state = shop.state(ls_settings.data_dir / "portal.db")
    assert state["subscriptions"][0][:2] == ("active", "Pro") and state["keys"] == [(SUB_KEY, "granted", 1)]
    assert shop.validate(SUB_KEY).status_code == 200


def test_import_brings_each_variants_files_as_downloads_the_customer_gets(
    client: TestClient[Litestar],
    ls_settings: Settings,
    fake: FakeLemonSqueezy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from urllib.parse import urlsplit

    shop = Shop(client, ls_settings, fake, "files")
    guide, extras = b"%PDF-1.4 the toolkit guide\n" * 50, b"PK\x03\x04 extras archive"
    fake.add(ls.file(fake, 501, variant=11, name="guide.pdf", content=guide))
    fake.add(ls.file(fake, 502, variant=11, name="extras.zip", content=extras))
    fake.add(ls.file(fake, 503, variant=99, name="other.zip", content=b"not mapped"))
    fake.add(ls.order(1, variant=11, email="ada@example.com", name="Ada", total=4900, created=NOW - DAY, customer=1))
    # A sale that came live, by webhook, before the import: its customer gets the downloads too.
    live = ls.order(2, variant=11, email="grace@example.com", name="Grace", total=4900, created=NOW, customer=2)
    assert shop.deliver("order_created", live).json()["status"] == "applied"
    monkeypatch.setenv("PORTAL_DATA_DIR", str(ls_settings.data_dir))
    monkeypatch.setenv("PORTAL_SECRET_KEY", ls_settings.secret_key)
    monkeypatch.setenv("PORTAL_LEMONSQUEEZY_API_BASE", fake.base_url)
    assert main(["import", "lemonsqueezy", "--org", "files"]) == 0

    headers = _customer_headers(ls_settings, shop, "ada@example.com")
    listed = client.get("/v1/customer-portal/downloadables/", headers=headers)
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert sorted(item["file"]["name"] for item in items) == ["extras.zip", "guide.pdf"]
    for item in items:
        first = client.get(urlsplit(item["file"]["download"]["url"]).path, follow_redirects=False)
        assert first.status_code == 302, first.text
        target = urlsplit(first.headers["location"])
        got = client.get(f"{target.path}?{target.query}", headers=headers)
        assert got.status_code == 200
        assert got.content == (guide if item["file"]["name"] == "guide.pdf" else extras)
    grace = client.get(
        "/v1/customer-portal/downloadables/", headers=_customer_headers(ls_settings, shop, "grace@example.com")
    )
    assert sorted(item["file"]["name"] for item in grace.json()["items"]) == ["extras.zip", "guide.pdf"]

    # The product carries one downloadables benefit; running again fetches nothing and adds nothing.
    product = api(client, shop.token, "GET", f"/v1/products/{shop.products['Toolkit']['id']}", 200)
    assert [b["type"] for b in product["benefits"]].count("downloadables") == 1
    fake.requests.clear()
    assert main(["import", "lemonsqueezy", "--org", "files"]) == 0
    assert not [r for r in fake.requests if r.path.startswith("/downloads/")]
    conn = sqlite3.connect(ls_settings.data_dir / "portal.db")
    try:
        files = conn.execute("SELECT COUNT(*) FROM files WHERE organization_id = ?", (shop.org["id"],)).fetchone()
        assert files[0] == 2
        assert (
            conn.execute(
                "SELECT COUNT(*) FROM benefits WHERE organization_id = ? AND type = 'downloadables'", (shop.org["id"],)
            ).fetchone()[0]
            == 1
        )
    finally:
        conn.close()
    # A file added on Lemon Squeezy later joins the same benefit on the next import.
    fake.add(ls.file(fake, 504, variant=11, name="changelog.txt", content=b"v1.1"))
    assert main(["import", "lemonsqueezy", "--org", "files"]) == 0
    product = api(client, shop.token, "GET", f"/v1/products/{shop.products['Toolkit']['id']}", 200)
    (downloadables,) = [b for b in product["benefits"] if b["type"] == "downloadables"]
    assert len(downloadables["properties"]["files"]) == 3


@pytest.mark.parametrize("order", ["in order", "refund first"])
def test_a_refunded_subscription_invoice_refunds_its_order(
    client: TestClient[Litestar], ls_settings: Settings, fake: FakeLemonSqueezy, order: str
) -> None:
    shop = Shop(client, ls_settings, fake, "refunds")
    db_path = ls_settings.data_dir / "portal.db"
    t0 = NOW - 10 * DAY
    base = {"variant": 21, "order_id": 80, "email": "max@example.com", "name": "Max", "created": t0, "customer": 5}
    subscription = ls.subscription(81, status="active", updated=t0, renews_at=t0 + 30 * DAY, **base)
    assert shop.deliver("subscription_created", subscription).json()["status"] == "applied"
    common = {"sub_id": 81, "total": 1000, "created": t0, "customer": 5}
    paid = ls.invoice(83, **common)
    part = ls.invoice(83, **common, status="partial_refund", refunded_amount=300, updated=t0 + DAY)
    full = ls.invoice(83, **common, status="refunded", refunded_amount=1000, updated=t0 + 2 * DAY)

    def invoice_order() -> tuple[Any, ...]:
        orders = {row[0]: row[1:4] for row in shop.state(db_path)["orders"]}
        return orders["lemonsqueezy:invoice:83"]  # type: ignore[no-any-return]

    if order == "in order":
        assert shop.deliver("subscription_payment_success", paid).json()["status"] == "applied"
        assert invoice_order() == ("paid", 1000, 0)
        assert shop.deliver("subscription_payment_refunded", part).json()["status"] == "applied"
        assert invoice_order() == ("partially_refunded", 1000, 300)
        assert shop.deliver("subscription_payment_refunded", full).json()["status"] == "applied"
    else:
        # The full refund arrives before the payment and the partial one: the paid order is made and refunded,
        # the late events change nothing.
        assert shop.deliver("subscription_payment_refunded", full).json()["status"] == "applied"
        assert shop.deliver("subscription_payment_refunded", part).json()["status"] == "ignored"
        assert shop.deliver("subscription_payment_success", paid).json()["status"] == "ignored"
    assert invoice_order() == ("refunded", 1000, 1000)
    assert len(shop.state(db_path)["orders"]) == 1
