"""How fast the console finds a customer on the large benchmark database (issue 21: "fast on the 1M-order bench
DB"), per search kind, and how fast a customer's page reads everything it shows.

Measured on the read functions themselves, not over HTTP (the served app adds the same fixed cost to every kind,
``bench/run.py`` measures that): ``portal.console.customer_search.search`` (what ``GET /console/<slug>/customers?q=``
runs), ``customers.reads.recent_customers`` (the list without a query) and ``customer_pages.page_data`` (the
customer page's reads), through ``portal.db.Database`` as the app opens it. For each kind, ``--queries`` different
values are drawn with a seeded RNG from the database (random customers' emails, names, ids, receipt numbers, …) and
searched once each after a warm-up of 20; p50 and p99 of the wall time per search are printed, with the rows found,
as a Markdown table.

The generator writes no processor links, so ``--setup`` (on by default) adds once a Stripe connection to the first
organization with a link per customer (``cus_bench_<n>``), in one transaction; everything else is read-only. The
database is migrated first (the console's indexes, migration 18).

    python bench/console_search.py                 # bench/data/large, 300 queries per kind
    python bench/console_search.py --db small --queries 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from portal.clock import iso, new_id
from portal.console import customer_pages, customer_search
from portal.customers import reads as customer_reads
from portal.db import Database, connect_sync
from portal.migrations import migrate
from portal.scope import Scope

BENCH = Path(__file__).resolve().parent


def setup(db_path: Path, organization_id: str) -> None:
    """Migrate, and give the organization a Stripe connection with a ``cus_bench_<n>`` link per customer (once)."""
    conn = connect_sync(db_path)
    try:
        migrate(conn)
        if conn.execute("SELECT 1 FROM connector_connections WHERE organization_id = ?", (organization_id,)).fetchone():
            return
        connection = new_id()
        now = iso(datetime.now(UTC))
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO connector_connections (id, organization_id, processor, secrets, created_at) "
            "VALUES (?, ?, 'stripe', 'bench', ?)",
            (connection, organization_id, now),
        )
        conn.execute(
            "INSERT INTO connector_links (connection_id, kind, processor_id, portal_id) "
            "SELECT ?, 'customer', 'cus_bench_' || rowid, id FROM customers WHERE organization_id = ?",
            (connection, organization_id),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


def samples(db_path: Path, organization_id: str, count: int, seed: int) -> dict[str, list[str]]:
    """``count`` search values per kind, drawn from the organization's rows."""
    rng = random.Random(seed)
    conn = connect_sync(db_path)
    try:

        def every(table: str) -> int:
            """A rowid modulus that keeps about ``4 * count`` rows of ``table`` to draw from."""
            total = conn.execute(f"SELECT MAX(rowid) FROM {table}").fetchone()[0] or 1
            return max(1, total // (4 * count))

        def column(sql: str, table: str) -> list[str]:
            rows = conn.execute(sql, (organization_id, every(table))).fetchall()
            return [str(row[0]) for row in rows if row[0] is not None]

        customers = conn.execute(
            "SELECT id, email, name, external_id, rowid FROM customers WHERE organization_id = ? AND rowid % ? = 0",
            (organization_id, every("customers")),
        ).fetchall()
        chosen = [customers[rng.randrange(len(customers))] for _ in range(count)]
        orders = conn.execute(
            "SELECT id, receipt_number FROM orders WHERE organization_id = ? AND rowid % ? = 0 "
            "AND receipt_number IS NOT NULL",
            (organization_id, every("orders")),
        ).fetchall()
        picked_orders = [orders[rng.randrange(len(orders))] for _ in range(count)]
        subscriptions = column(
            "SELECT id FROM subscriptions WHERE organization_id = ? AND rowid % ? = 0", "subscriptions"
        )
        keys = column("SELECT key FROM license_keys WHERE organization_id = ? AND rowid % ? = 0", "license_keys")
        link_rowids = [row[4] for row in chosen]
    finally:
        conn.close()
    return {
        "email (exact)": [row[1] for row in chosen],
        "email prefix": [row[1][: max(4, len(row[1]) - 14)] for row in chosen],
        "name prefix": [row[2][: len(row[2]) - 1] for row in chosen],
        "external id": [row[3] for row in chosen],
        "customer id": [row[0] for row in chosen],
        "receipt number": [row[1] for row in picked_orders],
        "order id": [row[0] for row in picked_orders],
        "subscription id": [rng.choice(subscriptions) for _ in range(count)],
        "processor id": [f"cus_bench_{rowid}" for rowid in link_rowids],
        "license key prefix": [rng.choice(keys)[:14] for _ in range(count)],
        "nothing found": [f"zz-nobody-{i}" for i in range(count)],
    }


async def timed(values: list[str], call: Callable[[str], Awaitable[int]]) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, mean rows found) over ``values`` after a 20-call warm-up."""
    for value in values[:20]:
        await call(value)
    durations, found = [], []
    for value in values:
        started = time.perf_counter()
        found.append(await call(value))
        durations.append((time.perf_counter() - started) * 1000)
    durations.sort()
    p99 = durations[min(len(durations) - 1, round(0.99 * (len(durations) - 1)))]
    return statistics.median(durations), p99, statistics.mean(found)


async def measure(db_path: Path, organization_id: str, slug: str, values: dict[str, list[str]]) -> list[list[Any]]:
    db = await Database(db_path, readers=2).open()
    rows: list[list[Any]] = []
    try:

        async def search(query: str) -> int:
            return len(await customer_search.search(db, organization_id, query))

        for kind, queries in values.items():
            p50, p99, found = await timed(queries, search)
            rows.append([f"search: {kind}", len(queries), p50, p99, found])
        scope = Scope.of_organization(organization_id)
        pages = [str(n) for n in range(1, len(values["customer id"]) + 1)]

        async def recent(page: str) -> int:
            return len((await customer_reads.recent_customers(db, scope, page=int(page) % 40 + 1, limit=25))[0])

        p50, p99, found = await timed(pages, recent)
        rows.append(["newest customers (pages 1-40)", len(pages), p50, p99, found])

        async def page(customer_id: str) -> int:
            record = await customer_reads.get_customer_record(db, scope, customer_id)
            assert record is not None
            data = await customer_pages.page_data(db, slug, record, datetime.now(UTC))
            return len(data["timeline"])

        p50, p99, found = await timed(values["customer id"], page)
        rows.append(["customer page (every read)", len(values["customer id"]), p50, p99, found])
    finally:
        await db.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("large", "small"), default="large")
    parser.add_argument("--data-dir", type=Path, help="default: bench/data/<db>")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--no-setup", action="store_true", help="do not migrate or add processor links")
    args = parser.parse_args()
    data_dir = args.data_dir or BENCH / "data" / args.db
    db_path = data_dir / "portal.db"
    if not db_path.exists():
        print(f"no {db_path}: run bench/generate.py first", file=sys.stderr)
        return 1
    known = json.loads((data_dir / "bench.json").read_text())
    organization_id, slug = known["organization_id"], known["organization_slug"]
    if not args.no_setup:
        setup(db_path, organization_id)
    values = samples(db_path, organization_id, args.queries, args.seed)
    rows = asyncio.run(measure(db_path, organization_id, slug, values))
    print(f"{args.db} DB, organization {slug}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")
    print("| What | queries | p50 ms | p99 ms | rows found (mean) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for what, count, p50, p99, found in rows:
        print(f"| {what} | {count} | {p50:.2f} | {p99:.2f} | {found:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
