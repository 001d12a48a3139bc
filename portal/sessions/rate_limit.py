"""Fixed-window rate limits: counted in memory, answered from memory, written to SQLite (``rate_limits``) in
batches, so a throttled or refused request never waits on SQLite's writer and a flood cannot slow other writes.

A key is ``<limit name>:<subject>``; subjects that are personal data (emails) are passed in as HMACs, and client
addresses always go through ``network_key`` (an IPv4 address, or the /64 of an IPv6 one: one subscriber).

Two ways to count. Paths that write anyway (a code request stores the code; a guess compared with a live code
counts a try on it) check and count **exactly**, in their own write transaction (``check_tx``/``hit_tx``): SQLite's
write lock orders every process. Refusals that write nothing (a throttled request, a guess with no live code to
compare it with, a wrong email-change token) are answered and counted by the per-process ``Limiter``, and the
exact paths check it first too, so a full window is refused without touching the writer.

How the ``Limiter``'s counts stay right across restarts and worker processes: each process keeps, per key and
window, the count it
last read from SQLite (all processes' flushed hits) plus its own hits not written yet. A key not seen in this
process is read from SQLite (a reader connection, never the writer) before it is answered, and re-read when that
count is older than ``REFRESH_SECONDS``. Pending hits are written by one short transaction (``db.transact``, one
UPSERT per key) at most every ``FLUSH_SECONDS``, and at shutdown. The slack this leaves: another process's hits are
seen at most ``FLUSH_SECONDS + REFRESH_SECONDS`` late, so with W processes a window admits at most ``max_hits``
plus the other processes' hits of those 2 seconds, and never more than ``W × max_hits``; a process killed with
SIGKILL loses at most its last second of hits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import secrets
import time
import weakref

import msgspec

from portal.db import Database, SyncTransaction, Transaction

log = logging.getLogger(__name__)

# Windows older than this are deleted now and then; longer than any window below.
_PRUNE_AGE_SECONDS = 86400
FLUSH_SECONDS = 1.0
FLUSH_CHUNK = 200
REFRESH_SECONDS = 1.0


class Limit(msgspec.Struct, frozen=True):
    name: str
    max_hits: int
    window_seconds: int


# Code requests from one client network (any email, any organization).
REQUEST_PER_IP = Limit("login-request:ip", 20, 15 * 60)
# Codes sent to one email address in one organization (counted for unknown addresses too: same answers).
REQUEST_PER_EMAIL = Limit("login-request:email", 5, 60 * 60)
# Wrong, expired or unknown codes submitted from one client network.
AUTH_FAILURE_PER_IP = Limit("login-failure:ip", 30, 15 * 60)
# Wrong codes compared with an organization's live codes (every path): the bound on guessing one seller's codes.
AUTH_FAILURE_PER_ORG = Limit("login-failure:org", 30, 60 * 60)
# The same over the whole instance (SECURITY.md has the arithmetic behind both numbers).
AUTH_FAILURE_GLOBAL = Limit("login-failure:all", 100, 60 * 60)
# Email-change verification mails one signed-in customer may ask for (issue 17.3). The target address is charged
# to REQUEST_PER_EMAIL and the client network to REQUEST_PER_IP, sign-in's own budgets: whichever flow asks, one
# address gets at most 5 mails an hour from an organization and one network asks for at most 20 per 15 minutes.
EMAIL_UPDATE_REQUEST_PER_CUSTOMER = Limit("email-update-request:customer", 5, 60 * 60)
# Wrong email-change verification tokens (12 symbols of A-Z0-9): per client network and over the instance.
EMAIL_UPDATE_FAILURE_PER_IP = Limit("email-update-failure:ip", 30, 15 * 60)
EMAIL_UPDATE_FAILURE_GLOBAL = Limit("email-update-failure:all", 1000, 60 * 60)

GLOBAL = "all"


class RateLimited(Exception):
    """Too many hits in the current window; ``retry_after`` is the number of seconds until it ends."""

    def __init__(self, limit: Limit, retry_after: int) -> None:
        super().__init__(f"rate limit {limit.name} exceeded")
        self.limit = limit
        self.retry_after = max(1, retry_after)


def network_key(ip: str) -> str:
    """The throttling subject of a client address: the address for IPv4 (and IPv4-mapped IPv6), the /64 for IPv6
    (one subscriber gets a whole /64, so per-address limits would be per-guess limits). Anything else as given."""
    try:
        address = ipaddress.ip_address(ip.strip().split("%", 1)[0])
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _window(limit: Limit, now_ts: int) -> tuple[int, int]:
    start = now_ts - now_ts % limit.window_seconds
    return start, start + limit.window_seconds - now_ts


_Slot = tuple[str, int]  # (key, window start)


class Limiter:
    """The counters of one process for one database (see the module docstring for the consistency rules)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._shared: dict[_Slot, tuple[int, float]] = {}  # count in SQLite, monotonic time it was read
        self._pending: dict[_Slot, int] = {}  # hits of this process not yet in a flush
        self._flushing: dict[_Slot, int] = {}  # hits of the flush under way
        self._flush_task: asyncio.Task[None] | None = None

    async def count(self, limit: Limit, subject: str, now_ts: int) -> int:
        """Hits in the current window, every process's (as of at most ~2 s ago) plus this one's own."""
        slot = (f"{limit.name}:{subject}", _window(limit, now_ts)[0])
        shared = self._shared.get(slot)
        if shared is None or time.monotonic() - shared[1] > REFRESH_SECONDS:
            value = await self._db.fetchval(
                "SELECT count FROM rate_limits WHERE key = ? AND window_start = ?", (slot[0], slot[1])
            )
            # A flush may have finished while reading: its hits are in ``value`` now, or still in ``_flushing``.
            shared = (int(value or 0), time.monotonic())
            self._shared[slot] = shared
        return shared[0] + self._pending.get(slot, 0) + self._flushing.get(slot, 0)

    async def check(self, limit: Limit, subject: str, now_ts: int) -> None:
        """Raise ``RateLimited`` if the window is already full, without counting a hit."""
        if await self.count(limit, subject, now_ts) >= limit.max_hits:
            raise RateLimited(limit, _window(limit, now_ts)[1])

    async def hit(self, limit: Limit, subject: str, now_ts: int, hits: int = 1) -> None:
        """Count ``hits``, or raise ``RateLimited`` (counting nothing) when the window is already full."""
        await self.check(limit, subject, now_ts)
        self.add(limit, subject, now_ts, hits)

    def written(self, limit: Limit, subject: str, now_ts: int) -> None:
        """Hits were just committed by an exact path (``hit_tx``): read the count again on its next use."""
        self._shared.pop((f"{limit.name}:{subject}", _window(limit, now_ts)[0]), None)

    def add(self, limit: Limit, subject: str, now_ts: int, hits: int = 1) -> None:
        """Count ``hits`` unconditionally (a try that already happened); written by the next flush."""
        slot = (f"{limit.name}:{subject}", _window(limit, now_ts)[0])
        self._pending[slot] = self._pending.get(slot, 0) + hits
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        """The background flush: a failed one (database locked for seconds) keeps its hits for the next."""
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            try:
                await self.flush()
            except Exception as exc:  # the hits stay pending; the answers already given stay right
                log.warning("rate-limit flush failed, retrying: %s", exc)
                continue
            if not self._pending:
                return

    async def flush(self) -> None:
        """Write the pending hits, in short transactions of at most ``FLUSH_CHUNK`` keys (one ``executemany``
        UPSERT each: a flood of distinct addresses must not hold the write lock, or the event loop, for long)."""
        while self._pending:
            slots = list(self._pending)[:FLUSH_CHUNK]
            batch = {slot: self._pending.pop(slot) for slot in slots}
            for slot, hits in batch.items():
                self._flushing[slot] = self._flushing.get(slot, 0) + hits
            try:
                await self._db.transact(functools.partial(self._write, batch=batch))
            except BaseException:
                for slot, hits in batch.items():  # not written: keep them for the next flush
                    self._pending[slot] = self._pending.get(slot, 0) + hits
                raise
            finally:
                for slot, hits in batch.items():
                    left = self._flushing.get(slot, 0) - hits
                    if left > 0:
                        self._flushing[slot] = left
                    else:
                        self._flushing.pop(slot, None)
            now = time.monotonic()
            for slot, hits in batch.items():
                # Now in SQLite: counted in the shared figure until the next read refreshes it.
                count, read_at = self._shared.get(slot, (0, now))
                self._shared[slot] = (count + hits, read_at)
            await asyncio.sleep(0)  # let requests run between chunks
        self._forget_old()

    @staticmethod
    def _write(tx: SyncTransaction, *, batch: dict[_Slot, int]) -> None:
        for (key, start), hits in batch.items():
            tx.execute(
                """
                INSERT INTO rate_limits (key, window_start, count) VALUES (?, ?, ?)
                ON CONFLICT (key, window_start) DO UPDATE SET count = count + excluded.count
                """,
                (key, start, hits),
            )
        if secrets.randbelow(16) == 0:  # old windows go now and then (indexed on window_start)
            oldest = min(start for _, start in batch) - _PRUNE_AGE_SECONDS
            tx.execute("DELETE FROM rate_limits WHERE window_start < ?", (oldest,))

    def _forget_old(self) -> None:
        """Drop shared counts not refreshed for a while: memory stays bounded under a flood of distinct keys."""
        if len(self._shared) < 10_000:
            return
        cutoff = time.monotonic() - 60
        self._shared = {slot: value for slot, value in self._shared.items() if value[1] >= cutoff}

    async def close(self) -> None:
        """Flush what is pending (shutdown); the database must still be open."""
        if self._flush_task is not None and not self._flush_task.done():
            self._flush_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flush_task
        await self.flush()


