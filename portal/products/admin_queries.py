"""Organization-wide reads of products, their prices and linked benefits, for the admin API (the portal's
customer-scoped reads live elsewhere). Returns ``ProductRecord``/``PriceRecord`` structs."""

from __future__ import annotations

import msgspec

from portal.db import Database, Transaction, row_to, rows_to
from portal.pagination import PageOf, fetch_page


class ProductRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    organization_id: str
    name: str
    description: str | None
    is_recurring: bool
    recurring_interval: str | None
    recurring_interval_count: int
    is_archived: bool
    visibility: str
    external_id: str | None
    metadata: str
    created_at: str
    modified_at: str | None


class PriceRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    product_id: str
    amount_type: str
    price_amount: int
    price_currency: str
    is_archived: bool
    created_at: str
    modified_at: str | None


_PRODUCT_COLUMNS = """
    p.id,
    p.organization_id,
    p.name,
    p.description,
    p.is_recurring,
    p.recurring_interval,
    p.recurring_interval_count,
    p.is_archived,
    p.visibility,
    p.external_id,
    p.metadata,
    p.created_at,
    p.modified_at
"""

_PRICE_COLUMNS = """
    id,
    product_id,
    amount_type,
    price_amount,
    price_currency,
    is_archived,
    created_at,
    modified_at
"""


async def get_product(db: Database, product_id: str) -> ProductRecord | None:
    row = await db.fetchone(f"SELECT {_PRODUCT_COLUMNS} FROM products p WHERE p.id = ?", (product_id,))
    return row_to(ProductRecord, row)


async def list_products(
    db: Database,
    *,
    organization_id: str | None,
    is_archived: bool | None,
    is_recurring: bool | None,
    page: int,
    limit: int,
) -> PageOf[ProductRecord]:
    return await fetch_page(
        db,
        ProductRecord,
        select=_PRODUCT_COLUMNS,
        source="products p",
        filters={"p.organization_id": organization_id, "p.is_archived": is_archived, "p.is_recurring": is_recurring},
        order_by="p.created_at DESC, p.id",
        page=page,
        limit=limit,
    )


async def list_prices(db: Database, product_id: str) -> list[PriceRecord]:
    """The product's current (non-archived) prices, oldest first."""
    rows = await db.fetchall(
        f"SELECT {_PRICE_COLUMNS} FROM product_prices WHERE product_id = ? AND is_archived = 0 "
        "ORDER BY created_at, rowid",
        (product_id,),
    )
    return rows_to(PriceRecord, rows)


async def get_price(db: Database, price_id: str) -> PriceRecord | None:
    row = await db.fetchone(f"SELECT {_PRICE_COLUMNS} FROM product_prices WHERE id = ?", (price_id,))
    return row_to(PriceRecord, row)


async def benefit_ids(db: Database, product_id: str) -> list[str]:
    """Ids of the product's live benefits, in display order."""
    rows = await db.fetchall(
        """
        SELECT pb.benefit_id
        FROM product_benefits pb
        JOIN benefits b ON b.id = pb.benefit_id AND b.deleted_at IS NULL
        WHERE pb.product_id = ?
        ORDER BY pb.position
        """,
        (product_id,),
    )
    return [row[0] for row in rows]


async def price_in_transaction(tx: Transaction, price_id: str, product_id: str | None) -> PriceRecord | None:
    """A price of ``product_id`` read inside a write transaction (updates keep prices by id)."""
    row = await tx.fetchone(
        f"SELECT {_PRICE_COLUMNS} FROM product_prices WHERE id = ? AND product_id IS ?", (price_id, product_id)
    )
    return row_to(PriceRecord, row)


async def active_prices_in_transaction(tx: Transaction, product_id: str) -> list[PriceRecord]:
    rows = await tx.fetchall(
        f"SELECT {_PRICE_COLUMNS} FROM product_prices WHERE product_id = ? AND is_archived = 0 "
        "ORDER BY created_at, rowid",
        (product_id,),
    )
    return rows_to(PriceRecord, rows)
