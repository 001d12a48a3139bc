"""Paddle Billing connector (issue 20): deliveries to ``POST /v1/integrations/paddle/{slug}/webhook`` signed as
Paddle signs them (``Paddle-Signature: ts=…;h1=…``, verified by the official SDK), in Paddle's documented entity
shapes, stored once by ``event_id``, in or out of order; refunds through adjustments (pending approval first);
Portal issues the license keys; customer actions out against a fake Paddle API on loopback."""

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

from portal.settings import Settings
from tests import paddle_fake as pf
from tests.admin_support import api, create_org, mint_token
from tests.apps import app_for
from tests.paddle_fake import FakePaddle, fake_paddle
from tests.signin_helpers import insert_session

SECRET = "pdl_ntfset_secret_current"
OLD_SECRET = "pdl_ntfset_secret_old"
NOW = int(time.time())
DAY = 86400
GUIDE = pf.price("pri_guide", 2900)
PRO = pf.price("pri_pro", 1000, interval="month")
TEAM = pf.price("pri_team", 3000, interval="month")


@pytest.fixture
def fake() -> Iterator[FakePaddle]:
    with fake_paddle() as running:
        yield running


@pytest.fixture
def paddle_settings(settings: Settings, fake: FakePaddle) -> Settings:
    return msgspec.structs.replace(settings, paddle_api_base=fake.base_url)


@pytest.fixture
def client(paddle_settings: Settings) -> Iterator[TestClient[Litestar]]:
    with TestClient(app_for(paddle_settings), base_url="http://testserver.local") as test_client:
        yield test_client


class Shop:
    def __init__(self, client: TestClient[Litestar], settings: Settings, fake: FakePaddle, slug: str) -> None:
        self.client = client
        self.slug = slug
        self.org = create_org(client, mint_token(settings), slug)
        self.token = mint_token(settings, self.org["id"])
        key = {"type": "license_keys", "description": "Key", "properties": {"prefix": "PDL"}}
        benefit = api(client, self.token, "POST", "/v1/benefits/", 201, json=key)
        self.products: dict[str, dict[str, Any]] = {}
        for name, amount, recurring in (("Guide", 2900, False), ("Pro", 1000, True), ("Team", 3000, True)):
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
        api(
            client,
            self.token,
            "PUT",
            "/v1/connectors/paddle",
            200,
            json={"api_key": fake.api_key, "webhook_secret": SECRET},
        )
        for price_id, name in (("pri_guide", "Guide"), ("pri_pro", "Pro"), ("pri_team", "Team")):
            path = f"/v1/connectors/paddle/prices/{price_id}"
            api(client, self.token, "PUT", path, 200, json={"product_id": self.products[name]["id"]})

    def deliver(self, body: bytes, signature: str | None = None) -> Any:
        return self.client.post(
            f"/v1/integrations/paddle/{self.slug}/webhook",
            content=body,
            headers={"Paddle-Signature": signature or pf.signature(body, SECRET), "Content-Type": "application/json"},
        )

    def state(self, db_path: Path) -> dict[str, Any]:
        conn = sqlite3.connect(db_path)
        try:
            org = self.org["id"]
            return {
                "orders": conn.execute(
                    "SELECT o.external_id, o.status, o.total_amount, o.refunded_amount, o.billing_reason, c.email "
                    "FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.organization_id = ? "
                    "ORDER BY o.external_id",
                    (org,),
                ).fetchall(),
                "subscriptions": conn.execute(
                    "SELECT s.status, p.name, s.cancel_at_period_end, s.current_period_end, s.amount "
                    "FROM subscriptions s JOIN products p ON p.id = s.product_id WHERE s.organization_id = ?",
                    (org,),
                ).fetchall(),
                "keys": conn.execute(
                    "SELECT status FROM license_keys WHERE organization_id = ? ORDER BY status", (org,)
                ).fetchall(),
            }
        finally:
            conn.close()


