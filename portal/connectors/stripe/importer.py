"""``portal import stripe``: a Stripe account's history into Portal (issue 19, "History in").

Streams, in this order (each a cursor-paginated Stripe list, newest first, ``starting_after`` the last id seen):

* ``customers`` — every customer (``created >= --since``);
* ``catalog`` (only with ``--catalog``) — each Stripe price without a mapping gets a Portal product (one per Stripe
  product and billing interval, named after the Stripe product) and is mapped to it;
* ``subscriptions`` — every status; ``invoices`` — paid ones, each a Portal order with its ``billing_reason``;
* ``checkout_sessions`` — completed payment-mode sessions (Payment Links included), the one-time sales: a bare
  PaymentIntent names no product, so one-time payments are taken from the sessions that sold them;
* ``refunds`` — charges with a refunded amount (cumulative: a partial refund, then the rest).

Objects are applied through the same mapping as live webhooks (``portal.connectors.stripe.mapping``) with an
``ApplyContext`` in history mode: Stripe's own dates kept, no emails, no outgoing webhooks. One page is one write
transaction that also stores the stream's checkpoint (``connector_checkpoints``: the page's last id), so a Ctrl-C
or a crash loses at most the page in flight and the next run resumes after the last committed page. An object
whose parent Portal has not seen (``NeedObject``, e.g. a subscription of a customer created before ``--since``) is
fetched and applied first. Live events arriving meanwhile are safe: facts apply once (by Stripe id), states carry
the version they were fetched at (an older state never overwrites a newer one), refunds are cumulative.

``--dry-run`` runs the import for real on a scratch copy of the database (SQLite's online backup), then deletes
it: the counts are exactly what a real run would do, and the live database is neither written nor locked. A run
whose streams are all done starts a new import from the beginning (the mapping makes that a no-op for what is
already there).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sqlite3
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from portal.clock import iso
from portal.connectors.base import ApplyContext, MappingError, NeedObject, Outcome, ProcessorError
from portal.connectors.links import get_link, mapped_product, set_link, set_price_mapping
from portal.connectors.store import Connection, Secrets
from portal.connectors.stripe import client as stripe_client
from portal.connectors.stripe import mapping
from portal.connectors.stripe.processor import LINE_ITEMS, StripeProcessor
from portal.db import Database, Transaction
from portal.errors import DomainError
from portal.products.service import PriceInput, ProductInput, create_product
from portal.settings import Settings

PAGE_SIZE = 100
# Pages between two WAL checkpoints.
CHECKPOINT_EVERY = 20
# Rounds of fetching missing parents for one page (a subscription's customer, an invoice's subscription...).
MAX_ROUNDS = 4
ALL_STREAMS = ("customers", "catalog", "subscriptions", "invoices", "checkout_sessions", "refunds")
# Stripe intervals as Portal words them in a second product's name ("Pro (yearly)").
INTERVAL_NAMES = {"day": "daily", "week": "weekly", "month": "monthly", "year": "yearly"}

# Objects fetched for a page's objects (their parents, a metadata-mapped price, what a refunded payment paid for).
Fetched = Mapping[tuple[str, str], Any]
Apply = Callable[[Transaction, ApplyContext, dict[str, Any], Fetched], Awaitable[Outcome]]


@dataclasses.dataclass
class StreamReport:
    """What one stream did: objects seen and the outcome of each (``applied``, ``ignored``, ``unmapped``,
    ``failed``), the failures' reasons and the unmapped prices."""

    name: str
    seen: int = 0
    pages: int = 0
    outcomes: Counter[str] = dataclasses.field(default_factory=Counter)
    failures: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    unmapped: Counter[str] = dataclasses.field(default_factory=Counter)
    resumed: bool = False
    skipped: bool = False


