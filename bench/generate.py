"""Generate a large (or small) deterministic Portal data dir for benchmarks.

``python bench/generate.py`` writes ``bench/data/large/`` (2 organizations, 100,000 customers, 1,000,000 orders with
their items and refunds, 50,000 subscriptions, 200,000 license keys with activations, their benefit grants and
50,000 old sessions); ``--small`` writes ``bench/data/small/`` with the same shape at 1/1000 of the orders. Both
contain the same known customer (50 orders, one live subscription, three license keys) and the same known license
key, described in ``<data dir>/bench.json`` for ``bench/run.py``.

The database is migrated by ``portal.migrations.migrate`` (the real schema) and then filled with ``sqlite3``
directly: seeded RNG (same seed, same rows), batched ``executemany`` in a few transactions, secondary indexes
dropped during the load and rebuilt from their own SQL afterwards, ``journal_mode=OFF``/``synchronous=OFF`` while
loading (then back to WAL). No ``ANALYZE``: a production database does not have statistics either.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from portal.db import connect_sync
from portal.migrations import migrate
from portal.settings import load_or_create_secret

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_SEED = 20261125
BATCH = 50_000  # rows of the driving table per transaction

KNOWN_EMAIL = "known@bench.example"
KNOWN_KEY = "BENCH-0000BEEF-0000CAFE-0000F00D-00000001"
KNOWN_ORDERS = 50
BASE_TIME = datetime(2023, 1, 1, tzinfo=UTC)
SPAN_SECONDS = 3 * 365 * 24 * 3600
NOW = BASE_TIME + timedelta(seconds=SPAN_SECONDS)

# Tables whose secondary indexes are dropped during the load and rebuilt afterwards.
BULK_TABLES = (
    "customers",
    "orders",
    "order_items",
    "refunds",
    "subscriptions",
    "benefit_grants",
    "license_keys",
    "license_key_activations",
    "customer_sessions",
)


@dataclass(frozen=True)
class Scale:
    customers: int
    orders: int
    subscriptions: int
    license_keys: int
    old_sessions: int


SCALES = {
    "large": Scale(
        customers=100_000, orders=1_000_000, subscriptions=50_000, license_keys=200_000, old_sessions=50_000
    ),
    "small": Scale(customers=100, orders=1_000, subscriptions=50, license_keys=200, old_sessions=50),
}


def iso(moment: datetime) -> str:
    """The same text ``portal.clock.iso`` writes."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_DAYS = [(BASE_TIME + timedelta(days=d)).strftime("%Y-%m-%dT") for d in range(SPAN_SECONDS // 86400 + 2)]
_CLOCK = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}.000000Z" for s in range(86400)]


