"""Refunds from the console's order page (issue 21), in process against each processor's fake on loopback (the
official clients pointed at it): the processor gets the documented request, Portal records the refund once the
processor accepted it, and the processor's refund webhook replayed afterwards (or arriving before the answer is
applied) counts once; a refusal writes nothing; an order made in Portal is refunded locally; the amount is checked;
another organization's order is a 404; "Resend receipt" reaches the customer's mailbox (aiosmtpd)."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from portal.clock import iso, new_id
from portal.connectors.store import Secrets, encrypt_secrets
from portal.connectors.stripe.client import API_VERSION
from portal.db import Database
from portal.orders import remote
from portal.settings import Settings
from tests import lemonsqueezy_fake as ls
from tests import paddle_fake as pf
from tests import stripe_events
from tests.apps import app_for
from tests.conftest import SMTPInbox
from tests.console_helpers import (
    NOW,
    Team,
    add_member,
    audit_actions,
    console_cookie,
    insert_paid_order,
    insert_seller,
    make_team,
    plant_session,
    sql,
)
from tests.gumroad_fake import ACCESS_TOKEN, fake_gumroad
from tests.lemonsqueezy_fake import fake_lemonsqueezy
from tests.notification_support import fast, wait_until
from tests.paddle_fake import fake_paddle
from tests.polar_support import WEBHOOK_SECRET as POLAR_SECRET
from tests.polar_support import fake_polar_refunds, signed
from tests.signin_helpers import csrf, insert_customer, insert_org, text_part
from tests.stripe_fake import fake_stripe

SECRET = "whsec_console_refunds_secret"
TOTAL = 4900  # $49.00, $9.00 of it tax


@dataclass
class World:
    client: TestClient[Litestar]
    settings: Settings
    fakes: dict[str, Any]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, template_db: Path) -> Iterator[World]:
    """One served app and the five fakes for the module's processor tests (each test sells on its own
    organization), so the app starts once."""
    data_dir = tmp_path_factory.mktemp("refunds") / "data"
    data_dir.mkdir()
    shutil.copy(template_db, data_dir / "portal.db")
    settings = Settings(
        data_dir=data_dir,
        base_url="http://testserver.local",
        secret_key="test-secret-key-not-for-production",
        argon2_profile="test",
    )
    with ExitStack() as stack:
        fakes: dict[str, Any] = {
            "stripe": stack.enter_context(fake_stripe()),
            "polar": stack.enter_context(fake_polar_refunds()),
            "lemonsqueezy": stack.enter_context(fake_lemonsqueezy()),
            "paddle": stack.enter_context(fake_paddle()),
            "gumroad": stack.enter_context(fake_gumroad()),
        }
        settings = msgspec.structs.replace(
            settings,
            stripe_api_base=fakes["stripe"].base_url,
            polar_api_base=fakes["polar"].base_url,
            lemonsqueezy_api_base=fakes["lemonsqueezy"].base_url,
            paddle_api_base=fakes["paddle"].base_url,
            gumroad_api_base=fakes["gumroad"].base_url,
        )
        client = stack.enter_context(TestClient(app_for(settings), base_url="http://testserver.local"))
        yield World(client, settings, fakes)


@dataclass
class Sale:
    """A paid Portal order a processor's events created (its link), the processor's side of it, and a seller."""

    slug: str
    org_id: str
    order_id: str
    processor_id: str


def _secret(name: str) -> str:
    return POLAR_SECRET if name == "polar" else SECRET  # Polar's are base64 (Standard Webhooks)


def _api_key(name: str, fake: Any) -> str:
    return {"polar": getattr(fake, "token", ""), "gumroad": ACCESS_TOKEN}.get(name) or fake.api_key


_SALES = itertools.count(1)


def _sale(world: World, name: str) -> Sale:
    settings, fake = world.settings, world.fakes[name]
    number = next(_SALES)
    slug = f"shop-{name}-{number}"
    org_id = insert_org(settings, slug, f"Shop {name}")
    owner = insert_seller(settings, f"owner@{slug}.example")
    add_member(settings, owner, org_id, "owner")
    console_cookie(world.client, settings, plant_session(settings, owner))
    customer_id = insert_customer(settings, org_id, "ada@example.com", "Ada")
    order_id = insert_paid_order(settings, org_id, customer_id, total=TOTAL, receipt=f"{name.upper()}-0001")
    connection_id = new_id()
    sealed = encrypt_secrets(
        settings.secret_key, org_id, name, Secrets(api_key=_api_key(name, fake), webhook_secret=_secret(name))
    )
    sql(
        settings,
        "INSERT INTO connector_connections (id, organization_id, processor, account_id, livemode, secrets, "
        "created_at) VALUES (?, ?, ?, NULL, 0, ?, ?)",
        (connection_id, org_id, name, sealed, iso(NOW)),
    )
    now = int(time.time())
    if name == "stripe":
        charge = stripe_events.charge(
            f"ch_{number}", payment_intent=f"pi_{number}", amount=TOTAL, refunded=0, created=now
        )
        fake.add("charges", charge)
        kind, processor_id = "payment_intent", f"pi_{number}"
    elif name == "polar":
        kind, processor_id = "order", fake.order(f"5b1c3e7a-0000-4000-8000-{number:012d}", TOTAL)["id"]
    elif name == "lemonsqueezy":
        fake.add(ls.order(1000 + number, variant=1, email="ada@example.com", name="Ada", total=TOTAL, created=now))
        kind, processor_id = "order", str(1000 + number)
    elif name == "paddle":
        item = pf.price("pri_guide", TOTAL)
        txn = pf.transaction(f"txn_{number}", customer_id="ctm_1", item=item, total=TOTAL, created=now)
        fake.add("transactions", txn)
        kind, processor_id = "transaction", f"txn_{number}"
    else:
        kind, processor_id = "sale", fake.sale(f"sale_{number}==", "ada@example.com", "gum_guide", TOTAL)["id"]
    # The link the processor's sale event leaves (the sale paths are tested in each connector's own tests).
    sql(
        settings,
        "INSERT INTO connector_links (connection_id, kind, processor_id, portal_id, version) VALUES (?, ?, ?, ?, 0)",
        (connection_id, kind, processor_id, order_id),
    )
    return Sale(slug, org_id, order_id, processor_id)


def _refund(world: World, sale: Sale, amount: str, reason: str = "requested_by_customer") -> Any:
    return world.client.post(
        f"/console/{sale.slug}/orders/{sale.order_id}/refund",
        data={"amount": amount, "reason": reason, "_csrf_token": csrf(world.client)},
        follow_redirects=False,
    )


def _order(settings: Settings, order_id: str) -> tuple[str, int, int]:
    (row,) = sql(
        settings,
        "SELECT status, refunded_amount, (SELECT COUNT(*) FROM refunds WHERE order_id = o.id) "
        "FROM orders o WHERE id = ?",
        (order_id,),
    )
    return (row[0], row[1], row[2])


# --- what each processor got, and its refund webhook ---------------------------------------------------------


def _last_request(name: str, fake: Any) -> Any:
    if name == "stripe":
        found = [r for r in fake.requests if r.method == "POST" and r.path == "/v1/refunds"]
        return found[-1].form if found else None
    if name == "polar":
        return fake.requests[-1][2] if fake.requests else None
    if name == "lemonsqueezy":
        found = [r for r in fake.requests if r.method == "POST" and r.path.endswith("/refund")]
        return (found[-1].path, found[-1].body) if found else None
    if name == "paddle":
        found = [r for r in fake.requests if r.method == "POST" and r.path == "/adjustments"]
        return found[-1].body if found else None
    return fake.refunds[-1] if fake.refunds else None


REASONS = {  # Portal's reason -> (Stripe's, Polar's, Paddle's words)
    "requested_by_customer": ("requested_by_customer", "customer_request", "requested by customer"),
    "duplicate": ("duplicate", "duplicate", "duplicate payment"),
}


def _assert_documented_request(
    name: str, fake: Any, sale: Sale, cents: int, full: bool, reason: str = "requested_by_customer"
) -> None:
    got = _last_request(name, fake)
    stripe_reason, polar_reason, paddle_reason = REASONS[reason]
    if name == "stripe":
        assert got["payment_intent"] == sale.processor_id and got["amount"] == str(cents)
        assert got["reason"] == stripe_reason
        assert [r.version for r in fake.requests if r.path == "/v1/refunds"][-1] == API_VERSION
    elif name == "polar":
        assert got == {"order_id": sale.processor_id, "reason": polar_reason, "amount": cents}
    elif name == "lemonsqueezy":
        document = {"data": {"type": "orders", "id": sale.processor_id, "attributes": {"amount": cents}}}
        assert got == (f"/v1/orders/{sale.processor_id}/refund", document)
    elif name == "paddle":
        expected: dict[str, Any] = {"action": "refund", "transaction_id": sale.processor_id, "reason": paddle_reason}
        if full:
            expected["type"] = "full"
        else:
            expected |= {
                "type": "partial",
                "items": [{"item_id": "txnitm_" + sale.processor_id[4:], "type": "partial", "amount": str(cents)}],
            }
        assert got == expected
    else:
        assert got == {"amount_cents": str(cents)}


def _deliver_webhook(world: World, sale: Sale, name: str) -> Any:
    """The processor's refund webhook for the sale's current state (what it sends after the refund)."""
    client, fake = world.client, world.fakes[name]
    hook = f"/v1/integrations/{name}/{sale.slug}/webhook"
    if name == "stripe":
        refund = [r for r in fake.objects["refunds"].values() if r["payment_intent"] == sale.processor_id][-1]
        event = stripe_events.event(f"evt_{new_id()}", "refund.created", refund, int(time.time()))
        body = stripe_events.body_of(event)
        headers = {"Stripe-Signature": stripe_events.signature(body, SECRET), "Content-Type": "application/json"}
        return client.post(hook, content=body, headers=headers)
    if name == "polar":
        body, headers = signed(
            "order.refunded", dict(fake.orders[sale.processor_id]), message_id=f"msg_{new_id()}", secret=POLAR_SECRET
        )
        return client.post(hook, content=body, headers=headers)
    if name == "lemonsqueezy":
        body = ls.webhook("order_refunded", fake.resources["orders"][sale.processor_id])
        return client.post(
            hook, content=body, headers={"X-Signature": ls.signature(body, SECRET), "Content-Type": "application/json"}
        )
    if name == "paddle":
        adjustment = [a for a in fake.entities["adjustments"].values() if a["transaction_id"] == sale.processor_id][-1]
        body = pf.event(f"evt_{new_id()}", "adjustment.updated", adjustment, int(time.time()))
        return client.post(
            hook,
            content=body,
            headers={"Paddle-Signature": pf.signature(body, SECRET), "Content-Type": "application/json"},
        )
    sale_obj = fake.find(sale.processor_id)
    form = {
        "resource_name": "refund",
        "sale_id": sale_obj["id"],
        "sale_timestamp": sale_obj["created_at"],
        "refunded": str(sale_obj["refunded"]).lower(),
        "partially_refunded": str(sale_obj["partially_refunded"]).lower(),
        "amount_refunded_in_cents": str(sale_obj.get("amount_refunded_in_cents") or 0),
        "price": sale_obj["price"],
    }
    return client.post(
        f"{hook}?secret={SECRET}",
        content=urlencode(form),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


PROCESSORS = ["stripe", "polar", "lemonsqueezy", "paddle", "gumroad"]


@pytest.mark.parametrize("name", PROCESSORS)
def test_partial_then_full_refund_through_the_processor_counts_once_with_its_webhook(world: World, name: str) -> None:
    sale = _sale(world, name)
    fake = world.fakes[name]
    if name == "paddle":
        fake.adjustment_status = "approved"  # an automatically approved refund (the pending one: below)
    try:
        _partial_then_full(world, name, sale, fake)
    finally:
        if name == "paddle":
            fake.adjustment_status = "pending_approval"


def _partial_then_full(world: World, name: str, sale: Sale, fake: Any) -> None:
    page = world.client.get(f"/console/{sale.slug}/orders/{sale.order_id}")
    assert page.status_code == 200 and sale.processor_id in page.text  # where it came from
    # A partial refund: the processor's documented request, then Portal's record.
    answer = _refund(world, sale, "10.00")
    assert answer.status_code == 303, answer.text[answer.text.find('role="alert"') :][:300]
    _assert_documented_request(name, fake, sale, 1000, full=False)
    assert _order(world.settings, sale.order_id) == ("partially_refunded", 1000, 1)
    # The processor's webhook for the same refund counts once.
    delivered = _deliver_webhook(world, sale, name)
    assert delivered.status_code == 200, delivered.text
    assert _order(world.settings, sale.order_id) == ("partially_refunded", 1000, 1)
    # The rest, a full refund whose webhook arrives before Portal applied the processor's answer.
    state = world.settings
    order = sql(state, "SELECT refunded_amount FROM orders WHERE id = ?", (sale.order_id,))[0][0]

    async def refund_then_late_answer() -> None:
        db = await Database(state.db_path, readers=1).open()
        try:
            source = await remote.source_of(db, sale.org_id, sale.order_id)
            assert source is not None and source.processor_id == sale.processor_id
            made = await remote.refund(
                state, source, amount=TOTAL - order, remaining=TOTAL - order, currency="usd", reason="duplicate"
            )
            assert _deliver_webhook(world, sale, name).status_code == 200
            assert _order(state, sale.order_id) == ("refunded", TOTAL, 2)  # the webhook recorded it
            async with db.write() as tx:
                recorded = await remote.apply_refund(
                    tx, source, sale.order_id, made, refunded_before=order, reason="duplicate", now=NOW
                )
            assert recorded is None
        finally:
            await db.close()

    asyncio.run(refund_then_late_answer())
    _assert_documented_request(name, fake, sale, TOTAL - 1000, full=True, reason="duplicate")
    assert _order(world.settings, sale.order_id) == ("refunded", TOTAL, 2)
    assert _deliver_webhook(world, sale, name).status_code == 200
    assert _order(world.settings, sale.order_id) == ("refunded", TOTAL, 2)
    entries = [entry for entry in audit_actions(world.settings, sale.org_id) if entry[0] == "order.refund"]
    assert len(entries) == 1
    (details,) = sql(
        world.settings,
        "SELECT details FROM seller_audit_log WHERE action = 'order.refund' AND organization_id = ?",
        (sale.org_id,),
    )
    assert json.loads(details[0])["processor"] == name and json.loads(details[0])["amount"] == 1000
    # Each refund sent the customer its refund email, as any refund does.
    kinds = [
        row[0] for row in sql(world.settings, "SELECT kind FROM email_outbox WHERE organization_id = ?", (sale.org_id,))
    ]
    assert kinds.count("refund") == 2
    page = world.client.get(f"/console/{sale.slug}/orders/{sale.order_id}").text
    # The first refund with the seller's reason and the processor's id for it (the second was recorded by the
    # webhook: the processor's reason, and the order's processor named).
    assert "Requested by the customer" in page
    assert json.loads(details[0])["processor_refund_id"] in page


def test_a_paddle_refund_waits_for_paddles_approval(world: World) -> None:
    sale = _sale(world, "paddle")
    fake = world.fakes["paddle"]
    answer = _refund(world, sale, "49.00")
    assert answer.status_code == 303 and answer.headers["location"].endswith("done=refund_pending")
    _assert_documented_request("paddle", fake, sale, TOTAL, full=True)
    assert _order(world.settings, sale.order_id) == ("paid", 0, 0)
    assert "once the processor approves it" in world.client.get(answer.headers["location"]).text
    (adjustment,) = [a for a in fake.entities["adjustments"].values() if a["transaction_id"] == sale.processor_id]
    adjustment["status"] = "approved"
    for _ in range(2):  # approved, and its redelivery
        assert _deliver_webhook(world, sale, "paddle").status_code == 200
        assert _order(world.settings, sale.order_id) == ("refunded", TOTAL, 1)


@pytest.mark.parametrize("failure", ["refused", "down"])
def test_a_processor_failure_says_so_and_writes_nothing(world: World, failure: str) -> None:
    sale = _sale(world, "stripe")
    fake = world.fakes["stripe"]
    if failure == "refused":
        fake.fail_with = (403, "invalid_request_error")
    else:
        fake.down = True
    try:
        answer = _refund(world, sale, "10.00")
    finally:
        fake.fail_with, fake.down = None, False
    assert answer.status_code == (409 if failure == "refused" else 502)
    assert "Stripe did not refund the order" in answer.text and "Nothing was changed here." in answer.text
    assert 'value="10.00"' in answer.text  # the form keeps what was typed
    assert _order(world.settings, sale.order_id) == ("paid", 0, 0)
    assert [entry for entry in audit_actions(world.settings, sale.org_id) if entry[0] == "order.refund"] == []
    assert sql(world.settings, "SELECT COUNT(*) FROM email_outbox WHERE organization_id = ?", (sale.org_id,))[0][0] == 0


# --- orders made in Portal ------------------------------------------------------------------------------------


@pytest.fixture
def local(client: TestClient[Litestar], settings: Settings) -> World:
    """The conftest's own app and database (no processor involved)."""
    return World(client, settings, {})


