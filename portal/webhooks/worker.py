"""Delivering queued webhook events: claim a batch (atomically, in a write transaction), POST each one signed to
its endpoint with ``httpx.AsyncClient`` (timeout ``PORTAL_WEBHOOK_TIMEOUT``, redirects not followed), then log
the attempt and move the event on. A 2xx answer is a success; anything else — another status, a timeout, a
refused connection — is retried after ``retry_delay`` until ``PORTAL_RETRY_MAX_ATTEMPTS``. The ``webhook-id``
is the event id, the same on every retry, so receivers can drop duplicates (delivery is at-least-once)."""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
import msgspec

from portal.clock import Clock
from portal.db import Database
from portal.notifications.backoff import lease_end, next_attempt
from portal.settings import Settings
from portal.webhooks import queries, signing
from portal.webhooks.queries import EndpointRecord, EventRecord
from portal.webhooks.service import url_problem

log = logging.getLogger("portal.webhooks")

BATCH = 20
RESPONSE_LIMIT = 2048
USER_AGENT = "Portal-Webhooks/1"


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    succeeded: bool
    http_code: int | None
    response: str | None
    duration_ms: int
    skipped: bool = False


class WebhookWorker:
    """One delivery pass per ``run_once()``; the background loop calls it every poll interval."""

    def __init__(self, db: Database, settings: Settings, clock: Clock) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock

    async def run_once(self) -> int:
        """Deliver the due events (one batch); returns how many were attempted."""
        now = self.clock.now()
        if not await queries.any_due(self.db, now):
            return 0
        async with self.db.write() as tx:
            events = await queries.claim(tx, now=now, lease_until=lease_end(now), limit=BATCH)
            endpoints = {event.endpoint_id: await queries.get_endpoint(tx, event.endpoint_id) for event in events}
        if not events:
            return 0
        async with httpx.AsyncClient(
            timeout=self.settings.webhook_timeout,
            follow_redirects=False,
            headers={"user-agent": USER_AGENT},
        ) as client:
            outcomes = await asyncio.gather(
                *(self._deliver(client, event, endpoints.get(event.endpoint_id)) for event in events)
            )
        finished = self.clock.now()
        async with self.db.write() as tx:
            for event, outcome in zip(events, outcomes, strict=True):
                if outcome.skipped:
                    status, retry_at = "skipped", None
                elif outcome.succeeded:
                    status, retry_at = "succeeded", None
                elif event.attempts >= self.settings.retry_max_attempts:
                    status, retry_at = "failed", None
                else:
                    status = "pending"
                    retry_at = next_attempt(finished, self.settings.retry_backoff_base, event.attempts)
                await queries.record_attempt(
                    tx,
                    event,
                    succeeded=outcome.succeeded,
                    http_code=outcome.http_code,
                    response=outcome.response,
                    duration_ms=outcome.duration_ms,
                    status=status,
                    retry_at=retry_at,
                    now=finished,
                )
        return len(events)

    async def _deliver(self, client: httpx.AsyncClient, event: EventRecord, endpoint: EndpointRecord | None) -> Outcome:
        if endpoint is None or not endpoint.enabled or url_problem(endpoint.url) is not None:
            return Outcome(succeeded=False, http_code=None, response="endpoint disabled", duration_ms=0, skipped=True)
        body = event.payload.encode()
        timestamp = int(self.clock.now().timestamp())
        headers = {"content-type": "application/json"}
        headers.update(signing.signed_headers(endpoint.secret, event.id, timestamp, body))
        started = time.monotonic()
        try:
            # Streamed: only the first 2 KB of the answer is read (and kept in the delivery log).
            async with client.stream("POST", endpoint.url, content=body, headers=headers) as answer:
                head = b""
                async for chunk in answer.aiter_bytes():
                    head += chunk
                    if len(head) >= RESPONSE_LIMIT:
                        break
        except httpx.HTTPError as exc:
            elapsed = int((time.monotonic() - started) * 1000)
            log.info("webhook %s to %s failed: %s", event.id, endpoint.url, type(exc).__name__)
            return Outcome(
                succeeded=False,
                http_code=None,
                response=f"{type(exc).__name__}: {exc}"[:RESPONSE_LIMIT],
                duration_ms=elapsed,
            )
        elapsed = int((time.monotonic() - started) * 1000)
        succeeded = 200 <= answer.status_code < 300
        if not succeeded:
            log.info("webhook %s to %s answered %s", event.id, endpoint.url, answer.status_code)
        return Outcome(
            succeeded=succeeded,
            http_code=answer.status_code,
            response=head[:RESPONSE_LIMIT].decode("utf-8", "replace"),
            duration_ms=elapsed,
        )