@dataclasses.dataclass
class ImportReport:
    streams: list[StreamReport]
    dry_run: bool
    seconds: float = 0.0
    interrupted: str | None = None

    @property
    def unmapped(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for stream in self.streams:
            total.update(stream.unmapped)
        return total


Progress = Callable[[StreamReport], None]


def _merge(report: StreamReport, tally: StreamReport) -> None:
    report.outcomes.update(tally.outcomes)
    report.failures.extend(tally.failures)
    report.unmapped.update(tally.unmapped)


@dataclasses.dataclass(frozen=True)
class _Stream:
    name: str
    path: str  # the Stripe API list
    params: dict[str, Any]
    apply: Apply
    keep: Callable[[dict[str, Any]], bool] = lambda _obj: True
    since: bool = True


async def _apply_customer(tx: Transaction, ctx: ApplyContext, obj: dict[str, Any], fetched: Fetched) -> Outcome:
    return await mapping.apply_customer(tx, ctx, obj)


async def _apply_subscription(tx: Transaction, ctx: ApplyContext, obj: dict[str, Any], fetched: Fetched) -> Outcome:
    return await mapping.apply_subscription(tx, ctx, obj)


async def _apply_invoice(tx: Transaction, ctx: ApplyContext, obj: dict[str, Any], fetched: Fetched) -> Outcome:
    return await mapping.apply_invoice(tx, ctx, obj, _prices(fetched))


async def _apply_checkout(tx: Transaction, ctx: ApplyContext, obj: dict[str, Any], fetched: Fetched) -> Outcome:
    lines = fetched.get((LINE_ITEMS, obj["id"]))
    if lines is not None and "line_items" not in obj:
        obj = {**obj, "line_items": lines}
    return await mapping.apply_checkout_session(tx, ctx, obj)


async def _apply_charge(tx: Transaction, ctx: ApplyContext, obj: dict[str, Any], fetched: Fetched) -> Outcome:
    """A refunded charge; when Portal has no order for its payment (a sale outside the import's range), what the
    payment paid for was fetched (``NeedObject("payments", …)``) and is applied first, as the live path does."""
    payment_intent = obj.get("payment_intent")
    payment = fetched.get(("payments", payment_intent)) if isinstance(payment_intent, str) else None
    if payment is not None:
        if payment.get("checkout_session"):
            await mapping.apply_checkout_session(tx, ctx, payment["checkout_session"])
        if payment.get("invoice"):
            await mapping.apply_invoice(tx, ctx, payment["invoice"], _prices(fetched))
    return await mapping.apply_charge(tx, ctx, obj, payment)


def _prices(fetched: Fetched) -> dict[str, dict[str, Any]]:
    """Stripe prices fetched for invoice lines mapped by metadata only (``NeedObject("prices", …)``)."""
    return {object_id: obj for (kind, object_id), obj in fetched.items() if kind == "prices"}


# --- catalog -------------------------------------------------------------------------------------------------------


async def _apply_price(tx: Transaction, ctx: ApplyContext, price: dict[str, Any], fetched: Fetched) -> Outcome:
    """Map a Stripe price to a Portal product, creating the product (one per Stripe product and interval) when
    the price has none. A price mapped already (by the seller, or by metadata) is left as it is."""
    if await mapped_product(tx, ctx, price["id"]) is not None:
        return Outcome("ignored", "the price is mapped already")
    product = price.get("product")
    if not isinstance(product, dict):
        raise MappingError("the price's product was not expanded")
    if await mapping.product_for_price(tx, ctx, price) is not None:
        return Outcome("ignored", "the price names its Portal product in metadata")
    recurring = price.get("recurring") or None
    interval = recurring.get("interval") if recurring else None
    count = int(recurring.get("interval_count") or 1) if recurring else 1
    group = f"{product['id']}:{interval or 'once'}:{count}"
    link = await get_link(tx, ctx, "catalog_product", group)
    currency = str(price.get("currency") or "").lower()
    if link is not None:
        product_id = str(link["portal_id"])
    else:
        siblings = await tx.fetchval(
            "SELECT COUNT(*) FROM connector_links WHERE connection_id = ? AND kind = 'catalog_product' "
            "AND processor_id LIKE ?",
            (ctx.connection.id, f"{product['id']}:%"),
        )
        name = str(product.get("name") or product["id"])
        if siblings:
            label = INTERVAL_NAMES.get(str(interval), "one-time") if count == 1 else f"every {count} {interval}s"
            name = f"{name} ({label})"
        unit = price.get("unit_amount")
        product_id = await create_product(
            tx,
            ctx.connection.organization_id,
            ProductInput(
                name=name,
                description=product.get("description") or None,
                recurring_interval=interval,
                recurring_interval_count=count,
                prices=[
                    PriceInput(
                        amount=int(unit or 0),
                        currency=currency,
                        amount_type="fixed" if unit is not None else "custom",
                    )
                ],
                is_archived=not product.get("active", True),
                metadata={"stripe_product": product["id"]},
            ),
            now=mapping.moment(price.get("created")) or ctx.now,
        )
        await set_link(tx, ctx, "catalog_product", group, product_id)
    await set_price_mapping(tx, ctx.connection.id, ctx.connection.organization_id, price["id"], product_id, now=ctx.now)
    return Outcome("applied")


def _streams(since: int | None, catalog: bool) -> list[_Stream]:
    streams = [
        _Stream("customers", "/v1/customers", {}, _apply_customer),
        _Stream("catalog", "/v1/prices", {"expand": ["data.product"]}, _apply_price, since=False),
        _Stream("subscriptions", "/v1/subscriptions", {"status": "all"}, _apply_subscription),
        _Stream("invoices", "/v1/invoices", {"status": "paid"}, _apply_invoice),
        _Stream(
            "checkout_sessions",
            "/v1/checkout/sessions",
            {"status": "complete", "expand": ["data.line_items"]},
            _apply_checkout,
            keep=lambda session: session.get("mode") == "payment",
        ),
        _Stream(
            "refunds", "/v1/charges", {}, _apply_charge, keep=lambda charge: int(charge.get("amount_refunded") or 0) > 0
        ),
    ]
    chosen = [stream for stream in streams if catalog or stream.name != "catalog"]
    if since is None:
        return chosen
    return [
        dataclasses.replace(stream, params={**stream.params, "created": {"gte": since}}) if stream.since else stream
        for stream in chosen
    ]


# --- Stripe pages ------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Page:
    objects: list[dict[str, Any]]
    has_more: bool
    fetched_at: int


def _list_page(client: Any, path: str, params: dict[str, Any], cursor: str | None) -> _Page:
    """One page of a Stripe list (blocking: run in a worker thread), as Stripe's JSON. Through the SDK's
    ``raw_request``: the same key, API version, retries and errors as every call, without building an SDK object
    per item (that took most of a page's time)."""
    query = {**params, "limit": PAGE_SIZE}
    if cursor:
        query["starting_after"] = cursor
    fetched_at = int(time.time())
    response = stripe_client.call(lambda: client.raw_request("get", path, **query))
    body = response.data
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise ProcessorError(f"Stripe answered {path} with something that is not a list", unavailable=True)
    return _Page(list(body["data"]), bool(body.get("has_more")), fetched_at)


# --- checkpoints -------------------------------------------------------------------------------------------------


async def load_checkpoints(db: Database, connection_id: str) -> dict[str, tuple[str | None, bool]]:
    rows = await db.fetchall(
        "SELECT stream, cursor, done FROM connector_checkpoints WHERE connection_id = ?", (connection_id,)
    )
    return {row["stream"]: (row["cursor"], bool(row["done"])) for row in rows}


async def save_checkpoint(
    tx: Transaction, connection_id: str, stream: str, cursor: str | None, done: bool, now: datetime
) -> None:
    await tx.execute(
        """
        INSERT INTO connector_checkpoints (connection_id, stream, cursor, done, modified_at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (connection_id, stream) DO UPDATE SET
            cursor = excluded.cursor, done = excluded.done, modified_at = excluded.modified_at
        """,
        (connection_id, stream, cursor, int(done), iso(now)),
    )


async def reset_checkpoints(db: Database, connection_id: str) -> None:
    async with db.write() as tx:
        await tx.execute("DELETE FROM connector_checkpoints WHERE connection_id = ?", (connection_id,))


# --- applying ----------------------------------------------------------------------------------------------------


class _Importer:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        connection: Connection,
        *,
        now: Callable[[], datetime],
    ) -> None:
        self.db = db
        self.settings = settings
        self.connection = connection
        self.now = now
        self.secrets: Secrets = connection.secrets(settings.secret_key)
        self.client = stripe_client.client(self.secrets.api_key, settings.stripe_api_base)
        self.processor = StripeProcessor()

    def context(self, version: int | None) -> ApplyContext:
        return ApplyContext(connection=self.connection, now=self.now(), history=True, version=version)

    async def _fetch(self, need: NeedObject) -> Any:
        return await asyncio.to_thread(self.processor.fetch, need.kind, need.object_id, self.secrets, self.settings)

    async def apply_page(self, stream: _Stream, page: _Page, report: StreamReport, cursor: str | None) -> None:
        """Apply one page and store the checkpoint, in one transaction."""
        pending = [obj for obj in page.objects if stream.keep(obj)]
        report.seen += len(page.objects)
        if await self._fast_page(stream, page, pending, report, cursor):
            return
        fetched: dict[tuple[str, str], Any] = {}
        for round_number in range(MAX_ROUNDS + 1):
            tally = StreamReport(stream.name)
            needs: list[NeedObject] = []
            waiting: list[dict[str, Any]] = []
            async with self.db.bulk_write() as tx:
                ctx = self.context(page.fetched_at)
                await self._apply_fetched(tx, ctx, fetched)
                for obj in pending:
                    need = await self._apply_one(
                        tx, ctx, stream, obj, tally, fetched, give_up=round_number == MAX_ROUNDS
                    )
                    if need is not None:
                        needs.append(need)
                        waiting.append(obj)
                if not waiting:
                    await save_checkpoint(tx, self.connection.id, stream.name, cursor, not page.has_more, self.now())
            _merge(report, tally)
            if not waiting:
                return
            for need in needs:
                key = (need.kind, need.object_id)
                if key not in fetched:
                    fetched[key] = await self._fetch(need)
            # What was applied is committed; the next round applies the parents, then the objects waiting.
            pending = waiting

    async def _fast_page(
        self, stream: _Stream, page: _Page, pending: list[dict[str, Any]], report: StreamReport, cursor: str | None
    ) -> bool:
        """The usual case, every object of the page applying cleanly: no savepoint per object (each statement is
        a hop to the writer thread, the import's main cost). Any refusal or missing parent rolls the whole page
        back and returns False: the careful path (a savepoint per object, parents fetched) does it again."""
        tally = StreamReport(stream.name)
        try:
            async with self.db.bulk_write() as tx:
                ctx = self.context(page.fetched_at)
                for obj in pending:
                    outcome = await stream.apply(tx, ctx, obj, {})
                    tally.outcomes[outcome.status] += 1
                    if outcome.status == "unmapped" and outcome.price_id:
                        tally.unmapped[outcome.price_id] += 1
                await save_checkpoint(tx, self.connection.id, stream.name, cursor, not page.has_more, self.now())
        except (MappingError, DomainError, NeedObject):
            return False
        _merge(report, tally)
        return True

    async def _apply_fetched(self, tx: Transaction, ctx: ApplyContext, fetched: dict[tuple[str, str], Any]) -> None:
        """Parents fetched for this page (their state now), applied before the objects that need them."""
        current = dataclasses.replace(ctx, version=None)
        for (kind, _object_id), obj in fetched.items():
            if kind == "customers":
                await self._parent(tx, mapping.apply_customer(tx, current, obj))
            elif kind == "subscriptions":
                await self._parent(tx, mapping.apply_subscription(tx, current, obj))

    async def _parent(self, tx: Transaction, work: Awaitable[Outcome]) -> None:
        """A parent that cannot be applied leaves its children failing with the reason, not the whole page."""
        await tx.execute("SAVEPOINT portal_import_parent")
        try:
            await work
        except (MappingError, DomainError, NeedObject):
            await tx.execute("ROLLBACK TO portal_import_parent")
        await tx.execute("RELEASE portal_import_parent")

    async def _apply_one(
        self,
        tx: Transaction,
        ctx: ApplyContext,
        stream: _Stream,
        obj: dict[str, Any],
        tally: StreamReport,
        fetched: dict[tuple[str, str], Any],
        *,
        give_up: bool,
    ) -> NeedObject | None:
        """Apply one object in a savepoint: a failure rolls back only its own writes. Returns the parent it
        needs (its writes rolled back; applied again once fetched), or None when it is done."""
        await tx.execute("SAVEPOINT portal_import_object")
        try:
            outcome = await stream.apply(tx, ctx, obj, fetched)
        except NeedObject as need:
            await tx.execute("ROLLBACK TO portal_import_object")
            await tx.execute("RELEASE portal_import_object")
            if give_up or (need.kind, need.object_id) in fetched:
                tally.outcomes["failed"] += 1
                tally.failures.append((obj["id"], f"needs {need.kind} {need.object_id}, which could not be applied"))
                return None
            return need
        except (MappingError, DomainError) as exc:
            await tx.execute("ROLLBACK TO portal_import_object")
            await tx.execute("RELEASE portal_import_object")
            reason = exc.message if isinstance(exc, DomainError) else str(exc)
            if isinstance(exc, DomainError) and exc.field:
                reason += f" ({exc.field})"
            tally.outcomes["failed"] += 1
            tally.failures.append((obj["id"], reason))
            return None
        await tx.execute("RELEASE portal_import_object")
        tally.outcomes[outcome.status] += 1
        if outcome.status == "unmapped" and outcome.price_id:
            tally.unmapped[outcome.price_id] += 1
        return None

    async def run_stream(
        self, stream: _Stream, cursor: str | None, report: StreamReport, progress: Progress | None
    ) -> None:
        next_page = asyncio.ensure_future(
            asyncio.to_thread(_list_page, self.client, stream.path, stream.params, cursor)
        )
        try:
            while True:
                page = await next_page
                last_id = page.objects[-1]["id"] if page.objects else cursor
                if page.has_more and page.objects:
                    # Fetch the next page while this one is written: the network and the database overlap.
                    next_page = asyncio.ensure_future(
                        asyncio.to_thread(_list_page, self.client, stream.path, stream.params, last_id)
                    )
                await self.apply_page(stream, page, report, last_id)
                report.pages += 1
                if report.pages % CHECKPOINT_EVERY == 0:
                    # bulk_write's inline writer leaves the WAL to checkpoints: keep it from growing all import.
                    await self.db.checkpoint()
                if progress is not None:
                    progress(report)
                if not (page.has_more and page.objects):
                    return
                cursor = last_id
        finally:
            if not next_page.done():
                next_page.cancel()
                with contextlib.suppress(asyncio.CancelledError, ProcessorError):
                    await next_page