@pytest.fixture
def team(local: World) -> Team:
    team = make_team(local.settings)
    console_cookie(local.client, local.settings, plant_session(local.settings, team.owner))
    return team


def _local(team: Team) -> Sale:
    return Sale("acme", team.acme_id, team.order_id, "")


def test_a_local_order_is_refunded_locally_and_its_receipt_names_it(local: World, team: Team) -> None:
    page = local.client.get(f"/console/acme/orders/{team.order_id}").text
    assert "Made in Portal" in page and "$49.00" in page and "$9.00" in page and "Ada Lovelace" in page
    assert 'href="/console/acme/customers/' in page  # the customer page (another section's) links back here
    assert "/r/receipts/" in page  # the seller opens the receipt through a signed link
    sql(
        local.settings,
        "INSERT INTO webhook_endpoints (id, organization_id, url, name, secret, events, created_at) "
        "VALUES (?, ?, 'https://hooks.acme.example/refunds', 'Books', 'whsec_y', ?, ?)",
        (new_id(), team.acme_id, json.dumps(["order.refunded"]), iso(NOW)),
    )
    answer = _refund(local, _local(team), "12,50", "other")
    assert answer.status_code == 303 and answer.headers["location"].endswith("done=refunded")
    assert _order(local.settings, team.order_id) == ("partially_refunded", 1250, 1)
    (tax,) = sql(local.settings, "SELECT tax_amount FROM refunds WHERE order_id = ?", (team.order_id,))[0]
    assert tax == 1250 * 900 // TOTAL  # the orders service's proportional tax share
    assert audit_actions(local.settings, team.acme_id)[-1][:2] == ("order.refund", "owner@acme.example")
    assert sql(local.settings, "SELECT COUNT(*) FROM email_outbox WHERE kind = 'refund'")[0][0] == 1
    # The outgoing order.refunded webhook, as for any refund.
    (payload,) = sql(local.settings, "SELECT payload FROM webhook_events WHERE type = 'order.refunded'")[0]
    assert json.loads(payload)["data"]["refunded_amount"] == 1250
    page = local.client.get(answer.headers["location"]).text
    assert "Refund recorded." in page and "−$12.50" in page and "Portal" in page
    receipt_link = page.split('href="http://testserver.local/r/receipts/')[1].split('"')[0]
    receipt = local.client.get("/r/receipts/" + receipt_link.replace("&amp;", "&"))
    assert receipt.status_code == 200 and "CONSOLE-0001" in receipt.text


