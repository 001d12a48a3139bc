"""Hot requests never wait on the event loop (issue 17.9, bench/README.md "Writes under floods"): under a flood that
keeps the loop busy, every turn a request waits for is a wait behind every other ready request. A customer's billing
save (its transaction through ``db.write_inline``, its dependencies resolved one by one) and a read of the same
customer take no turn at all; counted by a task that ticks once per turn, on the app's own loop."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from portal.sessions.store import token_digest
from portal.settings import Settings
from tests.apps import app_for

pytestmark = pytest.mark.seeded


def _api_session(settings: Settings, email: str) -> str:
    """A new API customer session for ``email`` (the row the API sign-in writes), its token."""
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    expires = (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    token = secrets.token_urlsafe(32)
    conn = sqlite3.connect(settings.db_path, isolation_level=None)
    try:
        org_id, customer_id = conn.execute(
            "SELECT organization_id, id FROM customers WHERE email = ? AND deleted_at IS NULL LIMIT 1", (email,)
        ).fetchone()
        conn.execute(
            "INSERT INTO customer_sessions (id, token_hash, kind, organization_id, customer_id, expires_at, "
            "last_seen_at, created_at) VALUES (?, ?, 'api', ?, ?, ?, ?, ?)",
            (
                f"turns-{secrets.token_hex(8)}",
                token_digest(settings.secret_key, token),
                org_id,
                customer_id,
                expires,
                stamp,
                stamp,
            ),
        )
    finally:
        conn.close()
    return token


def test_a_billing_save_and_a_read_take_no_event_loop_turn(settings: Settings, data_dir: Path) -> None:
    token = _api_session(settings, "alex@example.com")
    app = app_for(settings)

    async def scenario() -> tuple[list[int], list[int], str]:
        turns = [0]

        async def tick() -> None:
            while True:
                turns[0] += 1
                await asyncio.sleep(0)

        async with app.lifespan():
            transport = httpx.ASGITransport(app)
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(transport=transport, base_url=settings.base_url, headers=headers) as client:
                path = "/v1/customer-portal/customers/me"
                for i in range(3):  # warm: caches, the session's activity refresh
                    (await client.patch(path, json={"billing_name": f"Warm {i}"})).raise_for_status()
                ticker = asyncio.create_task(tick())
                await asyncio.sleep(0)
                saves, reads = [], []
                for i in range(9):
                    before = turns[0]
                    answer = await client.patch(path, json={"billing_name": f"Alex Turns {i}"})
                    assert answer.status_code == 200, answer.text
                    saves.append(turns[0] - before)
                    before = turns[0]
                    name = (await client.get(path)).json()["billing_name"]
                    reads.append(turns[0] - before)
                ticker.cancel()
        return saves, reads, name

    saves, reads, name = asyncio.run(scenario())
    assert name == "Alex Turns 8"
    # The median leaves out a request that met a background worker's transaction (it then waits its turn).
    assert sorted(saves)[len(saves) // 2] == 0, saves
    assert sorted(reads)[len(reads) // 2] == 0, reads
