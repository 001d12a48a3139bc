"""Every hot query uses an index: no full ``SCAN`` of a big table, and no search that only narrows a big table to
one organization (which walks every row of that organization: 2.5 s for an orders ``COUNT(*)`` at 1M orders).

The SQL is not copied here: the hot routes are requested through the real app against a small benchmark database
(``bench/generate.py --small``), every statement the app's connections execute is captured with sqlite3's trace
callback, and ``EXPLAIN QUERY PLAN`` is checked for each. SQLite without ``ANALYZE`` statistics plans the same
way whatever the table sizes, so the small database shows the plans the large one gets.
"""

from __future__ import annotations

import importlib.util
import json
import re
import secrets
import sqlite3
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from portal.clock import iso
from portal.sessions.store import token_digest
from portal.settings import Settings
from tests.apps import app_for

REPO_ROOT = Path(__file__).resolve().parent.parent

BIG_TABLES = frozenset(
    {
        "orders",
        "order_items",
        "customers",
        "subscriptions",
        "license_keys",
        "license_key_activations",
        "benefit_grants",
        "customer_sessions",
        "refunds",
        "invoices",
        "events",
    }
)

# An index search constrained only by these columns still reads a large part of a big table.
UNSELECTIVE = frozenset({"organization_id", "status", "kind", "type", "created_at", "revoked_at", "ended_at"})

_ALIASES = re.compile(
    r"\b(?:FROM|JOIN|UPDATE|INTO)\s+(\w+)(?:\s+(?:AS\s+)?(?!ON\b|WHERE\b|SET\b|JOIN\b|LEFT\b)(\w+))?", re.I
)
_PLAN = re.compile(r"^(SCAN|SEARCH) (\w+)(?: USING (?:COVERING |INTEGER PRIMARY KEY)?(?:INDEX (\w+))?(?: \((.*)\))?)?")