def _story(fake: FakePaddle) -> list[bytes]:
    """A Guide bought, refunded after the approval; a Pro subscription started, renewed, moved to Team, its
    cancellation scheduled; a rejected refund on the renewal. The API holds the customers."""
    t0 = NOW - 40 * DAY
    fake.add("customers", pf.customer("ctm_ada", email="ada@example.com", name="Ada", updated=t0))
    fake.add("customers", pf.customer("ctm_bob", email="bob@example.com", name="Bob", updated=t0))
    sub = {"customer_id": "ctm_bob", "created": t0, "period_start": t0, "period_end": t0 + 30 * DAY}
    renewed = {**sub, "period_start": t0 + 30 * DAY, "period_end": t0 + 60 * DAY}
    # The API's current states (what a late or early event has fetched).
    fake.add("transactions", pf.transaction("txn_guide", customer_id="ctm_ada", item=GUIDE, total=2900, created=t0))
    fake.add(
        "transactions",
        pf.transaction(
            "txn_bob_2",
            customer_id="ctm_bob",
            item=PRO,
            total=1000,
            created=t0 + 30 * DAY,
            subscription_id="sub_bob",
            origin="subscription_recurring",
        ),
    )
    fake.add(
        "subscriptions",
        pf.subscription("sub_bob", item=TEAM, status="active", updated=t0 + 32 * DAY, scheduled_cancel=True, **renewed),
    )
    return [
        pf.event(
            "evt_01",
            "transaction.completed",
            pf.transaction("txn_guide", customer_id="ctm_ada", item=GUIDE, total=2900, created=t0),
            t0,
        ),
        pf.event(
            "evt_02",
            "subscription.created",
            pf.subscription("sub_bob", item=PRO, status="active", updated=t0, **sub),
            t0,
        ),
        pf.event(
            "evt_03",
            "transaction.completed",
            pf.transaction(
                "txn_bob_1",
                customer_id="ctm_bob",
                item=PRO,
                total=1000,
                created=t0,
                subscription_id="sub_bob",
                origin="web",
            ),
            t0 + 1,
        ),
        pf.event(
            "evt_04",
            "subscription.updated",
            pf.subscription("sub_bob", item=PRO, status="active", updated=t0 + 30 * DAY, **renewed),
            t0 + 30 * DAY,
        ),
        pf.event(
            "evt_05",
            "transaction.completed",
            pf.transaction(
                "txn_bob_2",
                customer_id="ctm_bob",
                item=PRO,
                total=1000,
                created=t0 + 30 * DAY,
                subscription_id="sub_bob",
                origin="subscription_recurring",
            ),
            t0 + 30 * DAY + 1,
        ),
        pf.event(
            "evt_06",
            "subscription.updated",
            pf.subscription("sub_bob", item=TEAM, status="active", updated=t0 + 31 * DAY, **renewed),
            t0 + 31 * DAY,
        ),
        pf.event(
            "evt_07",
            "subscription.updated",
            pf.subscription(
                "sub_bob", item=TEAM, status="active", updated=t0 + 32 * DAY, scheduled_cancel=True, **renewed
            ),
            t0 + 32 * DAY,
        ),
        pf.event(
            "evt_08",
            "adjustment.created",
            pf.adjustment(
                "adj_guide", transaction_id="txn_guide", amount=2900, status="pending_approval", updated=t0 + 33 * DAY
            ),
            t0 + 33 * DAY,
        ),
        pf.event(
            "evt_09",
            "adjustment.updated",
            pf.adjustment(
                "adj_guide", transaction_id="txn_guide", amount=2900, status="approved", updated=t0 + 34 * DAY
            ),
            t0 + 34 * DAY,
        ),
        pf.event(
            "evt_10",
            "adjustment.created",
            pf.adjustment(
                "adj_bob", transaction_id="txn_bob_2", amount=1000, status="pending_approval", updated=t0 + 35 * DAY
            ),
            t0 + 35 * DAY,
        ),
        pf.event(
            "evt_11",
            "adjustment.updated",
            pf.adjustment("adj_bob", transaction_id="txn_bob_2", amount=1000, status="rejected", updated=t0 + 36 * DAY),
            t0 + 36 * DAY,
        ),
    ]


