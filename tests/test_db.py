"""Database discipline (DESIGN §6): migrations, pragmas on every connection, one serialized writer."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import aiosqlite
import pytest

from portal.db import Database, connect_sync
from portal.migrations import LATEST_VERSION, MIGRATIONS, SchemaTooNewError, migrate

EXPECTED_TABLES = {
    "organizations",
    "customers",
    "products",
    "product_prices",
    "product_benefits",
    "benefits",
    "orders",
    "order_items",
    "refunds",
    "subscriptions",
    "benefit_grants",
    "license_keys",
    "license_key_activations",
    "files",
    "login_codes",
    "customer_sessions",
    "api_tokens",
    "rate_limits",
    "events",
    "schema_migrations",
}


def tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {row[0] for row in rows}


def test_migrations_create_every_table_and_rerun_is_noop(tmp_path: Path) -> None:
    conn = connect_sync(tmp_path / "fresh.db")
    assert migrate(conn) == [m.version for m in MIGRATIONS]
    assert tables(conn) >= EXPECTED_TABLES
    schema_before = conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    assert migrate(conn) == []
    assert conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == schema_before
    versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == [m.version for m in MIGRATIONS]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    conn = connect_sync(tmp_path / "newer.db")
    migrate(conn)
    conn.execute(
        "INSERT INTO schema_migrations(version, name) VALUES (?, 'from the future')",
        (LATEST_VERSION + 1,),
    )
    with pytest.raises(SchemaTooNewError):
        migrate(conn)


def test_pragmas_hold_on_every_connection(data_dir: Path) -> None:
    async def scenario() -> list[tuple[int, str, int, int]]:
        db = await Database(data_dir / "portal.db", readers=3).open()
        seen = []
        try:
            conns = [db.writer, *db._all_readers]
            for conn in conns:
                values = []
                for pragma in ("busy_timeout", "journal_mode", "synchronous", "foreign_keys"):
                    async with conn.execute(f"PRAGMA {pragma}") as cur:
                        values.append((await cur.fetchone())[0])
                seen.append(tuple(values))
            # The writer thread's connection (transact when SQLite's lock is held), read from inside its thread.
            pragmas = ("busy_timeout", "journal_mode", "synchronous", "foreign_keys")
            tx_conn = db._tx_conn
            assert db._tx_thread is not None and tx_conn is not None
            seen.append(
                await asyncio.get_running_loop().run_in_executor(
                    db._tx_thread, lambda: tuple(tx_conn.execute(f"PRAGMA {p}").fetchone()[0] for p in pragmas)
                )
            )
            # The inline writer: the same, except that it never waits for the lock and never checkpoints.
            inline = await db.transact(lambda tx: tuple(tx.fetchval(f"PRAGMA {p}") for p in pragmas))
            autocheckpoint = await db.transact(lambda tx: tx.fetchval("PRAGMA wal_autocheckpoint"))
        finally:
            await db.close()
        assert inline == (0, "wal", 1, 1)
        assert autocheckpoint == 0
        return seen

    seen = asyncio.run(scenario())
    assert len(seen) == 5
    # synchronous=1 is NORMAL; foreign_keys=1 is ON
    assert all(values == (5000, "wal", 1, 1) for values in seen), seen


def test_full_synchronous_setting(data_dir: Path) -> None:
    async def scenario() -> int:
        db = await Database(data_dir / "portal.db", synchronous="FULL", readers=1).open()
        try:
            async with db.writer.execute("PRAGMA synchronous") as cur:
                return (await cur.fetchone())[0]
        finally:
            await db.close()

    assert asyncio.run(scenario()) == 2


ORG_SQL = (
    "INSERT INTO organizations (id, slug, name, receipt_prefix, created_at) "
    "VALUES (?, ?, ?, 'X', '2026-01-01T00:00:00.000000Z')"
)


async def _two_writers_one_rolls_back(write_a, write_b) -> None:  # type: ignore[no-untyped-def]
    """A writes, yields, then fails; B writes and commits while A is 'in flight'."""
    started = asyncio.Event()

    async def failing() -> None:
        with pytest.raises(RuntimeError):
            async with write_a() as tx:
                await tx.execute(ORG_SQL, ("a", "a", "A"))
                started.set()
                await asyncio.sleep(0.05)
                raise RuntimeError("boom")

    async def succeeding() -> None:
        await started.wait()
        async with write_b() as tx:
            await tx.execute(ORG_SQL, ("b", "b", "B"))

    await asyncio.gather(failing(), succeeding())


def test_shared_connection_bug_is_real(data_dir: Path) -> None:
    """Reproduce DESIGN §8: two 'transactions' on one shared connection, the rollback erases the other's write."""
    from contextlib import asynccontextmanager

    async def scenario() -> set[str]:
        conn = await aiosqlite.connect(data_dir / "portal.db", isolation_level=None)

        @asynccontextmanager
        async def naive_write():  # type: ignore[no-untyped-def]
            # What a naive app does: BEGIN on the shared connection unless a transaction is already open
            # (SQLite has no nested BEGIN), and only the request that began it commits or rolls back.
            owner = not conn.in_transaction
            if owner:
                await conn.execute("BEGIN")

            class Tx:
                execute = conn.execute

            try:
                yield Tx
            except BaseException:
                if owner:
                    await conn.execute("ROLLBACK")
                raise
            else:
                if owner:
                    await conn.execute("COMMIT")

        await _two_writers_one_rolls_back(naive_write, naive_write)
        async with conn.execute("SELECT slug FROM organizations") as cur:
            slugs = {row[0] for row in await cur.fetchall()}
        await conn.close()
        return slugs

    # B's committed-looking write is gone: it ran inside A's transaction and A's ROLLBACK erased it.
    assert asyncio.run(scenario()) == set()


