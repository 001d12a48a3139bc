"""The control for ``bench/run.py --control``: a bare Litestar app on the same server stack as ``portal serve``
(uvicorn, httptools, the standard asyncio loop, a socket per worker: portal/serve_sockets.py; the same number of
workers) that answers ``GET /?cpu_us=N&size=M`` by spending N µs of CPU (its own thread's, so a preemption does
not shorten it) and sending M bytes. ``run.py`` calibrates N and M
per scenario from what Portal's server spent and sent in the same round, so the control's p99/p50 is what this
machine and this stack give a request of that cost with no Portal code at all: a tail both show is the machine's
(the scheduler, the other processes), a tail only Portal shows is Portal's (issue 18.9).

    uvicorn --app-dir bench control_app:app --port 8001 --workers 1 --loop asyncio
"""

from __future__ import annotations

import time

from litestar import Litestar, Response, get
from litestar.params import FromQuery

MAX_CPU_US = 1_000_000
MAX_BYTES = 10_000_000


def spend_cpu(microseconds: int) -> None:
    """Busy for ``microseconds`` of this thread's CPU time."""
    end = time.thread_time() + min(max(microseconds, 0), MAX_CPU_US) / 1e6
    while time.thread_time() < end:
        pass


@get("/healthz", media_type="text/plain")
async def healthz() -> str:
    return "ok"


@get("/", media_type="text/html")
async def costly(cpu_us: FromQuery[int] = 0, size: FromQuery[int] = 0) -> Response[bytes]:
    spend_cpu(cpu_us)
    return Response(b"x" * min(max(size, 0), MAX_BYTES), media_type="text/html")


app = Litestar([healthz, costly])
