"""``last_seen_at`` is refreshed at most once a minute per session and process, even when many requests of the
same session arrive together just after the minute: one write, not one per request (a burst of writes that, with
several worker processes, also queued on SQLite's write lock)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx

from portal.clock import Clock
from portal.db import Database
from portal.sessions.auth import cookie_name
from portal.settings import Settings
from tests.api_server import served_portal
from tests.browser_helpers import one
from tests.signin_helpers import insert_customer, insert_org, insert_session


def test_concurrent_requests_refresh_a_session_once(settings: Settings) -> None:
    clock = Clock()
    org = insert_org(settings, "touchy")
    customer = insert_customer(settings, org, "busy@example.com")
    token = insert_session(settings, org, customer, now=clock.now() - timedelta(seconds=90))
    before = one(settings, "SELECT last_seen_at FROM customer_sessions WHERE customer_id = ?", (customer,))
    writes: list[str] = []
    transact = Database.transact

    async def counting(self: Database, work):  # type: ignore[no-untyped-def]
        writes.append("transact")
        return await transact(self, work)

    async def scenario(base_url: str) -> list[int]:
        cookies = {cookie_name(settings, "touchy"): token}
        async with httpx.AsyncClient(base_url=base_url, cookies=cookies, timeout=10) as client:
            answers = await asyncio.gather(*(client.get("/touchy/portal/orders") for _ in range(20)))
        return [answer.status_code for answer in answers]

    Database.transact = counting  # type: ignore[method-assign]
    try:
        with served_portal(settings, clock=clock) as (base_url, _):
            assert asyncio.run(scenario(base_url)) == [200] * 20
    finally:
        Database.transact = transact  # type: ignore[method-assign]
    after = one(settings, "SELECT last_seen_at FROM customer_sessions WHERE customer_id = ?", (customer,))
    assert after["last_seen_at"] > before["last_seen_at"]
    assert writes == ["transact"]
