"""``portal import stripe`` (issue 19, "History in") against the fake Stripe API on loopback: several pages of
customers, catalog, subscriptions, paid invoices, Payment Link checkouts and refunds through cursor pagination,
historical dates kept, no emails and no outgoing webhooks; interrupted by Stripe failing part-way or by a crash
mid-page, then resumed from the checkpoint with nothing lost or doubled; idempotent with live events arriving
before, during or after; ``--dry-run`` writes nothing."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from portal.cli import main
from portal.clock import Clock
from portal.connectors import events, store
from portal.connectors.base import InboundEvent
from portal.connectors.stripe import importer, mapping
from portal.connectors.stripe.client import API_VERSION
from portal.connectors.stripe.processor import StripeProcessor
from portal.db import Database
from portal.settings import Settings
from tests.admin_support import api, create_org, mint_token
from tests.apps import app_for
from tests.browser_helpers import table_fingerprint
from tests.stripe_fake import FakeStripe, fake_stripe
from tests.stripe_history import START, History, populate

WEBHOOK_SECRET = "whsec_test_secret_for_the_fake"
PAGE = 10


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with fake_stripe() as running:
        yield running


@pytest.fixture
def stripe_settings(settings: Settings, fake: FakeStripe) -> Settings:
    return msgspec.structs.replace(settings, stripe_api_base=fake.base_url)


@pytest.fixture
def shop(stripe_settings: Settings, fake: FakeStripe, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An organization connected to the fake Stripe, with a webhook endpoint (to show none is called), served by
    a TestClient for the admin calls; small pages so a few dozen objects make several pages."""
    monkeypatch.setattr(importer, "PAGE_SIZE", PAGE)
    with TestClient(app_for(stripe_settings), base_url="http://testserver.local") as client:
        admin = mint_token(stripe_settings)
        org = create_org(client, admin, "acme")
        token = mint_token(stripe_settings, org["id"])
        body = {"api_key": fake.api_key, "webhook_secret": WEBHOOK_SECRET}
        api(client, admin, "PUT", f"/v1/connectors/stripe?organization_id={org['id']}", 200, json=body)
        endpoint = {"url": "https://hooks.example.com/portal", "events": ["order.paid", "order.refunded"]}
        api(client, token, "POST", "/v1/webhooks/endpoints", 201, json=endpoint)
    monkeypatch.setenv("PORTAL_DATA_DIR", str(stripe_settings.data_dir))
    monkeypatch.setenv("PORTAL_SECRET_KEY", stripe_settings.secret_key)
    monkeypatch.setenv("PORTAL_STRIPE_API_BASE", fake.base_url)
    fake.requests.clear()
    yield org["id"]


def _count(settings: Settings, sql: str, params: tuple[Any, ...] = ()) -> int:
    conn = sqlite3.connect(settings.db_path)
    try:
        return int(conn.execute(sql, params).fetchone()[0])
    finally:
        conn.close()


