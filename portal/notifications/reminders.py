"""Renewal reminders: find live subscriptions whose period ends within their organization's
``renewal_reminder_days`` (the ``subscriptions_renewal`` partial index over ``current_period_end``) and queue one
reminder per subscription and period (``dedupe_key`` = ``renewal:<id>:<period end>``, so scans that overlap, or
run in several processes, never queue it twice)."""

from __future__ import annotations

from datetime import datetime, timedelta

from portal.clock import iso
from portal.db import Database
from portal.notifications import emails, outbox
from portal.notifications.org_settings import MAX_REMINDER_DAYS, email_settings

_DUE = """
SELECT
    s.id,
    s.current_period_end,
    o.settings
FROM subscriptions s
JOIN organizations o ON o.id = s.organization_id
WHERE s.status IN ('active', 'trialing')
  AND s.cancel_at_period_end = 0
  AND s.current_period_end > ?
  AND s.current_period_end <= ?
ORDER BY s.current_period_end
"""


def dedupe_key(subscription_id: str, period_end: str) -> str:
    return f"renewal:{subscription_id}:{period_end}"


async def queue_due_reminders(db: Database, now: datetime) -> int:
    """Queue the reminders that are due and not queued yet; returns how many were queued."""
    rows = await db.fetchall(_DUE, (iso(now), iso(now + timedelta(days=MAX_REMINDER_DAYS))))
    due = []
    for row in rows:
        settings = email_settings(row["settings"])
        if not settings.renewal_reminder:
            continue
        if row["current_period_end"] > iso(now + timedelta(days=settings.renewal_reminder_days)):
            continue
        due.append((row["id"], row["current_period_end"]))
    queued = 0
    if not due:
        return 0
    async with db.write() as tx:
        for subscription_id, period_end in due:
            key = dedupe_key(subscription_id, period_end)
            if await outbox.has_dedupe_key(tx, key):
                continue
            # Re-checked inside the transaction: the subscription may have changed since the read.
            live = await tx.fetchval(
                """
                SELECT 1 FROM subscriptions
                WHERE id = ? AND current_period_end = ? AND cancel_at_period_end = 0
                  AND status IN ('active', 'trialing')
                """,
                (subscription_id, period_end),
            )
            if live is None:
                continue
            if await emails.enqueue_subscription(tx, "renewal_reminder", subscription_id, now=now, dedupe_key=key):
                queued += 1
    return queued
