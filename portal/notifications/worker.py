"""Sending queued emails: claim a batch (atomic ``UPDATE … RETURNING`` in a write transaction, so several
workers or processes never take the same message), mint each message's sign-in links and render it in that same
transaction, send outside it, then record ``sent`` or the error and the next attempt (exponential backoff; after
``PORTAL_RETRY_MAX_ATTEMPTS`` the message is ``failed``). At-least-once: a worker that dies mid-send leaves the
message ``sending`` until its lease ends, then another worker sends it."""

from __future__ import annotations

import logging
from typing import Any

from portal.clock import Clock
from portal.db import Database
from portal.mail import Mailer, MailMessage
from portal.notifications import emails, outbox
from portal.notifications.backoff import lease_end, next_attempt
from portal.sessions import email_links
from portal.settings import Settings

log = logging.getLogger("portal.outbox")

BATCH = 10


async def deliver(mailer: Mailer | Any, message: MailMessage) -> str | None:
    """Send ``message``; None on success, else the error text. Uses the mailer's raising ``deliver`` when it has
    one (SMTP: the server's answer is kept for ``portal outbox``), else its ``send`` → bool."""
    raising = getattr(mailer, "deliver", None)
    if raising is not None:
        try:
            await raising(message)
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        return None
    try:
        sent = await mailer.send(message)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if sent else "the mail backend could not send it (see the log)"


class OutboxWorker:
    """One sending pass per ``run_once()``; the background loop calls it every poll interval."""

    def __init__(self, db: Database, settings: Settings, clock: Clock, mailer: Mailer | Any) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.mailer = mailer

    async def run_once(self) -> int:
        """Send the due messages (one batch); returns how many were attempted."""
        now = self.clock.now()
        if not await outbox.any_due(self.db, now):
            return 0
        prepared: list[tuple[outbox.OutboxMessage, MailMessage | None, str | None]] = []
        async with self.db.write() as tx:
            for message in await outbox.claim(tx, now=now, lease_until=lease_end(now), limit=BATCH):
                try:
                    prepared.append((message, await emails.prepare(tx, self.settings, message, now), None))
                except Exception as exc:  # a template or data problem: retried, and visible in `portal outbox`
                    log.exception("could not render outbox message %s (%s)", message.id, message.kind)
                    prepared.append((message, None, f"render: {type(exc).__name__}: {exc}"))
            if prepared:
                await email_links.purge_expired(tx, now)
        for message, mail, error in prepared:
            if mail is not None:
                error = await deliver(self.mailer, mail)
            finished = self.clock.now()
            async with self.db.write() as tx:
                if error is None:
                    await outbox.mark_sent(tx, message.id, message.attempts, now=finished)
                    continue
                last = message.attempts >= self.settings.retry_max_attempts
                retry_at = None if last else next_attempt(finished, self.settings.retry_backoff_base, message.attempts)
                await outbox.mark_failed(tx, message.id, message.attempts, error=error, retry_at=retry_at, now=finished)
            log.warning(
                "email %s (%s) attempt %d failed%s: %s",
                message.id,
                message.kind,
                message.attempts,
                "; giving up" if last else "",
                error,
            )
        return len(prepared)