async def run_import(
    db: Database,
    settings: Settings,
    connection: Connection,
    *,
    now: Callable[[], datetime],
    since: datetime | None = None,
    dry_run: bool = False,
    catalog: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import the connection's Stripe history (see the module docstring). ``ProcessorError`` from Stripe stops
    the import (``report.interrupted`` says why); what was committed stays and the next run resumes after it."""
    if dry_run:
        return await _dry_run(db, settings, connection, now=now, since=since, catalog=catalog, progress=progress)
    streams = _streams(None if since is None else int(since.timestamp()), catalog)
    importer = _Importer(db, settings, connection, now=now)
    checkpoints = await load_checkpoints(db, connection.id)
    if checkpoints and all(checkpoints.get(stream.name, (None, False))[1] for stream in streams):
        await reset_checkpoints(db, connection.id)  # the last import finished: this is a new one
        checkpoints = {}
    report = ImportReport(streams=[], dry_run=dry_run)
    started = time.monotonic()
    try:
        for stream in streams:
            stream_report = StreamReport(stream.name)
            report.streams.append(stream_report)
            cursor, done = checkpoints.get(stream.name, (None, False))
            if done:
                stream_report.skipped = True
                continue
            stream_report.resumed = cursor is not None
            await importer.run_stream(stream, cursor, stream_report, progress)
    except ProcessorError as exc:
        report.interrupted = exc.message
    finally:
        report.seconds = time.monotonic() - started
    return report


def _copy_database(source: Path, target: Path) -> None:
    """An online copy (SQLite's backup API: consistent while Portal keeps serving)."""
    with contextlib.closing(sqlite3.connect(source)) as origin, contextlib.closing(sqlite3.connect(target)) as copy:
        origin.backup(copy)


async def _dry_run(
    db: Database,
    settings: Settings,
    connection: Connection,
    *,
    now: Callable[[], datetime],
    since: datetime | None,
    catalog: bool,
    progress: Progress | None,
) -> ImportReport:
    """The import run for real on a scratch copy of the database, then thrown away: the counts are exactly what a
    real run would do (the catalog's products exist for the subscriptions after them, parents for their children,
    the checkpoints of an interrupted import are honoured), and the live database is never written nor locked."""
    with tempfile.TemporaryDirectory(prefix="portal-dry-run-") as directory:
        scratch_path = Path(directory) / "portal.db"
        await asyncio.to_thread(_copy_database, db.path, scratch_path)
        scratch = await Database(scratch_path, synchronous=db.synchronous, readers=1).open()
        try:
            report = await run_import(
                scratch, settings, connection, now=now, since=since, catalog=catalog, progress=progress
            )
        finally:
            await scratch.close()
    report.dry_run = True
    return report
