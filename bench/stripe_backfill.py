"""Backfill speed of ``portal import stripe`` (issue 19: target ≥ 1,000 orders/s against the loopback API).

A fake Stripe API (``tests/stripe_fake.py``, the one the tests use) runs in its own process on a loopback port,
holding a generated history (``tests/stripe_history.py``: customers, each with a monthly subscription and its paid
invoices, some Payment Link checkouts and refunded charges). The import runs here, exactly as the CLI runs it
(``portal.connectors.stripe.importer.run_import`` with ``--catalog``, pages of 100 through the official SDK), into
a fresh data dir. Printed: each stream's objects and time, and orders per second — orders (paid invoices +
checkouts) over the WHOLE import's time (customers, catalog, subscriptions and refunds included), and over the
order streams' own time.

    .venv/bin/python bench/stripe_backfill.py                     # 2,000 customers, 10,000 invoices, 1,000 checkouts
    .venv/bin/python bench/stripe_backfill.py --customers 500 --invoices 2   # smaller
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from portal.clock import Clock  # noqa: E402
from portal.connectors import store  # noqa: E402
from portal.connectors.store import Secrets  # noqa: E402
from portal.connectors.stripe import importer  # noqa: E402
from portal.db import Database, connect_sync  # noqa: E402
from portal.migrations import migrate  # noqa: E402
from portal.settings import Settings  # noqa: E402
from tests.stripe_fake import FakeStripe, fake_stripe  # noqa: E402
from tests.stripe_history import populate  # noqa: E402


def _serve_fake(pipe: Pipe, customers: int, invoices: int, checkouts: int, refunds: int) -> None:
    """The fake Stripe API with the history, until the parent closes the pipe."""
    with fake_stripe(FakeStripe()) as fake:
        # Customers two hours apart: a large history stays in the past (2025).
        history = populate(
            fake,
            customers=customers,
            invoices_per_subscription=invoices,
            checkouts=checkouts,
            refunds=refunds,
            spacing=7200,
        )
        pipe.send((fake.base_url, fake.api_key, history.orders))
        with contextlib.suppress(EOFError):
            pipe.recv()


async def _import(settings: Settings, api_key: str) -> tuple[importer.ImportReport, dict[str, float]]:
    db = await Database(settings.db_path, readers=1).open()
    try:
        async with db.write() as tx:
            now = datetime.now(UTC)
            await tx.execute(
                "INSERT INTO organizations (id, slug, name, receipt_prefix, created_at) VALUES (?, ?, ?, ?, ?)",
                ("org-bench", "bench", "Bench", "BENCH", now.isoformat()),
            )
            await store.save_connection(
                tx,
                instance_secret=settings.secret_key,
                organization_id="org-bench",
                processor="stripe",
                secrets=Secrets(api_key=api_key, webhook_secret="whsec_bench"),
                account_id=None,
                livemode=False,
                settings=None,
                now=now,
            )
        connection = await store.require_connection(db, "org-bench", "stripe")
        ends: dict[str, float] = {"writing": 0.0}
        apply_page = importer._Importer.apply_page

        async def timed(self: importer._Importer, *args: Any) -> None:
            # Time spent writing pages (the rest is waiting for the next page from the API).
            began = time.monotonic()
            await apply_page(self, *args)
            if args[0].name in ("invoices", "checkout_sessions"):
                ends["writing"] += time.monotonic() - began

        importer._Importer.apply_page = timed  # type: ignore[method-assign]
        started = time.monotonic()

        def progress(report: importer.StreamReport) -> None:
            ends[report.name] = time.monotonic() - started

        report = await importer.run_import(db, settings, connection, now=Clock().now, catalog=True, progress=progress)
        return report, ends
    finally:
        await db.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--invoices", type=int, default=5, help="paid invoices per subscription")
    parser.add_argument("--checkouts", type=int, default=1000)
    parser.add_argument("--refunds", type=int, default=200)
    args = parser.parse_args()

    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(
        target=_serve_fake, args=(child, args.customers, args.invoices, args.checkouts, args.refunds), daemon=True
    )
    server.start()
    base_url, api_key, orders = parent.recv()
    with tempfile.TemporaryDirectory(prefix="portal-backfill-") as directory:
        data_dir = Path(directory)
        settings = Settings(data_dir=data_dir, secret_key="bench-secret", stripe_api_base=base_url)
        conn = connect_sync(settings.db_path)
        migrate(conn)
        conn.close()
        report, ends = asyncio.run(_import(settings, api_key))
        check = sqlite3.connect(settings.db_path)
        imported = check.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
        check.close()
    parent.send("stop")
    server.join(timeout=10)

    if report.interrupted:
        print(f"import stopped: {report.interrupted}", file=sys.stderr)
        return 1
    previous = 0.0
    print(f"{'stream':<18} {'objects':>8} {'seconds':>8}")
    order_seconds = 0.0
    for stream in report.streams:
        end = ends.get(stream.name, previous)
        print(f"{stream.name:<18} {stream.seen:>8} {end - previous:>8.2f}")
        if stream.name in ("invoices", "checkout_sessions"):
            order_seconds += end - previous
        previous = end
    print(f"orders: {imported} imported of {orders} in Stripe")
    print(f"whole import: {report.seconds:.2f} s, {imported / report.seconds:,.0f} orders/s")
    print(f"order streams only: {order_seconds:.2f} s, {imported / order_seconds:,.0f} orders/s")
    writing = ends["writing"]
    print(f"of which writing orders: {writing:.2f} s, {imported / writing:,.0f} orders/s (the rest: waiting for pages)")
    return 0 if imported == orders else 1


if __name__ == "__main__":
    sys.exit(main())