def _rows(settings: Settings, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    conn = sqlite3.connect(settings.db_path)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _subscription(settings: Settings, stripe_id: str) -> sqlite3.Row:
    sql = "SELECT * FROM subscriptions WHERE json_extract(metadata, '$.stripe_subscription') = ?"
    return _rows(settings, sql, (stripe_id,))[0]


def _assert_complete(settings: Settings, history: History) -> None:
    assert _count(settings, "SELECT COUNT(*) FROM customers") == history.customers
    assert _count(settings, "SELECT COUNT(*) FROM subscriptions") == history.subscriptions
    assert _count(settings, "SELECT COUNT(*) FROM orders WHERE subscription_id IS NOT NULL") == history.invoices
    assert _count(settings, "SELECT COUNT(*) FROM orders WHERE subscription_id IS NULL") == history.checkouts
    # Each Stripe object once: the external ids are unique.
    assert _count(settings, "SELECT COUNT(DISTINCT external_id) FROM orders") == history.orders


def _import(*extra: str) -> int:
    return main(["import", "stripe", "--org", "acme", *extra])


def test_backfill_of_several_pages_keeps_dates_and_sends_nothing(
    shop: str, stripe_settings: Settings, fake: FakeStripe, capsys: pytest.CaptureFixture[str]
) -> None:
    history = populate(fake, customers=25, invoices_per_subscription=2, checkouts=12, refunds=6)
    assert _import("--catalog") == 0
    out = capsys.readouterr()
    _assert_complete(stripe_settings, history)
    assert "invoices" in out.out and "50 applied" in out.out
    assert "invoices: 50 objects, 5 pages" in out.err  # the progress display

    # Cursor pagination: each next page asks for the objects after the last id of the one before.
    invoice_lists = [r for r in fake.requests if r.path == "/v1/invoices"]
    assert len(invoice_lists) == 5 and invoice_lists[0].query == {"status": "paid", "limit": str(PAGE)}
    newest_first = sorted(fake.objects["invoices"].values(), key=lambda o: (-o["created"], o["id"]))
    for page, request in enumerate(invoice_lists[1:], start=1):
        assert request.query["starting_after"] == newest_first[page * PAGE - 1]["id"]
    assert all(r.version == API_VERSION for r in fake.requests)
    assert [r for r in fake.requests if r.method != "GET"] == []

    # The catalog: Portal products made from Stripe's, the prices mapped to them.
    products = _rows(stripe_settings, "SELECT name, is_recurring, recurring_interval FROM products ORDER BY name")
    assert [(p["name"], p["is_recurring"], p["recurring_interval"]) for p in products] == [
        ("Basic", 1, "month"),
        ("Toolkit", 0, None),
    ]
    # Historical dates: the first customer's first invoice was paid on 2025-01-01 (+ a minute or two).
    first = _rows(
        stripe_settings, "SELECT created_at, paid_at FROM orders WHERE external_id = ?", ("stripe:in_000000_000",)
    )
    assert first[0]["created_at"].startswith("2025-01-01") and first[0]["paid_at"].startswith("2025-01-01")
    assert _subscription(stripe_settings, "sub_000003")["started_at"].startswith("2025-01-04")
    # Refunds: three in full, three in part.
    assert _count(stripe_settings, "SELECT COUNT(*) FROM orders WHERE status = 'refunded'") == 3
    assert _count(stripe_settings, "SELECT COUNT(*) FROM orders WHERE status = 'partially_refunded'") == 3
    # History: no email, no outgoing webhook.
    assert _count(stripe_settings, "SELECT COUNT(*) FROM email_outbox") == 0
    assert _count(stripe_settings, "SELECT COUNT(*) FROM webhook_events") == 0
    # Benefits and receipts exactly as for admin-API orders: receipt numbers given.
    assert _count(stripe_settings, "SELECT COUNT(*) FROM orders WHERE receipt_number IS NULL") == 0

    # Run again: the last import finished, so this is a new one, and it changes nothing.
    before = table_fingerprint(stripe_settings)
    assert _import("--catalog") == 0
    _assert_complete(stripe_settings, history)
    after = table_fingerprint(stripe_settings)
    changed = {table for table in before if before[table] != after[table]}
    assert changed <= {"connector_checkpoints", "connector_links"}, changed


def test_an_interrupted_import_resumes_after_the_last_page_written(
    shop: str, stripe_settings: Settings, fake: FakeStripe, capsys: pytest.CaptureFixture[str]
) -> None:
    history = populate(fake, customers=30, invoices_per_subscription=2, checkouts=5)
    # Stripe fails part-way through the invoices (after the customers' 3 pages, the catalog's 1, the
    # subscriptions' 3 and two pages of invoices).
    fake.lists_before_failing = 3 + 1 + 3 + 2
    assert _import("--catalog") == 1
    assert "run the same command to resume" in capsys.readouterr().err
    assert _count(stripe_settings, "SELECT COUNT(*) FROM orders") == 2 * PAGE
    cursor = _rows(stripe_settings, "SELECT cursor, done FROM connector_checkpoints WHERE stream = 'invoices'")[0]
    assert cursor["cursor"].startswith("in_") and cursor["done"] == 0

    fake.lists_before_failing = None
    fake.requests.clear()
    assert _import("--catalog") == 0
    out = capsys.readouterr().out
    assert "done in an earlier run" in out and "(resumed)" in out
    # Customers, catalog and subscriptions were not listed again; invoices went on after the checkpoint.
    assert {r.path for r in fake.requests if r.method == "GET"} <= {
        "/v1/invoices",
        "/v1/checkout/sessions",
        "/v1/charges",
    }
    resumed = next(r for r in fake.requests if r.path == "/v1/invoices")
    assert resumed.query["starting_after"] == cursor["cursor"]
    _assert_complete(stripe_settings, history)


def test_a_crash_mid_page_loses_only_that_page_and_resumes(
    shop: str, stripe_settings: Settings, fake: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = populate(fake, customers=20, invoices_per_subscription=2)
    real = mapping.apply_invoice
    calls = 0

    async def crashing(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 25:  # the 5th object of the 3rd page
            raise RuntimeError("power cut")
        return await real(*args, **kwargs)

    monkeypatch.setattr(mapping, "apply_invoice", crashing)
    with pytest.raises(RuntimeError, match="power cut"):
        _import("--catalog")
    # Two whole pages written, nothing of the third.
    assert _count(stripe_settings, "SELECT COUNT(*) FROM orders") == 2 * PAGE
    monkeypatch.setattr(mapping, "apply_invoice", real)
    assert _import("--catalog") == 0
    _assert_complete(stripe_settings, history)


def _live(settings: Settings, connection_org: str, kind: str, obj: dict[str, Any], created: int) -> str:
    """Deliver a live event the way the webhook endpoint does once its signature is verified."""

    async def work() -> str:
        db = await Database(settings.db_path, readers=1).open()
        try:
            connection = await store.require_connection(db, connection_org, "stripe")
            event = InboundEvent(
                id=f"evt_{obj['id']}_{created}",
                type=kind,
                created=created,
                payload={"id": f"evt_{obj['id']}_{created}", "type": kind, "created": created, "data": {"object": obj}},
            )
            received = await events.process(
                db, settings.resolve_secrets(), StripeProcessor(), connection, event, now=Clock().now()
            )
            return received.status
        finally:
            await db.close()

    return asyncio.run(work())


def test_import_is_idempotent_with_live_events(
    shop: str, stripe_settings: Settings, fake: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = populate(fake, customers=15, invoices_per_subscription=2)
    assert _import("--catalog") == 0
    _assert_complete(stripe_settings, history)

    # A live delivery of an invoice the import brought in: already there, nothing doubled.
    paid = fake.objects["invoices"]["in_000004_001"]
    assert _live(stripe_settings, shop, "invoice.paid", paid, paid["created"]) == "ignored"
    # A live subscription change after the import: applied (newer than the imported state) ...
    sub = fake.objects["subscriptions"]["sub_000002"]
    sub["cancel_at_period_end"] = True
    sub["canceled_at"] = int(datetime.now(UTC).timestamp())
    assert (
        _live(stripe_settings, shop, "customer.subscription.updated", sub, int(datetime.now(UTC).timestamp()) + 5)
        == "applied"
    )
    # ... and a new invoice paid live, then found again by the next import.
    new_invoice = fake.add("invoices", {**paid, "id": "in_000004_live", "created": START + 400 * 86_400})
    assert _live(stripe_settings, shop, "invoice.paid", new_invoice, new_invoice["created"]) == "applied"
    # A live event arriving DURING the import: applied before the import reaches its invoice page.
    during = fake.add("invoices", {**paid, "id": "in_000004_during", "created": START + 401 * 86_400})
    real = importer._Importer.apply_page
    delivered = False

    async def with_live_event(self: Any, stream: Any, page: Any, report: Any, cursor: Any) -> None:
        nonlocal delivered
        if stream.name == "invoices" and not delivered:
            delivered = True
            status = await asyncio.to_thread(_live, stripe_settings, shop, "invoice.paid", during, during["created"])
            assert status == "applied"
        await real(self, stream, page, report, cursor)

    monkeypatch.setattr(importer._Importer, "apply_page", with_live_event)
    assert _import() == 0
    assert delivered
    assert _count(stripe_settings, "SELECT COUNT(*) FROM orders") == history.orders + 2
    assert _count(stripe_settings, "SELECT COUNT(DISTINCT external_id) FROM orders") == history.orders + 2
    # The live change is kept: the import fetched the same state (or a newer one) from Stripe.
    assert _subscription(stripe_settings, "sub_000002")["cancel_at_period_end"] == 1
    # Live events send what live events send (receipt emails), the import nothing.
    assert _count(stripe_settings, "SELECT COUNT(*) FROM email_outbox") >= 2


def test_dry_run_counts_and_writes_nothing(
    shop: str, stripe_settings: Settings, fake: FakeStripe, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(fake, customers=12, invoices_per_subscription=1, checkouts=3, refunds=2)
    before = table_fingerprint(stripe_settings)
    assert _import("--dry-run", "--catalog") == 0
    out = capsys.readouterr().out
    assert out.startswith("Dry run (nothing was written)")
    lines = {line.split()[0]: line for line in out.splitlines()[1:] if line.startswith("  ")}
    # What a real run would do, stream by stream: the catalog's products serve the subscriptions after it, the
    # subscriptions their invoices.
    assert "2 seen: 2 applied" in lines["catalog"]
    assert "12 seen: 12 applied" in lines["subscriptions"] and "12 seen: 12 applied" in lines["invoices"]
    assert "3 seen: 3 applied" in lines["checkout_sessions"] and "2 seen: 2 applied" in lines["refunds"]
    assert table_fingerprint(stripe_settings) == before


def test_unmapped_prices_are_reported_and_since_limits_the_import(
    shop: str, stripe_settings: Settings, fake: FakeStripe, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(fake, customers=12, invoices_per_subscription=1)
    # No --catalog and no mapping: subscriptions wait for their price; their invoices wait for them.
    assert _import("--since", "2025-01-06") == 0
    out = capsys.readouterr().out
    assert "price_basic_monthly" in out and "Waiting for a price mapping" in out
    # Customers created on or after 2025-01-06 only: indexes 5..11.
    assert _count(stripe_settings, "SELECT COUNT(*) FROM customers") == 7
    assert _count(stripe_settings, "SELECT COUNT(*) FROM subscriptions") == 0
    with pytest.raises(SystemExit):
        main(["import", "stripe", "--org", "acme", "--since", "not-a-date"])
    assert main(["import", "stripe", "--org", "nobody"]) == 1
