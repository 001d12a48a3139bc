"""Retry delays for emails and webhook deliveries: exponential, from ``PORTAL_RETRY_BACKOFF_BASE``, capped."""

from __future__ import annotations

from datetime import datetime, timedelta

MAX_DELAY_SECONDS = 6 * 3600

# How long a claimed message belongs to its worker; past it (the worker died mid-send) another may claim it.
CLAIM_LEASE_SECONDS = 300


def retry_delay(base_seconds: float, attempts: int) -> float:
    """Seconds to wait after the ``attempts``-th failure: base, 2×base, 4×base, … (at most 6 hours)."""
    return float(min(base_seconds * 2 ** max(0, attempts - 1), MAX_DELAY_SECONDS))


def next_attempt(now: datetime, base_seconds: float, attempts: int) -> datetime:
    return now + timedelta(seconds=retry_delay(base_seconds, attempts))


def lease_end(now: datetime) -> datetime:
    return now + timedelta(seconds=CLAIM_LEASE_SECONDS)
