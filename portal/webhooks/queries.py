"""All the SQL of webhooks: endpoints, the per-endpoint event queue (claimed atomically by workers, like the
email outbox) and the delivery log. Returns msgspec Structs."""

from __future__ import annotations

from datetime import datetime

import msgspec

from portal.clock import iso, new_id
from portal.db import Database, Transaction, row_to, rows_to
from portal.pagination import PageOf, fetch_page


class EndpointRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    organization_id: str
    url: str
    name: str | None
    secret: str
    events: str  # json list
    enabled: bool
    created_at: str
    modified_at: str | None


class EventRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    endpoint_id: str
    organization_id: str
    type: str
    payload: str
    status: str
    attempts: int
    next_attempt_at: str
    last_http_code: int | None
    last_error: str | None
    created_at: str
    modified_at: str | None


class DeliveryRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    event_id: str
    endpoint_id: str
    attempt: int
    succeeded: bool
    http_code: int | None
    response: str | None
    duration_ms: int
    created_at: str


_ENDPOINT_COLUMNS = """
    e.id,
    e.organization_id,
    e.url,
    e.name,
    e.secret,
    e.events,
    e.enabled,
    e.created_at,
    e.modified_at
"""

_EVENT_COLUMNS = """
    id,
    endpoint_id,
    organization_id,
    type,
    payload,
    status,
    attempts,
    next_attempt_at,
    last_http_code,
    last_error,
    created_at,
    modified_at
"""

_DELIVERY_COLUMNS = """
    d.id,
    d.event_id,
    d.endpoint_id,
    d.attempt,
    d.succeeded,
    d.http_code,
    d.response,
    d.duration_ms,
    d.created_at
"""

# The delivery log keeps this many attempts per endpoint (newest first), for the admin API and the console.
DELIVERIES_KEPT = 1000

# --- endpoints ------------------------------------------------------------------------------------------------


async def insert_endpoint(
    tx: Transaction,
    *,
    organization_id: str,
    url: str,
    name: str | None,
    secret: str,
    events: list[str],
    enabled: bool,
    now: datetime,
) -> str:
    endpoint_id = new_id()
    await tx.execute(
        """
        INSERT INTO webhook_endpoints (
            id,
            organization_id,
            url,
            name,
            secret,
            events,
            enabled,
            created_at
        ) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        """,
        (
            endpoint_id,
            organization_id,
            url,
            name,
            secret,
            msgspec.json.encode(events).decode(),
            enabled,
            iso(now),
        ),
    )
    return endpoint_id


async def update_endpoint(
    tx: Transaction,
    endpoint_id: str,
    *,
    url: str,
    name: str | None,
    events: list[str],
    enabled: bool,
    now: datetime,
) -> None:
    await tx.execute(
        """
        UPDATE webhook_endpoints SET
            url = ?,
            name = ?,
            events = ?,
            enabled = ?,
            modified_at = ?
        WHERE id = ?
        """,
        (url, name, msgspec.json.encode(events).decode(), enabled, iso(now), endpoint_id),
    )


async def set_secret(tx: Transaction, endpoint_id: str, secret: str, *, now: datetime) -> None:
    await tx.execute(
        "UPDATE webhook_endpoints SET secret = ?, modified_at = ? WHERE id = ?", (secret, iso(now), endpoint_id)
    )


async def delete_endpoint(tx: Transaction, endpoint_id: str) -> None:
    await tx.execute("DELETE FROM webhook_endpoints WHERE id = ?", (endpoint_id,))


