"""Delivering queued webhook events. ``run_once`` is the dispatcher: it reads the due events, picks those the
concurrency limits allow (``MAX_IN_FLIGHT`` in this process, ``PER_ORGANIZATION`` per organization,
``PER_ENDPOINT`` per endpoint), claims them atomically in a write transaction and starts one task per delivery.
Each task POSTs its event signed to its endpoint and records the attempt in its own short transaction as soon as
it ends, so a slow endpoint holds only its own slots: deliveries to other endpoints and organizations never wait
for it.

Each delivery has one budget, ``PORTAL_WEBHOOK_TIMEOUT`` seconds for everything (connecting, sending, the status
line, headers and the part of the answer that is read); past it the delivery is cut off and counts as failed. The
answer is read raw (``Accept-Encoding: identity`` is asked, and an answer compressed anyway is not inflated) and
only its first ``RESPONSE_LIMIT`` bytes are read at all, so a huge or compressed answer costs no memory.

A 2xx answer is a success; anything else (another status, the deadline, a refused connection) is retried after
``retry_delay`` until ``PORTAL_RETRY_MAX_ATTEMPTS``. The ``webhook-id`` is the event id, the same on every retry,
so receivers can drop duplicates (delivery is at-least-once)."""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections import Counter
from datetime import timedelta
from typing import TYPE_CHECKING

import msgspec

from portal.clock import Clock
from portal.db import Database
from portal.notifications.backoff import CLAIM_LEASE_SECONDS, next_attempt
from portal.settings import Settings
from portal.tls import https_context
from portal.webhooks import destinations, queries, signing
from portal.webhooks.queries import DueEvent, EndpointRecord, EventRecord
from portal.webhooks.service import url_problem

# httpx (with its CLI's rich and pygments, ~5 MB a process) is imported by the first delivery: a worker whose
# organizations have no endpoint never loads it (bench/README.md, "Memory").
if TYPE_CHECKING:
    import httpx

log = logging.getLogger("portal.webhooks")

# Deliveries in flight in one process, per organization and per endpoint. The total bounds memory and sockets (a
# delivery holds at most one socket and one read buffer); the per-organization and per-endpoint bounds keep one
# seller's slow or dead endpoints from taking every slot.
MAX_IN_FLIGHT = 64
PER_ORGANIZATION = 16
PER_ENDPOINT = 4
# Due events the dispatcher looks at per pass (at most PER_ENDPOINT of each endpoint).
CANDIDATES = 500
RESPONSE_LIMIT = 2048
USER_AGENT = "Portal-Webhooks/1"


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    succeeded: bool
    http_code: int | None
    response: str | None
    duration_ms: int
    skipped: bool = False


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """The concurrency bounds of one worker."""

    total: int
    per_organization: int
    per_endpoint: int

    @classmethod
    def default(cls) -> Limits:
        # Read when a worker is made, not at import, so a test can narrow the module constants.
        return cls(total=MAX_IN_FLIGHT, per_organization=PER_ORGANIZATION, per_endpoint=PER_ENDPOINT)


