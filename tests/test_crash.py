"""Crash safety: ``portal serve`` is SIGKILLed in the middle of a burst of writes (customers created and orders
paid through the admin API from several threads); after a restart every write that was acknowledged with a 2xx
is there, receipt numbers are still gap-free, and ``PRAGMA integrity_check`` says ok.

(SQLite in WAL mode with ``synchronous=NORMAL`` loses nothing committed when the *process* dies; only a power
loss may drop the last commits, which is what ``PORTAL_SQLITE_SYNCHRONOUS=FULL`` is for.)
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import httpx

from portal.db import connect_sync
from tests.admin_support import bearer, mint_token
from tests.conftest import free_port
from tests.ops_support import make_customer, make_org, migrated
from tests.serving import portal_env, start_portal, stop, wait_until_up

WRITERS = 4


class Burst:
    """Writer threads that record every acknowledged write until the server goes away."""

    def __init__(self, base: str, token: str, org_id: str, customer_id: str) -> None:
        self.base, self.token, self.org_id, self.customer_id = base, token, org_id, customer_id
        self.customers: dict[str, str] = {}  # id -> email
        self.orders: dict[str, str] = {}  # id -> receipt number
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def write(self, worker: int) -> None:
        with httpx.Client(base_url=self.base, headers=bearer(self.token), timeout=10) as client:
            n = 0
            while not self.stop.is_set():
                n += 1
                try:
                    if n % 2:
                        email = f"w{worker}-{n}@example.com"
                        response = client.post("/v1/customers/", json={"organization_id": self.org_id, "email": email})
                        if response.status_code == 201:
                            with self.lock:
                                self.customers[response.json()["id"]] = email
                    else:
                        body = {
                            "customer_id": self.customer_id,
                            "currency": "usd",
                            "items": [{"label": "x", "unit_amount": 100}],
                        }
                        response = client.post("/v1/orders/", json=body)
                        if response.status_code == 201:
                            with self.lock:
                                self.orders[response.json()["id"]] = response.json()["receipt_number"]
                    if response.status_code >= 300:
                        self.errors.append(f"{response.status_code} {response.text[:200]}")
                except httpx.HTTPError:
                    return  # the server is gone: an unanswered write is allowed to be lost, or not

    def acknowledged(self) -> int:
        with self.lock:
            return len(self.customers) + len(self.orders)


def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = migrated(data_dir)
    admin = mint_token(settings)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = portal_env(data_dir, PORTAL_BASE_URL=base)

    process = start_portal(["serve", "--port", str(port)], env, tmp_path / "first.log")
    threads: list[threading.Thread] = []
    try:
        wait_until_up(base, process, timeout=30)
        org = make_org(base, admin, "initech")
        owner = make_customer(base, admin, org["id"], "owner@example.com")
        burst = Burst(base, admin, str(org["id"]), str(owner["id"]))
        threads = [threading.Thread(target=burst.write, args=(i,), daemon=True) for i in range(WRITERS)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while burst.acknowledged() < 60 and time.monotonic() < deadline:
            time.sleep(0.01)
        process.kill()  # SIGKILL, mid-burst: writes are in flight
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    for thread in threads:
        thread.join(timeout=15)
    assert burst.acknowledged() >= 60, "the burst never got going"
    assert not burst.errors, burst.errors[:5]

    restarted = start_portal(["serve", "--port", str(port)], env, tmp_path / "second.log")
    try:
        wait_until_up(base, restarted, timeout=30)
        with httpx.Client(base_url=base, headers=bearer(admin), timeout=10) as client:
            for customer_id, email in burst.customers.items():
                response = client.get(f"/v1/customers/{customer_id}")
                assert response.status_code == 200 and response.json()["email"] == email, customer_id
            for order_id, receipt in burst.orders.items():
                response = client.get(f"/v1/orders/{order_id}")
                assert response.status_code == 200 and response.json()["receipt_number"] == receipt, order_id
            # Still writable, and numbering goes on from where it stopped.
            after = client.post(
                "/v1/orders/",
                json={"customer_id": owner["id"], "currency": "usd", "items": [{"label": "y", "unit_amount": 1}]},
            )
            assert after.status_code == 201, after.text
    finally:
        stop(restarted)

    conn = connect_sync(settings.db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        numbers = sorted(
            int(re.fullmatch(r"INITECH-(\d+)", row[0]).group(1))  # type: ignore[union-attr]
            for row in conn.execute("SELECT receipt_number FROM orders WHERE receipt_number IS NOT NULL")
        )
        assert numbers == list(range(1, len(numbers) + 1)), "receipt numbers have a gap after the crash"
        stored = {row[0] for row in conn.execute("SELECT id FROM customers")}
        assert set(burst.customers) <= stored
    finally:
        conn.close()
