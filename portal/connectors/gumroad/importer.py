"""``portal import gumroad``: a Gumroad seller's sales into Portal (issue 20, "Moving off a platform").

One stream, ``sales`` (``GET /v2/sales``, newest first, ``page_key`` pagination): each sale becomes a customer, a
paid order (refunded ones refunded) and its license key (the key Gumroad sold, so it keeps validating through
Portal); a subscription sale brings its subscriber (``GET /v2/subscribers/{id}``) first. History mode: Gumroad's
dates kept, no emails, no outgoing webhooks. One page is one write transaction with the checkpoint (the next
``page_key``), each sale inside a savepoint (one that fails is reported alone): an interrupted import resumes
after the last page written; a finished one, run again, changes nothing."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from portal.connectors.base import ApplyContext, MappingError, NeedObject, Outcome, ProcessorError
from portal.connectors.gumroad import client, mapping
from portal.connectors.store import Connection
from portal.connectors.stripe.importer import load_checkpoints, reset_checkpoints, save_checkpoint
from portal.db import Database
from portal.errors import DomainError
from portal.settings import Settings

STREAM = "sales"
MAX_ROUNDS = 8
FIRST_PAGE = "-"  # the checkpoint of a stream whose first page is not written yet


@dataclasses.dataclass
class ImportReport:
    seen: int = 0
    pages: int = 0
    outcomes: Counter[str] = dataclasses.field(default_factory=Counter)
    failures: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    resumed: bool = False
    interrupted: str | None = None


async def _apply_page(
    db: Database,
    ctx: ApplyContext,
    sales: list[dict[str, Any]],
    fetched: dict[tuple[str, str], Any],
    next_key: str | None,
    now: datetime,
) -> list[tuple[str, Outcome]]:
    results: list[tuple[str, Outcome]] = []
    async with db.write() as tx:
        for subscriber in fetched.values():
            await mapping.apply_subscriber(tx, ctx, subscriber)
        for sale in sales:
            await tx.execute("SAVEPOINT gumroad_import_sale")
            try:
                outcome = await mapping.apply_sale(tx, ctx, sale)
            except (MappingError, DomainError) as exc:
                await tx.execute("ROLLBACK TO gumroad_import_sale")
                outcome = Outcome("failed", str(exc) if isinstance(exc, MappingError) else exc.message)
            await tx.execute("RELEASE gumroad_import_sale")
            results.append((str(sale.get("id")), outcome))
        await save_checkpoint(tx, ctx.connection.id, STREAM, next_key or FIRST_PAGE, next_key is None, now)
    return results


async def run_import(
    db: Database,
    settings: Settings,
    connection: Connection,
    *,
    now: Callable[[], datetime],
    progress: Callable[[ImportReport], None] | None = None,
) -> ImportReport:
    secrets = connection.secrets(settings.secret_key)
    checkpoints = await load_checkpoints(db, connection.id)
    cursor, done = checkpoints.get(STREAM, (None, False))
    if done:
        await reset_checkpoints(db, connection.id)
        cursor = None
    report = ImportReport(resumed=cursor not in (None, FIRST_PAGE))
    page_key = cursor if cursor not in (None, FIRST_PAGE) else None
    while True:
        params = {"page_key": page_key} if page_key else {}
        try:
            answer = await asyncio.to_thread(
                client.get, secrets.api_key, settings.gumroad_api_base, "/v2/sales", params
            )
        except ProcessorError as exc:
            report.interrupted = f"listing sales: {exc.message}"
            return report
        sales = [sale for sale in answer.get("sales") or [] if isinstance(sale, dict) and sale.get("id")]
        next_key = answer.get("next_page_key") if isinstance(answer.get("next_page_key"), str) else None
        fetched: dict[tuple[str, str], Any] = {}
        ctx = ApplyContext(connection=connection, now=now(), history=True)
        for _round in range(MAX_ROUNDS + 1):
            try:
                results = await _apply_page(db, ctx, sales, fetched, next_key or None, now())
                break
            except NeedObject as need:
                if (need.kind, need.object_id) in fetched:
                    report.interrupted = f"applying the fetched {need.kind} {need.object_id} did not help"
                    return report
                try:
                    found = await asyncio.to_thread(
                        client.get, secrets.api_key, settings.gumroad_api_base, f"/v2/{need.kind}/{need.object_id}"
                    )
                except ProcessorError as exc:
                    report.interrupted = f"fetching {need.kind} {need.object_id}: {exc.message}"
                    return report
                fetched[(need.kind, need.object_id)] = found.get("subscriber") or {}
        else:
            report.interrupted = "a page needs too many subscribers"
            return report
        report.pages += 1
        report.seen += len(results)
        for object_id, outcome in results:
            report.outcomes[outcome.status] += 1
            if outcome.status == "failed":
                report.failures.append((object_id, outcome.reason or ""))
        if progress is not None:
            progress(report)
        if not next_key:
            return report
        page_key = next_key