BAD = [
    ("49.01", "requested_by_customer", "amount", "At most 49.00 USD is left to refund."),
    ("0", "other", "amount", "Enter an amount above zero."),
    ("ten", "other", "amount", "Enter an amount such as 12.50."),
    ("1.005", "other", "amount", "Enter an amount such as 12.50."),
    ("5.00", "because", "reason", "Choose a reason from the list."),
]


def test_a_bad_amount_or_reason_is_named_and_nothing_is_written(local: World, team: Team) -> None:
    for amount, reason, field, message in BAD:
        answer = _refund(local, _local(team), amount, reason)
        assert answer.status_code == 400, (amount, reason)
        assert f'id="refund-{field}-error"' in answer.text and 'aria-invalid="true"' in answer.text
        assert message in answer.text
    assert _order(local.settings, team.order_id) == ("paid", 0, 0)
    assert audit_actions(local.settings, team.acme_id) == []


def test_another_organizations_order_is_not_found(local: World, team: Team) -> None:
    globex_customer = insert_customer(local.settings, team.globex_id, "grace@globex.example")
    globex_order = insert_paid_order(local.settings, team.globex_id, globex_customer, receipt="GLOBEX-0001")
    # Acme's owner on Globex's order (through Acme's slug), and Globex's owner on Acme's.
    assert local.client.get(f"/console/acme/orders/{globex_order}").status_code == 404
    posted = local.client.post(
        f"/console/acme/orders/{globex_order}/refund",
        data={"amount": "1.00", "reason": "other", "_csrf_token": csrf(local.client)},
    )
    assert posted.status_code == 404
    console_cookie(local.client, local.settings, plant_session(local.settings, team.stranger))
    assert local.client.get(f"/console/globex/orders/{team.order_id}").status_code == 404
    assert local.client.get(f"/console/acme/orders/{team.order_id}").status_code == 404
    for path in ("refund", "resend-receipt"):
        answer = local.client.post(
            f"/console/globex/orders/{team.order_id}/{path}",
            data={"amount": "1.00", "reason": "other", "_csrf_token": csrf(local.client)},
        )
        assert answer.status_code == 404
    assert _order(local.settings, team.order_id) == ("paid", 0, 0)
    assert _order(local.settings, globex_order) == ("paid", 0, 0)
    assert sql(local.settings, "SELECT COUNT(*) FROM seller_audit_log")[0][0] == 0