def test_database_write_serializes_transactions(data_dir: Path) -> None:
    async def scenario() -> set[str]:
        db = await Database(data_dir / "portal.db").open()
        try:
            await _two_writers_one_rolls_back(db.write, db.write)
            return {row[0] for row in await db.fetchall("SELECT slug FROM organizations")}
        finally:
            await db.close()

    assert asyncio.run(scenario()) == {"b"}


def test_many_concurrent_writers_across_two_database_objects(data_dir: Path) -> None:
    """Two Database objects (as two worker processes would have) writing at once: no 'database is locked'."""

    async def scenario() -> int:
        dbs = [await Database(data_dir / "portal.db", readers=1).open() for _ in range(2)]
        try:

            async def write(i: int) -> None:
                async with dbs[i % 2].write() as tx:
                    await tx.execute(ORG_SQL, (f"id{i}", f"slug{i}", f"Org {i}"))
                    await asyncio.sleep(0)

            await asyncio.gather(*(write(i) for i in range(100)))
            return await dbs[0].fetchval("SELECT COUNT(*) FROM organizations")
        finally:
            for db in dbs:
                await db.close()

    assert asyncio.run(scenario()) == 100


def test_transact_commits_or_rolls_back_as_a_whole(data_dir: Path) -> None:
    async def scenario() -> set[str]:
        db = await Database(data_dir / "portal.db", readers=1).open()
        try:
            await db.transact(lambda tx: tx.execute(ORG_SQL, ("id-a", "a", "A")))

            def half_then_fail(tx):  # type: ignore[no-untyped-def]
                tx.execute(ORG_SQL, ("id-b", "b", "B"))
                raise ValueError("refused")

            with pytest.raises(ValueError, match="refused"):
                await db.transact(half_then_fail)
            return {row[0] for row in await db.fetchall("SELECT slug FROM organizations")}
        finally:
            await db.close()

    assert asyncio.run(scenario()) == {"a"}


def test_transact_and_write_from_two_database_objects_lose_no_update(data_dir: Path) -> None:
    """Read-modify-write counters through both write paths of two Database objects (two workers): every
    increment counts, none fails with 'database is locked'."""

    async def scenario() -> int:
        dbs = [await Database(data_dir / "portal.db", readers=1).open() for _ in range(2)]
        try:
            async with dbs[0].write() as tx:
                await tx.execute(ORG_SQL, ("id-c", "counter", "0"))

            def bump(tx):  # type: ignore[no-untyped-def]
                value = int(tx.fetchval("SELECT name FROM organizations WHERE slug = 'counter'"))
                tx.execute("UPDATE organizations SET name = ? WHERE slug = 'counter'", (str(value + 1),))

            async def bump_async(db: Database) -> None:
                async with db.write() as tx:
                    row = await tx.fetchone("SELECT name FROM organizations WHERE slug = 'counter'")
                    await asyncio.sleep(0)
                    await tx.execute(
                        "UPDATE organizations SET name = ? WHERE slug = 'counter'", (str(int(row[0]) + 1),)
                    )

            jobs = [dbs[i % 2].transact(bump) if i % 3 else bump_async(dbs[i % 2]) for i in range(120)]
            await asyncio.gather(*jobs)
            return int(await dbs[1].fetchval("SELECT name FROM organizations WHERE slug = 'counter'"))
        finally:
            for db in dbs:
                await db.close()

    assert asyncio.run(scenario()) == 120


