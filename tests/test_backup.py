"""``portal backup`` copies the live database while the server writes; ``portal restore`` refuses a served data
dir and otherwise swaps the database atomically."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest

from portal.backup import BackupError, assert_not_open, backup_database, restore_database
from portal.db import connect_sync
from portal.settings import Settings
from tests.admin_support import bearer
from tests.ops_support import admin_token, make_org, migrated, served
from tests.serving import portal_env, run_portal


def _count(db_path: Path, table: str) -> int:
    conn = sqlite3.connect(db_path)
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def _integrity(db_path: Path) -> str:
    conn = sqlite3.connect(db_path)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def test_backup_during_a_write_burst_then_restore(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = migrated(data_dir)
    token = admin_token(settings)
    env = portal_env(data_dir)
    backup_path = tmp_path / "backups" / "portal.db"
    backup_path.parent.mkdir()
    created: list[str] = []
    with served(data_dir, tmp_path / "serve.log") as server:
        stop = threading.Event()

        def burst() -> None:
            with httpx.Client(base_url=server.base, headers=bearer(token)) as client:
                while not stop.is_set():
                    slug = f"org-{len(created)}"
                    response = client.post("/v1/organizations/", json={"name": slug, "slug": slug})
                    assert response.status_code == 201, response.text
                    created.append(slug)

        writer = threading.Thread(target=burst)
        writer.start()
        try:
            while len(created) < 20:
                time.sleep(0.02)
            result = run_portal(["backup", str(backup_path)], env)
            during = len(created)
            time.sleep(0.2)
        finally:
            stop.set()
            writer.join()
        assert result.returncode == 0, result.stderr
        assert "integrity ok" in result.stdout
        assert during < len(created)  # the server kept answering writes while the copy ran
        # A restore while the server runs is refused and changes nothing.
        refused = run_portal(["restore", str(backup_path)], env)
        assert refused.returncode == 1
        assert "server is running" in refused.stderr
        assert httpx.get(f"{server.base}/readyz").status_code == 200
    assert _integrity(backup_path) == "ok"
    in_backup = _count(backup_path, "organizations")
    assert 20 <= in_backup <= len(created)
    assert _count(data_dir / "portal.db", "organizations") == len(created)

    restored = run_portal(["restore", str(backup_path)], env)
    assert restored.returncode == 0, restored.stderr
    assert "previous database is kept" in restored.stdout
    assert not (data_dir / "portal.db-wal").exists() or (data_dir / "portal.db-wal").stat().st_size == 0
    kept = list(data_dir.glob("portal.db.before-restore-*"))
    assert [p for p in kept if not p.name.endswith(("-wal", "-shm"))]
    assert _count(data_dir / "portal.db", "organizations") == in_backup
    # The restored instance serves, and is ready (migrated, writable).
    with served(data_dir, tmp_path / "serve2.log") as server:
        assert httpx.get(f"{server.base}/readyz").json()["status"] == "ok"
        make_org(server.base, token, "after-restore")
    check = run_portal(["check"], env)
    assert check.returncode == 0, check.stderr


def test_stepwise_backup_finishes_while_another_connection_keeps_committing(tmp_path: Path) -> None:
    """Regression: without a read transaction around the steps, each commit restarted the copy forever."""
    db_path = tmp_path / "busy.db"
    conn = connect_sync(db_path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, x BLOB)")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO t (x) VALUES (randomblob(300))", [()] * 5000)
    conn.execute("COMMIT")
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)")
    conn.execute("INSERT INTO schema_migrations VALUES (1, 'x', 'now')")
    stop = threading.Event()
    commits = [0]

    def write() -> None:
        writer = connect_sync(db_path)
        while not stop.is_set():
            writer.execute("INSERT INTO t (x) VALUES (randomblob(300))")
            commits[0] += 1
            time.sleep(0.0005)
        writer.close()

    thread = threading.Thread(target=write)
    thread.start()
    try:
        time.sleep(0.05)
        steps: list[int] = []
        started = time.monotonic()
        result = backup_database(
            db_path, tmp_path / "copy.db", pages=16, progress=lambda done, total: steps.append(done)
        )
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        thread.join()
        conn.close()
    assert len(steps) > 10 and steps == sorted(steps)  # in steps, never restarted
    assert elapsed < 10
    assert commits[0] > 0
    assert _integrity(result.path) == "ok"


def test_backup_refuses_to_overwrite_and_into_a_missing_directory(tmp_path: Path, data_dir: Path) -> None:
    target = tmp_path / "copy.db"
    backup_database(data_dir / "portal.db", target)
    with pytest.raises(BackupError, match="exists"):
        backup_database(data_dir / "portal.db", target)
    backup_database(data_dir / "portal.db", target, overwrite=True)
    with pytest.raises(BackupError, match="no such directory"):
        backup_database(data_dir / "portal.db", tmp_path / "nope" / "copy.db")
    # A directory as DEST gets a timestamped file.
    result = backup_database(data_dir / "portal.db", tmp_path)
    assert result.path.parent == tmp_path and result.path.name.startswith("portal-")


def test_restore_refuses_an_open_database_and_files_that_are_not_portal_databases(
    tmp_path: Path, settings: Settings
) -> None:
    good = backup_database(settings.db_path, tmp_path / "good.db").path
    holder = connect_sync(settings.db_path)  # e.g. a Litestream or a sqlite3 shell
    holder.execute("SELECT 1").fetchone()
    try:
        with pytest.raises(BackupError, match="in use"):
            assert_not_open(settings.db_path)
        with pytest.raises(BackupError, match="in use"):
            restore_database(settings, good)
    finally:
        holder.close()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    with pytest.raises(BackupError, match="not a usable SQLite database"):
        restore_database(settings, garbage)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE x (y)").connection.close()
    with pytest.raises(BackupError, match="not a Portal database"):
        restore_database(settings, other)
    assert restore_database(settings, good).previous is not None
    assert _integrity(settings.db_path) == "ok"


def test_restore_into_an_empty_data_dir(tmp_path: Path, settings: Settings) -> None:
    good = backup_database(settings.db_path, tmp_path / "good.db").path
    fresh = tmp_path / "fresh"
    result = run_portal(["restore", str(good)], portal_env(fresh))
    assert result.returncode == 0, result.stderr
    assert "kept" not in result.stdout
    assert _integrity(fresh / "portal.db") == "ok"