def test_story_in_order_and_reversed_twice_ends_the_same(
    client: TestClient[Litestar], paddle_settings: Settings, fake: FakePaddle
) -> None:
    db_path = paddle_settings.data_dir / "portal.db"
    story = _story(fake)
    in_order = Shop(client, paddle_settings, fake, "inorder")
    statuses = [in_order.deliver(body).json()["status"] for body in story]
    assert statuses == ["applied"] * 7 + ["ignored", "applied", "ignored", "ignored"]
    expected = in_order.state(db_path)
    assert expected["orders"] == [
        ("paddle:txn_bob_1", "paid", 1000, 0, "subscription_create", "bob@example.com"),
        ("paddle:txn_bob_2", "paid", 1000, 0, "subscription_cycle", "bob@example.com"),
        ("paddle:txn_guide", "refunded", 2900, 2900, "purchase", "ada@example.com"),
    ]
    (subscription,) = expected["subscriptions"]
    assert subscription[:3] == ("active", "Team", 1) and subscription[4] == 3000
    # Portal issued the keys (Paddle has none): the Guide's is revoked by the full refund, the subscription's kept.
    assert expected["keys"] == [("granted",), ("revoked",)]

    shuffled = Shop(client, paddle_settings, fake, "shuffled")
    for body in reversed(story):
        first = shuffled.deliver(body)
        assert first.status_code == 200 and first.json()["status"] != "failed", first.text
        assert shuffled.deliver(body).json()["status"] == "duplicate"
    assert shuffled.state(db_path) == expected


def test_signatures_wrong_tampered_stale_fail_rotation_passes(
    client: TestClient[Litestar], paddle_settings: Settings, fake: FakePaddle
) -> None:
    shop = Shop(client, paddle_settings, fake, "signed")
    fake.add("customers", pf.customer("ctm_eve", email="eve@example.com", name="Eve", updated=NOW))
    txn = pf.transaction("txn_eve", customer_id="ctm_eve", item=GUIDE, total=2900, created=NOW)
    body = pf.event("evt_eve", "transaction.completed", txn, NOW)
    refused = [
        pf.signature(body, "wrong-secret"),
        pf.signature(body, SECRET, timestamp=NOW - 3600),  # stale
        "ts=abc;h1=00",
        f"ts={NOW};h1=\u00e9\u00e9",
        "ts=1;x=2",
        "",
    ]
    for signature in refused:
        answer = client.post(
            "/v1/integrations/paddle/signed/webhook",
            content=body,
            headers={"Paddle-Signature": signature.encode("latin-1")},
        )
        assert answer.status_code == 400, (signature, answer.text)
    tampered = body.replace(b"2900", b"0001")
    assert shop.deliver(tampered, pf.signature(body, SECRET)).status_code == 400
    assert shop.state(paddle_settings.data_dir / "portal.db")["orders"] == []
    # During a secret rotation Paddle sends one h1 per secret: the one made with the stored secret verifies.
    answer = shop.deliver(body, pf.signature(body, OLD_SECRET, SECRET))
    assert answer.status_code == 200 and answer.json()["status"] == "applied", answer.text


def _customer_headers(settings: Settings, shop: Shop, email: str) -> dict[str, str]:
    conn = sqlite3.connect(settings.data_dir / "portal.db")
    try:
        (customer_id,) = conn.execute(
            "SELECT id FROM customers WHERE organization_id = ? AND email = ?", (shop.org["id"], email)
        ).fetchone()
    finally:
        conn.close()
    return {"Authorization": f"Bearer {insert_session(settings, shop.org['id'], customer_id, kind='api')}"}


