"""SQL of the customer-portal JSON API, in one place: filtered, sorted, paginated lists of the caller's orders,
subscriptions, benefit grants, license keys and files, and the batch look-ups (items, products with prices and
benefits, subscriptions) that turn a page into Polar's nested shapes in a fixed number of queries.

Every query is scoped by organization AND customer. Filter and sort columns come from the constants below,
never from input; values are always bound parameters.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from portal.db import Database
from portal.orders.queries import ORDER_BASE_COLUMNS
from portal.subscriptions.queries import SUBSCRIPTION_BASE_COLUMNS

Row = sqlite3.Row


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


def order_by(sorting: Sequence[str] | None, columns: dict[str, str], default: str, tiebreak: str) -> str:
    """``ORDER BY`` from Polar's ``sorting`` (``-name`` = descending); unknown names were refused earlier."""
    clauses = []
    for criterion in sorting or [default]:
        name = criterion.lstrip("-")
        clauses.append(f"{columns[name]} {'DESC' if criterion.startswith('-') else 'ASC'}")
    return ", ".join([*clauses, tiebreak])


async def page(
    db: Database,
    *,
    select: str,
    source: str,
    where: list[str],
    params: list[Any],
    order: str,
    page: int,
    limit: int,
    count_source: str | None = None,
) -> tuple[list[Row], int]:
    """One page and the total. ``count_source``: a narrower FROM for the count when the joins in ``source`` only
    add columns (the count then reads the index alone)."""
    condition = " AND ".join(where)
    total = await db.fetchval(f"SELECT COUNT(*) FROM {count_source or source} WHERE {condition}", params)
    rows = await db.fetchall(
        f"SELECT {select} FROM {source} WHERE {condition} ORDER BY {order} LIMIT ? OFFSET ?",
        [*params, limit, (page - 1) * limit],
    )
    return rows, int(total or 0)


def add_in(where: list[str], params: list[Any], column: str, values: Sequence[Any] | None) -> None:
    if values:
        where.append(f"{column} IN ({_marks(values)})")
        params.extend(values)


# --- orders ----------------------------------------------------------------------------------------------

# The items come along as one JSON array per order, in Polar's ``OrderItem`` shape (decoded straight into the
# structs by msgspec): ``orders.items_json``, kept by triggers on ``order_items`` (migration 9), so a page of orders
# is one statement that reads no item rows. The product's name (the order's description) comes from the product the
# serializer embeds anyway (the per-process catalog), so the orders are read without a join unless the search or the
# sort needs the name; an invoice exists exactly when the order has an invoice number (``portal.invoices.service``
# sets both in one transaction).
ORDER_COLUMNS = (
    ORDER_BASE_COLUMNS
    + """    o.created_at,
    o.modified_at,
    o.invoice_number IS NOT NULL AS is_invoice_generated,
    o.items_json
"""
)


class OrderRow(msgspec.Struct, array_like=True, frozen=True):
    """A row of ``ORDER_COLUMNS`` by position: ``order_rows`` turns a page of them into these in one C-level
    ``msgspec.convert`` instead of a dict per row (bench/README.md). The field order is the column order; it is
    checked against the statement's column names."""

    id: str
    organization_id: str
    customer_id: str
    product_id: str | None
    subscription_id: str | None
    status: str
    billing_reason: str
    subtotal_amount: int
    discount_amount: int
    tax_amount: int
    total_amount: int
    refunded_amount: int
    refunded_tax_amount: int
    currency: str
    billing_name: str | None
    billing_address: str | None
    tax_id: str | None
    receipt_number: str | None
    invoice_number: str | None
    paid_at: str | None
    created_at: str
    modified_at: str | None
    is_invoice_generated: bool
    items_json: str | None


def order_rows(rows: Sequence[Row]) -> list[OrderRow]:
    if rows and tuple(rows[0].keys()) != OrderRow.__struct_fields__:
        raise RuntimeError("ORDER_COLUMNS and OrderRow disagree on the columns")
    return msgspec.convert([tuple(row) for row in rows], list[OrderRow], strict=False)


ORDER_SOURCE = "orders o"
ORDER_SOURCE_WITH_PRODUCT = "orders o LEFT JOIN products p ON p.id = o.product_id"
ORDER_SORT = {
    "created_at": "o.created_at",
    "amount": "(o.total_amount - o.refunded_amount)",
    "net_amount": "(o.total_amount - o.refunded_amount)",
    "product": "p.name",
    "subscription": "o.subscription_id",
}


