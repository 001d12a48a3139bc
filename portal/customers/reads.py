"""Every read of customers, for every surface; the writes are in ``service`` (billing details in ``billing``,
tax ids in ``tax_ids``). Deleted customers are never returned, except by ``get_customer_record(...,
include_deleted=True)`` (their orders and grants still name them).

Each function takes a ``portal.scope.Scope`` (see there). Two shapes:

- ``Customer``: what the customer portal, its sessions and its pages use.
- ``CustomerRecord``: the whole row, converted to Polar's ``Customer`` (admin API, webhook payloads).
"""

from __future__ import annotations

import msgspec

from portal.db import Reader, row_to, rows_to
from portal.pagination import PageOf, fetch_page
from portal.scope import Scope


class Customer(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    organization_id: str
    email: str
    email_verified: bool = False
    name: str | None = None
    external_id: str | None = None
    billing_name: str | None = None
    billing_address: str | None = None  # json text
    tax_id: str | None = None
    locale: str | None = None
    created_at: str
    modified_at: str | None = None

    @property
    def billing_address_dict(self) -> dict[str, str] | None:
        return msgspec.json.decode(self.billing_address) if self.billing_address else None


CUSTOMER_COLUMNS = """
    c.id,
    c.organization_id,
    c.email,
    c.email_verified,
    c.name,
    c.external_id,
    c.billing_name,
    c.billing_address,
    c.tax_id,
    c.locale,
    c.created_at,
    c.modified_at
"""


async def get_customer(db: Reader, scope: Scope, customer_id: str) -> Customer | None:
    """The live customer, or None if missing, deleted or outside the scope."""
    where, params = scope.where("c")
    row = await db.fetchone(
        f"SELECT {CUSTOMER_COLUMNS} FROM customers c "
        f"WHERE {' AND '.join([*where, 'c.id = ?'])} AND c.deleted_at IS NULL",
        [*params, customer_id],
    )
    return row_to(Customer, row)


async def get_customer_by_email(db: Reader, scope: Scope, email: str) -> Customer | None:
    """The live customer of the scope with this email address (case-insensitive), or None."""
    where, params = scope.where("c")
    row = await db.fetchone(
        f"SELECT {CUSTOMER_COLUMNS} FROM customers c "
        f"WHERE {' AND '.join([*where, 'c.email = ? COLLATE NOCASE'])} AND c.deleted_at IS NULL",
        [*params, email.strip()],
    )
    return row_to(Customer, row)


class CustomerRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    organization_id: str
    email: str
    email_verified: bool
    name: str | None
    external_id: str | None
    billing_name: str | None
    billing_address: str | None
    tax_id: str | None
    locale: str | None
    metadata: str
    created_at: str
    modified_at: str | None
    deleted_at: str | None


_RECORD_COLUMNS = """
    c.id,
    c.organization_id,
    c.email,
    c.email_verified,
    c.name,
    c.external_id,
    c.billing_name,
    c.billing_address,
    c.tax_id,
    c.locale,
    c.metadata,
    c.created_at,
    c.modified_at,
    c.deleted_at
"""


async def get_customer_record(
    db: Reader, scope: Scope, customer_id: str, *, include_deleted: bool = False
) -> CustomerRecord | None:
    """The whole customer, or None if missing or outside the scope (or deleted, unless ``include_deleted``)."""
    where, params = scope.where("c")
    live = "" if include_deleted else " AND c.deleted_at IS NULL"
    row = await db.fetchone(
        f"SELECT {_RECORD_COLUMNS} FROM customers c WHERE {' AND '.join(['c.id = ?', *where])}{live}",
        [customer_id, *params],
    )
    return row_to(CustomerRecord, row)


async def find_customer_records_by_external_id(db: Reader, scope: Scope, external_id: str) -> list[CustomerRecord]:
    """Live customers of the scope with this external id (at most two: callers only need to know if it is one)."""
    where, params = scope.where("c")
    rows = await db.fetchall(
        f"""
        SELECT {_RECORD_COLUMNS} FROM customers c
        WHERE c.external_id = ?
          AND c.deleted_at IS NULL
          AND {" AND ".join(where)}
        ORDER BY c.created_at
        LIMIT 2
        """,
        [external_id, *params],
    )
    return rows_to(CustomerRecord, rows)


async def list_customer_records(
    db: Reader, scope: Scope, *, email: str | None, external_id: str | None, page: int, limit: int
) -> PageOf[CustomerRecord]:
    """A page of the scope's live customers, newest first; ``None`` filters are not applied."""
    return await fetch_page(
        db,
        CustomerRecord,
        select=_RECORD_COLUMNS,
        source="customers c",
        filters={"c.organization_id": scope.organization_id, "c.email": email, "c.external_id": external_id},
        base_where="c.deleted_at IS NULL",
        order_by="c.created_at DESC, c.id",
        page=page,
        limit=limit,
    )


# --- seller console: aggregates of one organization (portal.console.dashboard) -------------------------------


class MonthlyCount(msgspec.Struct, frozen=True, kw_only=True):
    month: str  # YYYY-MM, UTC
    count: int


async def new_customers_by_month(db: Reader, scope: Scope, since: str) -> list[MonthlyCount]:
    """The scope's customers created at or after ``since`` (ISO), by month (index ``customers_org_created``,
    migration 17)."""
    where, params = scope.where("c")
    rows = await db.fetchall(
        f"""
        SELECT substr(c.created_at, 1, 7) AS month, COUNT(*) AS count
        FROM customers c
        WHERE {" AND ".join(where)} AND c.created_at >= ? AND c.deleted_at IS NULL
        GROUP BY month
        ORDER BY month
        """,
        [*params, since],
    )
    return [MonthlyCount(month=str(row["month"]), count=int(row["count"])) for row in rows]


# --- seller console: finding a customer (portal.console.customer_search) ---------------------------------------
#
# Each search is one indexed lookup: exact ids and external ids by their unique indexes, email and name prefixes
# as a range over ``customers_org_email`` / ``customers_org_name`` (NOCASE, migration 18), never ``LIKE`` (whose
# index use depends on pragmas and escaping).

SEARCH_LIMIT = 20


def prefix_range(prefix: str) -> tuple[str, str]:
    """``(low, high)`` such that ``low <= value < high`` holds exactly for the values starting with ``prefix``
    (U+10FFFF sorts after every character, in UTF-8 byte order and in NOCASE)."""
    return prefix, prefix + "\U0010ffff"


async def customers_by_ids(db: Reader, scope: Scope, customer_ids: list[str]) -> list[Customer]:
    """The scope's live customers among ``customer_ids``, newest first: primary-key lookups only (the scope's
    columns are kept out of index choice with ``+``: without statistics SQLite would rather walk the organization's
    ``customers_org_created`` in order than look 20 ids up), sorted here."""
    ids = sorted(set(customer_ids))[:200]
    if not ids:
        return []
    where, params = scope.where("c")
    rows = await db.fetchall(
        f"SELECT {CUSTOMER_COLUMNS} FROM customers c "
        f"WHERE c.id IN ({','.join('?' * len(ids))}) AND {' AND '.join('+' + clause for clause in where)} "
        "AND c.deleted_at IS NULL",
        [*ids, *params],
    )
    return sorted(rows_to(Customer, rows), key=lambda c: (c.created_at, c.id), reverse=True)


async def search_by_email_prefix(db: Reader, scope: Scope, prefix: str, limit: int = SEARCH_LIMIT) -> list[Customer]:
    """The organization's live customers whose email starts with ``prefix`` (case-insensitive; an exact address is
    its own prefix and sorts first), in email order."""
    if scope.organization_id is None:
        raise ValueError("a customer search needs an organization")
    where, params = scope.where("c")
    low, high = prefix_range(prefix.strip())
    rows = await db.fetchall(
        f"""
        SELECT {CUSTOMER_COLUMNS} FROM customers c INDEXED BY customers_org_email
        WHERE {" AND ".join(where)} AND c.deleted_at IS NULL
          AND c.email >= ? COLLATE NOCASE AND c.email < ? COLLATE NOCASE
        ORDER BY c.email COLLATE NOCASE
        LIMIT ?
        """,
        [*params, low, high, limit],
    )
    return rows_to(Customer, rows)


async def search_by_name_prefix(db: Reader, scope: Scope, prefix: str, limit: int = SEARCH_LIMIT) -> list[Customer]:
    """The organization's live customers whose name starts with ``prefix`` (case-insensitive), in name order."""
    if scope.organization_id is None:
        raise ValueError("a customer search needs an organization")
    where, params = scope.where("c")
    low, high = prefix_range(prefix.strip())
    rows = await db.fetchall(
        f"""
        SELECT {CUSTOMER_COLUMNS} FROM customers c INDEXED BY customers_org_name
        WHERE {" AND ".join(where)} AND c.deleted_at IS NULL AND c.name IS NOT NULL
          AND c.name >= ? COLLATE NOCASE AND c.name < ? COLLATE NOCASE
        ORDER BY c.name COLLATE NOCASE, c.id
        LIMIT ?
        """,
        [*params, low, high, limit],
    )
    return rows_to(Customer, rows)


async def search_by_external_id(db: Reader, scope: Scope, external_id: str) -> list[Customer]:
    """The organization's live customer with this external id (exact; ``customers_org_external_id``)."""
    if scope.organization_id is None:
        raise ValueError("a customer search needs an organization")
    where, params = scope.where("c")
    rows = await db.fetchall(
        f"SELECT {CUSTOMER_COLUMNS} FROM customers c "
        f"WHERE {' AND '.join(where)} AND c.external_id = ? AND c.deleted_at IS NULL LIMIT 2",
        [*params, external_id.strip()],
    )
    return rows_to(Customer, rows)


async def recent_customers(db: Reader, scope: Scope, *, page: int, limit: int) -> tuple[list[Customer], bool]:
    """A page of the organization's newest live customers and whether there is a next page. No total: counting an
    organization's customers walks all of them (``customers_org_created`` gives the page in order and stops)."""
    if scope.organization_id is None:
        raise ValueError("a customer list needs an organization")
    where, params = scope.where("c")
    rows = await db.fetchall(
        f"""
        SELECT {CUSTOMER_COLUMNS} FROM customers c INDEXED BY customers_org_created
        WHERE {" AND ".join(where)} AND c.deleted_at IS NULL
        ORDER BY c.created_at DESC
        LIMIT ? OFFSET ?
        """,
        [*params, limit + 1, (max(1, page) - 1) * limit],
    )
    found = rows_to(Customer, rows)
    return found[:limit], len(found) > limit


class CustomerEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A row of ``events`` about a customer (subscription changes, activations, downloads, …)."""

    id: str
    name: str
    subject_id: str | None
    data: str
    created_at: str


async def customer_events(db: Reader, scope: Scope, limit: int = 100) -> list[CustomerEvent]:
    """The customer's newest events (``events_customer``)."""
    organization_id, customer_id = scope.customer_ids()
    rows = await db.fetchall(
        """
        SELECT e.id, e.name, e.subject_id, e.data, e.created_at FROM events e
        WHERE e.customer_id = ? AND e.organization_id = ?
        ORDER BY e.created_at DESC
        LIMIT ?
        """,
        (customer_id, organization_id, limit),
    )
    return rows_to(CustomerEvent, rows)
