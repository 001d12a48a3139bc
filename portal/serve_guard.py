"""Slow-client guard for ``portal serve``: a header deadline and a connection cap on top of uvicorn's HTTP protocol.

uvicorn arms its keep-alive timer only after a response has been sent, so a connection that never sends a byte,
or sends its headers one byte at a time, stays open forever; enough of them use up the process's file descriptors
and even ``/healthz`` fails. ``GuardedHttpToolsProtocol`` closes a connection whose request headers are not
complete ``PORTAL_HEADER_TIMEOUT`` seconds after it connected (or after the first byte of its next request), and
keeps the open connections of the process under a cap below ``RLIMIT_NOFILE``: past the cap the oldest idle
connection (no request in progress) is closed to make room, so a flood of idle sockets never locks out a new
client; with none idle the new connection is closed at once. Request bodies are not timed here: the reverse
proxy buffers them (see ``deploy/``).
"""

from __future__ import annotations

import asyncio
import resource
import time
from functools import cache
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from portal.settings import Settings

# Descriptors kept free of client connections: SQLite (writer, readers, WAL, shm), the log, the lock file, the
# listening socket, outgoing SMTP and webhook connections, uploads being written.
FD_RESERVE = 128
MIN_CONNECTIONS = 16


def connection_cap(max_connections: int, soft_limit: int) -> int:
    """The connection cap for a process: ``max_connections`` (0: automatic), never within FD_RESERVE of the limit."""
    ceiling = max(MIN_CONNECTIONS, soft_limit - FD_RESERVE)
    return ceiling if max_connections <= 0 else min(max_connections, ceiling)


@cache
def _limits() -> tuple[float, int]:
    """(header timeout, connection cap) of this process, read once from the environment and ``RLIMIT_NOFILE``."""
    settings = Settings.from_env()
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    soft_limit = soft if soft != resource.RLIM_INFINITY else 1 << 20
    return settings.header_timeout, connection_cap(settings.max_connections, soft_limit)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header deadline and the per-process connection cap."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout, self.connection_cap = _limits()
        self.header_deadline: asyncio.TimerHandle | None = None
        self.opened_at = time.monotonic()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.connection_cap and not self._evict_oldest_idle():
            transport.abort()  # frees the descriptor now; uvicorn never tracks this connection
            return
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        if self.transport is None:  # refused in connection_made
            return
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        # First byte of a request on a kept-alive connection: its headers get the same deadline.
        super().on_message_begin()
        if self.header_deadline is None:
            self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        super().on_headers_complete()

    def is_idle(self) -> bool:
        """No request being answered: waiting for headers, or kept alive between requests."""
        return self.cycle is None or self.cycle.response_complete

    def _evict_oldest_idle(self) -> bool:
        """Close the longest-open idle connection of this process; False when every connection is busy."""
        idle = [c for c in self.connections if isinstance(c, GuardedHttpToolsProtocol) and c.is_idle()]
        if not idle:
            return False
        oldest = min(idle, key=lambda c: c.opened_at)
        oldest.transport.abort()
        # connection_lost runs on the next loop turn; drop it from the count now so the cap holds.
        self.connections.discard(oldest)
        return True

    def _arm_header_deadline(self) -> None:
        self.header_deadline = self.loop.call_later(self.header_timeout, self._header_deadline_passed)

    def _disarm_header_deadline(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def _header_deadline_passed(self) -> None:
        self.header_deadline = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()
