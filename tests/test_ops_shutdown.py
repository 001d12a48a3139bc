"""Graceful shutdown: SIGTERM in the middle of a write burst lets in-flight requests finish; every write that was
answered is in the database afterwards, and the database is sound when the server starts again."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from pathlib import Path

import httpx

from tests.admin_support import bearer
from tests.conftest import free_port
from tests.ops_support import admin_token, migrated, served
from tests.serving import portal_env, start_portal, wait_until_up


def test_sigterm_during_a_write_burst_loses_no_answered_write(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = migrated(data_dir)
    token = admin_token(settings)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    process = start_portal(["serve", "--port", str(port)], portal_env(data_dir), log)
    wait_until_up(base, process, timeout=30)

    answered: list[str] = []
    failures: list[int] = []
    lock = threading.Lock()

    def client(worker: int) -> None:
        with httpx.Client(base_url=base, headers=bearer(token), timeout=30) as http:
            for index in range(10_000):
                slug = f"w{worker}-{index}"
                try:
                    response = http.post("/v1/organizations/", json={"name": slug, "slug": slug})
                except httpx.TransportError:
                    return  # the server stopped accepting: expected after SIGTERM
                with lock:
                    if response.status_code == 201:
                        answered.append(slug)
                    else:
                        failures.append(response.status_code)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    while len(answered) < 60:
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    signalled_at = len(answered)
    for thread in threads:
        thread.join(timeout=30)
    # uvicorn shuts down cleanly, then re-raises SIGTERM so the exit status says what stopped it.
    assert process.wait(timeout=25) in (0, -signal.SIGTERM), log.read_text()
    output = log.read_text()
    assert "Shutting down" in output and "Finished server process" in output

    assert failures == []  # in-flight requests were answered, not cut off with errors
    assert len(answered) >= signalled_at
    conn = sqlite3.connect(data_dir / "portal.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {row[0] for row in conn.execute("SELECT slug FROM organizations")}
    finally:
        conn.close()
    assert set(answered) <= stored
    # Restarted on the same data dir: ready, and the database is still sound.
    with served(data_dir, tmp_path / "again.log") as server:
        assert httpx.get(f"{server.base}/readyz").json()["status"] == "ok"
