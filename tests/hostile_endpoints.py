"""Webhook endpoints that misbehave, as real servers on loopback: one that drips its answer, one that accepts and
never answers, one whose connections never complete (a full listen backlog), and one that answers a gzip bomb.
Each counts its connections (at once and in total; per path, per first path segment and overall) so tests can
check the worker's concurrency bounds."""

from __future__ import annotations

import socket
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Literal

Behaviour = Literal["drip", "silent", "bomb"]


def gzip_bomb(inflated_bytes: int) -> bytes:
    """One gzip member that inflates to ``inflated_bytes`` of ``A`` (about 1,000 times smaller than that)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"A" * (1 << 20)
    parts = [packer.compress(block) for _ in range(inflated_bytes >> 20)]
    parts.append(packer.flush())
    return b"".join(parts)


@dataclass
class Hostile:
    """A misbehaving HTTP server; ``url(path)`` is an endpoint URL on it."""

    behaviour: Behaviour
    drip_interval: float = 0.2
    bomb: bytes = b""
    port: int = 0
    open_now: Counter[str] = field(default_factory=Counter)
    most_at_once: Counter[str] = field(default_factory=Counter)
    accepted: Counter[str] = field(default_factory=Counter)
    closed_at: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def total_at_once(self) -> int:
        return self.most_at_once["*"]

    def _opened(self, path: str) -> None:
        with self._lock:
            for key in _keys(path):
                self.open_now[key] += 1
                self.accepted[key] += 1
                self.most_at_once[key] = max(self.most_at_once[key], self.open_now[key])

    def _closed(self, path: str) -> None:
        with self._lock:
            for key in _keys(path):
                self.open_now[key] -= 1
            self.closed_at.append(time.monotonic())

    def serve(self, conn: socket.socket) -> None:
        path = "?"
        try:
            path = _read_request(conn)
            self._opened(path)
            try:
                self._answer(conn)
            finally:
                self._closed(path)
        except OSError:
            pass  # the worker gave up and closed the connection: what these servers are for
        finally:
            conn.close()

    def _answer(self, conn: socket.socket) -> None:
        if self.behaviour == "silent":
            self._stopping.wait()
        elif self.behaviour == "drip":
            # A 200 status and headers at once, then a body a byte at a time that never ends in time.
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100000\r\n\r\n")
            while not self._stopping.wait(self.drip_interval):
                conn.sendall(b".")
        else:
            head = (
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-encoding: gzip\r\n"
                f"content-length: {len(self.bomb)}\r\n\r\n"
            )
            conn.sendall(head.encode() + self.bomb)
            self._stopping.wait(5)


def _keys(path: str) -> tuple[str, ...]:
    """Counters kept per connection: its path, its first path segment (tests use one per organization), all."""
    return (path, "/" + path.split("/")[1], "*") if path.count("/") > 1 else (path, "*")


def _read_request(conn: socket.socket) -> str:
    """Read a request's head and body (by content-length); returns its path."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise OSError("closed before the request ended")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return lines[0].split(" ")[1]


@contextmanager
def hostile(behaviour: Behaviour, **options: object) -> Iterator[Hostile]:
    """A threaded server with ``behaviour`` on a free loopback port until the block ends."""
    state = Hostile(behaviour, **options)  # type: ignore[arg-type]
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    listener.settimeout(0.1)
    state.port = listener.getsockname()[1]

    def accept_loop() -> None:
        while not state._stopping.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(30)
            threading.Thread(target=state.serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state._stopping.set()
        thread.join(timeout=5)
        listener.close()


@contextmanager
def blackhole() -> Iterator[str]:
    """A URL whose TCP connections never complete: a listener that never accepts, its backlog already full, so
    the kernel drops further SYNs (what a firewalled or dead address does). Yields the endpoint URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        with suppress(BlockingIOError):  # the handshake completes (or not) in the background
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