async def list_orders(
    db: Database,
    organization_id: str,
    customer_id: str,
    *,
    product_id: Sequence[str] | None,
    product_billing_type: Sequence[str] | None,
    subscription_id: Sequence[str] | None,
    query: str | None,
    sorting: Sequence[str] | None,
    page_number: int,
    limit: int,
) -> tuple[list[Row], int]:
    where = ["o.organization_id = ?", "o.customer_id = ?"]
    params: list[Any] = [organization_id, customer_id]
    add_in(where, params, "o.product_id", product_id)
    add_in(where, params, "o.subscription_id", subscription_id)
    if product_billing_type and set(product_billing_type) != {"one_time", "recurring"}:
        # recurring = subscription creations and renewals; one_time = purchases (Polar's definition).
        where.append(
            "o.subscription_id IS NOT NULL" if "recurring" in product_billing_type else "o.subscription_id IS NULL"
        )
    if query:
        where.append("(p.name LIKE ? ESCAPE '\\' OR o.receipt_number LIKE ? ESCAPE '\\')")
        pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        params.extend([pattern, pattern])
    by_product = bool(query) or any(criterion.lstrip("-") == "product" for criterion in sorting or ())
    return await page(
        db,
        select=ORDER_COLUMNS,
        source=ORDER_SOURCE_WITH_PRODUCT if by_product else ORDER_SOURCE,
        where=where,
        params=params,
        order=order_by(sorting, ORDER_SORT, "-created_at", "o.id"),
        page=page_number,
        limit=limit,
        count_source=None if query else ORDER_SOURCE,  # only the search reads the product's name
    )


async def get_order(db: Database, organization_id: str, customer_id: str, order_id: str) -> Row | None:
    return await db.fetchone(
        f"SELECT {ORDER_COLUMNS} FROM {ORDER_SOURCE} WHERE o.id = ? AND o.organization_id = ? AND o.customer_id = ?",
        (order_id, organization_id, customer_id),
    )


# --- products (with prices and benefits) -----------------------------------------------------------------

PRODUCT_COLUMNS = """
    p.id,
    p.organization_id,
    p.name,
    p.description,
    p.is_recurring,
    p.recurring_interval,
    p.recurring_interval_count,
    p.is_archived,
    p.visibility,
    p.created_at,
    p.modified_at
"""


async def products_by_id(db: Database, product_ids: Iterable[str]) -> dict[str, Row]:
    ids = sorted({pid for pid in product_ids if pid})
    if not ids:
        return {}
    rows = await db.fetchall(f"SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.id IN ({_marks(ids)})", ids)
    return {row["id"]: row for row in rows}


async def public_products(db: Database, organization_id: str) -> list[Row]:
    return await db.fetchall(
        f"""
        SELECT {PRODUCT_COLUMNS} FROM products p
        WHERE p.organization_id = ? AND p.visibility = 'public' AND p.is_archived = 0
        ORDER BY p.is_recurring, p.created_at, p.id
        """,
        (organization_id,),
    )


async def prices_by_product(
    db: Database, product_ids: Sequence[str], *, active_only: bool = True
) -> dict[str, list[Row]]:
    if not product_ids:
        return {}
    archived = "AND is_archived = 0" if active_only else ""
    rows = await db.fetchall(
        f"""
        SELECT
            id,
            product_id,
            amount_type,
            price_amount,
            price_currency,
            is_archived,
            created_at,
            modified_at
        FROM product_prices
        WHERE product_id IN ({_marks(product_ids)}) {archived}
        ORDER BY created_at, rowid
        """,
        list(product_ids),
    )
    grouped: dict[str, list[Row]] = {}
    for row in rows:
        grouped.setdefault(row["product_id"], []).append(row)
    return grouped


BENEFIT_COLUMNS = """
    b.id,
    b.organization_id,
    b.type,
    b.description,
    b.properties,
    b.created_at,
    b.modified_at,
    b.deleted_at
"""


async def benefits_by_product(db: Database, product_ids: Sequence[str]) -> dict[str, list[Row]]:
    if not product_ids:
        return {}
    rows = await db.fetchall(
        f"""
        SELECT pb.product_id, {BENEFIT_COLUMNS}
        FROM product_benefits pb
        JOIN benefits b ON b.id = pb.benefit_id AND b.deleted_at IS NULL AND b.visibility = 'public'
        WHERE pb.product_id IN ({_marks(product_ids)})
        ORDER BY pb.position, b.created_at
        """,
        list(product_ids),
    )
    grouped: dict[str, list[Row]] = {}
    for row in rows:
        grouped.setdefault(row["product_id"], []).append(row)
    return grouped


# --- subscriptions ---------------------------------------------------------------------------------------

