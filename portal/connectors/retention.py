"""How long processors' events stay in ``connector_events``: ``prune_events``, run by the background tasks
(``portal/notifications/background.py``) every ``PRUNE_INTERVAL`` seconds.

An event Portal applied or ignored is deleted ``PORTAL_CONNECTOR_EVENT_RETENTION_DAYS`` after it was received
(``0`` keeps every event). Its effects stay: orders, subscriptions, grants and the links between processor and
Portal ids live in their own tables, and ordering comes from those (``connector_links.version``), never from this
log. What is lost is the payload shown on the console's Processors page and the duplicate check of ``receive``:
hence at least 7 days, beyond the processors' retry windows. Events still waiting (``unmapped``, ``failed``) are
kept whatever their age, since mapping the price or a replay still applies them.

Deletion goes in short transactions of ``BATCH`` rows, one connection at a time, walking the
``(connection_id, received_at)`` index, so a large backlog never holds the writer for long.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from portal.clock import iso
from portal.db import Database

PRUNE_INTERVAL = 3600.0  # seconds between passes
BATCH = 500  # rows per transaction
PRUNED = ("applied", "ignored")


async def prune_events(db: Database, *, now: datetime, days: int) -> int:
    """Delete up to ``BATCH`` applied or ignored events received more than ``days`` before ``now`` (none when
    ``days`` is 0); how many were deleted. A full batch means there may be more: the caller runs it again."""
    if days <= 0:
        return 0
    cutoff = iso(now - timedelta(days=days))
    deleted = 0
    for connection in await db.fetchall("SELECT id FROM connector_connections ORDER BY id"):
        async with db.write() as tx:
            cursor = await tx.execute(
                """
                DELETE FROM connector_events WHERE rowid IN (
                    SELECT rowid FROM connector_events
                    WHERE connection_id = ? AND received_at < ? AND status IN (?, ?)
                    LIMIT ?
                )
                """,
                (connection["id"], cutoff, *PRUNED, BATCH - deleted),
            )
            deleted += cursor.rowcount
        if deleted >= BATCH:
            break
    return deleted
