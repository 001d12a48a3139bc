"""How ``portal serve`` runs its workers: the standard asyncio event loop, and with ``--workers N`` on Linux one
listening socket per worker (``SO_REUSEPORT``), so that the kernel, not a race between the workers, decides which
worker takes a connection.

Why not uvloop, uvicorn's default when installed: a worker kept busy by 32 connections answered its slowest
requests 4-7x later than its median (p99/p50) under uvloop, and a bare app of the same cost on the same stack
showed the same tail (``bench/run.py --control``); under the standard loop the same load gave 1.2x, at the same
throughput (bench/README.md, "Tail latency"; the speed-mechanisms table).

Why a socket per worker: with one shared listening socket (uvicorn's way), asyncio's accept takes every connection
waiting when its worker wakes up, so a burst (a reverse proxy opening its upstream pool, or ``wrk``'s 32
connections) lands whole on the first worker to wake, and the other idles while it queues: half the throughput in
the bench. With ``SO_REUSEPORT`` each worker has its own socket and accept queue on the same address, and the
kernel spreads new connections over them by a hash of the connection.

How: uvicorn's supervisor (``uvicorn.supervisors.Multiprocess``) hands each worker process it spawns the sockets it
was given, pickled into the new process. It is given a ``ReusePortSocket``: the supervisor's own copy is bound
(so a port in use fails at once) but never listens, so it takes no connections; pickled, it carries only its
address, and unpickled in a worker it binds that worker's own socket, which uvicorn then listens on. A worker
that restarts binds a new one. Where ``SO_REUSEPORT`` does not spread connections (not Linux), the workers share
one socket as uvicorn does it. Guarded by ``tests/test_serve_sockets.py``.
"""

from __future__ import annotations

import logging
import socket
import sys
from typing import Any

# The loop every served process runs (uvicorn's ``loop`` setting), for the reason in the module docstring.
EVENT_LOOP = "asyncio"


def spreads_connections() -> bool:
    """Whether ``SO_REUSEPORT`` makes the kernel spread a port's connections over its sockets (Linux 3.9+)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def bind_reuse_port(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``(host, port)`` with ``SO_REUSEPORT``, not listening yet (uvicorn listens on it)."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM, socket.IPPROTO_TCP)
    _configure(sock)
    sock.bind((host, port))
    return sock


def _configure(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)


class ReusePortSocket(socket.socket):
    """The supervisor's socket (``supervisor_socket``): bound with ``SO_REUSEPORT`` and never listening; every
    process it is pickled to gets a socket of its own on the same address (``bind_reuse_port``), not a copy."""

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, tuple[str, int]]:
        host, port = self.getsockname()[:2]
        return bind_reuse_port, (host, port)


def supervisor_socket(host: str, port: int) -> ReusePortSocket:
    """The socket to hand uvicorn's supervisor: it reserves ``(host, port)`` (``OSError`` if taken) and gives each
    worker its own listening socket there."""
    sock = ReusePortSocket(_family(host), socket.SOCK_STREAM, socket.IPPROTO_TCP)
    _configure(sock)
    sock.bind((host, port))
    return sock


def serve_workers(app: str, host: str, port: int, workers: int, options: dict[str, Any]) -> int:
    """Run uvicorn on the import string ``app`` (``options``: the rest of ``uvicorn.Config``) until it is stopped;
    1 if the address cannot be bound. Several workers where ``spreads_connections()``: a ``supervisor_socket`` handed
    to uvicorn's supervisor; otherwise ``uvicorn.run`` as is (one worker binds its own socket)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    if workers <= 1 or not spreads_connections():
        uvicorn.run(app, host=host, port=port, workers=workers, **options)
        return 0
    config = uvicorn.Config(app, host=host, port=port, workers=workers, **options)
    try:
        sock = supervisor_socket(host, port)
    except OSError as exc:
        print(f"portal: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
        return 1
    logging.getLogger("uvicorn.error").info(
        "Listening on http://%s:%d, one socket per worker (%d workers)", host, sock.getsockname()[1], workers
    )
    try:
        Multiprocess(config, sockets=[sock]).run()
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0