def _org_count(path: Path) -> int:
    conn = connect_sync(path)
    try:
        return int(conn.execute("SELECT count(*) FROM organizations").fetchone()[0])
    finally:
        conn.close()


def test_transact_runs_inline_on_the_loop_when_the_lock_is_free(data_dir: Path) -> None:
    async def scenario() -> tuple[int, int]:
        db = await Database(data_dir / "portal.db", readers=1).open()
        try:

            def insert(tx):  # type: ignore[no-untyped-def]
                tx.execute(ORG_SQL, ("id-i", "inline", "I"))
                return threading.get_ident()

            return await db.transact(insert), threading.get_ident()
        finally:
            await db.close()

    ran_on, loop_thread = asyncio.run(scenario())
    assert ran_on == loop_thread
    assert _org_count(data_dir / "portal.db") == 1


def test_transact_waits_in_the_writer_thread_while_another_process_holds_the_lock(data_dir: Path) -> None:
    """Another worker process inside a write transaction: ``transact`` must neither fail nor block the event loop
    (reads keep being answered); it waits in the writer thread and commits once the lock is released."""
    path = data_dir / "portal.db"

    async def scenario() -> tuple[int, int, list[int]]:
        db = await Database(path, readers=1).open()
        other = connect_sync(path)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute(ORG_SQL, ("id-o", "other", "O"))

            def insert(tx):  # type: ignore[no-untyped-def]
                tx.execute(ORG_SQL, ("id-t", "mine", "T"))
                return threading.get_ident()

            task = asyncio.create_task(db.transact(insert))
            reads = []
            for _ in range(5):  # the loop keeps answering while the transaction waits
                await asyncio.sleep(0.05)
                reads.append(await db.fetchval("SELECT count(*) FROM organizations"))
            assert not task.done()
            other.execute("COMMIT")
            return await asyncio.wait_for(task, 10), threading.get_ident(), reads
        finally:
            other.close()
            await db.close()

    ran_on, loop_thread, reads = asyncio.run(scenario())
    assert ran_on != loop_thread
    assert reads == [0] * 5
    assert _org_count(path) == 2


def test_transact_without_inline_writer_under_full_synchronous(data_dir: Path) -> None:
    """With ``synchronous=FULL`` a commit fsyncs the WAL: never on the loop."""

    async def scenario() -> tuple[int, int]:
        db = await Database(data_dir / "portal.db", synchronous="FULL", readers=1).open()
        try:
            return await db.transact(lambda tx: threading.get_ident()), threading.get_ident()
        finally:
            await db.close()

    ran_on, loop_thread = asyncio.run(scenario())
    assert ran_on != loop_thread


def test_checkpoint_copies_inline_commits_back_into_the_database(data_dir: Path) -> None:
    path = data_dir / "portal.db"

    async def scenario() -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        db = await Database(path, readers=1).open()
        try:
            await db.checkpoint()
            for i in range(20):
                await db.transact(lambda tx, i=i: tx.execute(ORG_SQL, (f"id-{i}", f"org-{i}", "N")))
            first = await db.checkpoint()
            return first, await db.checkpoint()
        finally:
            await db.close()

    (busy, frames, done), (_, _, done_again) = asyncio.run(scenario())
    assert busy == 0
    assert frames >= 20  # inline commits never checkpoint by themselves: the WAL still held them all
    assert done == frames
    assert done_again in (0, frames)  # nothing new to copy
    assert _org_count(path) == 20


def test_a_write_sent_through_a_reader_is_refused_and_changes_nothing(data_dir: Path) -> None:
    """Readers are ``query_only``: a write sent to ``fetchall``/``fetchval`` (inline on the loop) or to a pooled
    reader (its thread) would otherwise commit outside the writer lock. It fails, and nothing is written."""

    async def scenario() -> list[str]:
        db = await Database(data_dir / "portal.db", readers=1).open()
        refused = []
        try:
            attempts = [
                lambda: db.fetchall(ORG_SQL + " RETURNING id", ("id-r1", "r1", "R")),
                lambda: db.fetchval("UPDATE organizations SET name = 'changed'"),
                lambda: db.fetchone("DELETE FROM organizations RETURNING id"),
            ]
            async with db.write() as tx:
                await tx.execute(ORG_SQL, ("id-w", "kept", "Kept"))
            for attempt in attempts:
                with pytest.raises(sqlite3.OperationalError, match="readonly") as caught:
                    await attempt()
                refused.append(str(caught.value))
            async with db.read() as conn:  # a pooled reader, in its aiosqlite thread
                with pytest.raises(sqlite3.OperationalError, match="readonly"):
                    await conn.execute(ORG_SQL, ("id-r2", "r2", "R"))
            # The readers still read, and the writer still writes.
            assert [row["slug"] for row in await db.fetchall("SELECT slug FROM organizations")] == ["kept"]
            await db.transact(lambda tx: tx.execute(ORG_SQL, ("id-t", "transacted", "T")))
        finally:
            await db.close()
        return refused

    assert len(asyncio.run(scenario())) == 3
    conn = connect_sync(data_dir / "portal.db")
    try:
        rows = conn.execute("SELECT slug, name FROM organizations ORDER BY slug").fetchall()
    finally:
        conn.close()
    assert [tuple(row) for row in rows] == [("kept", "Kept"), ("transacted", "T")]


