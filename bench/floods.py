"""Write latency while the server is flooded with refused requests (issue 17.9): a signed-in customer's billing
save (``PATCH /v1/customer-portal/customers/me``, one write transaction) measured quiet and during each flood of
bench/README.md's "Writes under floods" table, in one run.

What it does, bounded in count and time: makes a fresh data dir, starts ``portal serve --demo --workers 2`` on
loopback with ``PORTAL_TRUSTED_PROXIES=127.0.0.1`` (so the flood can rotate client addresses through
``X-Forwarded-For``, as an attacker rotating addresses would), mints an API customer session for the demo's
``alex@example.com`` (a ``customer_sessions`` row, as ``bench/run.py`` does), then for each phase sends ``--saves``
sequential saves (default 200) and as many reads of the same customer (the control: same authentication, no write)
and reports their p50/p95/max. Each flood runs in its own process (keep-alive client threads) for as long as the
phase's saves and reads take, at most ``--max-seconds``. The phases (``PHASES``, the table's rows):

* ``wrong_codes_paced`` / ``bogus_keys_paced``: ~``--rate`` requests a second (default 200) from 4 threads;
* ``wrong_codes_one_address``: 32 connections flat out from one address (answered 429 after its 30);
* ``wrong_codes_flat_out`` / ``bogus_keys_flat_out``: 4 connections flat out;

The flooding process runs at ``--flood-nice`` (default 19): an attacker's CPU is not the server's, and on one
machine this is the nearest model of that. At the same priority (``--flood-nice 0``) the flood's Python client
(~600 µs of CPU a request, more than the server's ~400) takes the CPU from the server and from the measuring client
alike, so what a flat-out row then shows is the two cores shared with the attacker, not what the flood costs the
server: with the client on a core of its own, one worker answering 1,370 bogus keys a second is 80% idle.

where ``wrong codes`` is JSON ``authenticate``, a third without an email and the rest with the demo customer's
email, wrong codes from 64k rotating addresses (unless one address), and ``bogus keys`` is ``license-keys/validate``
with random keys of the demo organization (404). ``--only NAME`` runs the quiet phase and that one.

Usage: ``.venv/bin/python bench/floods.py`` (about 25 s). Prints a JSON report, one entry per phase, with
``p95_over_quiet`` (target: at most 3) and ``read_p95_over_quiet``, and the 1-minute load average before the run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from portal.sessions.store import token_digest

REPO = Path(__file__).resolve().parent.parent
ADDRESSES = 64_000  # client addresses the wrong-code floods rotate through (but the one-address phase)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mint_api_session(data_dir: Path, email: str) -> tuple[str, str]:
    """(token, organization id) of a new API customer session for ``email``."""
    secret = (data_dir / "secret_key").read_text().strip()
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    expires = (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    conn = sqlite3.connect(data_dir / "portal.db", isolation_level=None, timeout=10)
    try:
        org_id, customer_id = conn.execute(
            "SELECT organization_id, id FROM customers WHERE email = ? AND deleted_at IS NULL LIMIT 1", (email,)
        ).fetchone()
        token = secrets.token_urlsafe(32)
        conn.execute(
            "INSERT INTO customer_sessions (id, token_hash, kind, organization_id, customer_id, expires_at, "
            "last_seen_at, created_at) VALUES (?, ?, 'api', ?, ?, ?, ?, ?)",
            (f"bench-{secrets.token_hex(8)}", token_digest(secret, token), org_id, customer_id, expires, stamp, stamp),
        )
    finally:
        conn.close()
    return token, str(org_id)


def _paced(interval: float) -> Any:
    """A generator that sleeps so that its loop runs at most once per ``interval`` seconds (0: flat out)."""
    next_at = time.monotonic()
    while True:
        if interval:
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))
        yield


def _flood_codes(base: str, org_id: str, stop: Any, counts: Counter[int], offset: int, interval: float) -> None:
    with httpx.Client(base_url=base, timeout=10) as client:
        n = offset
        for _ in _paced(interval):
            if stop.is_set():
                break
            n += 1
            slot = n % ADDRESSES
            headers = {"X-Forwarded-For": f"203.0.{slot % 256}.{(slot // 256) % 250 + 1}"}
            if n % 3 == 0:
                body: dict[str, Any] = {"code": "ZZZZZZ"}
            else:
                body = {"code": "ZZZZZZ", "email": "alex@example.com", "organization_id": org_id}
            response = client.post("/v1/customer-portal/customer-session/authenticate", json=body, headers=headers)
            counts[response.status_code] += 1


def _flood_keys(base: str, org_id: str, stop: Any, counts: Counter[int], offset: int, interval: float) -> None:
    with httpx.Client(base_url=base, timeout=10) as client:
        for _ in _paced(interval):
            if stop.is_set():
                break
            body = {"key": f"BOGUS-{secrets.token_hex(16).upper()}", "organization_id": org_id}
            counts[client.post("/v1/customer-portal/license-keys/validate", json=body).status_code] += 1


def flood(
    kind: str,
    base: str,
    org_id: str,
    threads: int,
    rate: float,
    addresses: int,
    max_seconds: float,
    nice: int,
    stop: Any,
    out: Any,
) -> None:
    """Run in its own process (its client threads must not share the probe's GIL); puts the status counts.
    ``rate``: requests per second over all threads (0: as fast as the server answers)."""
    global ADDRESSES
    ADDRESSES = addresses
    os.nice(nice)
    target = _flood_codes if kind == "codes" else _flood_keys
    interval = threads / rate if rate else 0.0
    counters: list[Counter[int]] = [Counter() for _ in range(threads)]
    workers = [
        threading.Thread(target=target, args=(base, org_id, stop, counters[i], i * 100_000, interval), daemon=True)
        for i in range(threads)
    ]
    for worker in workers:
        worker.start()
    stop.wait(max_seconds)
    stop.set()
    for worker in workers:
        worker.join(timeout=15)
    out.put(dict(sum(counters, Counter())))


def saves(base: str, token: str, count: int, deadline: float) -> list[float]:
    """Latencies (seconds) of ``count`` sequential billing saves, stopping early at ``deadline``."""
    latencies: list[float] = []
    with httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {token}"}) as client:
        for i in range(count):
            if time.monotonic() > deadline:
                break
            start = time.perf_counter()
            response = client.patch("/v1/customer-portal/customers/me", json={"billing_name": f"Alex Bench {i}"})
            latencies.append(time.perf_counter() - start)
            if response.status_code != 200:
                raise SystemExit(f"billing save answered {response.status_code}: {response.text[:200]}")
    return latencies


def reads(base: str, token: str, count: int) -> list[float]:
    """Latencies of ``count`` ``GET /v1/customer-portal/customers/me`` (the same authentication and answer as a
    save, no write): the control, showing what the flood costs every request in CPU and event-loop time."""
    latencies: list[float] = []
    with httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {token}"}) as client:
        for _ in range(count):
            start = time.perf_counter()
            client.get("/v1/customer-portal/customers/me")
            latencies.append(time.perf_counter() - start)
    return latencies


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "saves": len(ordered),
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p95_ms": round(1000 * ordered[max(0, int(0.95 * len(ordered)) - 1)], 1),
        "max_ms": round(1000 * ordered[-1], 1),
    }


# (name, flood kind, client threads, requests per second over all threads or 0 for flat out, addresses)
PHASES: tuple[tuple[str, str, int, float | None, int], ...] = (
    ("wrong_codes_paced", "codes", 4, None, ADDRESSES),
    ("bogus_keys_paced", "keys", 4, None, ADDRESSES),
    ("wrong_codes_one_address", "codes", 32, 0.0, 1),
    ("wrong_codes_flat_out", "codes", 4, 0.0, ADDRESSES),
    ("bogus_keys_flat_out", "keys", 4, 0.0, ADDRESSES),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=200)
    parser.add_argument("--max-seconds", type=float, default=40.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second of the paced floods")
    parser.add_argument("--flood-nice", type=int, default=19, help="the flooding process's niceness (0: as the server)")
    parser.add_argument("--only", choices=[phase[0] for phase in PHASES], help="the quiet phase and this one")
    args = parser.parse_args(argv)
    phases = [phase for phase in PHASES if args.only in (None, phase[0])]

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="portal-floods-") as tmp:
        data_dir = Path(tmp) / "data"
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PORTAL_DATA_DIR": str(data_dir), "PORTAL_TRUSTED_PROXIES": "127.0.0.1"}
        env["PORTAL_BASE_URL"] = base
        log = open(Path(tmp) / "serve.log", "wb")  # noqa: SIM115 (closed in the finally below)
        portal = [sys.executable, "-m", "portal"]
        command = [
            *portal,
            "serve",
            "--demo",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
        ]
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("portal serve did not come up")
                time.sleep(0.2)
            token, org_id = mint_api_session(data_dir, "alex@example.com")
            saves(base, token, 30, time.monotonic() + 30)  # warm-up
            report: dict[str, Any] = {
                "workers": args.workers,
                "load_average_before": round(load_before, 2),
            }
            quiet = summary(saves(base, token, args.saves, time.monotonic() + args.max_seconds))
            quiet["read_p95_ms"] = summary(reads(base, token, args.saves))["p95_ms"]
            report["quiet"] = quiet
            context = multiprocessing.get_context("spawn")
            for name, kind, threads, rate, addresses in phases:
                rate = args.rate if rate is None else rate
                stop, out = context.Event(), context.Queue()
                attacker = context.Process(
                    target=flood,
                    args=(kind, base, org_id, threads, rate, addresses, args.max_seconds, args.flood_nice, stop, out),
                )
                attacker.start()
                time.sleep(3.0)  # the flood is up, and past its budgets
                began = time.monotonic()
                measured = summary(saves(base, token, args.saves, time.monotonic() + args.max_seconds))
                measured["read_p95_ms"] = summary(reads(base, token, args.saves))["p95_ms"]
                measured["seconds"] = round(time.monotonic() - began + 3.0, 1)
                stop.set()
                statuses = out.get(timeout=60)
                attacker.join(timeout=30)
                measured.update(flood=kind, connections=threads, rate=rate, addresses=addresses)
                measured["flood_requests"] = sum(statuses.values())
                measured["flood_statuses"] = statuses
                measured["flood_per_second"] = round(measured["flood_requests"] / measured["seconds"], 1)
                measured["p95_over_quiet"] = round(measured["p95_ms"] / max(quiet["p95_ms"], 0.1), 2)
                measured["read_p95_over_quiet"] = round(measured["read_p95_ms"] / max(quiet["read_p95_ms"], 0.1), 2)
                report[name] = measured
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()
        text = (Path(tmp) / "serve.log").read_text(errors="replace")
        report["server_errors"] = text.count("Traceback") + text.count("database is locked")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