def test_resend_receipt_reaches_the_customers_mailbox(
    smtp_settings: Settings, smtp_server: tuple[SMTPInbox, int]
) -> None:
    inbox, _ = smtp_server
    settings = fast(smtp_settings)
    team = make_team(settings)
    with TestClient(app_for(settings), base_url="http://testserver.local") as client:
        console_cookie(client, settings, plant_session(settings, team.support))  # support may: it is a customer's
        answer = client.post(
            f"/console/acme/orders/{team.order_id}/resend-receipt",
            data={"_csrf_token": csrf(client)},
            follow_redirects=False,
        )
        assert answer.status_code == 303 and answer.headers["location"].endswith("done=resent")
        message = next(m for m in inbox.wait_for(1) if m["To"] == "buyer@acme.example")
        assert "CONSOLE-0001" in message["Subject"] and "$49.00" in text_part(message)
        receipts = "SELECT status FROM email_outbox WHERE kind = 'receipt' AND to_address = 'buyer@acme.example'"
        wait_until(lambda: [row[0] for row in sql(settings, receipts)] == ["sent"])
        # Again: a second copy, not swallowed by the first one's de-duplication.
        client.post(f"/console/acme/orders/{team.order_id}/resend-receipt", data={"_csrf_token": csrf(client)})
        wait_until(lambda: len([m for m in inbox.messages if m["To"] == "buyer@acme.example"]) == 2)
    actions = [entry for entry in audit_actions(settings, team.acme_id) if entry[0] == "order.resend_receipt"]
    assert [entry[1:3] for entry in actions] == [("support@acme.example", "support")] * 2


def test_resend_says_when_receipt_emails_are_off_and_writes_nothing(local: World, team: Team) -> None:
    sql(
        local.settings,
        "UPDATE organizations SET settings = ? WHERE id = ?",
        (json.dumps({"emails": {"order_receipt": False}}), team.acme_id),
    )
    answer = local.client.post(
        f"/console/acme/orders/{team.order_id}/resend-receipt", data={"_csrf_token": csrf(local.client)}
    )
    assert answer.status_code == 409 and "Receipt emails are turned off" in answer.text
    assert sql(local.settings, "SELECT COUNT(*) FROM email_outbox WHERE to_address = 'buyer@acme.example'")[0][0] == 0
    assert audit_actions(local.settings, team.acme_id) == []