class WebhookWorker:
    """The dispatcher (``run_once``, called by the background loop) and the delivery tasks it starts; ``drain``
    waits for them when the app stops."""

    def __init__(self, db: Database, settings: Settings, clock: Clock, limits: Limits | None = None) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.limits = limits or Limits.default()
        self._tasks: set[asyncio.Task[None]] = set()
        self._by_endpoint: Counter[str] = Counter()
        self._by_organization: Counter[str] = Counter()
        self._slot_freed = asyncio.Event()
        self._client: httpx.AsyncClient | None = None

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def run_once(self) -> int:
        """Start the deliveries the limits allow; returns how many were started. When due events are held back
        only by the limits, wait (up to one poll interval) for a slot and try again, so a backlog drains at the
        speed of the endpoint rather than one batch per poll."""
        started, held_back = await self._dispatch()
        if not started and held_back:
            self._slot_freed.clear()
            try:
                await asyncio.wait_for(self._slot_freed.wait(), timeout=self.settings.worker_poll_interval)
            except TimeoutError:
                return 0
            started, _ = await self._dispatch()
        return started

    async def drain(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for the deliveries in flight, cancel the rest (their claims expire and
        another pass sends them again), and close the HTTP client."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _dispatch(self) -> tuple[int, bool]:
        """One claim: (deliveries started, whether due events were left for lack of a free slot)."""
        free = self.limits.total - len(self._tasks)
        if free <= 0:
            return 0, True
        now = self.clock.now()
        due = await queries.due_events(self.db, now=now, per_endpoint=self.limits.per_endpoint, limit=CANDIDATES)
        if not due:
            return 0, False
        chosen = self._choose(due, free)
        held_back = len(chosen) < len(due)
        if not chosen:
            return 0, held_back
        # The lease outlives the delivery's whole budget, so no other process claims an event still being sent.
        lease_until = now + timedelta(seconds=max(CLAIM_LEASE_SECONDS, self.settings.webhook_timeout + 60))
        async with self.db.write() as tx:
            events = await queries.claim(tx, [event.id for event in chosen], now=now, lease_until=lease_until)
            endpoints = {event.endpoint_id: await queries.get_endpoint(tx, event.endpoint_id) for event in events}
        for event in events:
            self._start(event, endpoints.get(event.endpoint_id))
        return len(events), held_back

    def _choose(self, due: list[DueEvent], free: int) -> list[DueEvent]:
        """The oldest due events that fit the total, per-organization and per-endpoint bounds."""
        by_endpoint = Counter(self._by_endpoint)
        by_organization = Counter(self._by_organization)
        chosen: list[DueEvent] = []
        for event in due:
            if len(chosen) >= free:
                break
            if by_endpoint[event.endpoint_id] >= self.limits.per_endpoint:
                continue
            if by_organization[event.organization_id] >= self.limits.per_organization:
                continue
            by_endpoint[event.endpoint_id] += 1
            by_organization[event.organization_id] += 1
            chosen.append(event)
        return chosen

    def _start(self, event: EventRecord, endpoint: EndpointRecord | None) -> None:
        self._by_endpoint[event.endpoint_id] += 1
        self._by_organization[event.organization_id] += 1
        task = asyncio.get_running_loop().create_task(self._run(event, endpoint), name=f"webhook-{event.id}")
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._finished(done, event))

    def _finished(self, task: asyncio.Task[None], event: EventRecord) -> None:
        self._tasks.discard(task)
        self._by_endpoint[event.endpoint_id] -= 1
        self._by_organization[event.organization_id] -= 1
        self._slot_freed.set()

    async def _run(self, event: EventRecord, endpoint: EndpointRecord | None) -> None:
        """One delivery and its log entry. Errors are logged, never raised: the claim expires and it is retried."""
        try:
            outcome = await self._deliver(event, endpoint)
            await self._record(event, outcome)
        except Exception:
            log.exception("webhook %s: delivery could not be recorded", event.id)

    async def _record(self, event: EventRecord, outcome: Outcome) -> None:
        finished = self.clock.now()
        if outcome.skipped:
            status, retry_at = "skipped", None
        elif outcome.succeeded:
            status, retry_at = "succeeded", None
        elif event.attempts >= self.settings.retry_max_attempts:
            status, retry_at = "failed", None
        else:
            status = "pending"
            retry_at = next_attempt(finished, self.settings.retry_backoff_base, event.attempts)
        async with self.db.write() as tx:
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

    def _http(self) -> httpx.AsyncClient:
        """One client per worker (connections to an endpoint are reused). Its pool is larger than the number of
        deliveries in flight, so no delivery ever waits for a connection another one holds."""
        import httpx

        if self._client is None:
            budget = self.settings.webhook_timeout
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(budget),
                follow_redirects=False,
                headers={"user-agent": USER_AGENT, "accept-encoding": "identity"},
                limits=httpx.Limits(max_connections=self.limits.total + 1, max_keepalive_connections=16),
                verify=https_context(),
            )
        return self._client

    async def _deliver(self, event: EventRecord, endpoint: EndpointRecord | None) -> Outcome:
        if endpoint is None or not endpoint.enabled or url_problem(endpoint.url, private_allowed=True) is not None:
            return Outcome(succeeded=False, http_code=None, response="endpoint disabled", duration_ms=0, skipped=True)
        body = event.payload.encode()
        headers = {"content-type": "application/json"}
        headers.update(signing.signed_headers(endpoint.secret, event.id, int(self.clock.now().timestamp()), body))
        budget = self.settings.webhook_timeout
        started = time.monotonic()
        status: int | None = None
        import httpx

        try:
            # One deadline for the whole exchange: httpx's own timeouts are per read, so an answer dripped a byte
            # at a time would never trip them.
            async with asyncio.timeout(budget):
                target, extensions = endpoint.url, dict[str, str]()
                if not self.settings.webhook_private_addresses:
                    target, host_header, extensions = await destinations.pinned(endpoint.url)
                    headers.update(host_header)
                async with self._http().stream(
                    "POST", target, content=body, headers=headers, extensions=extensions
                ) as answer:
                    status = answer.status_code
                    head = await _read_head(answer)
                    encoding = answer.headers.get("content-encoding", "identity")
        except destinations.NonPublicDestination as exc:
            log.info("webhook %s to %s refused: %s is not a public address", event.id, endpoint.url, exc)
            return Outcome(
                succeeded=False,
                http_code=None,
                response=f"Refused: {exc} resolves to a non-public address (PORTAL_WEBHOOK_PRIVATE_ADDRESSES)",
                duration_ms=_ms_since(started),
            )
        except TimeoutError:
            elapsed = _ms_since(started)
            log.info("webhook %s to %s: no complete answer within %ss", event.id, endpoint.url, budget)
            return Outcome(
                succeeded=False,
                http_code=status,
                response=f"Timeout: no complete answer within {budget:g} s",
                duration_ms=elapsed,
            )
        except httpx.HTTPError as exc:
            log.info("webhook %s to %s failed: %s", event.id, endpoint.url, type(exc).__name__)
            return Outcome(
                succeeded=False,
                http_code=None,
                response=f"{type(exc).__name__}: {exc}"[:RESPONSE_LIMIT],
                duration_ms=_ms_since(started),
            )
        succeeded = 200 <= status < 300
        if not succeeded:
            log.info("webhook %s to %s answered %s", event.id, endpoint.url, status)
        return Outcome(
            succeeded=succeeded, http_code=status, response=_readable(head, encoding), duration_ms=_ms_since(started)
        )


async def _read_head(answer: httpx.Response) -> bytes:
    """The first ``RESPONSE_LIMIT`` bytes of the answer as sent (never decompressed); the rest is never read."""
    head = bytearray()
    async for chunk in answer.aiter_raw():
        head += chunk[: RESPONSE_LIMIT - len(head)]
        if len(head) >= RESPONSE_LIMIT:
            break
    return bytes(head)


def _readable(head: bytes, encoding: str) -> str:
    """The kept part of the answer as text. An answer compressed although ``identity`` was asked for is inflated
    only as far as the first ``RESPONSE_LIMIT`` bytes of its text (a bounded decompression, for the log)."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return head.decode("utf-8", "replace")
    if encoding in ("gzip", "x-gzip", "deflate"):
        try:
            # wbits 47: a gzip or zlib header, detected.
            text = zlib.decompressobj(wbits=47).decompress(head, RESPONSE_LIMIT)
        except zlib.error:
            text = b""
        if text:
            return text.decode("utf-8", "replace")
    return f"({encoding}-encoded answer, not decoded)"


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
