"""The background tasks of a running app, started and stopped by the lifespan in ``portal.app``: the email
outbox worker and the webhook worker (every ``PORTAL_WORKER_POLL_INTERVAL`` seconds) and the renewal-reminder
scan (every ``PORTAL_RENEWAL_SCAN_INTERVAL`` seconds), and a WAL checkpoint every ``CHECKPOINT_INTERVAL`` seconds
(``Database.checkpoint``: inline transactions leave it to this), and the hourly pruning of processors' old events
(``portal.connectors.retention``). Every process runs them; claims are atomic, so several
processes on one data dir share the work without sending anything twice.

``stop()`` lets a pass in progress finish (an email being handed to SMTP is not cut off) and the webhook deliveries
in flight end, then cancels whatever is still running after ``grace`` seconds and waits for it, so no task outlives
the app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from portal.clock import Clock
from portal.connectors.retention import PRUNE_INTERVAL, prune_events
from portal.db import Database
from portal.mail import Mailer
from portal.notifications.reminders import queue_due_reminders
from portal.notifications.worker import OutboxWorker
from portal.settings import Settings
from portal.webhooks.worker import WebhookWorker

log = logging.getLogger("portal.background")

Step = Callable[[], Awaitable[int]]

# Seconds between WAL checkpoints. A busy license-key endpoint appends ~1,000 pages a second; this keeps the WAL
# at a few MB (SQLite's own auto-checkpoint threshold is 1,000 pages).
CHECKPOINT_INTERVAL = 1.0


class BackgroundTasks:
    def __init__(self, db: Database, settings: Settings, clock: Clock, mailer: Mailer) -> None:
        self.settings = settings
        self.outbox = OutboxWorker(db, settings, clock, mailer)
        self.webhooks = WebhookWorker(db, settings, clock)
        self._db = db
        self._clock = clock
        self._stop: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._stop = asyncio.Event()
        loops: list[tuple[str, Step, float]] = [
            ("outbox", self.outbox.run_once, self.settings.worker_poll_interval),
            ("webhooks", self.webhooks.run_once, self.settings.worker_poll_interval),
            ("renewal-reminders", self._reminders, self.settings.renewal_scan_interval),
            # Inline transactions never checkpoint (portal.db): the WAL is copied back here, in the writer thread.
            ("wal-checkpoint", self._checkpoint, CHECKPOINT_INTERVAL),
            ("connector-event-retention", self._prune_connector_events, PRUNE_INTERVAL),
        ]
        self._tasks = [
            asyncio.get_running_loop().create_task(self._loop(name, step, interval), name=f"portal-{name}")
            for name, step, interval in loops
        ]

    async def _checkpoint(self) -> int:
        await self._db.checkpoint()
        return 0

    async def _prune_connector_events(self) -> int:
        days = self.settings.connector_event_retention_days
        return await prune_events(self._db, now=self._clock.now(), days=days)

    async def _reminders(self) -> int:
        return await queue_due_reminders(self._db, self._clock.now())

    async def _loop(self, name: str, step: Step, interval: float) -> None:
        assert self._stop is not None
        while not self._stop.is_set():
            try:
                busy = await step()
            except Exception:
                log.exception("background task %s failed; trying again in %ss", name, interval)
                busy = 0
            if busy and name != "renewal-reminders":
                continue  # a full batch: look again at once
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=interval)

    async def stop(self, grace: float = 30.0) -> None:
        if self._stop is None:
            return
        self._stop.set()
        tasks, self._tasks = self._tasks, []
        started = asyncio.get_running_loop().time()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        # Webhook deliveries run in tasks of their own, each within PORTAL_WEBHOOK_TIMEOUT: let them end too.
        await self.webhooks.drain(max(0.0, grace - (asyncio.get_running_loop().time() - started)))
