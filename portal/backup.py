"""Online backup and restore of the database: ``portal backup DEST`` and ``portal restore SRC``.

Backup uses SQLite's backup API while the server keeps serving. It copies ``pages`` pages per step with a short
sleep between steps, all inside ONE read transaction on the source: in WAL mode that transaction pins a
consistent snapshot while the server's writers carry on appending to the WAL. Without it, every commit by another
connection restarts a stepwise copy from the first page (measured here: a copy in 64-page steps never finished
during a steady write burst). The copy is written to a temporary file next to DEST, checked with
``PRAGMA integrity_check`` and only then renamed to DEST.

Restore refuses while a server holds the instance lock (``portal.instance_lock``) or while anything else has the
database open (an exclusive-lock attempt; a running Litestream counts). Otherwise it copies SRC into a temporary
file in the data dir, checks it (integrity, a schema not newer than this Portal), keeps the current database as
``portal.db.before-restore-<time>``, removes the stale ``-wal``/``-shm`` (a leftover WAL would be replayed into
the new file) and renames the copy into place: ``portal.db`` is always either the old or the new database.

Only the database is copied: back up ``secret_key`` (tokens are HMACs made with it) and ``files/`` as files.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from portal import instance_lock
from portal.db import connect_sync
from portal.migrations import LATEST_VERSION, SchemaTooNewError, check_version
from portal.settings import Settings

PAGES_PER_STEP = 256
SLEEP_BETWEEN_STEPS = 0.005


class BackupError(RuntimeError):
    """The backup or restore did not happen; the message says why."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    size: int
    schema_version: int


@dataclass(frozen=True, slots=True)
class RestoreResult:
    schema_version: int
    previous: Path | None


def integrity_problems(conn: sqlite3.Connection) -> list[str]:
    """``PRAGMA integrity_check``'s complaints; empty when the database is sound."""
    rows = [str(row[0]) for row in conn.execute("PRAGMA integrity_check").fetchall()]
    return [] if rows == ["ok"] else rows


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def _copy(
    source: sqlite3.Connection,
    target_path: Path,
    *,
    pages: int,
    sleep_seconds: float,
    progress: Callable[[int, int], None] | None,
) -> int:
    """Copy ``source`` (inside one read transaction) into a new file; returns the copy's schema version."""

    def step(status: int, remaining: int, total: int) -> None:
        if progress is not None:
            progress(total - remaining, total)
        if remaining and sleep_seconds:
            time.sleep(sleep_seconds)  # let the server's writers and readers have the disk

    source.execute("BEGIN")
    try:
        source.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # starts the read snapshot
        target = sqlite3.connect(target_path, isolation_level=None)
        try:
            source.backup(target, pages=pages, progress=step)
        finally:
            target.close()
    finally:
        source.execute("ROLLBACK")
    target = sqlite3.connect(target_path, isolation_level=None)
    try:
        problems = integrity_problems(target)
        if problems:
            raise BackupError("integrity_check failed on the copy: " + "; ".join(problems[:5]))
        try:
            return check_version(target)
        except SchemaTooNewError as exc:
            raise BackupError(str(exc)) from None
    finally:
        target.close()


def backup_database(
    db_path: Path,
    dest: Path,
    *,
    overwrite: bool = False,
    pages: int = PAGES_PER_STEP,
    sleep_seconds: float = SLEEP_BETWEEN_STEPS,
    progress: Callable[[int, int], None] | None = None,
) -> BackupResult:
    """Copy the live database at ``db_path`` to ``dest`` (a file, or a directory to put ``portal-<time>.db`` in)."""
    if not db_path.is_file():
        raise BackupError(f"no database at {db_path}")
    if dest.is_dir():
        dest = dest / f"portal-{_stamp()}.db"
    if dest.exists() and not overwrite:
        raise BackupError(f"{dest} exists; pass --force to overwrite it")
    if not dest.parent.is_dir():
        raise BackupError(f"no such directory {dest.parent}")
    temporary = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    temporary.unlink(missing_ok=True)
    source = connect_sync(db_path)
    try:
        version = _copy(source, temporary, pages=pages, sleep_seconds=sleep_seconds, progress=progress)
        _fsync_file(temporary)
        os.replace(temporary, dest)
        _fsync_dir(dest.parent)
    except sqlite3.Error as exc:
        raise BackupError(f"backup of {db_path} failed: {exc}") from None
    finally:
        source.close()
        temporary.unlink(missing_ok=True)
    return BackupResult(path=dest, size=dest.stat().st_size, schema_version=version)