def test_bulk_write_commits_rolls_back_and_waits_for_another_process(data_dir: Path) -> None:
    """``bulk_write`` (the importer's): the async services' statements run at once on the inline writer; an error
    rolls the whole block back; with another process holding SQLite's lock it falls back to ``write()`` and
    commits once the lock is released."""
    path = data_dir / "portal.db"

    async def scenario() -> tuple[str, str]:
        db = await Database(path, readers=1).open()
        other = connect_sync(path)
        try:
            async with db.bulk_write() as tx:
                await tx.execute(ORG_SQL, ("id-a", "a", "A"))
                assert await tx.fetchval("SELECT slug FROM organizations WHERE id = 'id-a'") == "a"
                inline = type(tx).__name__
            with pytest.raises(ValueError, match="refused"):
                async with db.bulk_write() as tx:
                    await tx.execute(ORG_SQL, ("id-b", "b", "B"))
                    raise ValueError("refused")
            other.execute("BEGIN IMMEDIATE")
            other.execute(ORG_SQL, ("id-o", "other", "O"))

            async def insert() -> str:
                async with db.bulk_write() as tx:
                    await tx.execute(ORG_SQL, ("id-c", "c", "C"))
                    return type(tx).__name__

            task = asyncio.create_task(insert())
            await asyncio.sleep(0.2)
            assert not task.done()
            other.execute("COMMIT")
            return inline, await asyncio.wait_for(task, 10)
        finally:
            other.close()
            await db.close()

    inline, fallback = asyncio.run(scenario())
    assert (inline, fallback) == ("InlineTransaction", "Transaction")
    conn = connect_sync(path)
    try:
        assert {row[0] for row in conn.execute("SELECT slug FROM organizations")} == {"a", "other", "c"}
    finally:
        conn.close()


async def _count_loop_turns(turns: list[int]) -> None:
    """Counts event-loop turns until cancelled: a statement that hops to a thread lets it run."""
    while True:
        turns[0] += 1
        await asyncio.sleep(0)


def test_write_inline_runs_a_block_of_async_statements_without_a_loop_turn(data_dir: Path) -> None:
    """``write_inline`` (hot writes written with the async services): with SQLite's lock free, 30 statements of
    one transaction run without giving the event loop a turn (no hop to a thread per statement, which is what
    ``write()`` costs); the block commits as a whole or, on an error, rolls back as a whole."""

    async def scenario() -> tuple[int, int]:
        db = await Database(data_dir / "portal.db", readers=1).open()
        turns = [0]
        ticker = asyncio.create_task(_count_loop_turns(turns))
        await asyncio.sleep(0)
        try:
            async with db.write() as tx:  # the reference: one loop turn (at least) per statement
                before = turns[0]
                for i in range(30):
                    await tx.execute(ORG_SQL, (f"id-w{i}", f"w{i}", "W"))
                write_turns = turns[0] - before
            async with db.write_inline() as tx:
                before = turns[0]
                for i in range(30):
                    await tx.execute(ORG_SQL, (f"id-i{i}", f"i{i}", "I"))
                    assert await tx.fetchval("SELECT slug FROM organizations WHERE id = ?", (f"id-i{i}",)) == f"i{i}"
                inline_turns = turns[0] - before
            with pytest.raises(ValueError, match="refused"):
                async with db.write_inline() as tx:
                    await tx.execute(ORG_SQL, ("id-x", "x", "X"))
                    raise ValueError("refused")
            return write_turns, inline_turns
        finally:
            ticker.cancel()
            await db.close()

    write_turns, inline_turns = asyncio.run(scenario())
    assert write_turns >= 30
    assert inline_turns == 0
    conn = connect_sync(data_dir / "portal.db")
    try:
        slugs = {row[0] for row in conn.execute("SELECT slug FROM organizations")}
    finally:
        conn.close()
    assert slugs == {f"w{i}" for i in range(30)} | {f"i{i}" for i in range(30)}


