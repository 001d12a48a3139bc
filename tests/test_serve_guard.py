"""Slow clients against the served process: idle and slow-header connections are closed, the connection cap keeps
the process under its file-descriptor limit, and ``/healthz`` keeps answering through a flood of them."""

from __future__ import annotations

import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from portal.serve_guard import FD_RESERVE, MIN_CONNECTIONS, connection_cap
from tests.conftest import free_port
from tests.ops_support import migrated
from tests.serving import portal_env, run_portal, stop, wait_until_up

FD_LIMIT = 256  # the served child's RLIMIT_NOFILE: cap 128, so a few hundred sockets exhaust it without the guard


def _low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


@contextmanager
def served_low_fd(data_dir: Path, log: Path, **env: str) -> Iterator[str]:
    """``portal serve`` with RLIMIT_NOFILE lowered to FD_LIMIT in the child; yields its base URL."""
    port = free_port()
    environment = portal_env(data_dir, PORTAL_BASE_URL=f"http://127.0.0.1:{port}", **env)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "portal", "serve", "--port", str(port)],
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_low_fd_limit,  # only setrlimit, before exec
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, process, timeout=30)
        yield base
    finally:
        stop(process)


def _open(base: str, count: int, first_bytes: bytes) -> list[socket.socket]:
    port = int(base.rsplit(":", 1)[1])
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        if first_bytes:
            sock.sendall(first_bytes)
        sockets.append(sock)
    return sockets


def _closed_by_server(sock: socket.socket, wait: float) -> bool:
    """True when the server closed (EOF or reset) the connection within ``wait`` seconds."""
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _read_response(sock: socket.socket) -> bytes:
    """One whole response (headers and a Content-Length body): the server may send them in separate segments, and
    a byte of the body left unread would look like an open connection to ``_closed_by_server``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, "closed before the response headers"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
        0,
    )
    while len(body) < length:
        chunk = sock.recv(4096)
        assert chunk, "closed before the response body"
        body += chunk
    return head + b"\r\n\r\n" + body


def _healthz(base: str) -> int:
    return httpx.get(f"{base}/healthz", timeout=5).status_code


def test_connection_cap_stays_below_the_fd_limit() -> None:
    assert connection_cap(0, 1024) == 1024 - FD_RESERVE
    assert connection_cap(100, 1024) == 100
    assert connection_cap(5000, 1024) == 1024 - FD_RESERVE  # never within the reserve of the limit
    assert connection_cap(0, 64) == MIN_CONNECTIONS


def test_idle_and_slow_header_floods_leave_healthz_answering(tmp_path: Path) -> None:
    migrated(tmp_path / "data")
    env = {"PORTAL_HEADER_TIMEOUT": "2", "PORTAL_KEEPALIVE_TIMEOUT": "1"}
    with served_low_fd(tmp_path / "data", tmp_path / "serve.log", **env) as base:
        # More sockets than the child has descriptors: without the cap, accept() fails and /healthz with it.
        idle = _open(base, 200, b"")
        slow = _open(base, 200, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        try:
            assert _healthz(base) == 200
            # The cap closed the oldest ones at once; the header deadline closes every one left.
            started = time.monotonic()
            assert all(_closed_by_server(sock, 6) for sock in idle + slow)
            assert time.monotonic() - started < 6
            assert _healthz(base) == 200
        finally:
            for sock in idle + slow:
                sock.close()


def test_header_deadline_closes_a_slow_connection_under_the_cap(tmp_path: Path) -> None:
    migrated(tmp_path / "data")
    env = {"PORTAL_HEADER_TIMEOUT": "1", "PORTAL_KEEPALIVE_TIMEOUT": "1"}
    with served_low_fd(tmp_path / "data", tmp_path / "serve.log", **env) as base:
        (never_sends,) = _open(base, 1, b"")
        (dribbles,) = _open(base, 1, b"GET /healthz HTTP/1.1\r\n")
        with never_sends, dribbles:
            started = time.monotonic()
            for _ in range(4):  # one byte every 0.5 s keeps sending, but the headers never complete in time
                time.sleep(0.5)
                try:
                    dribbles.sendall(b"X")
                except OSError:
                    break
            assert _closed_by_server(dribbles, 3)
            assert _closed_by_server(never_sends, 3)
            assert time.monotonic() - started < 5


def test_keep_alive_connection_closed_after_its_timeout(tmp_path: Path) -> None:
    migrated(tmp_path / "data")
    env = {"PORTAL_HEADER_TIMEOUT": "10", "PORTAL_KEEPALIVE_TIMEOUT": "1"}
    with served_low_fd(tmp_path / "data", tmp_path / "serve.log", **env) as base:
        (sock,) = _open(base, 1, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        with sock:
            sock.settimeout(5)
            assert _read_response(sock).startswith(b"HTTP/1.1 200")
            started = time.monotonic()
            assert _closed_by_server(sock, 4)
            assert time.monotonic() - started < 3


def test_serve_refuses_settings_check_refuses(tmp_path: Path) -> None:
    migrated(tmp_path / "data")
    env = portal_env(tmp_path / "data", PORTAL_LOGIN_CODE_TTL="3", PORTAL_HEADER_TIMEOUT="0")
    served = run_portal(["serve", "--port", str(free_port())], env, timeout=30)
    checked = run_portal(["check"], env, timeout=30)
    assert served.returncode != 0
    assert "Traceback" not in served.stderr
    for variable in ("PORTAL_LOGIN_CODE_TTL", "PORTAL_HEADER_TIMEOUT"):
        line = next(line for line in checked.stderr.splitlines() if variable in line)
        assert line in served.stderr.splitlines()