SUBSCRIPTION_COLUMNS = (
    SUBSCRIPTION_BASE_COLUMNS
    + """    s.created_at,
    s.modified_at
"""
)
SUBSCRIPTION_SOURCE = (
    "subscriptions s JOIN products p ON p.id = s.product_id JOIN organizations org ON org.id = s.organization_id"
)
SUBSCRIPTION_SORT = {
    "started_at": "COALESCE(s.started_at, s.created_at)",
    "amount": "s.amount",
    "status": "s.status",
    "organization": "org.slug",
    "product": "p.name",
}
ACTIVE_STATUSES = ("trialing", "active", "past_due")


async def list_subscriptions(
    db: Database,
    organization_id: str,
    customer_id: str,
    *,
    product_id: Sequence[str] | None,
    active: bool | None,
    query: str | None,
    sorting: Sequence[str] | None,
    page_number: int,
    limit: int,
) -> tuple[list[Row], int]:
    where = ["s.organization_id = ?", "s.customer_id = ?"]
    params: list[Any] = [organization_id, customer_id]
    add_in(where, params, "s.product_id", product_id)
    if active is True:
        where.append(f"s.status IN ({_marks(ACTIVE_STATUSES)}) AND s.ended_at IS NULL")
        params.extend(ACTIVE_STATUSES)
    elif active is False:
        where.append(f"(s.status NOT IN ({_marks(ACTIVE_STATUSES)}) OR s.ended_at IS NOT NULL)")
        params.extend(ACTIVE_STATUSES)
    if query:
        where.append("p.name LIKE ? ESCAPE '\\'")
        params.append("%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
    return await page(
        db,
        select=SUBSCRIPTION_COLUMNS,
        source=SUBSCRIPTION_SOURCE,
        where=where,
        params=params,
        order=order_by(sorting, SUBSCRIPTION_SORT, "-started_at", "s.id"),
        page=page_number,
        limit=limit,
    )


async def get_subscription(db: Database, organization_id: str, customer_id: str, subscription_id: str) -> Row | None:
    return await db.fetchone(
        f"SELECT {SUBSCRIPTION_COLUMNS} FROM {SUBSCRIPTION_SOURCE} "
        "WHERE s.id = ? AND s.organization_id = ? AND s.customer_id = ?",
        (subscription_id, organization_id, customer_id),
    )


async def subscriptions_by_id(db: Database, subscription_ids: Iterable[str | None]) -> dict[str, Row]:
    ids = sorted({sid for sid in subscription_ids if sid})
    if not ids:
        return {}
    # The subscription embedded in an order: its own columns only (no product or organization join).
    rows = await db.fetchall(f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions s WHERE s.id IN ({_marks(ids)})", ids)
    return {row["id"]: row for row in rows}


# --- benefit grants --------------------------------------------------------------------------------------

GRANT_COLUMNS = """
    g.id,
    g.organization_id,
    g.customer_id,
    g.benefit_id,
    g.order_id,
    g.subscription_id,
    g.granted_at,
    g.revoked_at,
    g.properties,
    g.error,
    g.created_at,
    g.modified_at,
    b.type AS benefit_type,
    b.description AS benefit_description,
    b.properties AS benefit_properties,
    b.created_at AS benefit_created_at,
    b.modified_at AS benefit_modified_at,
    b.deleted_at AS benefit_deleted_at
"""
GRANT_SOURCE = "benefit_grants g JOIN benefits b ON b.id = g.benefit_id"
# Polar's customer portal reads only live grants of public benefits: a revoked one, or one of a private or draft
# benefit, is not listed and answers 404 (the HTML portal still shows a revoked one under "Past benefits", from
# portal/benefits; it leaves out non-public benefits as well).
GRANT_LIVE = "g.revoked_at IS NULL AND b.visibility = 'public'"
GRANT_SORT = {
    "granted_at": "COALESCE(g.granted_at, g.created_at)",
    "type": "b.type",
    "organization": "g.organization_id",
    "product_benefit": "b.description",
}


async def list_grants(
    db: Database,
    organization_id: str,
    customer_id: str,
    *,
    query: str | None,
    types: Sequence[str] | None,
    benefit_id: Sequence[str] | None,
    order_id: Sequence[str] | None,
    subscription_id: Sequence[str] | None,
    sorting: Sequence[str] | None,
    page_number: int,
    limit: int,
) -> tuple[list[Row], int]:
    where = ["g.organization_id = ?", "g.customer_id = ?", GRANT_LIVE]
    params: list[Any] = [organization_id, customer_id]
    add_in(where, params, "b.type", types)
    add_in(where, params, "g.benefit_id", benefit_id)
    add_in(where, params, "g.order_id", order_id)
    add_in(where, params, "g.subscription_id", subscription_id)
    if query:
        where.append("b.description LIKE ? ESCAPE '\\'")
        params.append("%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
    return await page(
        db,
        select=GRANT_COLUMNS,
        source=GRANT_SOURCE,
        where=where,
        params=params,
        order=order_by(sorting, GRANT_SORT, "-granted_at", "g.id"),
        page=page_number,
        limit=limit,
    )


async def get_grant(db: Database, organization_id: str, customer_id: str, grant_id: str) -> Row | None:
    return await db.fetchone(
        f"SELECT {GRANT_COLUMNS} FROM {GRANT_SOURCE} "
        f"WHERE g.id = ? AND g.organization_id = ? AND g.customer_id = ? AND {GRANT_LIVE}",
        (grant_id, organization_id, customer_id),
    )


# --- license keys ----------------------------------------------------------------------------------------

LICENSE_KEY_COLUMNS = """
    k.id,
    k.organization_id,
    k.customer_id,
    k.benefit_id,
    k.grant_id,
    k.key,
    k.display_key,
    k.status,
    k.limit_activations,
    k.usage,
    k.limit_usage,
    k.validations,
    k.last_validated_at,
    k.expires_at,
    k.created_at,
    k.modified_at,
    b.properties AS benefit_properties
"""
LICENSE_KEY_SOURCE = "license_keys k JOIN benefits b ON b.id = k.benefit_id"
ACTIVATION_COLUMNS = """
    a.id,
    a.license_key_id,
    a.label,
    a.meta,
    a.conditions,
    a.created_at,
    a.modified_at
"""


async def list_license_keys(
    db: Database, organization_id: str, customer_id: str, *, benefit_id: str | None, page_number: int, limit: int
) -> tuple[list[Row], int]:
    where = ["k.organization_id = ?", "k.customer_id = ?"]
    params: list[Any] = [organization_id, customer_id]
    if benefit_id:
        where.append("k.benefit_id = ?")
        params.append(benefit_id)
    return await page(
        db,
        select=LICENSE_KEY_COLUMNS,
        source=LICENSE_KEY_SOURCE,
        where=where,
        params=params,
        order="k.created_at ASC, k.id",
        page=page_number,
        limit=limit,
    )


async def get_license_key(db: Database, organization_id: str, customer_id: str, license_key_id: str) -> Row | None:
    return await db.fetchone(
        f"SELECT {LICENSE_KEY_COLUMNS} FROM {LICENSE_KEY_SOURCE} "
        "WHERE k.id = ? AND k.organization_id = ? AND k.customer_id = ?",
        (license_key_id, organization_id, customer_id),
    )


async def license_key_source(db: Database, license_key_id: str) -> Row | None:
    """The subscription and the order of the grant that holds the key (columns ``s_*`` and ``o_*``, NULL when
    there is none), or None for a key without a grant."""
    return await db.fetchone(
        """
        SELECT
            s.id AS s_id,
            s.status AS s_status,
            s.current_period_start AS s_current_period_start,
            s.current_period_end AS s_current_period_end,
            s.cancel_at_period_end AS s_cancel_at_period_end,
            s.ends_at AS s_ends_at,
            s.ended_at AS s_ended_at,
            o.id AS o_id,
            o.created_at AS o_created_at,
            o.status AS o_status
        FROM license_keys k
        JOIN benefit_grants g ON g.id = k.grant_id
        LEFT JOIN subscriptions s ON s.id = g.subscription_id
        LEFT JOIN orders o ON o.id = g.order_id
        WHERE k.id = ?
        """,
        (license_key_id,),
    )


async def activations(db: Database, license_key_id: str) -> list[Row]:
    return await db.fetchall(
        f"SELECT {ACTIVATION_COLUMNS} FROM license_key_activations a WHERE a.license_key_id = ? "
        "ORDER BY a.created_at, a.id",
        (license_key_id,),
    )


# --- files -----------------------------------------------------------------------------------------------

FILE_COLUMNS = """
    f.id,
    f.organization_id,
    f.name,
    f.path,
    f.mime_type,
    f.size,
    f.checksum_sha256_hex,
    f.version,
    f.created_at,
    f.modified_at
"""


async def files_by_id(db: Database, organization_id: str, file_ids: Iterable[str]) -> dict[str, Row]:
    ids = sorted(set(file_ids))
    if not ids:
        return {}
    rows = await db.fetchall(
        f"SELECT {FILE_COLUMNS} FROM files f WHERE f.organization_id = ? AND f.id IN ({_marks(ids)})",
        [organization_id, *ids],
    )
    return {row["id"]: row for row in rows}
