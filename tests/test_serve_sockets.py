"""How ``portal serve --workers N`` listens (portal/serve_sockets.py): one ``SO_REUSEPORT`` socket per worker, so the
kernel spreads connections over the workers, and the workers run the standard asyncio loop (uvloop's tail,
bench/README.md "Tail latency"). Linux only, like the mechanism."""

from __future__ import annotations

import io
import os
import socket
import time
from multiprocessing.reduction import ForkingPickler
from pathlib import Path

import pytest

from portal.serve_sockets import spreads_connections, supervisor_socket
from tests.ops_support import migrated, served

pytestmark = pytest.mark.skipif(not spreads_connections(), reason="SO_REUSEPORT spreads connections on Linux only")


def _pickled_to_a_worker(sock: socket.socket) -> socket.socket:
    """What a spawned worker gets for ``sock``: uvicorn's supervisor hands its sockets over with multiprocessing's
    pickler."""
    buffer = io.BytesIO()
    ForkingPickler(buffer).dump(sock)
    return ForkingPickler.loads(buffer.getvalue())  # type: ignore[no-any-return]


def test_each_worker_gets_its_own_socket_on_the_supervisors_address_and_only_workers_take_connections() -> None:
    supervisor = supervisor_socket("127.0.0.1", 0)
    address = supervisor.getsockname()
    workers = [_pickled_to_a_worker(supervisor) for _ in range(2)]
    clients: list[socket.socket] = []
    try:
        assert all(worker.getsockname() == address for worker in workers)
        assert len({supervisor.fileno(), *(worker.fileno() for worker in workers)}) == 3
        assert all(worker.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) for worker in workers)
        assert type(workers[0]) is socket.socket  # a plain socket in the worker; pickling it again copies it
        for worker in workers:
            worker.listen(64)
            worker.setblocking(False)
        clients.extend(socket.create_connection(address, timeout=5) for _ in range(40))
        time.sleep(0.2)
        accepted = []
        for worker in workers:
            count = 0
            while True:
                try:
                    conn, _ = worker.accept()
                except BlockingIOError:
                    break
                conn.close()
                count += 1
            accepted.append(count)
        # Every connection reached a worker's socket (none waits on the supervisor's, which never listens), spread
        # over both (all 40 on one: a chance of 2 in 2**40).
        assert sum(accepted) == 40 and min(accepted) > 0, accepted
    finally:
        for sock in (supervisor, *workers, *clients):
            sock.close()


def test_a_port_in_use_is_refused_before_any_worker_starts(tmp_path: Path) -> None:
    from tests.serving import portal_env, run_portal

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        migrated(tmp_path / "data")
        port = taken.getsockname()[1]
        done = run_portal(["serve", "--workers", "2", "--port", str(port)], portal_env(tmp_path / "data"), timeout=60)
    finally:
        taken.close()
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _tcp_sockets(port: int, state: str) -> set[str]:
    """Inodes of the IPv4 TCP sockets on local ``port`` in ``state`` (``0A`` listening, ``01`` established)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == state:
            inodes.add(fields[9])
    return inodes


def test_served_workers_each_listen_and_take_a_share_of_a_burst_of_connections(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    migrated(data_dir)
    with served(data_dir, tmp_path / "serve.log", "--workers", "2") as server:
        port = int(server.base.rsplit(":", 1)[1])
        deadline = time.monotonic() + 30  # /healthz answered once one worker is up: wait for the other
        while True:
            children = _children(server.process.pid)
            workers = [pid for pid in children if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()]
            listening = _tcp_sockets(port, "0A")
            if len(listening) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert len(workers) == 2
        owned = {pid: _socket_inodes(pid) for pid in workers}
        assert len(listening) == 2  # two listening sockets on the port, one in each worker
        assert all(len(listening & inodes) == 1 for inodes in owned.values())
        assert not listening & _socket_inodes(server.process.pid)  # the supervisor listens on none

        clients = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(40)]  # at once
        try:
            for client in clients:
                client.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            for client in clients:
                assert client.recv(4096).startswith(b"HTTP/1.1 200")
            established = _tcp_sockets(port, "01")
            shares = [len(established & _socket_inodes(pid)) for pid in workers]
            assert sum(shares) == 40 and min(shares) > 0, shares
        finally:
            for client in clients:
                client.close()
        for pid in workers:  # the standard asyncio loop, not uvloop (portal/serve_sockets.py)
            assert "uvloop" not in Path(f"/proc/{pid}/maps").read_text()