async def count_tx(tx: Transaction, limit: Limit, subject: str, now_ts: int) -> int:
    """The exact count, inside a write transaction (every process's hits are in SQLite or pending elsewhere)."""
    value = await tx.fetchval(
        "SELECT count FROM rate_limits WHERE key = ? AND window_start = ?",
        (f"{limit.name}:{subject}", _window(limit, now_ts)[0]),
    )
    return int(value or 0)


async def check_tx(tx: Transaction, limit: Limit, subject: str, now_ts: int) -> None:
    """``Limiter.check``, exact: for paths that write anyway (SQLite's write lock orders the processes)."""
    if await count_tx(tx, limit, subject, now_ts) >= limit.max_hits:
        raise RateLimited(limit, _window(limit, now_ts)[1])


async def hit_tx(tx: Transaction, limit: Limit, subject: str, now_ts: int, hits: int = 1) -> None:
    """Count ``hits`` in the caller's write transaction; raise ``RateLimited`` (the caller rolls back) when the
    window was already full."""
    start, remaining = _window(limit, now_ts)
    count = await tx.fetchval(
        """
        INSERT INTO rate_limits (key, window_start, count) VALUES (?, ?, ?)
        ON CONFLICT (key, window_start) DO UPDATE SET count = count + excluded.count
        RETURNING count
        """,
        (f"{limit.name}:{subject}", start, hits),
    )
    if int(count) - hits >= limit.max_hits:
        raise RateLimited(limit, remaining)


_LIMITERS: weakref.WeakKeyDictionary[Database, Limiter] = weakref.WeakKeyDictionary()


def limiter(db: Database) -> Limiter:
    """The limiter of ``db`` in this process (one per database object, created on first use)."""
    found = _LIMITERS.get(db)
    if found is None:
        found = _LIMITERS[db] = Limiter(db)
    return found
