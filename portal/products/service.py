"""Write side of products: create/update a product with its prices (one per currency; a changed amount
archives the old price so past orders keep pointing at what was paid) and link benefits to it."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from portal.clock import iso, new_id
from portal.db import Transaction
from portal.errors import DomainError, InvalidInput, NotFound
from portal.fields import NonNegative, single_line_problem
from portal.organizations.service import currency_problem
from portal.products.reads import list_price_records
from portal.references import require_all_owned

RecurringInterval = Literal["day", "week", "month", "year"]


class PriceInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    amount: NonNegative
    currency: str
    amount_type: Literal["fixed", "free", "custom"] = "fixed"


class ProductInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    description: str | None = None
    recurring_interval: RecurringInterval | None = None  # None: one-time purchase
    recurring_interval_count: Annotated[int, msgspec.Meta(ge=1, le=365)] = 1
    prices: list[PriceInput] = []
    visibility: Literal["public", "private", "draft"] = "public"
    is_archived: bool = False
    external_id: str | None = None
    metadata: dict[str, Any] = {}


def check_product(data: ProductInput) -> list[DomainError]:
    problems: list[DomainError] = []
    if not data.name.strip():
        problems.append(InvalidInput("must not be empty", "name"))
    elif (message := single_line_problem(data.name)) is not None:  # it is in subscription emails' subjects
        problems.append(InvalidInput(message, "name"))
    if not data.prices:
        problems.append(InvalidInput("a product needs at least one price", "prices"))
    seen: set[str] = set()
    for index, price in enumerate(data.prices):
        if (message := currency_problem(price.currency)) is not None:
            problems.append(InvalidInput(message, f"prices[{index}].currency"))
        if price.currency in seen:
            problems.append(InvalidInput("one price per currency", f"prices[{index}].currency"))
        seen.add(price.currency)
        if price.amount_type == "free" and price.amount != 0:
            problems.append(InvalidInput("a free price has amount 0", f"prices[{index}].amount"))
    return problems


async def _insert_price(tx: Transaction, product_id: str, price: PriceInput, now: datetime) -> str:
    price_id = new_id()
    await tx.execute(
        """
        INSERT INTO product_prices (
            id,
            product_id,
            amount_type,
            price_amount,
            price_currency,
            created_at
        ) VALUES (?, ?, ?, ?, ?, ?)
        """,
        (price_id, product_id, price.amount_type, price.amount, price.currency, iso(now)),
    )
    return price_id


async def create_product(tx: Transaction, organization_id: str, data: ProductInput, *, now: datetime) -> str:
    """Insert a product and its prices; returns the product id."""
    problems = check_product(data)
    if problems:
        raise problems[0]
    product_id = new_id()
    await tx.execute(
        """
        INSERT INTO products (
            id,
            organization_id,
            name,
            description,
            is_recurring,
            recurring_interval,
            recurring_interval_count,
            is_archived,
            visibility,
            external_id,
            metadata,
            created_at
        ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        (
            product_id,
            organization_id,
            data.name.strip(),
            data.description,
            data.recurring_interval is not None,
            data.recurring_interval,
            data.recurring_interval_count,
            data.is_archived,
            data.visibility,
            data.external_id,
            msgspec.json.encode(data.metadata).decode(),
            iso(now),
        ),
    )
    for price in data.prices:
        await _insert_price(tx, product_id, price, now)
    return product_id


async def update_product(tx: Transaction, product_id: str, data: ProductInput, *, now: datetime) -> None:
    """Replace a product's fields and reconcile its prices (per currency: keep, or archive and add)."""
    problems = check_product(data)
    if problems:
        raise problems[0]
    await get_product_row(tx, product_id)
    await tx.execute(
        """
        UPDATE products SET
            name = ?,
            description = ?,
            is_recurring = ?,
            recurring_interval = ?,
            recurring_interval_count = ?,
            is_archived = ?,
            visibility = ?,
            external_id = ?,
            metadata = ?,
            modified_at = ?
        WHERE id = ?
        """,
        (
            data.name.strip(),
            data.description,
            data.recurring_interval is not None,
            data.recurring_interval,
            data.recurring_interval_count,
            data.is_archived,
            data.visibility,
            data.external_id,
            msgspec.json.encode(data.metadata).decode(),
            iso(now),
            product_id,
        ),
    )
    active = {
        row["price_currency"]: row
        for row in await tx.fetchall(
            "SELECT * FROM product_prices WHERE product_id = ? AND is_archived = 0", (product_id,)
        )
    }
    wanted = {price.currency: price for price in data.prices}
    for currency, row in active.items():
        price = wanted.get(currency)
        unchanged = (
            price is not None and price.amount == row["price_amount"] and price.amount_type == row["amount_type"]
        )
        if unchanged:
            continue
        await tx.execute(
            "UPDATE product_prices SET is_archived = 1, modified_at = ? WHERE id = ?",
            (iso(now), row["id"]),
        )
        if price is not None:
            await _insert_price(tx, product_id, price, now)
    for currency, price in wanted.items():
        if currency not in active:
            await _insert_price(tx, product_id, price, now)


