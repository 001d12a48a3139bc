"""The SQLite database: pragmas, a pool of reader connections, and ONE writer behind a lock.

Why this shape (DESIGN §6, §8): one aiosqlite connection shared by concurrent requests lets one request's
ROLLBACK erase another's write, and plain ``BEGIN`` with several writers yields "database is locked". So:

* every connection gets the same pragmas, in order: ``busy_timeout``, ``journal_mode=WAL``, ``synchronous``,
  ``foreign_keys=ON``; all are opened with ``isolation_level=None`` (we issue BEGIN/COMMIT ourselves);
* reads borrow a connection from a small pool, one request at a time; ``fetchone``/``fetchall``/``fetchval`` first
  try one more reader connection *inline* on the event loop (see ``INLINE_READ_BUDGET``). Every reader connection
  is ``PRAGMA query_only=ON``: a write sent to ``db.fetchall`` fails (``sqlite3.OperationalError``, "readonly")
  instead of committing outside the writer lock;
* every write goes through ``async with db.write() as tx:``, which holds an ``asyncio.Lock`` around
  ``BEGIN IMMEDIATE … COMMIT`` (ROLLBACK on any exception), so in-process writers never interleave and writers in
  other processes (``--workers N``) queue on SQLite's own lock via ``busy_timeout`` instead of failing;
* short, hot transactions (license-key validation, session activity) use ``await db.transact(work)`` instead:
  ``work`` is a plain function run with the whole ``BEGIN IMMEDIATE … COMMIT`` at once, under the same lock.
  ``db.write()`` holds SQLite's write lock across several hops and event-loop turns (other requests run in
  between), so under load another worker process waits on it, in SQLite's busy-handler sleeps of 1, 2, 5, 10 ms…;
  ``transact`` holds it for the statements only (bench/README.md). It runs inline on the event loop, on its own
  connection, when SQLite's write lock is free at once (``busy_timeout=0``) and ``synchronous`` is NORMAL (a commit
  is then a write to the WAL, no fsync), which costs less than two thread hand-overs (figures: bench/README.md's
  speed-mechanisms table). Otherwise (another
  process holds the lock, or FULL) it runs in one hop to a dedicated writer thread, which waits for the lock. That
  connection never checkpoints (``wal_autocheckpoint=0``: a checkpoint copies pages and fsyncs, not for the loop);
  ``checkpoint()`` does it in the writer thread, which the background tasks call every few seconds.

When to use which: ``async with db.write() as tx`` is the default, for any transaction that awaits anything between
its statements (another query's result feeding the next, a service function, a hook that queues an email); it may
be as long as it needs, but holds SQLite's write lock across event-loop turns. ``await db.transact(work)`` is for a
short, hot transaction whose statements are all known once it starts: ``work`` is a plain function (no ``await``,
no event loop, no I/O but these statements), called on the loop or in the writer thread, so it must not depend on
which. ``async with db.write_inline() as tx`` is ``write()`` for a short, hot transaction written with the async
area services (a processor's event, a customer's billing save): its statements run at once on the inline writer,
on the loop's thread, with no hop (and no event-loop turn) per statement; it makes one hop only to wait when another
process holds SQLite's lock, and is plain ``write()`` under FULL. ``bulk_write()`` is the same for a CLI's bulk
work. None of them may be nested in another (they all take the same ``asyncio.Lock``).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

import aiosqlite
import msgspec

T = TypeVar("T")
Params = Sequence[Any] | dict[str, Any]

BUSY_TIMEOUT_MS = 5000

# An indexed read costs less in SQLite than handing it to an aiosqlite thread and back costs in wake-ups and GIL
# hand-overs (and much more at p99 under load). So reads run inline on the event loop first;
# a progress handler interrupts any statement still running after this budget (or hitting a lock), and it is then
# run again on a pool connection in its thread, so one slow query never stalls the loop. Figures: bench/README.md's
# speed-mechanisms table ("Reads inline on the event loop").
INLINE_READ_BUDGET = 0.002  # seconds
_PROGRESS_EVERY = 500  # SQLite VM instructions between budget checks


# On every reader connection (pooled and inline): a write sent to a read method would otherwise commit in autocommit
# mode, outside the writer lock and its BEGIN IMMEDIATE.
READER_PRAGMA = "PRAGMA query_only=ON"


def pragma_statements(synchronous: str) -> list[str]:
    """The pragmas every connection runs, in order."""
    return [
        f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
        "PRAGMA journal_mode=WAL",
        # NORMAL is safe with WAL (no corruption); FULL also survives power loss with the last commits.
        "PRAGMA synchronous=" + ("FULL" if synchronous == "FULL" else "NORMAL"),
        "PRAGMA foreign_keys=ON",
    ]


def connect_sync(path: Path, synchronous: str = "NORMAL") -> sqlite3.Connection:
    """A blocking connection with the same pragmas (CLI tools, backups, tests)."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.row_factory = sqlite3.Row
    for statement in pragma_statements(synchronous):
        conn.execute(statement)
    return conn


