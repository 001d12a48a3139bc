"""The console's commerce pages read through indexes on the benchmark database (``tests/test_query_plans.py``'s
check: no full scan of a big table, no walk of a whole organization): a subscription with its recent changes
(``events_subject``, migration 19), a license key with its activations and changes, a customer's grants."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from portal.clock import iso
from portal.console.store import token_digest
from portal.settings import Settings
from tests.apps import app_for
from tests.test_query_plans import Captured, bench_dir, check, plan_problems

__all__ = ["bench_dir"]  # the module-scoped benchmark database fixture


@pytest.fixture(scope="module")
def console(bench_dir: Path) -> Iterator[tuple[TestClient[Litestar], Captured, dict[str, Any]]]:
    import json

    known = json.loads((bench_dir / "bench.json").read_text())
    secret = (bench_dir / "secret_key").read_text().strip()
    settings = Settings(data_dir=bench_dir, base_url="http://testserver.local", argon2_profile="test")
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    conn = sqlite3.connect(bench_dir / "portal.db", isolation_level=None)
    conn.execute(
        "INSERT INTO seller_accounts (id, email, is_admin, created_at) "
        "VALUES ('plans-seller', 'ops@bench.example', 1, ?)",
        (iso(now),),
    )
    conn.execute(
        "INSERT INTO seller_sessions (id, token_hash, seller_id, expires_at, created_at) "
        "VALUES ('plans-console', ?, 'plans-seller', ?, ?)",
        (token_digest(secret, token), iso(now + timedelta(days=1)), iso(now)),
    )
    (known["subscription_id"],) = conn.execute(
        "SELECT id FROM subscriptions WHERE customer_id = ? LIMIT 1", (known["customer_id"],)
    ).fetchone()
    conn.close()
    captured = Captured()
    connect = sqlite3.connect

    def traced_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection = connect(*args, **kwargs)
        connection.set_trace_callback(captured)
        return connection

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sqlite3, "connect", traced_connect)
        with TestClient(app_for(settings), base_url="http://testserver.local") as client:
            client.cookies.set("console_session", token, domain="testserver.local", path="/console")
            yield client, captured, known


PAGES = [
    "/console/{slug}/subscriptions/{subscription_id}",
    "/console/{slug}/license-keys/{license_key_id}",
    "/console/{slug}/customers/{customer_id}/benefits",
]


def test_the_recent_changes_read_needs_its_index(bench_dir: Path) -> None:
    """Without ``events_subject`` the recent-changes read walks the organization's events (the check catches it);
    checked on an in-memory copy, the module's database keeps its index."""
    statement = (
        "SELECT e.name, e.data, e.created_at FROM events e WHERE e.subject_id = 'x' AND e.organization_id = 'y' "
        "ORDER BY e.created_at DESC, e.id DESC LIMIT 20"
    )
    source = sqlite3.connect(bench_dir / "portal.db")
    copy = sqlite3.connect(":memory:")
    try:
        source.backup(copy)
        assert plan_problems(copy, statement) == []
        copy.execute("DROP INDEX events_subject")
        copy.commit()
        assert plan_problems(copy, statement + " -- without events_subject"), "no problem reported without it"
    finally:
        source.close()
        copy.close()


PAGES = [
    "/console/{slug}/subscriptions/{subscription_id}",
    "/console/{slug}/license-keys/{license_key_id}",
    "/console/{slug}/customers/{customer_id}/benefits",
]


@pytest.mark.parametrize("page", PAGES)
def test_console_commerce_pages_use_indexes(console: Any, bench_dir: Path, page: str) -> None:
    client, captured, known = console
    url = page.format(slug=known["organization_slug"], **known)
    check(client, captured, bench_dir, "GET", url)