async def get_endpoint(db: Database | Transaction, endpoint_id: str) -> EndpointRecord | None:
    row = await db.fetchone(f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints e WHERE e.id = ?", (endpoint_id,))
    return row_to(EndpointRecord, row)


async def list_endpoints(db: Database, *, organization_id: str | None, page: int, limit: int) -> PageOf[EndpointRecord]:
    return await fetch_page(
        db,
        EndpointRecord,
        select=_ENDPOINT_COLUMNS,
        source="webhook_endpoints e",
        filters={"e.organization_id": organization_id},
        order_by="e.created_at DESC, e.id",
        page=page,
        limit=limit,
    )


async def subscribed_endpoint_ids(tx: Transaction, organization_id: str, event_type: str) -> list[str]:
    """Enabled endpoints of the organization that asked for ``event_type``."""
    rows = await tx.fetchall(
        """
        SELECT e.id FROM webhook_endpoints e
        WHERE e.organization_id = ?
          AND e.enabled = 1
          AND EXISTS (SELECT 1 FROM json_each(e.events) WHERE json_each.value = ?)
        ORDER BY e.created_at
        """,
        (organization_id, event_type),
    )
    return [row["id"] for row in rows]


# --- the event queue --------------------------------------------------------------------------------------------


async def insert_event(
    tx: Transaction, *, endpoint_id: str, organization_id: str, event_type: str, payload: str, now: datetime
) -> str:
    event_id = new_id()
    await tx.execute(
        """
        INSERT INTO webhook_events (
            id,
            endpoint_id,
            organization_id,
            type,
            payload,
            status,
            next_attempt_at,
            created_at
        ) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)
        """,
        (event_id, endpoint_id, organization_id, event_type, payload, iso(now), iso(now)),
    )
    return event_id


class DueEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A due event as the dispatcher sees it before claiming: enough to apply the concurrency limits."""

    id: str
    endpoint_id: str
    organization_id: str


async def due_events(db: Database, *, now: datetime, per_endpoint: int, limit: int) -> list[DueEvent]:
    """Due events, oldest first, at most ``per_endpoint`` of each endpoint: a backlog of one endpoint never hides
    another endpoint's due events from the dispatcher. A read; ``claim`` re-checks each row under the write lock."""
    rows = await db.fetchall(
        """
        SELECT id, endpoint_id, organization_id FROM (
            SELECT
                id,
                endpoint_id,
                organization_id,
                next_attempt_at,
                ROW_NUMBER() OVER (PARTITION BY endpoint_id ORDER BY next_attempt_at, id) AS endpoint_rank
            FROM webhook_events
            WHERE status IN ('pending', 'sending')
              AND next_attempt_at <= ?
        )
        WHERE endpoint_rank <= ?
        ORDER BY next_attempt_at, id
        LIMIT ?
        """,
        (iso(now), per_endpoint, limit),
    )
    return rows_to(DueEvent, rows)


async def claim(tx: Transaction, event_ids: list[str], *, now: datetime, lease_until: datetime) -> list[EventRecord]:
    """Take those of ``event_ids`` that are still due (``sending``, one more attempt, leased until ``lease_until``):
    another process may have claimed some since they were read."""
    if not event_ids:
        return []
    marks = ", ".join("?" for _ in event_ids)
    rows = await tx.fetchall(
        f"""
        UPDATE webhook_events SET
            status = 'sending',
            attempts = attempts + 1,
            next_attempt_at = ?,
            modified_at = ?
        WHERE id IN ({marks})
          AND status IN ('pending', 'sending')
          AND next_attempt_at <= ?
        RETURNING {_EVENT_COLUMNS}
        """,
        (iso(lease_until), iso(now), *event_ids, iso(now)),
    )
    return sorted(rows_to(EventRecord, rows), key=lambda event: event.created_at)


async def record_attempt(
    tx: Transaction,
    event: EventRecord,
    *,
    succeeded: bool,
    http_code: int | None,
    response: str | None,
    duration_ms: int,
    status: str,
    retry_at: datetime | None,
    now: datetime,
) -> None:
    """Log the attempt and move the event on (``succeeded``, ``pending`` again at ``retry_at``, ``failed`` or
    ``skipped``) — only if this claim still holds it (same ``attempts``) and the endpoint still exists."""
    cursor = await tx.execute(
        """
        UPDATE webhook_events SET
            status = ?,
            next_attempt_at = COALESCE(?, next_attempt_at),
            last_http_code = ?,
            last_error = ?,
            modified_at = ?
        WHERE id = ? AND status = 'sending' AND attempts = ?
        """,
        (
            status,
            None if retry_at is None else iso(retry_at),
            http_code,
            None if succeeded else (response or "")[:1000],
            iso(now),
            event.id,
            event.attempts,
        ),
    )
    if not cursor.rowcount or status == "skipped":
        return
    await tx.execute(
        """
        INSERT INTO webhook_deliveries (
            id,
            event_id,
            endpoint_id,
            attempt,
            succeeded,
            http_code,
            response,
            duration_ms,
            created_at
        ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        (new_id(), event.id, event.endpoint_id, event.attempts, succeeded, http_code, response, duration_ms, iso(now)),
    )
    # Bounded retention: an endpoint keeps its newest DELIVERIES_KEPT attempts (the index on (endpoint_id,
    # created_at) finds the cut-off in one short walk; older attempts of busy endpoints go).
    await tx.execute(
        """
        DELETE FROM webhook_deliveries
        WHERE endpoint_id = ? AND created_at < (
            SELECT created_at FROM webhook_deliveries WHERE endpoint_id = ?
            ORDER BY created_at DESC LIMIT 1 OFFSET ?
        )
        """,
        (event.endpoint_id, event.endpoint_id, DELIVERIES_KEPT - 1),
    )


async def requeue_event(tx: Transaction, event_id: str, *, now: datetime) -> bool:
    """Deliver an event again now (Polar's "redeliver"), with a fresh attempt budget."""
    cursor = await tx.execute(
        """
        UPDATE webhook_events SET status = 'pending', attempts = 0, next_attempt_at = ?, modified_at = ?
        WHERE id = ? AND status != 'sending'
        """,
        (iso(now), iso(now), event_id),
    )
    return bool(cursor.rowcount)


async def get_event(db: Database | Transaction, event_id: str) -> EventRecord | None:
    row = await db.fetchone(f"SELECT {_EVENT_COLUMNS} FROM webhook_events WHERE id = ?", (event_id,))
    return row_to(EventRecord, row)


async def get_events(db: Database, event_ids: list[str]) -> dict[str, EventRecord]:
    if not event_ids:
        return {}
    marks = ", ".join("?" for _ in event_ids)
    rows = await db.fetchall(f"SELECT {_EVENT_COLUMNS} FROM webhook_events WHERE id IN ({marks})", event_ids)
    return {record.id: record for record in rows_to(EventRecord, rows)}


async def list_deliveries(
    db: Database,
    *,
    organization_id: str | None,
    endpoint_id: str | None,
    page: int,
    limit: int,
) -> PageOf[DeliveryRecord]:
    return await fetch_page(
        db,
        DeliveryRecord,
        select=_DELIVERY_COLUMNS,
        source="webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id",
        filters={"e.organization_id": organization_id, "d.endpoint_id": endpoint_id},
        order_by="d.created_at DESC, d.id",
        page=page,
        limit=limit,
    )


async def recent_events(db: Database, organization_id: str, *, limit: int) -> list[EventRecord]:
    """The organization's newest events, every endpoint (the console's delivery log; index of migration 17)."""
    rows = await db.fetchall(
        f"""
        SELECT {_EVENT_COLUMNS} FROM webhook_events
        WHERE organization_id = ?
        ORDER BY created_at DESC, id
        LIMIT ?
        """,
        (organization_id, limit),
    )
    return rows_to(EventRecord, rows)


async def failed_events(db: Database, organization_id: str, *, limit: int) -> list[EventRecord]:
    """The organization's events that gave up (the console's "needs attention")."""
    rows = await db.fetchall(
        f"""
        SELECT {_EVENT_COLUMNS} FROM webhook_events
        WHERE organization_id = ? AND status = 'failed'
        ORDER BY created_at DESC, id
        LIMIT ?
        """,
        (organization_id, limit),
    )
    return rows_to(EventRecord, rows)
