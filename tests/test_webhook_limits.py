"""Outgoing webhooks cannot stall or bloat the server: each delivery has one deadline for connect and answer, the
answer is read raw and capped, deliveries run concurrently within per-endpoint, per-organization and total
bounds, so a hostile endpoint holds only its own slots. Every misbehaving endpoint is a real server on loopback
(``tests/hostile_endpoints.py``); the memory test measures a served ``portal serve`` process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from portal.clock import Clock
from portal.settings import Settings
from portal.webhooks import worker
from tests.admin_support import api, bearer, mint_token
from tests.apps import app_for
from tests.hostile_endpoints import blackhole, gzip_bomb, hostile
from tests.notification_support import Shop, fast, make_shop, receiver, rows, wait_until
from tests.ops_support import admin_token, make_customer, make_org, migrated, served

BASE = "http://testserver.local"
BUDGET = 1.5  # PORTAL_WEBHOOK_TIMEOUT in these tests


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    # No retry during a test: each failed delivery is looked at once.
    return fast(settings, webhook_timeout=BUDGET, retry_backoff_base=600)


@pytest.fixture
def client(app_settings: Settings, clock: Clock) -> Iterator[Any]:
    with TestClient(app_for(app_settings, clock=clock), base_url=BASE) as test_client:
        yield test_client


def _endpoint(client: Any, shop: Shop, url: str) -> dict[str, Any]:
    body = {"url": url, "events": ["customer.updated"]}
    return api(client, shop.token, "POST", "/v1/webhooks/endpoints", 201, json=body)  # type: ignore[no-any-return]


def _touch_customer(client: Any, shop: Shop, name: str = "Ada L.") -> None:
    """A change that queues one ``customer.updated`` per subscribed endpoint of the shop."""
    api(client, shop.token, "PATCH", f"/v1/customers/{shop.customer['id']}", 200, json={"name": name})


def _deliveries(settings: Settings, endpoint: dict[str, Any]) -> list[dict[str, Any]]:
    sql = "SELECT succeeded, http_code, response, duration_ms, attempt FROM webhook_deliveries WHERE endpoint_id = ?"
    return rows(settings, sql, (endpoint["id"],))


def _assert_cut_at_deadline(delivery: dict[str, Any], http_code: int | None) -> None:
    assert delivery["succeeded"] == 0 and delivery["http_code"] == http_code, delivery
    assert delivery["response"].startswith("Timeout"), delivery
    assert BUDGET * 1000 - 50 <= delivery["duration_ms"] <= BUDGET * 1000 + 1000, delivery


def test_dripping_endpoint_is_cut_at_the_deadline_and_others_land_meanwhile(
    client: Any, app_settings: Settings
) -> None:
    acme = make_shop(client, app_settings, "acme")
    globex = make_shop(client, app_settings, "globex")
    with hostile("drip", drip_interval=0.1) as drip, receiver() as hook:
        dripping = _endpoint(client, acme, drip.url())
        _endpoint(client, globex, hook.url)
        _touch_customer(client, acme)
        wait_until(lambda: drip.open_now["*"] == 1)
        sent = time.monotonic()
        _touch_customer(client, globex)
        [request] = hook.wait_for(1, timeout=BUDGET)
        # Another organization's delivery lands while the drip is still going.
        assert request.at - sent < 0.75 and drip.open_now["*"] == 1
        [delivery] = wait_until(lambda: _deliveries(app_settings, dripping), timeout=BUDGET + 3)
    # A 200 status line came at once, but the answer never completed: failed at the deadline, to be retried.
    _assert_cut_at_deadline(delivery, http_code=200)
    [event] = rows(app_settings, "SELECT status, attempts FROM webhook_events WHERE endpoint_id = ?", (dripping["id"],))
    assert event == {"status": "pending", "attempts": 1}


def test_silent_and_blackholed_endpoints_end_at_the_deadline(client: Any, app_settings: Settings) -> None:
    shop = make_shop(client, app_settings)
    with hostile("silent") as silent, blackhole() as unreachable, receiver() as hook:
        answers_nothing = _endpoint(client, shop, silent.url())
        never_connects = _endpoint(client, shop, unreachable)
        healthy = _endpoint(client, shop, hook.url)
        started = time.monotonic()
        _touch_customer(client, shop)
        # The healthy endpoint of the same organization does not wait for the other two, nor does its log entry:
        # both land while the other two are still waiting for their deadline (nothing logged for them yet).
        hook.wait_for(1, timeout=BUDGET)
        wait_until(lambda: _deliveries(app_settings, healthy), timeout=BUDGET)
        assert not _deliveries(app_settings, answers_nothing) and not _deliveries(app_settings, never_connects)
        assert time.monotonic() - started < BUDGET
        for endpoint in (answers_nothing, never_connects):
            [delivery] = wait_until(lambda endpoint=endpoint: _deliveries(app_settings, endpoint), timeout=BUDGET + 3)
            _assert_cut_at_deadline(delivery, http_code=None)
    assert silent.accepted["*"] == 1


def test_concurrency_is_bounded_per_endpoint_per_organization_and_in_total(
    settings: Settings, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker, "PER_ENDPOINT", 2)
    monkeypatch.setattr(worker, "PER_ORGANIZATION", 5)
    monkeypatch.setattr(worker, "MAX_IN_FLIGHT", 8)
    app_settings = fast(settings, webhook_timeout=3.0, retry_backoff_base=600)
    with (
        TestClient(app_for(app_settings, clock=clock), base_url=BASE) as client,
        hostile("silent") as silent,
        receiver() as hook,
    ):
        acme = make_shop(client, app_settings, "acme")
        globex = make_shop(client, app_settings, "globex")
        initech = make_shop(client, app_settings, "initech")
        for shop in (acme, globex):
            for index in range(4):
                _endpoint(client, shop, silent.url(f"/{shop.org['slug']}/{index}"))
        _endpoint(client, initech, hook.url)
        for round_ in range(3):  # 12 deliveries each for acme and globex, 3 per endpoint
            _touch_customer(client, acme, f"Ada {round_}")
        wait_until(lambda: silent.open_now["/acme"] == 5)
        # acme's endpoints hold acme's five slots; initech's delivery is not behind them.
        sent = time.monotonic()
        _touch_customer(client, initech)
        hook.wait_for(1, timeout=2)
        assert hook.requests[0].at - sent < 0.75
        for round_ in range(3):
            _touch_customer(client, globex, f"Ada {round_}")
        wait_until(lambda: silent.open_now["*"] == 8)
        time.sleep(0.5)  # room for any delivery the bounds should have held back
        assert silent.most_at_once["*"] == 8
        assert silent.most_at_once["/acme"] == 5 and silent.most_at_once["/globex"] == 3
        assert max(silent.most_at_once[f"/acme/{index}"] for index in range(4)) == 2
        assert max(silent.most_at_once[f"/globex/{index}"] for index in range(4)) <= 2


def _peak_rss_kib(pid: int) -> int:
    """VmHWM: the most resident memory the process ever had."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_gzip_bomb_answers_do_not_grow_the_served_process(tmp_path: Path) -> None:
    """Eight endpoints answer at once with a gzip member that inflates to 256 MiB each. The worker asks for
    ``identity`` and reads raw: the server's peak memory barely moves."""
    data_dir = tmp_path / "data"
    settings = migrated(data_dir)
    admin = admin_token(settings)
    bomb = gzip_bomb(256 << 20)
    environment = {"PORTAL_WORKER_POLL_INTERVAL": "0.05", "PORTAL_RETRY_BACKOFF_BASE": "600"}
    with (
        served(data_dir, tmp_path / "serve.log", **environment) as server,
        hostile("bomb", bomb=bomb) as bomber,
        receiver() as hook,
    ):
        org = make_org(server.base, admin, "acme")
        token = mint_token(settings, str(org["id"]))
        customer = make_customer(server.base, admin, org["id"], "ada@example.com")

        def endpoint(url: str) -> None:
            answer = httpx.post(
                f"{server.base}/v1/webhooks/endpoints",
                json={"url": url, "events": ["customer.updated"]},
                headers=bearer(token),
            )
            assert answer.status_code == 201, answer.text

        def touch(name: str) -> None:
            answer = httpx.patch(
                f"{server.base}/v1/customers/{customer['id']}", json={"name": name}, headers=bearer(token)
            )
            assert answer.status_code == 200, answer.text

        # Warm up: one ordinary delivery, so the HTTP client and its imports are already in memory.
        endpoint(hook.url)
        touch("Ada 1")
        hook.wait_for(1)
        time.sleep(0.3)
        before = _peak_rss_kib(server.process.pid)
        for index in range(8):
            endpoint(bomber.url(f"/bomb/{index}"))
        touch("Ada 2")
        wait_until(lambda: len(rows(settings, "SELECT 1 FROM webhook_deliveries")) >= 9, timeout=20)
        after = _peak_rss_kib(server.process.pid)
    growth_mib = (after - before) / 1024
    print(f"peak RSS before {before / 1024:.0f} MiB, after 8 gzip bombs {after / 1024:.0f} MiB (+{growth_mib:.1f})")
    assert growth_mib < 24, f"peak RSS grew by {growth_mib:.0f} MiB"
    bombed = rows(settings, "SELECT succeeded, http_code, response FROM webhook_deliveries WHERE response LIKE 'AAA%'")
    # Logged as Portal logs every answer: a success, with the first 2 KB of text (a bounded inflation of 2 KB).
    assert len(bombed) == 8 and all(d["succeeded"] == 1 and d["response"] == "A" * 2048 for d in bombed)
