"""``portal import polar``: a Polar organization's history into Portal (issue 20, "Moving off a platform").

Streams, in this order, each Polar's page/limit pagination (``pagination.max_page``), oldest first
(``sorting=created_at``): ``benefits`` (the downloadables benefits with their files' bytes, on the mapped products:
``portal.connectors.polar.downloads``), ``customers``, ``subscriptions``, ``orders`` (paid ones, with their refunds),
``license-keys`` (each carried by the key Portal issued for the same sale: the same string, status, usage, limits,
expiry and activations, so customers' keys keep validating). Objects go through the live mapping
(``portal.connectors.polar.mapping``) in history mode: Polar's dates kept, no emails, no outgoing webhooks.

One page is one write transaction that also stores the stream's checkpoint (``connector_checkpoints``: the last
page written), so an interruption loses at most the page in flight and the same command resumes after it. Each
object of a page is applied inside a savepoint: one that fails is reported and rolled back alone. An object whose
parent Portal has not seen (``NeedObject``) has the parent fetched and the page is applied again.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from portal.connectors.base import ApplyContext, MappingError, NeedObject, Outcome, ProcessorError
from portal.connectors.polar import client, downloads, mapping
from portal.connectors.store import Connection
from portal.connectors.stripe.importer import load_checkpoints, reset_checkpoints, save_checkpoint
from portal.db import Database, Transaction
from portal.errors import DomainError
from portal.settings import Settings

PAGE_SIZE = 100
MAX_ROUNDS = 4
# ``benefits`` (downloadables, ``portal.connectors.polar.downloads``) first: the sales imported after it grant them.
STREAMS = ("benefits", "customers", "subscriptions", "orders", "license-keys")


@dataclasses.dataclass
class StreamReport:
    name: str
    seen: int = 0
    pages: int = 0
    outcomes: Counter[str] = dataclasses.field(default_factory=Counter)
    failures: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    resumed: bool = False
    skipped: bool = False


@dataclasses.dataclass
class ImportReport:
    streams: list[StreamReport]
    interrupted: str | None = None


def _list(api_key: str, api_base: str, name: str, page: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """One page of a stream. Polar lists license keys without their activations: each key of the page is read
    whole (``LicenseKeyWithActivations``) so the activations come over too."""
    items, max_page = client.list_page(api_key, api_base, f"/v1/{name}/", page, limit)
    if name == "license-keys":
        items = [client.get(api_key, api_base, f"/v1/license-keys/{item['id']}") for item in items]
    return items, max_page


async def _apply_one(tx: Transaction, ctx: ApplyContext, stream: str, obj: dict[str, Any]) -> Outcome:
    if stream == "customers":
        return await mapping.apply_customer(tx, ctx, obj)
    if stream == "subscriptions":
        return await mapping.apply_subscription(tx, ctx, obj)
    if stream == "orders":
        return await mapping.apply_order(tx, ctx, obj)
    return await mapping.apply_license_key(tx, ctx, obj)


async def _apply_page(
    db: Database,
    ctx: ApplyContext,
    connection: Connection,
    stream: str,
    items: list[dict[str, Any]],
    fetched: dict[tuple[str, str], Any],
    checkpoint: tuple[str, bool],
    now: datetime,
) -> list[tuple[str, Outcome]]:
    """Apply a page (each object in a savepoint) and its checkpoint in one transaction; ``NeedObject`` leaves
    the transaction rolled back for the caller to fetch and retry."""
    results: list[tuple[str, Outcome]] = []
    async with db.write() as tx:
        for (kind, _id), parent in fetched.items():
            apply_parent = mapping.apply_subscription if kind == "subscriptions" else mapping.apply_order
            await apply_parent(tx, ctx, parent)
        for obj in items:
            await tx.execute("SAVEPOINT polar_import_object")
            try:
                outcome = await _apply_one(tx, ctx, stream, obj)
            except (MappingError, DomainError) as exc:
                await tx.execute("ROLLBACK TO polar_import_object")
                reason = str(exc) if isinstance(exc, MappingError) else exc.message
                outcome = Outcome("failed", reason)
            await tx.execute("RELEASE polar_import_object")
            results.append((str(obj.get("id")), outcome))
        await save_checkpoint(tx, connection.id, stream, checkpoint[0], checkpoint[1], now)
    return results


async def _import_benefits(
    db: Database,
    settings: Settings,
    connection: Connection,
    stream: StreamReport,
    page: int,
    page_size: int,
    now: Callable[[], datetime],
    progress: Callable[[StreamReport], None] | None,
) -> str | None:
    """The downloadables benefits, page by page (each benefit its own transaction, the page's checkpoint after it);
    a benefit whose files cannot be had is a failure of its own. Returns why it stopped early, or None."""
    api_key = connection.secrets(settings.secret_key).api_key
    api_base = settings.polar_api_base
    products = await downloads.mapped_products(db, connection)
    try:
        carried = await asyncio.to_thread(downloads.product_benefits, api_key, api_base, list(products))
    except ProcessorError as exc:
        return f"reading the mapped products: {exc.message}"
    while True:
        try:
            items, max_page = await asyncio.to_thread(downloads.benefits_page, api_key, api_base, page, page_size)
        except ProcessorError as exc:
            return f"listing benefits page {page}: {exc.message}"
        for benefit in items:
            polar_id = str(benefit.get("id"))
            on = [products[p] for p, benefit_ids in carried.items() if polar_id in benefit_ids]
            try:
                fetched = await downloads.apply_benefit(db, settings, connection, benefit, on, now=now())
                stream.outcomes["applied"] += 1
                stream.outcomes["files fetched"] += fetched
            except ProcessorError as exc:
                if exc.unavailable:
                    return f"benefit {polar_id}: {exc.message}"
                stream.outcomes["failed"] += 1
                stream.failures.append((polar_id, exc.message))
            except DomainError as exc:
                stream.outcomes["failed"] += 1
                stream.failures.append((polar_id, exc.message))
        last = page >= max_page or not items
        async with db.write() as tx:
            await save_checkpoint(tx, connection.id, "benefits", str(page), last, now())
        stream.pages += 1
        stream.seen += len(items)
        if progress is not None:
            progress(stream)
        if last:
            return None
        page += 1


async def run_import(
    db: Database,
    settings: Settings,
    connection: Connection,
    *,
    now: Callable[[], datetime],
    progress: Callable[[StreamReport], None] | None = None,
    page_size: int = PAGE_SIZE,
) -> ImportReport:
    """Import every stream, resuming after the checkpoints of an interrupted run (a finished run's checkpoints
    start a new import; the mapping makes what is already there a no-op)."""
    secrets = connection.secrets(settings.secret_key)
    checkpoints = await load_checkpoints(db, connection.id)
    if checkpoints and all(checkpoints.get(name, (None, False))[1] for name in STREAMS):
        await reset_checkpoints(db, connection.id)
        checkpoints = {}
    report = ImportReport(streams=[])
    for name in STREAMS:
        stream = StreamReport(name)
        report.streams.append(stream)
        cursor, done = checkpoints.get(name, (None, False))
        if done:
            stream.skipped = True
            continue
        page = int(cursor) + 1 if cursor else 1
        stream.resumed = cursor is not None
        if name == "benefits":
            interrupted = await _import_benefits(db, settings, connection, stream, page, page_size, now, progress)
            if interrupted is not None:
                report.interrupted = interrupted
                return report
            continue
        while True:
            try:
                items, max_page = await asyncio.to_thread(
                    _list, secrets.api_key, settings.polar_api_base, name, page, page_size
                )
            except ProcessorError as exc:
                report.interrupted = f"listing {name} page {page}: {exc.message}"
                return report
            if name == "orders":
                items = [item for item in items if item.get("status") in mapping.PAID]
            fetched: dict[tuple[str, str], Any] = {}
            ctx = ApplyContext(connection=connection, now=now(), history=True)
            last = page >= max_page or not items
            for _round in range(MAX_ROUNDS + 1):
                try:
                    results = await _apply_page(db, ctx, connection, name, items, fetched, (str(page), last), now())
                    break
                except NeedObject as need:
                    if (need.kind, need.object_id) in fetched:
                        report.interrupted = f"{name} page {page}: applying the fetched {need.kind} did not help"
                        return report
                    try:
                        fetched[(need.kind, need.object_id)] = await asyncio.to_thread(
                            client.get, secrets.api_key, settings.polar_api_base, f"/v1/{need.kind}/{need.object_id}"
                        )
                    except ProcessorError as exc:
                        report.interrupted = f"fetching {need.kind} {need.object_id}: {exc.message}"
                        return report
            else:
                report.interrupted = f"{name} page {page}: needs too many objects"
                return report
            stream.pages += 1
            stream.seen += len(results)
            for object_id, outcome in results:
                stream.outcomes[outcome.status] += 1
                if outcome.status == "failed":
                    stream.failures.append((object_id, outcome.reason or ""))
            if progress is not None:
                progress(stream)
            if last:
                break
            page += 1
    return report
