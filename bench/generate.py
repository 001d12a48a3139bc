"""Generate a large (or small) deterministic Portal data dir for benchmarks.

``python bench/generate.py`` writes ``bench/data/large/`` (2 organizations, 100,000 customers, 1,000,000 orders with
their items and refunds, 50,000 subscriptions, 200,000 license keys with activations, their benefit grants and
50,000 old sessions); ``--small`` writes ``bench/data/small/`` with the same shape at 1/1000 of the orders. Both
contain the same known customer (50 orders, one live subscription, three license keys) and the same known license
key, described in ``<data dir>/bench.json`` for ``bench/run.py``.

The database is migrated by ``portal.migrations.migrate`` (the real schema) and then filled with ``sqlite3``
directly: seeded RNG (same seed, same rows), secondary indexes dropped during the load and rebuilt from their own
SQL afterwards, triggers on the loaded tables dropped and re-created the same way (the rows carry what the triggers
would have written: ``orders.items_json``), ``journal_mode=OFF``/``synchronous=OFF`` and an exclusive lock while
loading (then back to WAL). No ``ANALYZE``: a production database does not have statistics either. What makes it
fast (each step measured, see bench/README.md):

* **Time-ordered ids.** Ids are UUIDv7-shaped (RFC 9562): the row's ``created_at`` as the 48-bit millisecond prefix,
  then seeded random bits. Every table is generated in ``created_at`` order (items, refunds and activations with
  their parent), so each primary-key insert appends at the right edge of its B-tree instead of splitting a random
  page of a million-entry index. (Portal itself writes UUIDv4 ids; many apps write UUIDv7 ones.)
* **Multi-row INSERTs.** Rows are buffered flat per table and inserted with ``executemany`` of
  ``INSERT … VALUES (…), (…), …`` statements of 1,000 rows, in one transaction per 200,000 driving rows: a statement
  opens its cursors once for all its rows instead of once per row (this SQLite build has no lookaside memory, so
  every per-statement allocation is a ``malloc``). Constant columns are SQL literals, not bound parameters.
* **Cheap rows.** What many rows share (an order's organization, product, status and amounts; an item's label and
  amounts; a customer's name and address) is a precomputed tuple, so a row is a short tuple plus one concatenation;
  times come from precomputed day and clock strings; the garbage collector is off during the load.
* **Index rebuild** through ``mmap`` (no copy of every table page into the cache), with ``temp_store`` left at FILE
  (with MEMORY the sorter allocates every record separately instead of using its arena).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import random
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from portal.db import connect_sync
from portal.migrations import migrate
from portal.settings import load_or_create_secret

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_SEED = 20261125
BATCH = 50_000  # rows of the driving table per executemany round (and per progress step)
TRANSACTION = 200_000  # rows of the driving table per transaction
ROWS_PER_STATEMENT = 1_000  # rows per multi-row INSERT statement
MAX_PARAMETERS = 32_766  # bound parameters per statement: SQLite's default limit since 3.32

KNOWN_EMAIL = "known@bench.example"
KNOWN_KEY = "BENCH-0000BEEF-0000CAFE-0000F00D-00000001"
KNOWN_ORDERS = 50
BASE_TIME = datetime(2023, 1, 1, tzinfo=UTC)
BASE_MS = int(BASE_TIME.timestamp()) * 1000
DAY = 86_400
SPAN_SECONDS = 3 * 365 * DAY  # orders, keys and sessions are spread over three years from BASE_TIME

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


# ``portal.clock.iso`` text for BASE_TIME + offset seconds, from two tables instead of datetime arithmetic (millions
# of calls). Up to a year past the span: a yearly subscription's current period ends after "now".
_DAYS = [
    datetime.fromtimestamp(BASE_MS // 1000 + d * DAY, UTC).strftime("%Y-%m-%dT")
    for d in range(SPAN_SECONDS // DAY + 400)
]
_CLOCK = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}.000000Z" for s in range(DAY)]


def iso_at(offset: int) -> str:
    """What ``portal.clock.iso`` writes for ``BASE_TIME + offset`` seconds."""
    return _DAYS[offset // DAY] + _CLOCK[offset % DAY]


def id_prefix(offset: int) -> str:
    """The first 15 characters of a time-ordered id created at ``BASE_TIME + offset`` seconds: the 48-bit Unix
    millisecond timestamp (``xxxxxxxx-xxxx``) and the version digit (``-7``), as in UUIDv7 (RFC 9562)."""
    ms = BASE_MS + offset * 1000
    return f"{ms >> 16:08x}-{ms & 0xFFFF:04x}-7"


class Ids:
    """The random rest of time-ordered ids, from a seeded RNG (``uuid`` would not be reproducible).

    ``id_prefix(offset) + ids.tail()`` is a canonical UUIDv7 text: 12 random bits, the variant digit (``a``) and
    60 random bits. Tails are cut from one ``randbytes`` hex string per 64k ids (one C call instead of a
    ``getrandbits`` and an int format per id); ``tail`` is the C ``__next__`` of an endless chain of those chunks.
    """

    CHUNK = 1 << 16

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        chunks = map(self._chunk, itertools.repeat(self.CHUNK))
        self.tail: Callable[[], str] = itertools.chain.from_iterable(chunks).__next__

    def _chunk(self, count: int) -> list[str]:
        h = self.rng.randbytes(9 * count).hex()
        return [f"{h[j : j + 3]}-a{h[j + 3 : j + 6]}-{h[j + 6 : j + 18]}" for j in range(0, 18 * count, 18)]

    def at(self, offset: int) -> str:
        """A new id created at ``BASE_TIME + offset`` seconds."""
        return id_prefix(offset) + self.tail()


class Progress:
    """A one-line progress bar per table on stderr, with rows/s."""

    def __init__(self, label: str, total: int, quiet: bool = False, unit: str = "rows") -> None:
        self.label, self.total, self.quiet, self.unit = label, max(total, 1), quiet, unit
        self.done = 0
        self.started = time.perf_counter()
        self.last = 0.0
        self.drawn = -1
        self.tty = sys.stderr.isatty()

    def advance(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        if not self.quiet and (now - self.last > (0.2 if self.tty else 5.0) or self.done >= self.total):
            self.last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        if self.done == self.drawn:
            return
        self.drawn = self.done
        fraction = min(1.0, self.done / self.total)
        bar = "#" * int(fraction * 30)
        rate = self.done / max(now - self.started, 1e-9)
        line = (
            f"{self.label:<24} [{bar:<30}] {self.done:>10,}/{self.total:,} "
            f"{rate:>10,.0f} {self.unit}/s, {now - self.started:5.1f} s"
        )
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


class Table:
    """Pending rows of one table, kept flat (``add`` extends the list with one row's values) and inserted with
    multi-row ``INSERT … VALUES (…), (…), …`` statements: one statement keeps its cursors open over all its rows,
    where ``executemany`` of a one-row INSERT opens and closes them (and allocates) for every row."""

    def __init__(self, name: str, columns: Sequence[str], literals: dict[str, str] | None = None) -> None:
        literals = literals or {}
        self.name, self.width = name, len(columns)
        self.head = f"INSERT INTO {name} ({', '.join([*columns, *literals])}) VALUES "
        self.row = "(" + ", ".join(["?"] * len(columns) + list(literals.values())) + ")"
        self.per_statement = max(1, min(ROWS_PER_STATEMENT, MAX_PARAMETERS // self.width))
        self.sql = self.statement(self.per_statement)
        self.values: list[Any] = []
        self.add: Callable[[tuple[Any, ...]], None] = self.values.extend

    def statement(self, rows: int) -> str:
        return self.head + ", ".join([self.row] * rows)

    def insert(self, conn: sqlite3.Connection) -> int:
        """Insert the pending rows; return how many there were."""
        values, step = self.values, self.width * self.per_statement
        full = len(values) // step * step
        if full:
            conn.executemany(self.sql, [values[i : i + step] for i in range(0, full, step)])
        if full < len(values):
            conn.execute(self.statement((len(values) - full) // self.width), values[full:])
        count = len(values) // self.width
        values.clear()
        return count


class Loader:
    """Rows for one or more tables produced by one pass, inserted at every ``flush`` and committed every
    ``TRANSACTION`` driving rows (and at ``close``)."""

    def __init__(self, conn: sqlite3.Connection, out: Generated, label: str, total: int, quiet: bool) -> None:
        self.conn, self.out = conn, out
        self.tables: list[Table] = []
        self.progress = Progress(label, total, quiet)
        self.uncommitted = 0
        conn.execute("BEGIN")

    def table(
        self, name: str, columns: Sequence[str], literals: dict[str, str] | None = None
    ) -> Callable[[tuple[Any, ...]], None]:
        """The ``add(row)`` of table ``name``: rows are tuples of ``columns``; ``literals`` are constant columns
        written into the SQL (``{"currency": "'usd'"}``) instead of being bound for every row."""
        table = Table(name, columns, literals)
        self.tables.append(table)
        return table.add

    def flush(self, driving_rows: int) -> None:
        for table in self.tables:
            count = table.insert(self.conn)
            self.out.rows[table.name] = self.out.rows.get(table.name, 0) + count
        self.uncommitted += driving_rows
        if self.uncommitted >= TRANSACTION:
            self.conn.execute("COMMIT")
            self.conn.execute("BEGIN")
            self.uncommitted = 0
        self.progress.advance(driving_rows)

    def close(self, driving_rows: int) -> None:
        self.flush(driving_rows)
        self.conn.execute("COMMIT")
        self.progress.finish()


ADDRESSES = [
    {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "state": "US-IL", "country": "US"},
    {"line1": "10 Rue de la Paix", "city": "Paris", "postal_code": "75002", "country": "FR"},
    {"line1": "Unter den Linden 5", "city": "Berlin", "postal_code": "10117", "country": "DE"},
    {"line1": "221B Baker Street", "city": "London", "postal_code": "NW1 6XE", "country": "GB"},
]
ADDRESS_JSON = [json.dumps(a, separators=(",", ":")) for a in ADDRESSES]
# Pools drawn from with ``pool[int(random() * len(pool))]`` (random()-based picks: choice/randrange cost several
# times more per call).
ORDER_STATUSES = ["paid"] * 90 + ["refunded"] * 4 + ["partially_refunded"] * 3 + ["pending"] * 2 + ["void"]
SUB_STATUSES = ["active"] * 70 + ["canceled"] * 15 + ["trialing"] * 5 + ["past_due"] * 5 + ["unpaid"] * 5
ACTIVATIONS = (0, 0, 1, 1, 2, 3)


def _item_json_tail(label: str, amount: int, tax: int, price_id: str | None) -> str:
    """An item's JSON object in ``orders.items_json`` after its ``id`` value: the text SQLite's ``json_object`` writes
    there (migration 9's triggers, which are off during the load), checked by tests/test_bench_smoke.py."""
    price = json.dumps(price_id)
    label_json = json.dumps(label, ensure_ascii=False)
    return f'","label":{label_json},"amount":{amount},"tax_amount":{tax},"proration":false,"product_price_id":{price}}}'


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
    conn.execute("PRAGMA locking_mode=EXCLUSIVE")  # nobody else reads it while it is built: no lock/cache checks
    # Appends touch only the right edge of each B-tree: a small page cache is enough (a large one only costs fresh
    # memory to fault in). temp_store stays FILE: with MEMORY, SQLite's sorter mallocs every record of an index
    # build separately instead of using its arena (a measured 15% slower rebuild); the sorts fit in memory anyway.
    conn.execute("PRAGMA cache_size=-100000")
    marks = ", ".join("?" for _ in BULK_TABLES)
    indexes = conn.execute(
        f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ({marks})",
        BULK_TABLES,
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    # Triggers on the loaded tables (orders.items_json's, migration 9) are off too: the rows carry what they write.
    triggers = conn.execute(
        f"SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ({marks})", BULK_TABLES
    ).fetchall()
    for name, _ in triggers:
        conn.execute(f'DROP TRIGGER "{name}"')

    out = Generated()
    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of row tuples and no reference cycles: collections would only rescan them
    try:
        _fill(conn, scale, random.Random(seed), Ids(random.Random(seed + 1)), out, quiet)
    finally:
        if gc_was_enabled:
            gc.enable()

    started = time.perf_counter()
    # Index builds read whole tables: through a memory map rather than a copy of every page into the cache; the
    # larger cache lets each sort stay one in-memory run (the sorter's memory limit follows cache_size).
    conn.execute("PRAGMA mmap_size=2147418112")  # the most this SQLite build allows
    conn.execute("PRAGMA cache_size=-1000000")
    progress = Progress("rebuild indexes", len(indexes), quiet, unit="indexes")
    for _, sql in indexes:
        conn.execute(sql)
        progress.advance(1)
    progress.finish()
    out.index_seconds = round(time.perf_counter() - started, 2)
    for _, sql in triggers:
        conn.execute(sql)
    conn.execute("PRAGMA locking_mode=NORMAL")
    conn.execute("PRAGMA journal_mode=WAL")  # also releases the exclusive lock
    conn.close()
    (data_dir / "bench.json").write_text(json.dumps(out.known, indent=2) + "\n")
    return out


@dataclass
class Org:
    id: str
    slug: str
    name: str
    prefix: str
    benefits: dict[str, str] = field(default_factory=dict)
    one_time: list[int] = field(default_factory=list)  # indexes into the product list
    recurring: list[int] = field(default_factory=list)
    next_receipt: int = 1


@dataclass
class Product:
    org: int
    id: str
    price_id: str
    name: str
    amount: int
    interval: str | None


def _catalog(conn: sqlite3.Connection, ids: Ids, out: Generated) -> tuple[list[Org], list[Product]]:
    """The two organizations with 10 products (one price each; 4 recurring) and 3 benefits."""
    created = iso_at(0)
    orgs = [
        Org(ids.at(0), "bench-a", "Bench A Software", "BENCHA"),
        Org(ids.at(0), "bench-b", "Bench B Studio", "BENCHB"),
    ]
    products: list[Product] = []
    benefit_properties = {
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
    conn.execute("BEGIN")
    for o, org in enumerate(orgs):
        conn.execute(
            "INSERT INTO organizations (id, slug, name, support_email, address, receipt_prefix, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (org.id, org.slug, org.name, f"support@{org.slug}.example", "1 Bench Road", org.prefix, created),
        )
        for kind, props in benefit_properties.items():
            org.benefits[kind] = ids.at(0)
            conn.execute(
                "INSERT INTO benefits (id, organization_id, type, description, properties, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    org.benefits[kind],
                    org.id,
                    kind,
                    f"{kind.replace('_', ' ').title()} benefit",
                    json.dumps(props),
                    created,
                ),
            )
        for i in range(10):
            recurring = i >= 6
            interval = ("month" if i % 2 else "year") if recurring else None
            product = Product(o, ids.at(0), ids.at(0), f"Product {i + 1}", 900 + 1000 * i, interval)
            conn.execute(
                "INSERT INTO products (id, organization_id, name, description, is_recurring, recurring_interval, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (product.id, org.id, product.name, "A product for benchmarks", int(recurring), interval, created),
            )
            conn.execute(
                "INSERT INTO product_prices (id, product_id, price_amount, price_currency, created_at) "
                "VALUES (?, ?, ?, 'usd', ?)",
                (product.price_id, product.id, product.amount, created),
            )
            kinds = ("custom", "discord") if recurring else ("license_keys", "custom")
            for position, kind in enumerate(kinds):
                conn.execute(
                    "INSERT INTO product_benefits (product_id, benefit_id, position) VALUES (?, ?, ?)",
                    (product.id, org.benefits[kind], position),
                )
            (org.recurring if recurring else org.one_time).append(len(products))
            products.append(product)
    conn.execute("COMMIT")
    out.rows["organizations+products+prices+benefits"] = 2 + 2 * (10 + 10 + 3 + 20)
    return orgs, products


def _fill(conn: sqlite3.Connection, scale: Scale, rng: random.Random, ids: Ids, out: Generated, quiet: bool) -> None:
    rnd = rng.random
    tail = ids.tail
    days, clock = _DAYS, _CLOCK
    orgs, products = _catalog(conn, ids, out)

    # --- customers: the first 70% belong to org A; customer 0 is the known one; one a second from BASE_TIME --
    n = scale.customers
    split = int(n * 0.7)
    cust_org = [0 if i < split else 1 for i in range(n)]
    cust_ids = [id_prefix(i) + tail() for i in range(n)]
    cust_names = ["Known Customer", *(f"Customer {i}" for i in range(1, n))]
    cust_addr = [ADDRESS_JSON[int(rnd() * len(ADDRESSES))] for _ in range(n)]
    load = Loader(conn, out, "customers", n, quiet)
    add = load.table(
        "customers",
        ("id", "organization_id", "email", "name", "external_id", "billing_name", "billing_address", "created_at"),
        {"email_verified": "1"},
    )
    org_ids = [org.id for org in orgs]
    for lo in range(0, n, BATCH):
        for i in range(lo, min(lo + BATCH, n)):
            name = cust_names[i]
            email = f"customer{i}@bench.example" if i else KNOWN_EMAIL
            add((cust_ids[i], org_ids[cust_org[i]], email, name, f"ext-{i}", name, cust_addr[i], iso_at(i)))
        load.flush(min(BATCH, n - lo))
    load.close(0)

    # --- subscriptions: customer 0 plus a random sample, one each, started in the first half of the span --------
    subscribers = [0, *rng.sample(range(1, n), scale.subscriptions - 1)]
    starts = sorted((int(rnd() * (SPAN_SECONDS // 2)), c) for c in subscribers)
    cust_sub: list[tuple[int, int, str] | None] = [None] * n  # customer -> (start, product index, subscription id)
    sub_grants: list[tuple[int, str, int]] = []  # (start, subscription id, customer), in start order
    load = Loader(conn, out, "subscriptions", len(starts), quiet)
    add = load.table(
        "subscriptions",
        (
            "id",
            "organization_id",
            "customer_id",
            "product_id",
            "price_id",
            "status",
            "amount",
            "recurring_interval",
            "current_period_start",
            "current_period_end",
            "canceled_at",
            "started_at",
            "ended_at",
            "created_at",
        ),
        {"currency": "'usd'"},
    )
    for count, (start, c) in enumerate(starts, 1):
        org = orgs[cust_org[c]]
        p = org.recurring[int(rnd() * len(org.recurring))]
        product = products[p]
        status = "active" if c == 0 else SUB_STATUSES[int(rnd() * len(SUB_STATUSES))]
        period = (30 if product.interval == "month" else 365) * DAY
        period_start = start + (SPAN_SECONDS - start) // period * period
        ended = iso_at(period_start) if status == "canceled" else None
        sub_id = id_prefix(start) + tail()
        cust_sub[c] = (start, p, sub_id)
        sub_grants.append((start, sub_id, c))
        at = iso_at(start)
        add(
            (
                sub_id,
                org.id,
                cust_ids[c],
                product.id,
                product.price_id,
                status,
                product.amount,
                product.interval,
                iso_at(period_start),
                None if ended else iso_at(period_start + period),
                ended,
                at,
                ended,
                at,
            )
        )
        if count % BATCH == 0:
            load.flush(BATCH)
    load.close(len(starts) % BATCH)

    # --- orders with items and refunds, in time order -------------------------------------------------------------
    # Constant parts of the rows, per product and status-pool slot: an order row is (its own 8 values) + one of these.
    order_tail: list[list[tuple[Any, ...]]] = []
    refund_tail: list[list[tuple[Any, ...] | None]] = []
    item_tail: list[tuple[tuple[Any, ...], tuple[Any, ...]]] = []  # [quantity 1, quantity 2]
    item_json_tail: list[str] = []  # an item's JSON after its id (orders.items_json), per product
    for product in products:
        org_id, amount = orgs[product.org].id, product.amount
        tax = amount // 5
        total = amount + tax
        reason = "subscription_cycle" if product.interval else "purchase"
        label = "Subscription renewal" if product.interval else product.name
        order_tail.append([])
        refund_tail.append([])
        for status in ORDER_STATUSES:
            refunded, refunded_tax = {"refunded": (total, tax), "partially_refunded": (total // 2, tax // 2)}.get(
                status, (0, 0)
            )
            order_tail[-1].append((org_id, product.id, status, reason, amount, tax, total, refunded, refunded_tax))
            refund_tail[-1].append((refunded, refunded_tax, "requested_by_customer") if refunded else None)
        item_tail.append(
            (
                (label, 1, amount, amount, tax, product.price_id, 0),
                (label, 2, amount // 2, amount, tax, product.price_id, 0),
            )
        )
        item_json_tail.append(_item_json_tail(label, amount, tax, product.price_id))
    setup_fee = ("Setup fee", 1, 0, 0, 0, None, 1)
    setup_fee_json = _item_json_tail("Setup fee", 0, 0, None)
    paid_slot = [status not in ("pending", "void") for status in ORDER_STATUSES]
    slots = len(ORDER_STATUSES)
    known_paid, known_refunded = ORDER_STATUSES.index("paid"), ORDER_STATUSES.index("partially_refunded")

    total_orders = scale.orders
    times = sorted([int(rnd() * SPAN_SECONDS) for _ in range(total_orders)])
    buyers = [1 + int(rnd() * (n - 1)) for _ in range(total_orders)]
    known_slots = sorted(rng.sample(range(total_orders), KNOWN_ORDERS))
    known_nth = {slot: j for j, slot in enumerate(known_slots)}
    for slot in known_slots:
        buyers[slot] = 0
    one_time = [org.one_time for org in orgs]
    receipt_prefix = [org.prefix for org in orgs]
    receipt_next = [1 for _ in orgs]
    last_order: list[str | None] = [None] * n
    known_orders: list[str] = []

    load = Loader(conn, out, "orders+items+refunds", total_orders, quiet)
    add_order = load.table(
        "orders",
        (
            "id",
            "customer_id",
            "billing_name",
            "billing_address",
            "subscription_id",
            "receipt_number",
            "paid_at",
            "created_at",
            "organization_id",
            "product_id",
            "status",
            "billing_reason",
            "subtotal_amount",
            "tax_amount",
            "total_amount",
            "refunded_amount",
            "refunded_tax_amount",
            "items_json",
        ),
        {"currency": "'usd'"},
    )
    item_columns = ("id", "order_id", "created_at", "label", "quantity", "unit_amount", "amount", "tax_amount")
    add_item = load.table("order_items", (*item_columns, "product_price_id", "position"))
    add_refund = load.table("refunds", ("id", "order_id", "created_at", "amount", "tax_amount", "reason"))
    base_ms, day = BASE_MS, DAY
    for lo in range(0, total_orders, BATCH):
        hi = min(lo + BATCH, total_orders)
        for k in range(lo, hi):
            s = times[k]
            c = buyers[k]
            o = cust_org[c]
            sub = cust_sub[c]
            if c:
                if sub is not None and s >= sub[0] and rnd() < 0.5:  # a renewal of the customer's subscription
                    _, p, sub_id = sub
                else:
                    choices = one_time[o]
                    p, sub_id = choices[int(rnd() * len(choices))], None
                slot = int(rnd() * slots)
            else:
                j = known_nth[k]  # the known customer's j-th order: every 5th a renewal, every 10th refunded
                if j % 5 == 0 and sub is not None and s >= sub[0]:
                    _, p, sub_id = sub
                else:
                    p, sub_id = one_time[o][j % len(one_time[o])], None
                slot = known_refunded if j % 10 == 0 else known_paid
            at = days[s // day] + clock[s % day]
            ms = base_ms + s * 1000  # id_prefix(s), inlined
            prefix = f"{ms >> 16:08x}-{ms & 0xFFFF:04x}-7"
            order_id = prefix + tail()
            if paid_slot[slot]:
                number = receipt_next[o]
                receipt_next[o] = number + 1
                receipt: str | None = f"{receipt_prefix[o]}-{number:04d}"
                paid_at: str | None = at
                if not c:
                    known_orders.append(order_id)
            else:
                receipt = paid_at = None
            item_id = prefix + tail()
            add_item((item_id, order_id, at) + item_tail[p][rnd() < 0.1])
            items_json = '[{"created_at":"' + at + '","modified_at":null,"id":"' + item_id + item_json_tail[p]
            if rnd() < 0.1:
                fee_id = prefix + tail()
                add_item((fee_id, order_id, at, *setup_fee))
                items_json += ',{"created_at":"' + at + '","modified_at":null,"id":"' + fee_id + setup_fee_json
            add_order(
                (order_id, cust_ids[c], cust_names[c], cust_addr[c], sub_id, receipt, paid_at, at)
                + order_tail[p][slot]
                + (items_json + "]",)
            )
            refund = refund_tail[p][slot]
            if refund is not None:
                add_refund((prefix + tail(), order_id, at, *refund))
            last_order[c] = order_id
        load.flush(hi - lo)
    load.close(0)
    for org, number in zip(orgs, receipt_next, strict=True):
        org.next_receipt = number

    # --- license keys (each with its grant) + activations, in time order; with them, one custom grant per
    # subscription at its start ------------------------------------------------------------------------------------
    load = Loader(conn, out, "license keys+grants", scale.license_keys, quiet)
    add_grant = load.table(
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
    add_key = load.table(
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
            "created_at",
        ),
        {"limit_activations": "5", "validations": "0"},
    )
    add_activation = load.table(
        "license_key_activations",
        ("id", "license_key_id", "label", "created_at"),
        {"meta": """'{"os":"linux"}'""", "conditions": "'{}'"},
    )
    total_keys = scale.license_keys
    key_times = sorted([int(rnd() * SPAN_SECONDS) for _ in range(total_keys)])
    holders = [1 + int(rnd() * (n - 1)) for _ in range(total_keys)]
    known_keys = rng.sample(range(total_keys), 3)
    for slot in known_keys:
        holders[slot] = 0
    custom_benefit = [org.benefits["custom"] for org in orgs]
    key_benefit = [org.benefits["license_keys"] for org in orgs]
    bits = rng.getrandbits
    next_sub_grant = 0

    def add_sub_grants(until: int) -> None:
        nonlocal next_sub_grant
        while next_sub_grant < len(sub_grants) and sub_grants[next_sub_grant][0] <= until:
            start, sub_id, c = sub_grants[next_sub_grant]
            at = iso_at(start)
            o = cust_org[c]
            add_grant(
                (id_prefix(start) + tail(), org_ids[o], cust_ids[c], custom_benefit[o], None, sub_id, at, "{}", at)
            )
            next_sub_grant += 1

    known_key_id = ""
    for lo in range(0, total_keys, BATCH):
        hi = min(lo + BATCH, total_keys)
        for k in range(lo, hi):
            s = key_times[k]
            add_sub_grants(s)
            c = holders[k]
            o = cust_org[c]
            prefix = id_prefix(s)
            key_id, grant_id = prefix + tail(), prefix + tail()
            if k == known_keys[0]:
                key, known_key_id = KNOWN_KEY, key_id
            else:
                h = f"{bits(128):032X}"
                key = f"BENCH-{h[:8]}-{h[8:16]}-{h[16:24]}-{h[24:]}"
            shown = f"****-{key[-6:]}"
            at = days[s // DAY] + clock[s % DAY]
            props = f'{{"license_key_id":"{key_id}","display_key":"{shown}"}}'
            add_grant((grant_id, org_ids[o], cust_ids[c], key_benefit[o], last_order[c], None, at, props, at))
            status = "granted" if c == 0 or rnd() < 0.95 else "revoked"
            add_key((key_id, org_ids[o], cust_ids[c], key_benefit[o], grant_id, key, shown, status, at))
            for a in range(ACTIVATIONS[int(rnd() * len(ACTIVATIONS))] if c else 1):
                add_activation((prefix + tail(), key_id, f"device-{a + 1}", at))
        load.flush(hi - lo)
    add_sub_grants(SPAN_SECONDS)
    load.close(0)

    # --- old sessions (expired or revoked): the session table of a portal that has been used for a while --------
    total_sessions = scale.old_sessions
    load = Loader(conn, out, "customer_sessions", total_sessions, quiet)
    add = load.table(
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
    )
    session_times = sorted([int(rnd() * SPAN_SECONDS) for _ in range(total_sessions)])
    for lo in range(0, total_sessions, BATCH):
        hi = min(lo + BATCH, total_sessions)
        for i in range(lo, hi):
            s = session_times[i]
            c = 1 + int(rnd() * (n - 1))
            at = iso_at(s)
            kind = "browser" if i % 3 else "api"
            add(
                (
                    id_prefix(s) + tail(),
                    f"{bits(256):064x}",
                    kind,
                    org_ids[cust_org[c]],
                    cust_ids[c],
                    at,
                    at,
                    at if i % 2 else None,
                    at,
                )
            )
        load.flush(hi - lo)
    load.close(0)

    conn.execute("BEGIN")
    for org in orgs:
        conn.execute("UPDATE organizations SET next_receipt_number = ? WHERE id = ?", (org.next_receipt, org.id))
    conn.execute("COMMIT")

    out.known = {
        "organization_id": orgs[0].id,
        "organization_slug": orgs[0].slug,
        "customer_id": cust_ids[0],
        "customer_email": KNOWN_EMAIL,
        "customer_orders": KNOWN_ORDERS,
        "receipt_order_id": known_orders[-1],  # the newest paid one
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
