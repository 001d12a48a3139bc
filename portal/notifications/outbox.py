"""The ``email_outbox`` table: enqueue (inside the caller's write transaction), claim due messages (an atomic
``UPDATE … RETURNING`` inside a write transaction, so two workers — or two processes — never take the same
message), record the outcome, list and re-queue. All the SQL of the outbox lives here.

Status: ``pending`` → ``sending`` (claimed; ``next_attempt_at`` is then the end of the claim's lease) → ``sent``,
or back to ``pending`` with a later ``next_attempt_at`` after a failure, or ``failed`` after the last attempt.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from portal.clock import iso, new_id
from portal.db import Database, Transaction, rows_to

Status = str  # pending | sending | sent | failed | canceled


class OutboxMessage(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    organization_id: str | None
    customer_id: str | None
    kind: str
    to_address: str
    context: str
    dedupe_key: str | None
    status: str
    attempts: int
    next_attempt_at: str
    last_error: str | None
    sent_at: str | None
    created_at: str
    modified_at: str | None


_COLUMNS = """
    id,
    organization_id,
    customer_id,
    kind,
    to_address,
    context,
    dedupe_key,
    status,
    attempts,
    next_attempt_at,
    last_error,
    sent_at,
    created_at,
    modified_at
"""


async def enqueue(
    tx: Transaction,
    *,
    kind: str,
    to_address: str,
    context: dict[str, Any],
    now: datetime,
    organization_id: str | None = None,
    customer_id: str | None = None,
    dedupe_key: str | None = None,
) -> str | None:
    """Queue one email, due now; returns its id, or None when ``dedupe_key`` was already queued."""
    message_id = new_id()
    cursor = await tx.execute(
        """
        INSERT INTO email_outbox (
            id,
            organization_id,
            customer_id,
            kind,
            to_address,
            context,
            dedupe_key,
            status,
            next_attempt_at,
            created_at
        ) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)
        ON CONFLICT (dedupe_key) DO NOTHING
        """,
        (
            message_id,
            organization_id,
            customer_id,
            kind,
            to_address,
            msgspec.json.encode(context).decode(),
            dedupe_key,
            iso(now),
            iso(now),
        ),
    )
    return message_id if cursor.rowcount else None


async def has_dedupe_key(tx: Transaction | Database, dedupe_key: str) -> bool:
    return await tx.fetchval("SELECT 1 FROM email_outbox WHERE dedupe_key = ?", (dedupe_key,)) is not None


async def any_due(db: Database, now: datetime) -> bool:
    """A cheap read (partial index) before taking the write lock to claim."""
    row = await db.fetchone(
        "SELECT 1 FROM email_outbox WHERE status IN ('pending', 'sending') AND next_attempt_at <= ? LIMIT 1",
        (iso(now),),
    )
    return row is not None


async def claim(tx: Transaction, *, now: datetime, lease_until: datetime, limit: int) -> list[OutboxMessage]:
    """Take up to ``limit`` due messages: ``sending``, one more attempt, leased until ``lease_until``."""
    rows = await tx.fetchall(
        f"""
        UPDATE email_outbox SET
            status = 'sending',
            attempts = attempts + 1,
            next_attempt_at = ?,
            modified_at = ?
        WHERE id IN (
            SELECT id FROM email_outbox
            WHERE status IN ('pending', 'sending')
              AND next_attempt_at <= ?
            ORDER BY next_attempt_at
            LIMIT ?
        )
        RETURNING {_COLUMNS}
        """,
        (iso(lease_until), iso(now), iso(now), limit),
    )
    return sorted(rows_to(OutboxMessage, rows), key=lambda message: message.created_at)


async def mark_sent(tx: Transaction, message_id: str, attempts: int, *, now: datetime) -> None:
    """Record a delivery by the claim holding ``attempts`` (a stale claim's late answer changes nothing)."""
    await tx.execute(
        """
        UPDATE email_outbox SET status = 'sent', sent_at = ?, last_error = NULL, modified_at = ?
        WHERE id = ? AND status = 'sending' AND attempts = ?
        """,
        (iso(now), iso(now), message_id, attempts),
    )


async def mark_failed(
    tx: Transaction,
    message_id: str,
    attempts: int,
    *,
    error: str,
    retry_at: datetime | None,
    now: datetime,
) -> None:
    """Record a failed attempt: due again at ``retry_at``, or ``failed`` for good when it is None."""
    await tx.execute(
        """
        UPDATE email_outbox SET
            status = ?,
            next_attempt_at = COALESCE(?, next_attempt_at),
            last_error = ?,
            modified_at = ?
        WHERE id = ? AND status = 'sending' AND attempts = ?
        """,
        (
            "pending" if retry_at is not None else "failed",
            None if retry_at is None else iso(retry_at),
            error[:1000],
            iso(now),
            message_id,
            attempts,
        ),
    )


async def requeue(tx: Transaction, message_id: str, *, now: datetime) -> bool:
    """Make a failed (or pending) message due now, with a fresh attempt budget; False if unknown or sent."""
    cursor = await tx.execute(
        """
        UPDATE email_outbox SET status = 'pending', attempts = 0, next_attempt_at = ?, modified_at = ?
        WHERE id = ? AND status IN ('pending', 'failed', 'canceled')
        """,
        (iso(now), iso(now), message_id),
    )
    return bool(cursor.rowcount)


async def list_messages(
    db: Database, *, status: str | None = None, limit: int = 50, organization_id: str | None = None
) -> list[OutboxMessage]:
    rows = await db.fetchall(
        f"""
        SELECT {_COLUMNS} FROM email_outbox
        WHERE (? IS NULL OR status = ?)
          AND (? IS NULL OR organization_id = ?)
        ORDER BY created_at DESC
        LIMIT ?
        """,
        (status, status, organization_id, organization_id, limit),
    )
    return rows_to(OutboxMessage, rows)


async def get_message(db: Database, message_id: str) -> OutboxMessage | None:
    rows = await db.fetchall(f"SELECT {_COLUMNS} FROM email_outbox WHERE id = ?", (message_id,))
    found = rows_to(OutboxMessage, rows)
    return found[0] if found else None


async def messages_to_customer(
    db: Database, organization_id: str, customer_id: str, limit: int = 50
) -> list[OutboxMessage]:
    """The emails queued for one customer of the organization, newest first (``email_outbox_customer``)."""
    rows = await db.fetchall(
        f"""
        SELECT {_COLUMNS} FROM email_outbox
        WHERE customer_id = ? AND organization_id = ?
        ORDER BY created_at DESC
        LIMIT ?
        """,
        (customer_id, organization_id, limit),
    )
    return rows_to(OutboxMessage, rows)