def test_customer_actions_go_to_paddle_first(
    client: TestClient[Litestar], paddle_settings: Settings, fake: FakePaddle
) -> None:
    shop = Shop(client, paddle_settings, fake, "actions")
    fake.add("customers", pf.customer("ctm_lia", email="lia@example.com", name="Lia", updated=NOW - DAY))
    sub = fake.add(
        "subscriptions",
        pf.subscription(
            "sub_lia",
            customer_id="ctm_lia",
            item=PRO,
            status="active",
            created=NOW - DAY,
            updated=NOW - DAY,
            period_start=NOW - DAY,
            period_end=NOW + 29 * DAY,
        ),
    )
    assert shop.deliver(pf.event("evt_lia", "subscription.created", sub, NOW - DAY)).json()["status"] == "applied"
    headers = _customer_headers(paddle_settings, shop, "lia@example.com")
    (portal_sub,) = api(client, shop.token, "GET", "/v1/subscriptions/", 200)["items"]
    path = f"/v1/customer-portal/subscriptions/{portal_sub['id']}"

    answer = client.delete(path, headers=headers)
    assert answer.status_code == 200 and answer.json()["cancel_at_period_end"] is True, answer.text
    cancel = fake.requests[-1]
    assert (cancel.method, cancel.path, cancel.body) == (
        "POST",
        "/subscriptions/sub_lia/cancel",
        {"effective_from": "next_billing_period"},
    )

    answer = client.patch(path, json={"cancel_at_period_end": False}, headers=headers)
    assert answer.status_code == 200 and answer.json()["cancel_at_period_end"] is False, answer.text
    assert fake.requests[-1].body == {"scheduled_change": None}
    assert fake.entities["subscriptions"]["sub_lia"]["scheduled_change"] is None

    settings_body = {"proration_behavior": "always_invoice"}
    api(client, shop.token, "PATCH", "/v1/connectors/paddle", 200, json=settings_body)
    answer = client.patch(path, json={"product_id": shop.products["Team"]["id"]}, headers=headers)
    assert answer.status_code == 200 and answer.json()["product_id"] == shop.products["Team"]["id"], answer.text
    assert fake.requests[-1].body == {
        "items": [{"price_id": "pri_team", "quantity": 1}],
        "proration_billing_mode": "prorated_immediately",
    }

    for failure in ("refused", "down"):
        if failure == "refused":
            fake.fail_with = 400
        else:
            fake.fail_with, fake.down = None, True
        answer = client.delete(path, headers=headers)
        assert answer.status_code in (409, 422, 502, 503), answer.text
        assert "Paddle" in answer.text
        current = api(client, shop.token, "GET", f"/v1/subscriptions/{portal_sub['id']}", 200)
        assert current["cancel_at_period_end"] is False
    fake.down = False