def assert_not_open(db_path: Path) -> None:
    """``BackupError`` if any connection (a server, Litestream, a shell) has the database open."""
    conn = sqlite3.connect(db_path, isolation_level=None, timeout=0)
    try:
        # In WAL mode an exclusive-locking connection must be the only one to read: it fails while others exist.
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        conn.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        raise BackupError(
            f"{db_path} is in use by another process ({exc}); stop the server (and Litestream) first"
        ) from None
    finally:
        conn.close()


def _set_aside(db_path: Path) -> Path:
    """Fold the WAL into the current database, keep it (hard link) as ``portal.db.before-restore-<time>``."""
    conn = connect_sync(db_path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()  # the last connection to close removes an empty WAL
    previous = db_path.with_name(f"{db_path.name}.before-restore-{_stamp()}")
    os.link(db_path, previous)
    for suffix in ("-wal", "-shm"):
        stale = Path(f"{db_path}{suffix}")
        if stale.exists():
            if suffix == "-wal":  # anything not yet checkpointed belongs with the kept copy
                os.replace(stale, Path(f"{previous}{suffix}"))
            else:
                stale.unlink()
    return previous


def restore_database(settings: Settings, src: Path) -> RestoreResult:
    """Replace ``settings.db_path`` by a checked copy of ``src``; refuses while the database is served."""
    if not src.is_file():
        raise BackupError(f"no such file {src}")
    db_path = settings.db_path
    try:
        lock = instance_lock.acquire(settings.data_dir, exclusive=True)
    except instance_lock.InstanceBusy as exc:
        raise BackupError(str(exc)) from None
    with lock:
        if db_path.exists():
            assert_not_open(db_path)
        temporary = db_path.with_name(f".{db_path.name}.restore-{os.getpid()}")
        temporary.unlink(missing_ok=True)
        try:
            source = sqlite3.connect(f"{src.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
            try:
                version = _copy(source, temporary, pages=-1, sleep_seconds=0, progress=None)
            finally:
                source.close()
            if version < 1:
                raise BackupError(f"{src} is not a Portal database (no schema_migrations)")
            conn = connect_sync(temporary)  # leave it in WAL mode, like every database Portal opens
            conn.close()
            _fsync_file(temporary)
            previous = _set_aside(db_path) if db_path.exists() else None
            os.replace(temporary, db_path)
            _fsync_dir(db_path.parent)
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"{src} is not a usable SQLite database: {exc}") from None
        finally:
            temporary.unlink(missing_ok=True)
    return RestoreResult(schema_version=version, previous=previous)


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    try:
        result = backup_database(settings.db_path, Path(args.dest), overwrite=args.force)
    except BackupError as exc:
        print(f"portal: backup failed: {exc}", file=sys.stderr)
        return 1
    print(
        f"Backed up {settings.db_path} to {result.path} ({result.size} bytes, schema version "
        f"{result.schema_version}, integrity ok). Keep {settings.data_dir / 'secret_key'} and "
        f"{settings.files_dir} too."
    )
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    try:
        result = restore_database(settings, Path(args.src))
    except BackupError as exc:
        print(f"portal: restore refused: {exc}", file=sys.stderr)
        return 1
    print(f"Restored {args.src} into {settings.db_path} (schema version {result.schema_version}, integrity ok).")
    if result.previous is not None:
        print(f"The previous database is kept as {result.previous}.")
    if result.schema_version < LATEST_VERSION:
        print(f"`portal serve` (or `portal migrate`) will migrate it to version {LATEST_VERSION}.")
    return 0


def add_backup_commands(sub: Any) -> None:
    """Register ``portal backup`` and ``portal restore`` on the CLI's subparsers."""
    backup = sub.add_parser("backup", help="copy the live database (online, checked) to DEST")
    backup.add_argument("dest", help="a file, or a directory to write portal-<time>.db into")
    backup.add_argument("--force", action="store_true", help="overwrite DEST if it exists")
    backup.set_defaults(func=cmd_backup)
    restore = sub.add_parser("restore", help="replace the database by a backup (the server must be stopped)")
    restore.add_argument("src", help="a database file made by `portal backup` (or Litestream's restore)")
    restore.set_defaults(func=cmd_restore)
