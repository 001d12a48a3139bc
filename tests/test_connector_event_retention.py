"""Processors' events are not kept forever (``portal/connectors/retention.py``): applied and ignored events older
than ``PORTAL_CONNECTOR_EVENT_RETENTION_DAYS`` are deleted by the running app, in batches, while events still
waiting for a price mapping or a retry stay whatever their age; ``0`` keeps everything."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from litestar.testing import TestClient

from portal.clock import Clock, iso, new_id
from portal.connectors.retention import BATCH, prune_events
from portal.db import Database, connect_sync
from portal.settings import Settings
from tests.apps import app_for
from tests.signin_helpers import insert_org

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _connection(settings: Settings, slug: str) -> str:
    connection_id = new_id()
    conn = connect_sync(settings.db_path)
    try:
        conn.execute(
            "INSERT INTO connector_connections (id, organization_id, processor, secrets, created_at) "
            "VALUES (?, ?, 'stripe', '{}', ?)",
            (connection_id, insert_org(settings, slug), iso(NOW)),
        )
    finally:
        conn.close()
    return connection_id


def _events(
    settings: Settings, connection_id: str, status: str, days_ago: float, count: int = 1, *, now: datetime = NOW
) -> list[str]:
    received = iso(now - timedelta(days=days_ago))
    ids = [f"evt_{status}_{days_ago}_{n}_{new_id()[:8]}" for n in range(count)]
    conn = connect_sync(settings.db_path)
    try:
        conn.executemany(
            "INSERT INTO connector_events (id, connection_id, event_id, type, created, payload, status, received_at) "
            "VALUES (?, ?, ?, 'invoice.paid', 0, '{}', ?, ?)",
            [(new_id(), connection_id, event_id, status, received) for event_id in ids],
        )
    finally:
        conn.close()
    return ids


def _stored(settings: Settings) -> set[str]:
    conn = connect_sync(settings.db_path)
    try:
        return {row[0] for row in conn.execute("SELECT event_id FROM connector_events")}
    finally:
        conn.close()


def _prune(settings: Settings, days: int) -> int:
    async def work() -> int:
        db = await Database(settings.db_path, readers=1).open()
        try:
            return await prune_events(db, now=NOW, days=days)
        finally:
            await db.close()

    return asyncio.run(work())


def test_old_applied_and_ignored_events_go_and_waiting_ones_stay(settings: Settings) -> None:
    acme, lumen = _connection(settings, "acme"), _connection(settings, "lumen")
    gone = _events(settings, acme, "applied", 91) + _events(settings, lumen, "ignored", 200)
    kept = (
        _events(settings, acme, "unmapped", 400)  # applied once its price is mapped
        + _events(settings, lumen, "failed", 120)  # a replay still applies it
        + _events(settings, acme, "applied", 89)  # inside the window: still known as a duplicate
        + _events(settings, lumen, "ignored", 1)
    )

    assert _prune(settings, 0) == 0  # 0 keeps everything
    assert _stored(settings) == set(gone + kept)
    assert _prune(settings, 90) == len(gone)
    assert _stored(settings) == set(kept)
    assert _prune(settings, 90) == 0


def test_a_backlog_goes_in_batches(settings: Settings) -> None:
    acme = _connection(settings, "acme")
    old = _events(settings, acme, "applied", 100, count=BATCH + 7)
    recent = _events(settings, acme, "applied", 2)

    assert _prune(settings, 30) == BATCH  # a full batch: the background loop runs it again at once
    assert _prune(settings, 30) == 7
    assert _stored(settings) == set(recent)
    assert len(old) == BATCH + 7


def test_the_running_app_prunes_with_its_setting(settings: Settings) -> None:
    acme, now = _connection(settings, "acme"), Clock().now()
    stale = _events(settings, acme, "applied", 40, now=now)
    waiting = _events(settings, acme, "unmapped", 40, now=now)
    fresh = _events(settings, acme, "applied", 10, now=now)
    app = app_for(msgspec.structs.replace(settings, connector_event_retention_days=30), clock=Clock())
    with TestClient(app, base_url="http://testserver.local"):  # its background tasks run while it is up
        deadline = time.monotonic() + 10
        while set(stale) & _stored(settings) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert _stored(settings) == set(waiting + fresh)


@pytest.mark.parametrize(("days", "ok"), [(0, True), (7, True), (365, True), (6, False), (-1, False)])
def test_the_setting_keeps_clear_of_the_processors_retry_windows(days: int, ok: bool) -> None:
    problems = Settings(connector_event_retention_days=days).validate()
    named = [p for p in problems if p.startswith("PORTAL_CONNECTOR_EVENT_RETENTION_DAYS")]
    assert (named == []) is ok, problems
