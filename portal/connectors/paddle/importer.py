"""``portal import paddle``: a Paddle Billing account's history into Portal (issue 20, "Moving off a platform").

Streams, in this order, each a cursor-paginated list (``after`` the last id seen, ``meta.pagination.has_more``):
``customers``, ``subscriptions`` (every status), ``transactions`` (``status=completed``: one-time purchases and
subscription payments, each a Portal order) and ``adjustments`` (approved refunds). Every entity goes through the
same mapping as live webhooks (``portal.connectors.paddle.mapping``) in history mode: Paddle's dates kept, no emails,
no outgoing webhooks; license keys are issued by Portal through the products' benefits, as for any order. Each
entity is its own write transaction and the stream's checkpoint (the page's last id, ``connector_checkpoints``) is
stored after its page: after Ctrl-C or a failure the same command resumes after the last page done; entities of the
page in flight already written apply again as no-ops (facts once by id, states by ``updated_at``). An entity whose
parent Portal has not seen (``NeedObject``) has it fetched and applied first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from portal.connectors.base import ApplyContext, MappingError, NeedObject, Outcome, ProcessorError
from portal.connectors.paddle import client as paddle_client
from portal.connectors.paddle import mapping
from portal.connectors.paddle.processor import PaddleProcessor
from portal.connectors.store import Connection
from portal.connectors.stripe.importer import (
    ImportReport,
    Progress,
    StreamReport,
    load_checkpoints,
    reset_checkpoints,
    save_checkpoint,
)
from portal.db import Database, Transaction
from portal.errors import DomainError
from portal.settings import Settings

MAX_FETCHES = 4
Apply = Callable[[Transaction, ApplyContext, dict[str, Any]], Awaitable[Outcome]]
# Each stream: its list, query, page size (Paddle's maximum for that list) and mapping.
STREAMS: tuple[tuple[str, dict[str, str], int, Apply], ...] = (
    ("customers", {}, 200, mapping.apply_customer),
    ("subscriptions", {}, 200, mapping.apply_subscription),
    ("transactions", {"status": "completed"}, 30, mapping.apply_transaction),
    ("adjustments", {"action": "refund"}, 50, mapping.apply_adjustment),
)


class _Importer:
    def __init__(self, db: Database, settings: Settings, connection: Connection, now: Callable[[], datetime]) -> None:
        self.db = db
        self.settings = settings
        self.connection = connection
        self.now = now
        self.secrets = connection.secrets(settings.secret_key)
        self.api = paddle_client.client(self.secrets.api_key, settings.paddle_api_base)
        self.processor = PaddleProcessor()

    async def page(
        self, kind: str, query: dict[str, str], size: int, after: str | None
    ) -> tuple[list[dict[str, Any]], bool]:
        params = {**query, "per_page": str(size), **({"after": after} if after else {})}
        document = await asyncio.to_thread(paddle_client.call, lambda: self.api.get_raw(f"/{kind}", params))
        data = document.get("data")
        if not isinstance(data, list):
            raise ProcessorError(f"Paddle answered /{kind} with something that is not a list", unavailable=True)
        more = bool(((document.get("meta") or {}).get("pagination") or {}).get("has_more"))
        return data, more

    async def apply(self, apply: Apply, entity: dict[str, Any]) -> Outcome:
        fetched: dict[tuple[str, str], Any] = {}
        for _ in range(MAX_FETCHES + 1):
            ctx = ApplyContext(connection=self.connection, now=self.now(), history=True)
            try:
                async with self.db.write() as tx:
                    unmapped = await self.processor.apply_fetched(tx, ctx, fetched)
                    if unmapped is not None:
                        return unmapped
                    return await apply(tx, ctx, entity)
            except NeedObject as need:
                if (need.kind, need.object_id) in fetched:
                    raise MappingError(f"applying the fetched {need.kind} {need.object_id} did not help") from None
                fetched[(need.kind, need.object_id)] = await asyncio.to_thread(
                    self.processor.fetch, need.kind, need.object_id, self.secrets, self.settings
                )
        raise MappingError("needs too many objects from Paddle's API")


async def run_import(
    db: Database,
    settings: Settings,
    connection: Connection,
    *,
    now: Callable[[], datetime],
    progress: Progress | None = None,
) -> ImportReport:
    """Import every stream, resuming after the last page done; ``ImportReport.interrupted`` says why it stopped."""
    started = time.monotonic()
    importer = _Importer(db, settings, connection, now)
    checkpoints = await load_checkpoints(db, connection.id)
    if checkpoints and all(checkpoints.get(name, (None, False))[1] for name, *_ in STREAMS):
        await reset_checkpoints(db, connection.id)  # a finished import: start over (a no-op where nothing changed)
        checkpoints = {}
    report = ImportReport(streams=[], dry_run=False)
    for kind, query, size, apply in STREAMS:
        stream = StreamReport(kind)
        report.streams.append(stream)
        cursor, done = checkpoints.get(kind, (None, False))
        if done:
            stream.skipped = True
            continue
        stream.resumed = cursor is not None
        more = True
        while more:
            try:
                entities, more = await importer.page(kind, query, size, cursor)
                for entity in entities:
                    try:
                        outcome = await importer.apply(apply, entity)
                    except (MappingError, DomainError) as exc:
                        stream.outcomes["failed"] += 1
                        stream.failures.append((str(entity.get("id")), getattr(exc, "message", str(exc))))
                        continue
                    stream.outcomes[outcome.status] += 1
                    if outcome.status == "unmapped" and outcome.price_id:
                        stream.unmapped[outcome.price_id] += 1
            except ProcessorError as exc:
                report.interrupted = f"Paddle: {exc.message}"
                report.seconds = time.monotonic() - started
                return report
            stream.seen += len(entities)
            stream.pages += 1
            if entities:
                cursor = str(entities[-1]["id"])
            async with db.write() as tx:
                await save_checkpoint(tx, connection.id, kind, cursor, not more, now())
            if progress is not None:
                progress(stream)
    report.seconds = time.monotonic() - started
    return report
