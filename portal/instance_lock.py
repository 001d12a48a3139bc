"""The instance lock: ``<data dir>/portal.lock``, held with ``fcntl.flock`` so tools can tell a running server.

Every ``portal serve`` holds a SHARED lock for its whole life (several servers on one data dir are fine: they
share the database safely). ``portal restore`` takes it EXCLUSIVELY, so it refuses to run while any server is up,
and a server cannot start in the middle of a restore. The kernel drops the lock when the process dies, so a
crashed server never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import time
from pathlib import Path
from typing import IO

LOCK_NAME = "portal.lock"


class InstanceBusy(RuntimeError):
    """The lock is held in a conflicting mode by another process."""


class InstanceLock:
    """A held lock; ``release()`` (or leaving the ``with`` block, or exiting) frees it."""

    def __init__(self, handle: IO[str], exclusive: bool) -> None:
        self._handle: IO[str] | None = handle
        self.exclusive = exclusive

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def __enter__(self) -> InstanceLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_path(data_dir: Path) -> Path:
    return data_dir / LOCK_NAME


def acquire(data_dir: Path, *, exclusive: bool, wait_seconds: float = 0.0) -> InstanceLock:
    """Take the lock (shared for servers, exclusive for restore); ``InstanceBusy`` if not free in time."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(lock_path(data_dir), "a+")  # noqa: SIM115 - kept open as long as the lock is held
    mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(handle, mode)
        except BlockingIOError:
            if time.monotonic() >= deadline:
                handle.close()
                raise InstanceBusy(_busy_message(data_dir, exclusive)) from None
            time.sleep(0.1)
            continue
        break
    return InstanceLock(handle, exclusive)


def is_served(data_dir: Path) -> bool:
    """True while some process holds the lock (a server, or a restore in progress)."""
    if not lock_path(data_dir).exists():
        return False
    try:
        acquire(data_dir, exclusive=True).release()
    except InstanceBusy:
        return True
    return False


def _busy_message(data_dir: Path, exclusive: bool) -> str:
    if exclusive:
        return f"a Portal server is running on {data_dir} (it holds {LOCK_NAME}); stop it first"
    return f"a restore is in progress on {data_dir} (it holds {LOCK_NAME}); wait for it to finish"