def _generate_module() -> Any:
    spec = importlib.util.spec_from_file_location("bench_generate", REPO_ROOT / "bench" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    generate = _generate_module()
    directory = tmp_path_factory.mktemp("plans") / "data"
    generate.generate(directory, generate.SCALES["small"], quiet=True)
    return directory


class Captured:
    """Statements executed on the app's connections while ``capturing`` is on."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, statement: str) -> None:
        self.statements.append(statement)

    def take(self) -> list[str]:
        taken, self.statements = self.statements, []
        return [s for s in taken if s.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "INSERT", "WITH"))]


@pytest.fixture(scope="module")
def served(bench_dir: Path) -> Iterator[tuple[TestClient[Litestar], Captured, dict[str, Any]]]:
    known = json.loads((bench_dir / "bench.json").read_text())
    secret = (bench_dir / "secret_key").read_text().strip()
    settings = Settings(data_dir=bench_dir, base_url="http://testserver.local", argon2_profile="test")
    tokens: dict[str, str] = {}
    conn = sqlite3.connect(bench_dir / "portal.db", isolation_level=None)
    now = datetime.now(UTC)
    for kind in ("browser", "api"):
        tokens[kind] = secrets.token_urlsafe(32)
        conn.execute(
            "INSERT INTO customer_sessions (id, token_hash, kind, organization_id, customer_id, expires_at, "
            "last_seen_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                f"plans-{kind}",
                token_digest(secret, tokens[kind]),
                kind,
                known["organization_id"],
                known["customer_id"],
                iso(now + timedelta(days=1)),
                iso(now),
                iso(now),
            ),
        )
    conn.close()
    captured = Captured()
    connect = sqlite3.connect

    def traced_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection = connect(*args, **kwargs)
        connection.set_trace_callback(captured)
        return connection

    app = app_for(settings)
    # Every connection the app opens (pool, writer, inline reader) reports what it executes.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sqlite3, "connect", traced_connect)
        with TestClient(app, base_url="http://testserver.local") as client:
            client.cookies.set(f"portal_session_{known['organization_slug']}", tokens["browser"])
            known["api_token"] = tokens["api"]
            yield client, captured, known


def plan_problems(conn: sqlite3.Connection, statement: str) -> list[str]:
    aliases: dict[str, str] = {}
    for table, alias in _ALIASES.findall(statement):
        aliases[table.lower()] = table.lower()
        if alias:
            aliases[alias.lower()] = table.lower()
    problems = []
    # A customer's orders grow without bound (a subscription adds one a month; subscriptions, keys and grants stay
    # a handful per customer): a page of them must come out of an index in order, not be sorted after the fact.
    paged = re.search(r"\bLIMIT\b", statement, re.I) is not None and "orders" in aliases.values()
    for row in conn.execute("EXPLAIN QUERY PLAN " + statement):
        detail = row[3]
        # Only a sort at the top of the plan sorts the page; one inside a subquery sorts what that subquery reads
        # (e.g. one order's items, whose JSON array is built per order).
        if paged and row[1] == 0 and detail.startswith("USE TEMP B-TREE FOR") and "ORDER BY" in detail:
            problems.append(f"sorts all of the customer's orders for one page: {detail}")
            continue
        match = _PLAN.match(detail)
        if match is None:
            continue
        kind, name, _index, constraint = match.groups()
        table = aliases.get(name.lower(), name.lower())
        if table not in BIG_TABLES:
            continue
        if kind == "SCAN":
            problems.append(f"full scan of {table}: {detail}")
        elif constraint is not None and set(re.findall(r"(\w+)\s*[=<>]", constraint)) <= UNSELECTIVE:
            problems.append(f"walks a whole organization's {table}: {detail}")
    return problems


def check(client: TestClient[Litestar], captured: Captured, bench_dir: Path, method: str, url: str, **kw: Any) -> None:
    captured.take()
    response = client.request(method, url, follow_redirects=False, **kw)
    assert response.status_code == 200, (url, response.status_code, response.text[:300])
    statements = captured.take()
    assert statements, f"no SQL captured for {url}"
    conn = sqlite3.connect(bench_dir / "portal.db")
    try:
        problems = {s: p for s in statements if (p := plan_problems(conn, s))}
    finally:
        conn.close()
    assert not problems, "\n\n".join(f"{' '.join(s.split())[:400]}\n  -> {p}" for s, p in problems.items())


HTML_PAGES = [
    "/{slug}/portal",
    "/{slug}/portal/orders",
    "/{slug}/portal/orders?page=2",
    "/{slug}/portal/orders/{order}",
    "/{slug}/portal/orders/{order}/receipt",
    "/{slug}/portal/subscriptions",
    "/{slug}/portal/benefits",
]

API_GETS = [
    "/v1/customer-portal/orders/",
    "/v1/customer-portal/orders/{order}",
    "/v1/customer-portal/subscriptions/",
    "/v1/customer-portal/benefit-grants/",
    "/v1/customer-portal/license-keys/",
    "/v1/customer-portal/license-keys/{key_id}",
    "/v1/customer-portal/customers/me",
]


def _url(template: str, known: dict[str, Any]) -> str:
    return template.format(
        slug=known["organization_slug"], order=known["receipt_order_id"], key_id=known["license_key_id"]
    )


@pytest.mark.parametrize("page", HTML_PAGES)
def test_portal_page_queries_use_indexes(served: Any, bench_dir: Path, page: str) -> None:
    client, captured, known = served
    check(client, captured, bench_dir, "GET", _url(page, known))


@pytest.mark.parametrize("path", API_GETS)
def test_customer_portal_api_queries_use_indexes(served: Any, bench_dir: Path, path: str) -> None:
    client, captured, known = served
    check(
        client, captured, bench_dir, "GET", _url(path, known), headers={"Authorization": f"Bearer {known['api_token']}"}
    )


def test_license_key_validate_uses_indexes(served: Any, bench_dir: Path) -> None:
    client, captured, known = served
    body = {"key": known["license_key"], "organization_id": known["organization_id"]}
    check(client, captured, bench_dir, "POST", "/v1/customer-portal/license-keys/validate", json=body)


def test_the_check_catches_an_organization_wide_walk(bench_dir: Path) -> None:
    """The rule itself: a query narrowed only by organization is reported (guards the regex, not the app)."""
    conn = sqlite3.connect(bench_dir / "portal.db")
    try:
        assert plan_problems(conn, "SELECT COUNT(*) FROM orders o WHERE o.organization_id = 'x'")
        assert plan_problems(conn, "SELECT * FROM license_key_activations WHERE label = 'x'")
        assert plan_problems(conn, "SELECT * FROM subscriptions s WHERE s.organization_id = 'x' AND s.status = 'a'")
        assert not plan_problems(conn, "SELECT * FROM orders o WHERE o.id = 'x'")
    finally:
        conn.close()


def test_a_slow_read_leaves_the_event_loop(bench_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reads run inline on the loop only while they are fast: past ``INLINE_READ_BUDGET`` the statement is
    interrupted and run again on a pool connection in its thread, with the same answer."""
    import asyncio

    from portal import db as db_module

    slow = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000) SELECT COUNT(*) FROM n"

    async def scenario() -> tuple[int, int, int]:
        database = await db_module.Database(bench_dir / "portal.db", readers=1).open()
        threaded = 0
        read = database.read

        def counting_read() -> Any:
            nonlocal threaded
            threaded += 1
            return read()

        try:
            monkeypatch.setattr(database, "read", counting_read)
            assert await database.fetchval("SELECT COUNT(*) FROM organizations") == 2
            fast_threaded = threaded
            monkeypatch.setattr(db_module, "INLINE_READ_BUDGET", 0.0005)
            count = await database.fetchval(slow)
            return fast_threaded, threaded, count
        finally:
            await database.close()

    fast_threaded, threaded, count = asyncio.run(scenario())
    assert fast_threaded == 0  # answered inline
    assert threaded == 1 and count == 300000  # interrupted, then answered by a pool connection


def test_console_order_page_uses_indexes(served: Any, bench_dir: Path) -> None:
    """The seller console's order page (issue 21): the order, its customer, invoice, refunds and processor links."""
    from portal.console.store import token_digest as console_digest

    client, captured, known = served
    secret = (bench_dir / "secret_key").read_text().strip()
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    conn = sqlite3.connect(bench_dir / "portal.db", isolation_level=None)
    try:
        conn.execute(
            "INSERT OR IGNORE INTO seller_accounts (id, email, is_admin, created_at) VALUES (?, ?, 1, ?)",
            ("plans-seller", "plans@instance.example", iso(now)),
        )
        conn.execute(
            "INSERT INTO seller_sessions (id, token_hash, seller_id, expires_at, created_at) VALUES (?, ?, ?, ?, ?)",
            (
                f"plans-{token[:8]}",
                console_digest(secret, token),
                "plans-seller",
                iso(now + timedelta(days=1)),
                iso(now),
            ),
        )
    finally:
        conn.close()
    client.cookies.set("console_session", token)
    try:
        url = f"/console/{known['organization_slug']}/orders/{known['receipt_order_id']}"
        check(client, captured, bench_dir, "GET", url)
    finally:
        client.cookies.delete("console_session")