def test_write_inline_waits_off_the_loop_while_another_process_holds_the_lock(data_dir: Path) -> None:
    """Another worker process inside a write transaction: ``write_inline`` neither fails nor blocks the event loop
    (reads keep being answered) and commits once the lock is released; its statements then still run without a
    loop turn each. Cancelled while waiting, it leaves no transaction open behind it."""
    path = data_dir / "portal.db"

    async def scenario() -> tuple[list[int], int]:
        db = await Database(path, readers=1).open()
        other = connect_sync(path)
        turns = [0]
        ticker = asyncio.create_task(_count_loop_turns(turns))
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute(ORG_SQL, ("id-o", "other", "O"))

            async def insert(slug: str) -> int:
                async with db.write_inline() as tx:
                    before = turns[0]
                    for i in range(10):
                        await tx.execute(ORG_SQL, (f"id-{slug}{i}", f"{slug}{i}", "T"))
                    return turns[0] - before

            task = asyncio.create_task(insert("mine"))
            reads = []
            for _ in range(5):  # the loop keeps answering while the transaction waits
                await asyncio.sleep(0.05)
                reads.append(await db.fetchval("SELECT count(*) FROM organizations"))
            assert not task.done()
            cancelled = asyncio.create_task(insert("gone"))
            await asyncio.sleep(0.05)
            cancelled.cancel()
            other.execute("COMMIT")
            inline_turns = await asyncio.wait_for(task, 10)
            with pytest.raises(asyncio.CancelledError):
                await cancelled
            await db.transact(lambda tx: tx.execute(ORG_SQL, ("id-after", "after", "A")))  # the lock is free
            return reads, inline_turns
        finally:
            ticker.cancel()
            other.close()
            await db.close()

    reads, inline_turns = asyncio.run(scenario())
    assert reads == [0] * 5
    assert inline_turns == 0
    conn = connect_sync(path)
    try:
        slugs = {row[0] for row in conn.execute("SELECT slug FROM organizations")}
    finally:
        conn.close()
    assert slugs == {"other", "after"} | {f"mine{i}" for i in range(10)}


def test_write_inline_from_two_database_objects_loses_no_update(data_dir: Path) -> None:
    """Read-modify-write counters through ``write_inline``, ``write`` and ``transact`` of two Database objects (two
    workers), some awaiting in the middle of the transaction: every increment counts, none fails."""

    async def scenario() -> int:
        dbs = [await Database(data_dir / "portal.db", readers=1).open() for _ in range(2)]
        try:
            async with dbs[0].write_inline() as tx:
                await tx.execute(ORG_SQL, ("id-c", "counter", "0"))

            async def bump(db: Database, i: int) -> None:
                if i % 3 == 2:
                    await db.transact(
                        lambda tx: tx.execute(
                            "UPDATE organizations SET name = CAST(name AS INTEGER) + 1 WHERE slug = 'counter'"
                        )
                    )
                    return
                writer = db.write_inline if i % 3 == 0 else db.write
                async with writer() as tx:
                    row = await tx.fetchone("SELECT name FROM organizations WHERE slug = 'counter'")
                    if i % 2:
                        await asyncio.sleep(0)
                    await tx.execute(
                        "UPDATE organizations SET name = ? WHERE slug = 'counter'", (str(int(row[0]) + 1),)
                    )

            await asyncio.gather(*(bump(dbs[i % 2], i) for i in range(150)))
            return int(await dbs[1].fetchval("SELECT name FROM organizations WHERE slug = 'counter'"))
        finally:
            for db in dbs:
                await db.close()

    assert asyncio.run(scenario()) == 150


def test_write_inline_is_write_under_full_synchronous(data_dir: Path) -> None:
    """With ``synchronous=FULL`` a commit fsyncs the WAL: ``write_inline`` is then plain ``write()``."""

    async def scenario() -> str:
        db = await Database(data_dir / "portal.db", synchronous="FULL", readers=1).open()
        try:
            async with db.write_inline() as tx:
                await tx.execute(ORG_SQL, ("id-f", "full", "F"))
                return type(tx).__name__
        finally:
            await db.close()

    assert asyncio.run(scenario()) == "Transaction"
    assert _org_count(data_dir / "portal.db") == 1