class Transaction:
    """The writer connection inside ``BEGIN IMMEDIATE``; only valid inside ``db.write()``."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, params: Params = ()) -> aiosqlite.Cursor:
        return await self.conn.execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        await self.conn.executemany(sql, rows)

    async def fetchone(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        # One hop to the writer's thread (execute + fetch + close), not three.
        return list(await self.conn.execute_fetchall(sql, params))

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]


class InlineTransaction(Transaction):
    """A ``Transaction`` whose statements run at once on a blocking connection, on the calling thread: no hop to
    the writer thread per statement (``Database.bulk_write``). The async area services run unchanged on it."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.sync = conn

    async def execute(self, sql: str, params: Params = ()) -> Any:
        return self.sync.execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        self.sync.executemany(sql, rows)

    async def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        return self.sync.execute(sql, params).fetchall()


class SyncTransaction:
    """The statements of a ``db.transact(work)`` body: plain blocking calls, in the writer thread."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Params = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def fetchone(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(sql, params).fetchone()
        return row

    def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()

    def fetchval(self, sql: str, params: Params = ()) -> Any:
        row = self.fetchone(sql, params)
        return None if row is None else row[0]


class Database:
    """Reader pool + single writer over one SQLite file. Create, ``await open()``, use, ``await close()``."""

    def __init__(
        self,
        path: Path,
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        readers: int = 4,
    ) -> None:
        self.path = Path(path)
        self.synchronous = synchronous
        self.reader_count = max(1, readers)
        self._writer: aiosqlite.Connection | None = None
        self._write_lock: asyncio.Lock | None = None
        self._readers: asyncio.Queue[aiosqlite.Connection] | None = None
        self._all_readers: list[aiosqlite.Connection] = []
        self._inline: sqlite3.Connection | None = None
        self._inline_thread: int | None = None
        self._deadline = 0.0
        self._interrupted = False
        self._tx_conn: sqlite3.Connection | None = None
        self._tx_thread: ThreadPoolExecutor | None = None
        self._inline_writer: sqlite3.Connection | None = None

    async def _connect(self, *, reader: bool) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        for statement in pragma_statements(self.synchronous):
            await conn.execute(statement)
        if reader:
            await conn.execute(READER_PRAGMA)
        return conn

    async def open(self) -> Database:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = await self._connect(reader=False)
        self._write_lock = asyncio.Lock()
        self._readers = asyncio.Queue()
        for _ in range(self.reader_count):
            conn = await self._connect(reader=True)
            self._all_readers.append(conn)
            self._readers.put_nowait(conn)
        self._inline = connect_sync(self.path, self.synchronous)
        self._inline.execute("PRAGMA busy_timeout=0")  # never wait for a lock on the loop: retry in a thread
        self._inline.execute(READER_PRAGMA)
        self._inline.set_progress_handler(self._over_budget, _PROGRESS_EVERY)
        self._inline_thread = threading.get_ident()
        self._tx_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="portal-transact")
        self._tx_conn = await asyncio.get_running_loop().run_in_executor(self._tx_thread, self._connect_transact)
        if self.synchronous == "NORMAL":
            # Used on the loop's thread, except that ``write_inline`` may wait for SQLite's lock on it in the writer
            # thread (under the write lock, so never from two threads at once): hence check_same_thread=False.
            self._inline_writer = self._connect_transact()
            self._inline_writer.execute("PRAGMA busy_timeout=0")  # a held lock: go to the writer thread instead
            self._inline_writer.execute("PRAGMA wal_autocheckpoint=0")  # see checkpoint()
        return self

    def _connect_transact(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        for statement in pragma_statements(self.synchronous):
            conn.execute(statement)
        return conn

    async def close(self) -> None:
        if self._write_lock is not None and self._writer is not None:
            async with self._write_lock:
                await self._writer.close()
        for conn in self._all_readers:
            await conn.close()
        if self._inline is not None:
            self._inline.close()
        if self._inline_writer is not None:
            self._inline_writer.close()
            self._inline_writer = None
        if self._tx_thread is not None:
            if self._tx_conn is not None:
                self._tx_thread.submit(self._tx_conn.close).result()
            self._tx_thread.shutdown(wait=True)
        self._tx_conn = None
        self._tx_thread = None
        self._writer = None
        self._all_readers = []
        self._inline = None

    @property
    def writer(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise RuntimeError("Database is not open")
        return self._writer

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Transaction]:
        """One write transaction: lock, ``BEGIN IMMEDIATE``, yield, ``COMMIT`` (``ROLLBACK`` on error)."""
        if self._write_lock is None:
            raise RuntimeError("Database is not open")
        async with self._write_lock:
            conn = self.writer
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(conn)
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            else:
                await conn.execute("COMMIT")

    @asynccontextmanager
    async def bulk_write(self) -> AsyncIterator[Transaction]:
        """``write()`` for bulk work on the loop's thread (``portal import``): the transaction runs on the inline
        writer, each statement at once instead of a hop to the writer thread each (the hops are most of a bulk
        import's time). It blocks the event loop for the whole block: only for work that has nothing else to
        serve (a CLI), never in a request. Falls back to ``write()`` when SQLite's lock is held by another process
        (a running server) or there is no inline writer (``synchronous=FULL``)."""
        if self._write_lock is None:
            raise RuntimeError("Database is not open")
        await self._write_lock.acquire()
        try:
            conn = self._begin_inline()
        except BaseException:
            self._write_lock.release()
            raise
        async with self._inline_or_write(conn) as tx:
            yield tx

    @asynccontextmanager
    async def write_inline(self) -> AsyncIterator[Transaction]:
        """``write()`` for a short, hot transaction written with the async area services (a processor's event, a
        customer's billing save): its statements run at once on the inline writer, on the loop's thread, instead
        of one hop to the writer thread each (figures: bench/README.md's speed-mechanisms table). The block blocks
        the event loop while it runs statements, so it must be short (tens of statements, no scans); if it awaits
        something else (it should not), SQLite's lock is held across event-loop turns, as with ``write()``.

        SQLite's lock free at once: no hop at all. Held by another process: one hop to the writer thread, which
        waits for it on the inline writer (``busy_timeout``), then the statements run on the loop as before. No
        inline writer (``synchronous=FULL``, where a commit is an fsync, not for the loop) or not on the loop's
        thread: exactly ``write()``."""
        if self._write_lock is None:
            raise RuntimeError("Database is not open")
        await self._write_lock.acquire()
        try:
            conn = self._begin_inline()
            if conn is None:
                conn = await self._begin_inline_waiting()
        except BaseException:
            self._write_lock.release()
            raise
        async with self._inline_or_write(conn) as tx:
            yield tx

    @asynccontextmanager
    async def _inline_or_write(self, conn: sqlite3.Connection | None) -> AsyncIterator[Transaction]:
        """The transaction of ``bulk_write`` and ``write_inline``, entered with the write lock held: on ``conn``
        (the inline writer inside ``BEGIN IMMEDIATE``), committed or rolled back, the lock released after; without
        one, the lock is released and the block runs in ``write()``."""
        assert self._write_lock is not None
        if conn is None:
            self._write_lock.release()
            async with self.write() as tx:
                yield tx
            return
        try:
            yield InlineTransaction(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")
        finally:
            self._write_lock.release()

    async def _begin_inline_waiting(self) -> sqlite3.Connection | None:
        """The inline writer inside ``BEGIN IMMEDIATE`` after waiting for SQLite's lock in the writer thread (one
        hop), or None when there is no inline writer to use from here. Called under the write lock only."""
        conn = self._inline_writer
        if (
            conn is None
            or self._tx_thread is None
            or conn.in_transaction
            or threading.get_ident() != self._inline_thread
        ):
            return None

        def wait_and_begin() -> None:
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            try:
                conn.execute("BEGIN IMMEDIATE")
            finally:
                conn.execute("PRAGMA busy_timeout=0")

        future = asyncio.get_running_loop().run_in_executor(self._tx_thread, wait_and_begin)
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            # Cancelled while the thread waits: let it finish, then give the lock back (never leak BEGIN).
            with contextlib.suppress(BaseException):
                await future
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return conn

    async def transact(self, work: Callable[[SyncTransaction], T]) -> T:
        """``work(tx)`` inside ``BEGIN IMMEDIATE … COMMIT`` (ROLLBACK if it raises), under the write lock: for short
        transactions that must not hold SQLite's lock across event-loop turns. Inline on the loop when SQLite's lock
        is free, else in one hop to the writer thread (see the module docstring): ``work`` must be short, must not
        touch the event loop, and may run on either thread."""
        if self._write_lock is None or self._tx_thread is None or self._tx_conn is None:
            raise RuntimeError("Database is not open")
        conn = self._tx_conn

        def in_thread() -> T:
            conn.execute("BEGIN IMMEDIATE")  # waits for SQLite's lock (busy_timeout), off the loop
            return _finish_transaction(conn, work)

        async with self._write_lock:
            began = self._begin_inline()
            if began is not None:
                return _finish_transaction(began, work)
            return await asyncio.get_running_loop().run_in_executor(self._tx_thread, in_thread)

    def _begin_inline(self) -> sqlite3.Connection | None:
        """The inline writer inside ``BEGIN IMMEDIATE``, or None when the transaction must go to the writer thread
        (no inline writer, not on the loop's thread, or SQLite's write lock is held by another process)."""
        conn = self._inline_writer
        if conn is None or conn.in_transaction or threading.get_ident() != self._inline_thread:
            return None
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                return None
            raise
        return conn

    async def checkpoint(self) -> tuple[int, int, int]:
        """``PRAGMA wal_checkpoint(PASSIVE)`` in the writer thread: copies what the WAL holds back into the database
        file without waiting for readers or writers. ``(busy, frames in the WAL, frames checkpointed)``."""
        if self._tx_thread is None or self._tx_conn is None:
            raise RuntimeError("Database is not open")
        conn = self._tx_conn

        def run() -> tuple[int, int, int]:
            busy, frames, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            return int(busy), int(frames), int(done)

        return await asyncio.get_running_loop().run_in_executor(self._tx_thread, run)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        """Borrow a reader connection for the duration of the block."""
        if self._readers is None:
            raise RuntimeError("Database is not open")
        conn = await self._readers.get()
        try:
            yield conn
        finally:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            self._readers.put_nowait(conn)

    def _over_budget(self) -> int:
        if time.perf_counter() > self._deadline:
            self._interrupted = True
            return 1
        return 0

    def _fetch_inline(self, sql: str, params: Params) -> list[sqlite3.Row] | None:
        """The rows, or None when the statement must run in a thread (too slow, locked, other thread)."""
        conn = self._inline
        if conn is None or conn.in_transaction or threading.get_ident() != self._inline_thread:
            return None
        self._interrupted = False
        self._deadline = time.perf_counter() + INLINE_READ_BUDGET
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if self._interrupted or exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                return None
            raise
        finally:
            if conn.in_transaction:  # a statement that opened one (it should not) must not leak it
                conn.execute("ROLLBACK")

    async def _fetch(self, sql: str, params: Params) -> list[sqlite3.Row]:
        rows = self._fetch_inline(sql, params)
        if rows is not None:
            return rows
        # One hop to the connection's thread (execute + fetch + close together), not three.
        async with self.read() as conn:
            return list(await conn.execute_fetchall(sql, params))

    async def fetchone(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        rows = await self._fetch(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        return await self._fetch(sql, params)

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]


def _finish_transaction(conn: sqlite3.Connection, work: Callable[[SyncTransaction], T]) -> T:
    """The body of every ``db.transact``, inline or in the writer thread: ``work`` on ``conn``, already inside
    ``BEGIN IMMEDIATE``, then ``COMMIT``; ``ROLLBACK`` if it raises (whatever it raises), so no half is kept."""
    try:
        result = work(SyncTransaction(conn))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


def row_dict(row: sqlite3.Row | Mapping[str, Any]) -> dict[str, Any]:
    """The row as ``{column: value}``. Not ``dict(row)``: that looks every key up by name, and ``sqlite3.Row``
    compares a name with each column in turn (figures: bench/README.md's speed-mechanisms table)."""
    if isinstance(row, sqlite3.Row):
        return dict(zip(row.keys(), row, strict=True))
    return dict(row)


def row_dicts(rows: Sequence[sqlite3.Row | Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``[row_dict(row) for row in rows]``, reading the column names once: the rows of one statement share them."""
    if not rows:
        return []
    first = rows[0]
    if not isinstance(first, sqlite3.Row):
        return [dict(row) for row in rows]
    names = first.keys()
    return [dict(zip(names, row, strict=True)) for row in rows]


def row_to(struct: type[T], row: sqlite3.Row | None) -> T | None:
    """Convert a row (by column name) into a msgspec Struct; ``None`` stays ``None``."""
    if row is None:
        return None
    return msgspec.convert(row_dict(row), struct, strict=False)


def rows_to(struct: type[T], rows: Sequence[sqlite3.Row]) -> list[T]:
    return [msgspec.convert(data, struct, strict=False) for data in row_dicts(rows)]


# What a read function takes: the database (a reader connection) or a write transaction (to see its own
# uncommitted change, as webhook payloads and hooks do). Both offer ``fetchone``/``fetchall``/``fetchval``.
Reader = Database | Transaction
