"""The email outbox's queue rules without SMTP: an atomic claim (two writers on one file never take the same
message), the lease that hands a crashed worker's message to another, backoff arithmetic, dedupe keys, and the
``portal outbox`` command (list with status/attempts/error, ``--retry ID``)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from portal import cli
from portal.clock import iso
from portal.db import Database
from portal.notifications import outbox
from portal.notifications.backoff import MAX_DELAY_SECONDS, lease_end, retry_delay
from portal.settings import Settings

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


async def _open(settings: Settings) -> Database:
    return await Database(settings.db_path, readers=1).open()


async def _fill(db: Database, count: int, **fields: object) -> list[str]:
    ids = []
    async with db.write() as tx:
        for index in range(count):
            message_id = await outbox.enqueue(
                tx, kind="receipt", to_address=f"c{index}@example.com", context={}, now=NOW, **fields
            )
            assert message_id is not None
            ids.append(message_id)
    return ids


def test_two_writers_never_claim_the_same_message(settings: Settings) -> None:
    async def scenario() -> tuple[list[str], list[str], list[str]]:
        first, second = await _open(settings), await _open(settings)
        try:
            ids = await _fill(first, 40)

            async def drain(db: Database) -> list[str]:
                taken: list[str] = []
                while True:
                    async with db.write() as tx:
                        batch = await outbox.claim(tx, now=NOW, lease_until=lease_end(NOW), limit=2)
                    if not batch:
                        return taken
                    taken.extend(message.id for message in batch)
                    await asyncio.sleep(0.002)  # let the other writer in between

            a, b = await asyncio.gather(drain(first), drain(second))
            return ids, a, b
        finally:
            await first.close()
            await second.close()

    ids, a, b = asyncio.run(scenario())
    assert a and b, "both writers took part"
    assert not set(a) & set(b)
    assert sorted(a + b) == sorted(ids)


def test_a_crashed_workers_claim_expires_and_is_taken_again(settings: Settings) -> None:
    async def scenario() -> None:
        db = await _open(settings)
        try:
            [message_id] = await _fill(db, 1)
            async with db.write() as tx:
                [claimed] = await outbox.claim(tx, now=NOW, lease_until=lease_end(NOW), limit=10)
            assert claimed.attempts == 1
            # The worker "dies" here. Before the lease ends nobody else may take it ...
            later = NOW + timedelta(seconds=299)
            assert not await outbox.any_due(db, later)
            # ... after, another worker does (at-least-once), and the first one's late answer changes nothing.
            after = lease_end(NOW) + timedelta(seconds=1)
            async with db.write() as tx:
                [again] = await outbox.claim(tx, now=after, lease_until=lease_end(after), limit=10)
                await outbox.mark_failed(tx, message_id, 1, error="late", retry_at=None, now=after)
                await outbox.mark_sent(tx, message_id, again.attempts, now=after)
            assert again.id == message_id and again.attempts == 2
            [row] = await outbox.list_messages(db)
            assert row.status == "sent" and row.last_error is None
        finally:
            await db.close()

    asyncio.run(scenario())


def test_dedupe_key_queues_once(settings: Settings) -> None:
    async def scenario() -> None:
        db = await _open(settings)
        try:
            async with db.write() as tx:
                kwargs = {"kind": "renewal_reminder", "to_address": "a@example.com", "context": {}, "now": NOW}
                assert await outbox.enqueue(tx, dedupe_key="renewal:x:1", **kwargs) is not None
                assert await outbox.enqueue(tx, dedupe_key="renewal:x:1", **kwargs) is None
                assert await outbox.enqueue(tx, dedupe_key="renewal:x:2", **kwargs) is not None
            assert len(await outbox.list_messages(db)) == 2
        finally:
            await db.close()

    asyncio.run(scenario())


def test_backoff_doubles_and_is_capped() -> None:
    assert [retry_delay(30, attempt) for attempt in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert retry_delay(30, 40) == MAX_DELAY_SECONDS


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("PORTAL_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("PORTAL_SECRET_KEY", settings.secret_key)
    return settings


def test_portal_outbox_lists_and_retries(cli_env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    async def prepare() -> tuple[str, str]:
        db = await _open(cli_env)
        try:
            failed_id, sent_id = await _fill(db, 2)
            async with db.write() as tx:
                for message in await outbox.claim(tx, now=NOW, lease_until=lease_end(NOW), limit=10):
                    if message.id == failed_id:
                        error = "SMTPRecipientsRefused: 550 no such user"
                        await outbox.mark_failed(tx, failed_id, message.attempts, error=error, retry_at=None, now=NOW)
                    else:
                        await outbox.mark_sent(tx, sent_id, message.attempts, now=NOW)
            return failed_id, sent_id
        finally:
            await db.close()

    failed_id, sent_id = asyncio.run(prepare())
    assert cli.main(["outbox"]) == 0
    listing = capsys.readouterr().out
    failed_line = next(line for line in listing.splitlines() if line.startswith(failed_id))
    assert "failed" in failed_line and " 1  receipt" in failed_line and "550 no such user" in failed_line
    assert f"sent {iso(NOW)}" in next(line for line in listing.splitlines() if line.startswith(sent_id))
    assert cli.main(["outbox", "--status", "failed"]) == 0
    assert sent_id not in capsys.readouterr().out
    assert cli.main(["outbox", "--retry", failed_id]) == 0
    assert "queued again" in capsys.readouterr().out
    assert cli.main(["outbox", "--retry", sent_id]) == 1
    assert cli.main(["outbox", "--status", "pending"]) == 0
    pending = capsys.readouterr().out
    assert failed_id in pending and "next " in pending
    assert Path(cli_env.db_path).exists()
