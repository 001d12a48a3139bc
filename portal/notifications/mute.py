"""Muting notifications for bulk writes: loading a seed document must not email customers or call webhooks.

A context variable, so it follows the task doing the writes (``with muted(): await load(...)``) and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_MUTED: ContextVar[bool] = ContextVar("portal_notifications_muted", default=False)


@contextmanager
def muted() -> Iterator[None]:
    """Inside this block, hooks enqueue no email and no webhook event."""
    token = _MUTED.set(True)
    try:
        yield
    finally:
        _MUTED.reset(token)


def is_muted() -> bool:
    return _MUTED.get()
