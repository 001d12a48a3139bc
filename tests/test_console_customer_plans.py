"""The console's Customers section uses an index for every search kind and every part of a customer's page, on the
small benchmark database (``bench/generate.py --small``; plans without ``ANALYZE`` are the large database's plans):
the same capture-and-``EXPLAIN`` check as ``tests/test_query_plans.py``, with the console's own tables (outbox,
audit log, processor links, email links) counted as big too."""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from portal.clock import iso, new_id
from portal.console.store import token_digest
from portal.settings import Settings
from tests import test_query_plans as plans
from tests.apps import app_for
from tests.console_helpers import NOW
from tests.test_query_plans import Captured, bench_dir

__all__ = ["bench_dir"]  # the module fixture of test_query_plans: the small benchmark data dir

CONSOLE_TABLES = frozenset({"email_outbox", "seller_audit_log", "connector_links", "email_links"})


@pytest.fixture(scope="module")
def console(bench_dir: Path) -> Iterator[tuple[TestClient[Litestar], Captured, dict[str, Any]]]:
    known = json.loads((bench_dir / "bench.json").read_text())
    secret = (bench_dir / "secret_key").read_text().strip()
    conn = sqlite3.connect(bench_dir / "portal.db", isolation_level=None)
    seller, token = new_id(), secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO seller_accounts (id, email, is_admin, created_at) VALUES (?, 'plans@bench.example', 1, ?)",
        (seller, iso(NOW)),
    )
    conn.execute(
        "INSERT INTO seller_sessions (id, token_hash, seller_id, expires_at, created_at) VALUES (?, ?, ?, ?, ?)",
        (new_id(), token_digest(secret, token), seller, "2999-01-01T00:00:00.000000Z", iso(NOW)),
    )
    connection = new_id()
    conn.execute(
        "INSERT INTO connector_connections (id, organization_id, processor, secrets, created_at) "
        "VALUES (?, ?, 'stripe', 'x', ?)",
        (connection, known["organization_id"], iso(NOW)),
    )
    conn.execute(
        "INSERT INTO connector_links (connection_id, kind, processor_id, portal_id) VALUES (?, 'customer', "
        "'cus_PlansKnown', ?)",
        (connection, known["customer_id"]),
    )
    known["receipt"] = conn.execute(
        "SELECT receipt_number FROM orders WHERE id = ?", (known["receipt_order_id"],)
    ).fetchone()[0]
    known["subscription_id"] = conn.execute(
        "SELECT id FROM subscriptions WHERE customer_id = ? LIMIT 1", (known["customer_id"],)
    ).fetchone()[0]
    conn.close()
    settings = Settings(data_dir=bench_dir, base_url="http://testserver.local", argon2_profile="test")
    captured = Captured()
    connect = sqlite3.connect

    def traced_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        traced = connect(*args, **kwargs)
        traced.set_trace_callback(captured)
        return traced

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sqlite3, "connect", traced_connect)
        patch.setattr(plans, "BIG_TABLES", plans.BIG_TABLES | CONSOLE_TABLES)
        with TestClient(app_for(settings), base_url="http://testserver.local") as client:
            client.cookies.set("console_session", token, path="/console")
            yield client, captured, known


def _check(console: Any, bench_dir: Path, url: str, *, allowed: tuple[str, ...] = ()) -> None:
    """Every statement of ``url`` uses an index; ``allowed``: an index read in order and cut by ``LIMIT`` (the
    newest customers page walks ``customers_org_created`` from its newest end and stops)."""
    client, captured, _known = console
    captured.take()
    response = client.get(url, follow_redirects=False)
    assert response.status_code == 200, (url, response.status_code)
    statements = captured.take()
    assert statements
    conn = sqlite3.connect(bench_dir / "portal.db")
    try:
        problems = {}
        for statement in statements:
            found = [p for p in plans.plan_problems(conn, statement) if not any(index in p for index in allowed)]
            if found:
                problems[statement] = found
    finally:
        conn.close()
    assert not problems, "\n\n".join(f"{' '.join(s.split())[:400]}\n  -> {p}" for s, p in problems.items())


SEARCHES = {
    "email": "{customer_email}",
    "email_prefix": "known@bench",
    "name": "Known Cust",
    "name_many": "Customer 1",  # several hits: read back by their ids, never by walking the organization
    "external_id": "ext-0",
    "customer_id": "{customer_id}",
    "receipt": "{receipt}",
    "order_id": "{receipt_order_id}",
    "subscription_id": "{subscription_id}",
    "processor": "cus_PlansKnown",
    "license_key": "BENCH-0000BEEF",
    "nothing": "no such thing at all",
}


@pytest.mark.parametrize("kind", SEARCHES)
def test_every_search_kind_uses_indexes(console: Any, bench_dir: Path, kind: str) -> None:
    client, _captured, known = console
    query = SEARCHES[kind].format(**known)
    _check(console, bench_dir, f"/console/{known['organization_slug']}/customers?q={query}")
    if kind not in ("nothing", "name_many"):
        page = client.get(f"/console/{known['organization_slug']}/customers", params={"q": query}).text
        assert f"/customers/{known['customer_id']}" in page, kind


def test_newest_customers_and_the_customer_page_use_indexes(console: Any, bench_dir: Path) -> None:
    _client, _captured, known = console
    slug = known["organization_slug"]
    _check(console, bench_dir, f"/console/{slug}/customers", allowed=("customers_org_created",))
    _check(console, bench_dir, f"/console/{slug}/customers?page=3", allowed=("customers_org_created",))
    _check(console, bench_dir, f"/console/{slug}/customers/{known['customer_id']}")


def test_the_search_benchmark_runs(bench_dir: Path) -> None:
    """``bench/console_search.py`` stays runnable: every kind finds what it was drawn from (on the small DB)."""
    import asyncio
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "bench_console_search", plans.REPO_ROOT / "bench" / "console_search.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    known = json.loads((bench_dir / "bench.json").read_text())
    db_path = bench_dir / "portal.db"
    bench.setup(db_path, known["organization_id"])
    values = bench.samples(db_path, known["organization_id"], 5, 21)
    rows = asyncio.run(bench.measure(db_path, known["organization_id"], known["organization_slug"], values))
    found = {row[0]: row[4] for row in rows}
    assert found.pop("search: nothing found") == 0
    found.pop("search: processor id")  # the plans fixture may have made the organization's connection first
    assert all(value >= 1 for value in found.values()), found
