"""The SQLite database: pragmas, a pool of reader connections, and ONE writer behind a lock.

Why this shape (DESIGN §6, §8): one aiosqlite connection shared by concurrent requests lets one request's
ROLLBACK erase another's write, and plain ``BEGIN`` with several writers yields "database is locked". So:

* every connection gets the same pragmas, in order: ``busy_timeout``, ``journal_mode=WAL``, ``synchronous``,
  ``foreign_keys=ON``; all are opened with ``isolation_level=None`` (we issue BEGIN/COMMIT ourselves);
* reads borrow a connection from a small pool, one request at a time;
* every write goes through ``async with db.write() as tx:``, which holds an ``asyncio.Lock`` around
  ``BEGIN IMMEDIATE … COMMIT`` (ROLLBACK on any exception), so in-process writers never interleave and writers in
  other processes (``--workers N``) queue on SQLite's own lock via ``busy_timeout`` instead of failing.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

import aiosqlite
import msgspec

T = TypeVar("T")
Params = Sequence[Any] | dict[str, Any]

BUSY_TIMEOUT_MS = 5000


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
        async with self.conn.execute(sql, params) as cursor:
            return await cursor.fetchone()

    async def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        async with self.conn.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
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

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        for statement in pragma_statements(self.synchronous):
            await conn.execute(statement)
        return conn

    async def open(self) -> Database:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = await self._connect()
        self._write_lock = asyncio.Lock()
        self._readers = asyncio.Queue()
        for _ in range(self.reader_count):
            conn = await self._connect()
            self._all_readers.append(conn)
            self._readers.put_nowait(conn)
        return self

    async def close(self) -> None:
        if self._write_lock is not None and self._writer is not None:
            async with self._write_lock:
                await self._writer.close()
        for conn in self._all_readers:
            await conn.close()
        self._writer = None
        self._all_readers = []

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

    async def fetchone(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        async with self.read() as conn, conn.execute(sql, params) as cursor:
            return await cursor.fetchone()

    async def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        async with self.read() as conn, conn.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]


def row_to(struct: type[T], row: sqlite3.Row | None) -> T | None:
    """Convert a row (by column name) into a msgspec Struct; ``None`` stays ``None``."""
    if row is None:
        return None
    return msgspec.convert(dict(row), struct, strict=False)


def rows_to(struct: type[T], rows: Iterable[sqlite3.Row]) -> list[T]:
    return [msgspec.convert(dict(row), struct, strict=False) for row in rows]
