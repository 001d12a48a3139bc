"""Inbound events (``POST /v1/integrations/{processor}/{organization_slug}/webhook``): verified, stored once by the
processor's event id in ``connector_events`` IN THE SAME TRANSACTION as their effects, and replayable.

* ``receive``: a delivery. Unknown organization or no connection: ``NotFound`` (404). A signature, timestamp or
  body that does not verify: ``BadSignature`` (400) and nothing stored. An event already stored (applied, ignored
  or unmapped) answers ``duplicate`` and does nothing; one stored ``failed`` is tried again (Stripe retries).
* ``process``: apply one event: the row and the effects commit together. When the processor needs an object Portal
  has not seen (``NeedObject``), it is fetched from the processor's API outside the transaction (never hold the
  writer lock across the network) and the transaction is run again with it. A ``MappingError`` or a domain error
  (e.g. the new email of a customer taken by another) rolls the effects back and stores the event ``failed`` with
  the reason; a processor API that cannot be reached stores it ``failed`` and answers 503 so the processor retries.
* ``apply_unmapped``: once a price is mapped (``map_price``), every event kept ``unmapped`` for it is applied, in
  the order the processor created them.

Ordering is the processor's business (``portal.connectors.stripe.mapping``: versioned states, facts applied once,
cumulative amounts): whatever order deliveries come in, the final state is the same.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec

from portal.clock import iso, new_id
from portal.connectors import store
from portal.connectors.base import (
    ApplyContext,
    InboundEvent,
    MappingError,
    NeedObject,
    Outcome,
    Processor,
    ProcessorError,
)
from portal.connectors.links import set_price_mapping
from portal.connectors.store import Connection
from portal.db import Database, Transaction
from portal.errors import DomainError, NotFound
from portal.settings import Settings

log = logging.getLogger("portal.connectors")

# Objects fetched for one event at most (each one a round trip to the processor's API).
MAX_FETCHES = 6
DONE = ("applied", "ignored", "unmapped")


@dataclasses.dataclass(frozen=True, slots=True)
class Received:
    """What a delivery did: ``status`` is the event's (``applied``, ``ignored``, ``unmapped``, ``failed``) or
    ``duplicate``; ``unavailable`` when the processor's API could not be reached (answer 503: retry later)."""

    event_id: str
    status: str
    reason: str | None = None
    unavailable: bool = False


async def connection_for(db: Database, processor: Processor, organization_slug: str) -> Connection:
    connection = await store.connection_by_slug(db, organization_slug, processor.name)
    if connection is None:
        raise NotFound(f"no {processor.label} connection for this organization")
    return connection


async def receive(
    db: Database,
    settings: Settings,
    processor: Processor,
    organization_slug: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: datetime,
) -> Received:
    """A webhook delivery: verify (``BadSignature``), then ``process``."""
    connection = await connection_for(db, processor, organization_slug)
    try:
        secrets = connection.secrets(settings.secret_key)
    except ValueError:
        raise NotFound(f"the {processor.label} connection cannot be read: connect again") from None
    event = processor.verify_event(body, headers, secrets)
    status = await db.fetchval(
        "SELECT status FROM connector_events WHERE connection_id = ? AND event_id = ?", (connection.id, event.id)
    )
    if status in DONE:
        return Received(event.id, "duplicate")
    return await process(db, settings, processor, connection, event, now=now)


async def process(
    db: Database,
    settings: Settings,
    processor: Processor,
    connection: Connection,
    event: InboundEvent,
    *,
    now: datetime,
    replay: bool = False,
) -> Received:
    """Store and apply ``event`` in one transaction (see the module docstring). ``replay`` applies it again even
    when it is stored as done (the mapping is idempotent)."""
    ctx = ApplyContext(connection=connection, now=now, version=event.created)
    fetched: dict[tuple[str, str], Any] = {}
    for kind, object_id in processor.needs(event):
        failure = await _fetch(db, settings, processor, connection, event, fetched, kind, object_id, now)
        if failure is not None:
            return failure
    for _ in range(MAX_FETCHES + 1):
        try:
            # The statements at once on the loop (no hop each): bench/README.md, "Stripe webhook ingest".
            async with db.write_inline() as tx:
                stored = await tx.fetchval(
                    "SELECT status FROM connector_events WHERE connection_id = ? AND event_id = ?",
                    (connection.id, event.id),
                )
                if stored in DONE and not replay:
                    return Received(event.id, "duplicate")  # a concurrent delivery of the same event won
                outcome = await processor.apply(tx, ctx, event, fetched)
                await _store(tx, connection, event, outcome, now=now)
            return Received(event.id, outcome.status, outcome.reason)
        except NeedObject as need:
            if (need.kind, need.object_id) in fetched:
                return await _failed(db, connection, event, f"applying the fetched {need.kind} did not help", now)
            failure = await _fetch(db, settings, processor, connection, event, fetched, need.kind, need.object_id, now)
            if failure is not None:
                return failure
        except MappingError as exc:
            return await _failed(db, connection, event, str(exc), now)
        except DomainError as exc:
            where = f" ({exc.field})" if exc.field else ""
            return await _failed(db, connection, event, f"{exc.message}{where}", now)
    return await _failed(db, connection, event, "needs too many objects from the processor's API", now)


