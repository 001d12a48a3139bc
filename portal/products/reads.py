"""Every read of products, their prices and linked benefits, for every surface; the writes are in ``service``.

Two shapes:

- ``ProductRecord`` / ``PriceRecord`` (admin API, webhook payloads): whole rows, by a ``portal.scope.Scope``.
- catalog rows (customer-portal API): a page's products, prices and public benefits read in three batch
  statements, cached per process by ``portal.polar.catalog`` (the speed mechanism in bench/README.md).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

import msgspec

from portal.db import Database, Reader, row_to, rows_to
from portal.pagination import PageOf, fetch_page, marks
from portal.scope import Scope

Row = sqlite3.Row


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


async def get_product_record(db: Reader, scope: Scope, product_id: str) -> ProductRecord | None:
    """The whole product, or None if missing or outside the scope (archived products too)."""
    where, params = scope.where("p")
    row = await db.fetchone(
        f"SELECT {_PRODUCT_COLUMNS} FROM products p WHERE {' AND '.join(['p.id = ?', *where])}", [product_id, *params]
    )
    return row_to(ProductRecord, row)


async def list_product_records(
    db: Reader,
    scope: Scope,
    *,
    is_archived: bool | None,
    is_recurring: bool | None,
    page: int,
    limit: int,
) -> PageOf[ProductRecord]:
    """A page of the scope's products, newest first; ``None`` filters are not applied."""
    return await fetch_page(
        db,
        ProductRecord,
        select=_PRODUCT_COLUMNS,
        source="products p",
        filters={
            "p.organization_id": scope.organization_id,
            "p.is_archived": is_archived,
            "p.is_recurring": is_recurring,
        },
        order_by="p.created_at DESC, p.id",
        page=page,
        limit=limit,
    )


async def list_price_records(db: Reader, product_id: str) -> list[PriceRecord]:
    """The product's current (non-archived) prices, oldest first."""
    rows = await db.fetchall(
        f"SELECT {_PRICE_COLUMNS} FROM product_prices WHERE product_id = ? AND is_archived = 0 "
        "ORDER BY created_at, rowid",
        (product_id,),
    )
    return rows_to(PriceRecord, rows)


async def get_price_record(db: Reader, price_id: str) -> PriceRecord | None:
    """A price by id (of a product or subscription the caller has checked), archived ones too."""
    row = await db.fetchone(f"SELECT {_PRICE_COLUMNS} FROM product_prices WHERE id = ?", (price_id,))
    return row_to(PriceRecord, row)


async def product_benefit_ids(db: Reader, product_id: str) -> list[str]:
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


async def get_product_price_record(tx: Reader, price_id: str, product_id: str | None) -> PriceRecord | None:
    """A price of ``product_id`` (``None``: a price of no product), or None; updates keep prices by id."""
    row = await tx.fetchone(
        f"SELECT {_PRICE_COLUMNS} FROM product_prices WHERE id = ? AND product_id IS ?", (price_id, product_id)
    )
    return row_to(PriceRecord, row)


# --- catalog rows (customer-portal API, the per-process catalog) ---------------------------------------------

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


async def product_rows_by_id(db: Database, product_ids: Iterable[str]) -> dict[str, Row]:
    ids = sorted({pid for pid in product_ids if pid})
    if not ids:
        return {}
    rows = await db.fetchall(f"SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.id IN ({marks(ids)})", ids)
    return {row["id"]: row for row in rows}


async def public_product_rows(db: Database, organization_id: str) -> list[Row]:
    return await db.fetchall(
        f"""
        SELECT {PRODUCT_COLUMNS} FROM products p
        WHERE p.organization_id = ? AND p.visibility = 'public' AND p.is_archived = 0
        ORDER BY p.is_recurring, p.created_at, p.id
        """,
        (organization_id,),
    )


async def price_rows_by_product(
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


async def benefit_rows_by_product(db: Database, product_ids: Sequence[str]) -> dict[str, list[Row]]:
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


# --- products' benefits ---------------------------------------------------------------------------------------


class ProductBenefit(msgspec.Struct, frozen=True, kw_only=True):
    """A benefit a product grants, as the plan-change page compares them."""

    id: str
    type: str
    description: str


async def list_product_benefits(db: Reader, scope: Scope, product_id: str) -> list[ProductBenefit]:
    """The live benefits ``product_id`` grants, in the seller's display order (the product within the scope's
    organization)."""
    where, params = scope.where("p")
    rows = await db.fetchall(
        f"""
        SELECT b.id, b.type, b.description
        FROM product_benefits pb
        JOIN benefits b ON b.id = pb.benefit_id AND b.deleted_at IS NULL
        JOIN products p ON p.id = pb.product_id
        WHERE {" AND ".join(["pb.product_id = ?", *where])}
        ORDER BY pb.position
        """,
        [product_id, *params],
    )
    return rows_to(ProductBenefit, rows)


class BenefitProduct(msgspec.Struct, frozen=True, kw_only=True):
    """A product that grants a given benefit (the console's benefit page)."""

    id: str
    name: str
    is_archived: bool


async def list_products_granting(db: Reader, scope: Scope, benefit_id: str) -> list[BenefitProduct]:
    """The scope's products that list ``benefit_id`` among their benefits, by name."""
    where, params = scope.where("p")
    rows = await db.fetchall(
        f"""
        SELECT p.id, p.name, p.is_archived
        FROM product_benefits pb
        JOIN products p ON p.id = pb.product_id
        WHERE {" AND ".join(["pb.benefit_id = ?", *where])}
        ORDER BY p.name COLLATE NOCASE, p.id
        """,
        [benefit_id, *params],
    )
    return rows_to(BenefitProduct, rows)