def iso_at(offset: int) -> str:
    """``iso(BASE_TIME + offset seconds)`` without datetime arithmetic (millions of calls)."""
    return _DAYS[offset // 86400] + _CLOCK[offset % 86400]


class Ids:
    """UUIDv4-shaped ids from a seeded RNG (``uuid.uuid4`` would not be reproducible)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def __call__(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


class Progress:
    """A one-line progress bar per table on stderr, with rows/s."""

    def __init__(self, label: str, total: int, quiet: bool = False) -> None:
        self.label, self.total, self.quiet = label, max(total, 1), quiet
        self.done = 0
        self.started = time.perf_counter()
        self.last = 0.0
        self.tty = sys.stderr.isatty()

    def advance(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        if not self.quiet and (now - self.last > (0.2 if self.tty else 5.0) or self.done >= self.total):
            self.last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        fraction = min(1.0, self.done / self.total)
        bar = "#" * int(fraction * 30)
        rate = self.done / max(now - self.started, 1e-9)
        line = f"{self.label:<24} [{bar:<30}] {self.done:>10,}/{self.total:,} {rate:>10,.0f} rows/s"
        sys.stderr.write(("\r" if self.tty else "") + line + ("" if self.tty else "\n"))
        sys.stderr.flush()

    def finish(self) -> None:
        if not self.quiet and self.tty:
            sys.stderr.write("\n")
            sys.stderr.flush()


@dataclass
class Generated:
    """What the generator made that later steps (and run.py) need."""

    rows: dict[str, int] = field(default_factory=dict)
    known: dict[str, Any] = field(default_factory=dict)
    index_seconds: float = 0.0


def _insert(
    conn: sqlite3.Connection,
    table: str,
    columns: Sequence[str],
    rows: Iterable[tuple[Any, ...]],
    total: int,
    out: Generated,
    quiet: bool,
) -> None:
    """Batched ``executemany`` of ``rows`` into ``table``, one transaction per batch."""
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
    progress = Progress(table, total, quiet)
    batch: list[tuple[Any, ...]] = []
    count = 0

    def flush() -> None:
        conn.execute("BEGIN")
        conn.executemany(sql, batch)
        conn.execute("COMMIT")
        progress.advance(len(batch))
        batch.clear()

    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            count += len(batch)
            flush()
    if batch:
        count += len(batch)
        flush()
    progress.finish()
    out.rows[table] = out.rows.get(table, 0) + count


class Multi:
    """Rows for several tables produced by one pass (orders + items + refunds), flushed together."""

    def __init__(self, conn: sqlite3.Connection, out: Generated) -> None:
        self.conn, self.out = conn, out
        self.sql: dict[str, str] = {}
        self.pending: dict[str, list[tuple[Any, ...]]] = {}

    def table(self, name: str, columns: Sequence[str]) -> Callable[[tuple[Any, ...]], None]:
        self.sql[name] = f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
        self.pending[name] = []
        return self.pending[name].append

    def flush(self) -> int:
        n = 0
        self.conn.execute("BEGIN")
        for name, rows in self.pending.items():
            self.conn.executemany(self.sql[name], rows)
            self.out.rows[name] = self.out.rows.get(name, 0) + len(rows)
            n += len(rows)
            rows.clear()
        self.conn.execute("COMMIT")
        return n


ADDRESSES = [
    {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "state": "US-IL", "country": "US"},
    {"line1": "10 Rue de la Paix", "city": "Paris", "postal_code": "75002", "country": "FR"},
    {"line1": "Unter den Linden 5", "city": "Berlin", "postal_code": "10117", "country": "DE"},
    {"line1": "221B Baker Street", "city": "London", "postal_code": "NW1 6XE", "country": "GB"},
]
ADDRESS_JSON = [json.dumps(a, separators=(",", ":")) for a in ADDRESSES]
ORDER_STATUSES = ["paid"] * 90 + ["refunded"] * 4 + ["partially_refunded"] * 3 + ["pending"] * 2 + ["void"]
SUB_STATUSES = ["active"] * 70 + ["canceled"] * 15 + ["trialing"] * 5 + ["past_due"] * 5 + ["unpaid"] * 5


def generate(data_dir: Path, scale: Scale, *, seed: int = DEFAULT_SEED, quiet: bool = False) -> Generated:
    """Create ``data_dir/portal.db`` (replacing one that exists) and ``bench.json``; return what was made."""
    data_dir.mkdir(parents=True, exist_ok=True)
    db_path = data_dir / "portal.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    load_or_create_secret(data_dir)
    conn = connect_sync(db_path)
    migrate(conn)
    conn.close()

    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("PRAGMA cache_size=-1000000")  # 1 GB page cache: the primary-key B-trees stay in memory
    conn.execute("PRAGMA temp_store=MEMORY")
    marks = ", ".join("?" for _ in BULK_TABLES)
    indexes = conn.execute(
        f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ({marks})",
        BULK_TABLES,
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')

    out = Generated()
    rng = random.Random(seed)
    new_id = Ids(rng)
    _fill(conn, scale, rng, new_id, out, quiet)

    started = time.perf_counter()
    progress = Progress("rebuild indexes", len(indexes), quiet)
    for _, sql in indexes:
        conn.execute(sql)
        progress.advance(1)
    progress.finish()
    out.index_seconds = round(time.perf_counter() - started, 2)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    (data_dir / "bench.json").write_text(json.dumps(out.known, indent=2) + "\n")
    return out


def _fill(conn: sqlite3.Connection, scale: Scale, rng: random.Random, new_id: Ids, out: Generated, quiet: bool) -> None:
    created = iso(BASE_TIME)
    # --- organizations, products, prices, benefits -------------------------------------------------------
    orgs = []
    for slug, name, prefix in (("bench-a", "Bench A Software", "BENCHA"), ("bench-b", "Bench B Studio", "BENCHB")):
        orgs.append({"id": new_id(), "slug": slug, "name": name, "prefix": prefix, "receipt": 1})
    conn.execute("BEGIN")
    for org in orgs:
        conn.execute(
            "INSERT INTO organizations (id, slug, name, support_email, address, receipt_prefix, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                org["id"],
                org["slug"],
                org["name"],
                f"support@{org['slug']}.example",
                "1 Bench Road",
                org["prefix"],
                created,
            ),
        )
        org["one_time"], org["recurring"] = [], []
        benefit_rows = {
            "license_keys": {
                "prefix": "BENCH",
                "expires": None,
                "activations": {"limit": 5, "enable_customer_admin": True},
                "limit_usage": None,
                "allow_customer_rotation": False,
            },
            "custom": {"note": "Thanks for your purchase! Your support link: https://example.com/support"},
            "discord": {"guild_id": "1", "role_id": "2", "kick_member": False, "invite_url": "https://discord.gg/x"},
        }
        org["benefits"] = {}
        for kind, props in benefit_rows.items():
            benefit_id = new_id()
            org["benefits"][kind] = benefit_id
            conn.execute(
                "INSERT INTO benefits (id, organization_id, type, description, properties, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (benefit_id, org["id"], kind, f"{kind.replace('_', ' ').title()} benefit", json.dumps(props), created),
            )
        for i in range(10):
            recurring = i >= 6
            product_id, price_id = new_id(), new_id()
            amount = 900 + 1000 * i
            interval = ("month" if i % 2 else "year") if recurring else None
            conn.execute(
                "INSERT INTO products (id, organization_id, name, description, is_recurring, recurring_interval, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    product_id,
                    org["id"],
                    f"Product {i + 1}",
                    "A product for benchmarks",
                    int(recurring),
                    interval,
                    created,
                ),
            )
            conn.execute(
                "INSERT INTO product_prices (id, product_id, price_amount, price_currency, created_at) "
                "VALUES (?, ?, ?, 'usd', ?)",
                (price_id, product_id, amount, created),
            )
            kinds = ("custom", "discord") if recurring else ("license_keys", "custom")
            for position, kind in enumerate(kinds):
                conn.execute(
                    "INSERT INTO product_benefits (product_id, benefit_id, position) VALUES (?, ?, ?)",
                    (product_id, org["benefits"][kind], position),
                )
            entry = (product_id, price_id, amount, f"Product {i + 1}", interval)
            (org["recurring"] if recurring else org["one_time"]).append(entry)
    conn.execute("COMMIT")
    out.rows["organizations+products+prices+benefits"] = 2 + 2 * (10 + 10 + 3 + 20)

    # --- customers: the first 70% belong to org A; customer 0 is the known one -----------------------------
    n = scale.customers
    split = int(n * 0.7)
    cust_ids = [new_id() for _ in range(n)]
    cust_org = [0 if i < split else 1 for i in range(n)]
    cust_addr = [rng.randrange(len(ADDRESSES)) for _ in range(n)]

    def customers() -> Iterator[tuple[Any, ...]]:
        for i in range(n):
            email = KNOWN_EMAIL if i == 0 else f"customer{i}@bench.example"
            name = "Known Customer" if i == 0 else f"Customer {i}"
            yield (
                cust_ids[i],
                orgs[cust_org[i]]["id"],
                email,
                1,
                name,
                f"ext-{i}",
                name,
                ADDRESS_JSON[cust_addr[i]],
                iso_at(i),
            )

    _insert(
        conn,
        "customers",
        (
            "id",
            "organization_id",
            "email",
            "email_verified",
            "name",
            "external_id",
            "billing_name",
            "billing_address",
            "created_at",
        ),
        customers(),
        n,
        out,
        quiet,
    )

    # --- subscriptions: customer 0 plus a random sample, one each ------------------------------------------
    subscribers = [0, *rng.sample(range(1, n), scale.subscriptions - 1)]
    subs: dict[int, tuple[str, str, str, int]] = {}

    def subscriptions() -> Iterator[tuple[Any, ...]]:
        for c in subscribers:
            org = orgs[cust_org[c]]
            product_id, price_id, amount, _, interval = rng.choice(org["recurring"])
            status = "active" if c == 0 else rng.choice(SUB_STATUSES)
            start = BASE_TIME + timedelta(seconds=rng.randrange(SPAN_SECONDS // 2))
            period = timedelta(days=30 if interval == "month" else 365)
            periods = (NOW - start) // period
            period_start = start + periods * period
            ended = status == "canceled"
            sub_id = new_id()
            subs[c] = (sub_id, product_id, price_id, amount)
            yield (
                sub_id,
                org["id"],
                cust_ids[c],
                product_id,
                price_id,
                status,
                amount,
                "usd",
                interval,
                iso(period_start),
                None if ended else iso(period_start + period),
                iso(period_start) if ended else None,
                iso(start),
                iso(period_start) if ended else None,
                iso(start),
            )

    _insert(
        conn,
        "subscriptions",
        (
            "id",
            "organization_id",
            "customer_id",
            "product_id",
            "price_id",
            "status",
            "amount",
            "currency",
            "recurring_interval",
            "current_period_start",
            "current_period_end",
            "canceled_at",
            "started_at",
            "ended_at",
            "created_at",
        ),
        subscriptions(),
        len(subscribers),
        out,
        quiet,
    )

    # --- orders with items and refunds, in one pass ------------------------------------------------------
    last_order: list[str | None] = [None] * n
    multi = Multi(conn, out)
    add_order = multi.table(
        "orders",
        (
            "id",
            "organization_id",
            "customer_id",
            "product_id",
            "subscription_id",
            "status",
            "billing_reason",
            "subtotal_amount",
            "tax_amount",
            "total_amount",
            "refunded_amount",
            "refunded_tax_amount",
            "currency",
            "billing_name",
            "billing_address",
            "receipt_number",
            "paid_at",
            "created_at",
        ),
    )
    add_item = multi.table(
        "order_items",
        (
            "id",
            "order_id",
            "label",
            "quantity",
            "unit_amount",
            "amount",
            "tax_amount",
            "product_price_id",
            "position",
            "created_at",
        ),
    )
    add_refund = multi.table("refunds", ("id", "order_id", "amount", "tax_amount", "reason", "created_at"))
    progress = Progress("orders+items+refunds", scale.orders, quiet)
    known_orders: list[tuple[str, str]] = []
    rnd = rng.random  # random()-based picks: randrange/choice cost several times more per call
    for k in range(scale.orders):
        c = 0 if k < KNOWN_ORDERS else 1 + int(rnd() * (n - 1))
        org = orgs[cust_org[c]]
        sub = subs.get(c)
        if sub is not None and ((c == 0 and k % 5 == 0) or (c != 0 and rnd() < 0.5)):
            sub_id, product_id, price_id, amount = sub
            reason, label = "subscription_cycle", "Subscription renewal"
        else:
            product_id, price_id, amount, label, _ = org["one_time"][int(rnd() * len(org["one_time"]))]
            sub_id, reason = None, "purchase"
        status = "paid" if c == 0 and k % 10 else ORDER_STATUSES[int(rnd() * len(ORDER_STATUSES))]
        if c == 0 and k % 10 == 0:
            status = "partially_refunded"
        at = iso_at(int(rnd() * SPAN_SECONDS))
        tax = amount // 5
        total = amount + tax
        order_id = new_id()
        paid = status != "pending" and status != "void"
        receipt = None
        if paid:
            receipt = f"{org['prefix']}-{org['receipt']:04d}"
            org["receipt"] += 1
        refunded = refunded_tax = 0
        if status == "refunded":
            refunded, refunded_tax = total, tax
        elif status == "partially_refunded":
            refunded, refunded_tax = total // 2, tax // 2
        add_order(
            (
                order_id,
                org["id"],
                cust_ids[c],
                product_id,
                sub_id,
                status,
                reason,
                amount,
                tax,
                total,
                refunded,
                refunded_tax,
                "usd",
                "Known Customer" if c == 0 else f"Customer {c}",
                ADDRESS_JSON[cust_addr[c]],
                receipt,
                at if paid else None,
                at,
            )
        )
        quantity = 2 if rnd() < 0.1 else 1
        add_item((new_id(), order_id, label, quantity, amount // quantity, amount, tax, price_id, 0, at))
        if rnd() < 0.1:
            add_item((new_id(), order_id, "Setup fee", 1, 0, 0, 0, None, 1, at))
        if refunded:
            add_refund((new_id(), order_id, refunded, refunded_tax, "requested_by_customer", at))
        last_order[c] = order_id
        if c == 0 and paid:
            known_orders.append((at, order_id))
        if k % BATCH == BATCH - 1:
            progress.advance(len(multi.pending["orders"]))
            multi.flush()
    progress.advance(len(multi.pending["orders"]))
    multi.flush()
    progress.finish()

    # --- grants: one custom grant per live subscription; license keys (each with its grant) + activations ---
    multi = Multi(conn, out)
    add_grant = multi.table(
        "benefit_grants",
        (
            "id",
            "organization_id",
            "customer_id",
            "benefit_id",
            "order_id",
            "subscription_id",
            "granted_at",
            "properties",
            "created_at",
        ),
    )
    add_key = multi.table(
        "license_keys",
        (
            "id",
            "organization_id",
            "customer_id",
            "benefit_id",
            "grant_id",
            "key",
            "display_key",
            "status",
            "limit_activations",
            "validations",
            "created_at",
        ),
    )
    add_activation = multi.table(
        "license_key_activations", ("id", "license_key_id", "label", "meta", "conditions", "created_at")
    )
    for c, (sub_id, _, _, _) in subs.items():
        org = orgs[cust_org[c]]
        add_grant((new_id(), org["id"], cust_ids[c], org["benefits"]["custom"], None, sub_id, created, "{}", created))
    progress = Progress("license keys+grants", scale.license_keys, quiet)
    known_key_id = ""
    for k in range(scale.license_keys):
        c = 0 if k < 3 else rng.randrange(1, n)
        org = orgs[cust_org[c]]
        key_id, grant_id = new_id(), new_id()
        if k == 0:
            key, known_key_id = KNOWN_KEY, key_id
        else:
            key = "BENCH-" + "-".join(f"{rng.getrandbits(32):08X}" for _ in range(4))
        shown = f"****-{key[-6:]}"
        at = iso_at(rng.randrange(SPAN_SECONDS))
        props = f'{{"license_key_id":"{key_id}","display_key":"{shown}"}}'
        benefit_id = org["benefits"]["license_keys"]
        add_grant((grant_id, org["id"], cust_ids[c], benefit_id, last_order[c], None, at, props, at))
        status = "granted" if c == 0 or rng.random() < 0.95 else "revoked"
        add_key((key_id, org["id"], cust_ids[c], benefit_id, grant_id, key, shown, status, 5, 0, at))
        for a in range(1 if c == 0 else rng.choice((0, 0, 1, 1, 2, 3))):
            add_activation((new_id(), key_id, f"device-{a + 1}", '{"os":"linux"}', "{}", at))
        if k % BATCH == BATCH - 1:
            progress.advance(len(multi.pending["license_keys"]))
            multi.flush()
    progress.advance(len(multi.pending["license_keys"]))
    multi.flush()
    progress.finish()

    # --- old sessions (expired or revoked): the session table of a portal that has been used for a while ----
    def sessions() -> Iterator[tuple[Any, ...]]:
        for i in range(scale.old_sessions):
            c = rng.randrange(1, n)
            at = iso_at(rng.randrange(SPAN_SECONDS))
            yield (
                new_id(),
                f"{rng.getrandbits(256):064x}",
                "browser" if i % 3 else "api",
                orgs[cust_org[c]]["id"],
                cust_ids[c],
                at,
                at,
                at if i % 2 else None,
                at,
            )

    _insert(
        conn,
        "customer_sessions",
        (
            "id",
            "token_hash",
            "kind",
            "organization_id",
            "customer_id",
            "expires_at",
            "last_seen_at",
            "revoked_at",
            "created_at",
        ),
        sessions(),
        scale.old_sessions,
        out,
        quiet,
    )

    conn.execute("BEGIN")
    for org in orgs:
        conn.execute("UPDATE organizations SET next_receipt_number = ? WHERE id = ?", (org["receipt"], org["id"]))
    conn.execute("COMMIT")

    known_orders.sort(reverse=True)
    out.known = {
        "organization_id": orgs[0]["id"],
        "organization_slug": orgs[0]["slug"],
        "customer_id": cust_ids[0],
        "customer_email": KNOWN_EMAIL,
        "customer_orders": KNOWN_ORDERS,
        "receipt_order_id": known_orders[0][1],
        "license_key": KNOWN_KEY,
        "license_key_id": known_key_id,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="1,000 orders instead of 1,000,000")
    parser.add_argument("--data-dir", type=Path, help="default: bench/data/large or bench/data/small")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    name = "small" if args.small else "large"
    data_dir = args.data_dir or BENCH_DIR / "data" / name
    started = time.perf_counter()
    out = generate(data_dir, SCALES[name], seed=args.seed, quiet=args.quiet)
    seconds = time.perf_counter() - started
    total = sum(out.rows.values())
    size = (data_dir / "portal.db").stat().st_size
    summary = {
        "data_dir": str(data_dir),
        "rows": out.rows,
        "total_rows": total,
        "seconds": round(seconds, 2),
        "index_rebuild_seconds": out.index_seconds,
        "rows_per_second": round(total / seconds),
        "db_megabytes": round(size / 1e6, 1),
    }
    (data_dir / "generate.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"{name}: {total:,} rows in {seconds:.1f} s = {total / seconds:,.0f} rows/s "
        f"({size / 1e6:,.0f} MB) -> {data_dir / 'portal.db'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
