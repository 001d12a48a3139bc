"""Fixed-window rate limits stored in SQLite (table ``rate_limits``), so they survive restarts and are shared by
every worker process. Counters are bumped with one UPSERT inside the caller's write transaction.

A key is ``<limit name>:<subject>``; subjects that are personal data (emails) are passed in as HMACs.
"""

from __future__ import annotations

import secrets

import msgspec

from portal.db import Transaction

# Windows older than this are deleted now and then; longer than any window below.
_PRUNE_AGE_SECONDS = 86400


class Limit(msgspec.Struct, frozen=True):
    name: str
    max_hits: int
    window_seconds: int


# Code requests from one client address (any email, any organization).
REQUEST_PER_IP = Limit("login-request:ip", 20, 15 * 60)
# Codes sent to one email address in one organization (counted for unknown addresses too: same answers).
REQUEST_PER_EMAIL = Limit("login-request:email", 5, 60 * 60)
# Wrong or expired codes submitted from one client address.
AUTH_FAILURE_PER_IP = Limit("login-failure:ip", 30, 15 * 60)


class RateLimited(Exception):
    """Too many hits in the current window; ``retry_after`` is the number of seconds until it ends."""

    def __init__(self, limit: Limit, retry_after: int) -> None:
        super().__init__(f"rate limit {limit.name} exceeded")
        self.limit = limit
        self.retry_after = max(1, retry_after)


def _window(limit: Limit, now_ts: int) -> tuple[int, int]:
    start = now_ts - now_ts % limit.window_seconds
    return start, start + limit.window_seconds - now_ts


async def hit(tx: Transaction, limit: Limit, subject: str, now_ts: int) -> None:
    """Count one hit; raise ``RateLimited`` once the window holds more than ``limit.max_hits``."""
    key = f"{limit.name}:{subject}"
    start, remaining = _window(limit, now_ts)
    count = await tx.fetchval(
        """
        INSERT INTO rate_limits (key, window_start, count) VALUES (?, ?, 1)
        ON CONFLICT (key, window_start) DO UPDATE SET count = count + 1
        RETURNING count
        """,
        (key, start),
    )
    await tx.execute("DELETE FROM rate_limits WHERE key = ? AND window_start < ?", (key, start))
    if secrets.randbelow(64) == 0:
        await tx.execute("DELETE FROM rate_limits WHERE window_start < ?", (now_ts - _PRUNE_AGE_SECONDS,))
    if int(count) > limit.max_hits:
        raise RateLimited(limit, remaining)


async def check(tx: Transaction, limit: Limit, subject: str, now_ts: int) -> None:
    """Raise ``RateLimited`` if the window is already full, without counting a hit."""
    start, remaining = _window(limit, now_ts)
    count = await tx.fetchval(
        "SELECT count FROM rate_limits WHERE key = ? AND window_start = ?", (f"{limit.name}:{subject}", start)
    )
    if count is not None and int(count) >= limit.max_hits:
        raise RateLimited(limit, remaining)
