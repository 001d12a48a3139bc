"""SQL of the customer-portal JSON API, in one place: filtered, sorted, paginated lists of the caller's orders,
subscriptions, benefit grants, license keys and files, and the batch look-ups (items, products with prices and
benefits, subscriptions) that turn a page into Polar's nested shapes in a fixed number of queries.

Every query is scoped by organization AND customer. Filter and sort columns come from the constants below,
never from input; values are always bound parameters.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from portal.db import Database
from portal.pagination import marks

Row = sqlite3.Row


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
    rows = await db.fetchall(f"SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.id IN ({marks(ids)})", ids)
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
        WHERE product_id IN ({marks(product_ids)}) {archived}
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
        WHERE pb.product_id IN ({marks(product_ids)})
        ORDER BY pb.position, b.created_at
        """,
        list(product_ids),
    )
    grouped: dict[str, list[Row]] = {}
    for row in rows:
        grouped.setdefault(row["product_id"], []).append(row)
    return grouped