async def get_product_row(tx: Transaction, product_id: str, *, organization_id: str | None = None) -> sqlite3.Row:
    row = await tx.fetchone("SELECT * FROM products WHERE id = ?", (product_id,))
    if row is None or (organization_id is not None and row["organization_id"] != organization_id):
        raise NotFound("product not found")
    return row


async def current_input(tx: Transaction, product_id: str) -> ProductInput:
    """The product as it is now, as the ``ProductInput`` ``update_product`` takes (a partial change replaces
    fields of it): its current prices, archived or not, external id and metadata kept."""
    row = await get_product_row(tx, product_id)
    prices = await list_price_records(tx, product_id)
    return ProductInput(
        name=row["name"],
        description=row["description"],
        recurring_interval=row["recurring_interval"] if row["is_recurring"] else None,
        recurring_interval_count=row["recurring_interval_count"],
        prices=[
            PriceInput(
                amount=price.price_amount,
                currency=price.price_currency,
                amount_type=price.amount_type,  # type: ignore[arg-type]
            )
            for price in prices
        ],
        visibility=row["visibility"],
        is_archived=bool(row["is_archived"]),
        external_id=row["external_id"],
        metadata=msgspec.json.decode(row["metadata"]),
    )


async def find_product_id(tx: Transaction, organization_id: str, external_id: str) -> str | None:
    return await tx.fetchval(
        "SELECT id FROM products WHERE organization_id = ? AND external_id = ?",
        (organization_id, external_id),
    )


async def get_active_price(tx: Transaction, product_id: str, currency: str | None = None) -> sqlite3.Row | None:
    """The product's current price in ``currency`` (None: its oldest active price)."""
    if currency is None:
        return await tx.fetchone(
            """
            SELECT * FROM product_prices
            WHERE product_id = ? AND is_archived = 0
            ORDER BY created_at, rowid
            LIMIT 1
            """,
            (product_id,),
        )
    return await tx.fetchone(
        """
        SELECT * FROM product_prices
        WHERE product_id = ? AND is_archived = 0 AND price_currency = ?
        ORDER BY created_at DESC, rowid DESC
        LIMIT 1
        """,
        (product_id, currency),
    )


async def set_product_benefits(tx: Transaction, product_id: str, benefit_ids: list[str], *, now: datetime) -> None:
    """Make ``benefit_ids`` (in this order) the product's benefits. Grants already given are untouched;
    subscription callers re-sync with ``portal.benefits.grants.sync_subscription_grants``."""
    product = await get_product_row(tx, product_id)
    await require_all_owned(tx, "benefit", benefit_ids, product["organization_id"], "benefits")
    if len(set(benefit_ids)) != len(benefit_ids):
        raise InvalidInput("a benefit is listed twice", "benefits")
    await tx.execute("DELETE FROM product_benefits WHERE product_id = ?", (product_id,))
    await tx.executemany(
        "INSERT INTO product_benefits (product_id, benefit_id, position) VALUES (?, ?, ?)",
        [(product_id, benefit_id, position) for position, benefit_id in enumerate(benefit_ids)],
    )
    await tx.execute("UPDATE products SET modified_at = ? WHERE id = ?", (iso(now), product_id))


async def get_product_benefit_ids(tx: Transaction, product_id: str) -> list[str]:
    rows = await tx.fetchall(
        """
        SELECT pb.benefit_id
        FROM product_benefits AS pb
        JOIN benefits AS b ON b.id = pb.benefit_id
        WHERE pb.product_id = ? AND b.deleted_at IS NULL
        ORDER BY pb.position
        """,
        (product_id,),
    )
    return [row[0] for row in rows]
