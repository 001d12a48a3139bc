"""What an operator sees of a connection's inbound events (``portal connect status``, ``portal events …`` and
``GET /v1/connectors/{processor}/health|events``): the last event, counts by type and status, failures with their
reason, and the processor prices that events wait on (unmapped: map them and the events apply)."""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec

from portal.connectors.links import Reader
from portal.connectors.store import Connection

RECENT_FAILURES = 20


class EventSummary(msgspec.Struct, kw_only=True):
    id: str
    event_id: str
    type: str
    status: str
    reason: str | None
    price_id: str | None
    created: int
    received_at: str
    applied_at: str | None


class EventDetail(EventSummary, kw_only=True):
    payload: dict[str, Any]


class TypeCount(msgspec.Struct, kw_only=True):
    type: str
    status: str
    count: int


class UnmappedPrice(msgspec.Struct, kw_only=True):
    price_id: str
    events: int
    first_received_at: str


class Health(msgspec.Struct, kw_only=True):
    processor: str
    organization_id: str
    livemode: bool
    last_event: EventSummary | None
    counts: list[TypeCount]
    failures: list[EventSummary]
    unmapped_prices: list[UnmappedPrice]


_SUMMARY = "id, event_id, type, status, reason, price_id, created, received_at, applied_at"


def _summary(row: sqlite3.Row) -> EventSummary:
    return EventSummary(**{key: row[key] for key in EventSummary.__struct_fields__})


async def health(reader: Reader, connection: Connection) -> Health:
    last = await reader.fetchone(
        f"""
        SELECT {_SUMMARY} FROM connector_events WHERE connection_id = ?
        ORDER BY received_at DESC, rowid DESC LIMIT 1
        """,
        (connection.id,),
    )
    counts = await reader.fetchall(
        """
        SELECT type, status, COUNT(*) AS count FROM connector_events WHERE connection_id = ?
        GROUP BY type, status ORDER BY type, status
        """,
        (connection.id,),
    )
    failures = await reader.fetchall(
        f"""
        SELECT {_SUMMARY} FROM connector_events WHERE connection_id = ? AND status = 'failed'
        ORDER BY received_at DESC, rowid DESC LIMIT ?
        """,
        (connection.id, RECENT_FAILURES),
    )
    unmapped = await reader.fetchall(
        """
        SELECT price_id, COUNT(*) AS events, MIN(received_at) AS first_received_at FROM connector_events
        WHERE connection_id = ? AND status = 'unmapped' AND price_id IS NOT NULL
        GROUP BY price_id ORDER BY first_received_at
        """,
        (connection.id,),
    )
    return Health(
        processor=connection.processor,
        organization_id=connection.organization_id,
        livemode=connection.livemode,
        last_event=None if last is None else _summary(last),
        counts=[TypeCount(type=r["type"], status=r["status"], count=r["count"]) for r in counts],
        failures=[_summary(row) for row in failures],
        unmapped_prices=[
            UnmappedPrice(price_id=r["price_id"], events=r["events"], first_received_at=r["first_received_at"])
            for r in unmapped
        ],
    )


async def list_events(
    reader: Reader,
    connection: Connection,
    *,
    status: str | None = None,
    event_type: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[EventSummary], int]:
    """Newest first; the page and the total count."""
    where = "connection_id = ? AND (? IS NULL OR status = ?) AND (? IS NULL OR type = ?)"
    params = (connection.id, status, status, event_type, event_type)
    rows = await reader.fetchall(
        f"SELECT {_SUMMARY} FROM connector_events WHERE {where} ORDER BY received_at DESC, rowid DESC LIMIT ? OFFSET ?",
        (*params, limit, offset),
    )
    total = await reader.fetchval(f"SELECT COUNT(*) FROM connector_events WHERE {where}", params)
    return [_summary(row) for row in rows], int(total)


async def get_event(reader: Reader, connection: Connection, event_id: str) -> EventDetail | None:
    """An event by its Portal id or the processor's event id."""
    row = await reader.fetchone(
        f"SELECT {_SUMMARY}, payload FROM connector_events WHERE connection_id = ? AND (id = ? OR event_id = ?)",
        (connection.id, event_id, event_id),
    )
    if row is None:
        return None
    fields = {key: row[key] for key in EventSummary.__struct_fields__}
    return EventDetail(**fields, payload=msgspec.json.decode(row["payload"]))