def test_import_pages_with_after_resumes_and_issues_keys(
    client: TestClient[Litestar],
    paddle_settings: Settings,
    fake: FakePaddle,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from portal.cli import main
    from portal.connectors.paddle import importer

    shop = Shop(client, paddle_settings, fake, "moving")
    t0 = NOW - 300 * DAY
    for n in range(1, 6):
        fake.add("customers", pf.customer(f"ctm_{n}", email=f"buyer{n}@example.com", name=f"B{n}", updated=t0))
        txn = pf.transaction(f"txn_{n}", customer_id=f"ctm_{n}", item=GUIDE, total=2900, created=t0 + n * DAY)
        fake.add("transactions", txn)
    fake.add(
        "transactions",
        {**pf.transaction("txn_9", customer_id="ctm_1", item=GUIDE, total=2900, created=t0), "status": "billed"},
    )
    fake.add(
        "subscriptions",
        pf.subscription(
            "sub_1",
            customer_id="ctm_1",
            item=PRO,
            status="active",
            created=t0,
            updated=NOW - DAY,
            period_start=NOW - DAY,
            period_end=NOW + 29 * DAY,
        ),
    )
    fake.add(
        "adjustments",
        pf.adjustment("adj_1", transaction_id="txn_2", amount=2900, status="approved", updated=t0 + 9 * DAY),
    )
    fake.add(
        "adjustments",
        pf.adjustment("adj_2", transaction_id="txn_3", amount=2900, status="pending_approval", updated=t0 + 9 * DAY),
    )
    monkeypatch.setattr(importer, "STREAMS", tuple((k, q, 2, a) for k, q, _size, a in importer.STREAMS))
    monkeypatch.setenv("PORTAL_DATA_DIR", str(paddle_settings.data_dir))
    monkeypatch.setenv("PORTAL_SECRET_KEY", paddle_settings.secret_key)
    monkeypatch.setenv("PORTAL_PADDLE_API_BASE", fake.base_url)

    fake.lists_before_failing = 5  # customers' 3 pages, subscriptions' 1, transactions' first: then it fails
    assert main(["import", "paddle", "--org", "moving"]) == 1
    assert "run the same command to resume" in capsys.readouterr().err
    db_path = paddle_settings.data_dir / "portal.db"
    assert len(shop.state(db_path)["orders"]) == 2
    fake.lists_before_failing = None
    fake.requests.clear()
    assert main(["import", "paddle", "--org", "moving"]) == 0
    assert "(resumed)" in capsys.readouterr().out
    first = next(r for r in fake.requests if r.path == "/transactions")
    assert first.query["after"] == "txn_2" and first.query["status"] == "completed"
    state = shop.state(db_path)
    assert [row[:4] for row in state["orders"]] == [
        ("paddle:txn_1", "paid", 2900, 0),
        ("paddle:txn_2", "refunded", 2900, 2900),
        ("paddle:txn_3", "paid", 2900, 0),
        ("paddle:txn_4", "paid", 2900, 0),
        ("paddle:txn_5", "paid", 2900, 0),
    ]
    assert state["subscriptions"][0][:3] == ("active", "Pro", 0)
    # Portal issued the keys: one per purchase (the refunded one revoked) and the subscription's.
    assert state["keys"] == [("granted",)] * 5 + [("revoked",)]
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("SELECT COUNT(*) FROM email_outbox").fetchone()[0] == 0  # history sends nothing
    finally:
        conn.close()
    assert main(["import", "paddle", "--org", "moving"]) == 0
    assert shop.state(db_path) == state


def test_past_due_paused_customer_change_and_early_refund(
    client: TestClient[Litestar], paddle_settings: Settings, fake: FakePaddle
) -> None:
    shop = Shop(client, paddle_settings, fake, "states")
    db_path = paddle_settings.data_dir / "portal.db"
    t0 = NOW - 10 * DAY
    fake.add("customers", pf.customer("ctm_max", email="max@example.com", name="Max", updated=t0))
    period = {"customer_id": "ctm_max", "item": PRO, "created": t0, "period_start": t0, "period_end": t0 + 30 * DAY}
    for n, (name, status) in enumerate(
        (("subscription.created", "active"), ("subscription.past_due", "past_due"), ("subscription.paused", "paused"))
    ):
        body = pf.event(f"evt_s{n}", name, pf.subscription("sub_max", status=status, updated=t0 + n, **period), t0 + n)
        assert shop.deliver(body).json()["status"] == "applied"
    assert shop.state(db_path)["subscriptions"][0][0] == "unpaid"
    body = pf.event(
        "evt_s9", "subscription.resumed", pf.subscription("sub_max", status="active", updated=t0 + 9, **period), t0 + 9
    )
    assert shop.deliver(body).json()["status"] == "applied"
    assert shop.state(db_path)["subscriptions"][0][0] == "active"

    changed = pf.customer("ctm_max", email="max.new@example.com", name="Max N", updated=t0 + DAY)
    assert shop.deliver(pf.event("evt_c1", "customer.updated", changed, t0 + DAY)).json()["status"] == "applied"
    older = pf.customer("ctm_max", email="max.old@example.com", name="Max O", updated=t0 + 10)
    assert shop.deliver(pf.event("evt_c0", "customer.updated", older, t0 + 10)).json()["status"] == "ignored"

    # An approved refund whose transaction Portal has not seen: the transaction is fetched and applied first.
    txn = fake.add(
        "transactions", pf.transaction("txn_late", customer_id="ctm_max", item=GUIDE, total=2900, created=t0)
    )
    del txn
    refund = pf.adjustment("adj_late", transaction_id="txn_late", amount=1000, status="approved", updated=t0 + DAY)
    assert shop.deliver(pf.event("evt_a1", "adjustment.updated", refund, t0 + DAY)).json()["status"] == "applied"
    orders = shop.state(db_path)["orders"]
    assert orders == [("paddle:txn_late", "partially_refunded", 2900, 1000, "purchase", "max.new@example.com")]