async def _fetch(
    db: Database,
    settings: Settings,
    processor: Processor,
    connection: Connection,
    event: InboundEvent,
    fetched: dict[tuple[str, str], Any],
    kind: str,
    object_id: str,
    now: datetime,
) -> Received | None:
    """Fetch one object into ``fetched`` (in a worker thread, outside any transaction); the failure if it fails."""
    try:
        secrets = connection.secrets(settings.secret_key)
        fetched[(kind, object_id)] = await asyncio.to_thread(processor.fetch, kind, object_id, secrets, settings)
    except ProcessorError as exc:
        reason = f"fetching {kind} {object_id}: {exc.message}"
        return await _failed(db, connection, event, reason, now, unavailable=exc.unavailable)
    return None


async def _store(
    tx: Transaction, connection: Connection, event: InboundEvent, outcome: Outcome, *, now: datetime
) -> None:
    await tx.execute(
        """
        INSERT INTO connector_events
            (id, connection_id, event_id, type, created, payload, status, reason, price_id, received_at, applied_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (connection_id, event_id) DO UPDATE SET
            status = excluded.status, reason = excluded.reason, price_id = excluded.price_id,
            applied_at = excluded.applied_at
        """,
        (
            new_id(),
            connection.id,
            event.id,
            event.type,
            event.created,
            msgspec.json.encode(event.payload).decode(),
            outcome.status,
            outcome.reason,
            outcome.price_id,
            iso(now),
            iso(now) if outcome.status == "applied" else None,
        ),
    )


async def _failed(
    db: Database, connection: Connection, event: InboundEvent, reason: str, now: datetime, *, unavailable: bool = False
) -> Received:
    log.warning("connector event failed", extra={"event_id": event.id, "type": event.type, "reason": reason})
    async with db.write() as tx:
        await _store(tx, connection, event, Outcome("failed", reason), now=now)
    return Received(event.id, "failed", reason, unavailable)


# --- stored events -----------------------------------------------------------------------------------------------


def stored_event(row: Any) -> InboundEvent:
    return InboundEvent(
        id=row["event_id"], type=row["type"], created=int(row["created"]), payload=msgspec.json.decode(row["payload"])
    )


async def replay(
    db: Database, settings: Settings, processor: Processor, connection: Connection, event_row_id: str, *, now: datetime
) -> Received:
    """Apply a stored event again (by its Portal id or the processor's event id)."""
    row = await db.fetchone(
        "SELECT * FROM connector_events WHERE connection_id = ? AND (id = ? OR event_id = ?)",
        (connection.id, event_row_id, event_row_id),
    )
    if row is None:
        raise NotFound("no such event for this connection")
    return await process(db, settings, processor, connection, stored_event(row), now=now, replay=True)


async def apply_unmapped(
    db: Database, settings: Settings, processor: Processor, connection: Connection, price_id: str, *, now: datetime
) -> list[Received]:
    """Apply the events kept ``unmapped`` for ``price_id`` (after its mapping was set), oldest first."""
    rows = await db.fetchall(
        """
        SELECT * FROM connector_events
        WHERE connection_id = ? AND status = 'unmapped' AND price_id = ?
        ORDER BY created, received_at
        """,
        (connection.id, price_id),
    )
    return [await process(db, settings, processor, connection, stored_event(row), now=now, replay=True) for row in rows]


async def map_price(
    db: Database,
    settings: Settings,
    processor: Processor,
    connection: Connection,
    price_id: str,
    product_id: str,
    *,
    now: datetime,
) -> list[Received]:
    """Map a processor price to a Portal product (``MappingError`` for a product not of the organization), then
    apply the events that waited for it."""
    async with db.write() as tx:
        await set_price_mapping(tx, connection.id, connection.organization_id, price_id, product_id, now=now)
    return await apply_unmapped(db, settings, processor, connection, price_id, now=now)
