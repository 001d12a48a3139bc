"""Every read of orders, their items and refunds, for every surface; the writes are in ``service``.

Each function takes a ``portal.scope.Scope``: the customer portal passes ``Scope.of_customer`` (another customer's
order is then indistinguishable from a missing one), an organization token or the console
``Scope.of_organization``, the admin API's by-id reads and webhook payloads ``EVERY_ORGANIZATION`` (they check
ownership themselves). Three shapes, one per need:

- ``OrderSummary`` / ``OrderDetail`` (HTML pages): what the orders table and the receipt page show.
- ``OrderRecord`` / ``OrderItemRecord`` (admin API, webhook payloads): whole rows, converted to Polar's ``Order``
  by ``portal.polar.convert``.
- ``OrderRow`` (customer-portal API): a positional row with the items as one JSON array (``orders.items_json``),
  read without a join; the speed mechanisms are described in bench/README.md's table.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import msgspec

from portal.db import Database, Reader, row_to, rows_to
from portal.pagination import PageOf, add_in, fetch_page, fetch_rows_page, like_pattern, order_by
from portal.scope import Scope

# --- pages: summaries and the receipt's detail ------------------------------------------------------------


class OrderSummary(msgspec.Struct, frozen=True, kw_only=True):
    """A row of the orders table (``_partials/orders_table.html``): only what it shows, 20 rows a page."""

    id: str
    status: str
    total_amount: int
    currency: str
    created_at: str
    product_name: str | None


class OrderItem(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    label: str
    quantity: int
    unit_amount: int
    amount: int
    tax_amount: int
    proration: bool


class Refund(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    amount: int
    tax_amount: int
    reason: str | None
    created_at: str


class OrderDetail(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    organization_id: str
    customer_id: str
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
    billing_address: str | None  # json snapshot
    tax_id: str | None
    receipt_number: str | None
    invoice_number: str | None
    created_at: str
    paid_at: str | None
    product_id: str | None
    product_name: str | None
    subscription_id: str | None
    items: list[OrderItem] = []
    refunds: list[Refund] = []

    @property
    def billing_address_dict(self) -> dict[str, Any] | None:
        return msgspec.json.decode(self.billing_address) if self.billing_address else None

    @property
    def amount_paid(self) -> int:
        """What the customer paid; 0 for orders that were never paid."""
        return self.total_amount if self.paid_at else 0

    @property
    def net_amount(self) -> int:
        return self.amount_paid - self.refunded_amount

    @property
    def has_receipt(self) -> bool:
        return self.receipt_number is not None


_SUMMARY_COLUMNS = """
    o.id,
    o.status,
    o.total_amount,
    o.currency,
    o.created_at,
    p.name AS product_name
"""

PAGE_SIZE = 20


async def list_order_summaries(
    db: Database, scope: Scope, *, page: int = 1, limit: int = PAGE_SIZE
) -> tuple[list[OrderSummary], int]:
    """One page of the scope's orders, newest first, and the total count (two indexed queries for a customer)."""
    page = max(1, page)
    where, params = scope.where("o")
    total = await db.fetchval(f"SELECT COUNT(*) FROM orders o WHERE {' AND '.join(where)}", params)
    return await _summaries(db, scope, limit, (page - 1) * limit), int(total or 0)


async def latest_order_summaries(db: Database, scope: Scope, limit: int = 5) -> list[OrderSummary]:
    """The newest ``limit`` orders of the scope (the overview; no count needed)."""
    return await _summaries(db, scope, limit, 0)


async def _summaries(db: Database, scope: Scope, limit: int, offset: int) -> list[OrderSummary]:
    where, params = scope.where("o")
    rows = await db.fetchall(
        f"""
        SELECT {_SUMMARY_COLUMNS}
        FROM orders o
        LEFT JOIN products p ON p.id = o.product_id
        WHERE {" AND ".join(where)}
        ORDER BY o.created_at DESC, o.id
        LIMIT ? OFFSET ?
        """,
        [*params, limit, offset],
    )
    return rows_to(OrderSummary, rows)


# The order columns every whole-order read selects, up to ``paid_at`` (each shape appends its own tail: the
# record ``external_id``/``metadata``, the API row ``items_json``).
ORDER_BASE_COLUMNS = """
    o.id,
    o.organization_id,
    o.customer_id,
    o.product_id,
    o.subscription_id,
    o.status,
    o.billing_reason,
    o.subtotal_amount,
    o.discount_amount,
    o.tax_amount,
    o.total_amount,
    o.refunded_amount,
    o.refunded_tax_amount,
    o.currency,
    o.billing_name,
    o.billing_address,
    o.tax_id,
    o.receipt_number,
    o.invoice_number,
    o.paid_at,
"""


_DETAIL_COLUMNS = """
    o.id,
    o.organization_id,
    o.customer_id,
    o.status,
    o.billing_reason,
    o.subtotal_amount,
    o.discount_amount,
    o.tax_amount,
    o.total_amount,
    o.refunded_amount,
    o.refunded_tax_amount,
    o.currency,
    o.billing_name,
    o.billing_address,
    o.tax_id,
    o.receipt_number,
    o.invoice_number,
    o.created_at,
    o.paid_at,
    o.product_id,
    p.name AS product_name,
    o.subscription_id
"""


async def get_order_detail(db: Reader, scope: Scope, order_id: str) -> OrderDetail | None:
    """The order with its items and refunds (three queries), or None if it is not in the scope."""
    where, params = scope.where("o")
    row = await db.fetchone(
        f"SELECT {_DETAIL_COLUMNS} FROM orders o LEFT JOIN products p ON p.id = o.product_id "
        f"WHERE {' AND '.join(['o.id = ?', *where])}",
        [order_id, *params],
    )
    order = row_to(OrderDetail, row)
    if order is None:
        return None
    items = await db.fetchall(
        """
        SELECT
            id,
            label,
            quantity,
            unit_amount,
            amount,
            tax_amount,
            proration
        FROM order_items
        WHERE order_id = ?
        ORDER BY position, created_at
        """,
        (order_id,),
    )
    refunds = await db.fetchall(
        """
        SELECT
            id,
            amount,
            tax_amount,
            reason,
            created_at
        FROM refunds
        WHERE order_id = ?
        ORDER BY created_at, id
        """,
        (order_id,),
    )
    return msgspec.structs.replace(order, items=rows_to(OrderItem, items), refunds=rows_to(Refund, refunds))


async def get_refund(db: Reader, order_id: str, refund_id: str) -> Refund | None:
    """One refund of an order (the refund email)."""
    row = await db.fetchone(
        "SELECT id, amount, tax_amount, reason, created_at FROM refunds WHERE id = ? AND order_id = ?",
        (refund_id, order_id),
    )
    return row_to(Refund, row)


async def count_refunds(db: Reader, order_id: str) -> int:
    """How many refunds the order has had (the seed loader skips those an earlier load applied)."""
    return int(await db.fetchval("SELECT COUNT(*) FROM refunds WHERE order_id = ?", (order_id,)) or 0)


class OrderOwner(msgspec.Struct, frozen=True, kw_only=True):
    organization_id: str
    customer_id: str


async def order_owner(db: Reader, order_id: str) -> OrderOwner | None:
    """Whose order this is (signed document links and event hooks check or route by it); None if it is missing."""
    return row_to(
        OrderOwner, await db.fetchone("SELECT organization_id, customer_id FROM orders WHERE id = ?", (order_id,))
    )


# --- records: whole rows (admin API, webhook payloads) ----------------------------------------------------


class OrderRecord(msgspec.Struct, frozen=True, kw_only=True):
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
    external_id: str | None
    metadata: str
    created_at: str
    modified_at: str | None


class OrderItemRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    order_id: str
    label: str
    quantity: int
    unit_amount: int
    amount: int
    tax_amount: int
    proration: bool
    product_price_id: str | None
    created_at: str
    modified_at: str | None


_RECORD_COLUMNS = (
    ORDER_BASE_COLUMNS
    + """    o.external_id,
    o.metadata,
    o.created_at,
    o.modified_at
"""
)


async def get_order_record(db: Reader, scope: Scope, order_id: str) -> OrderRecord | None:
    """The whole order, or None if it is missing or outside the scope."""
    where, params = scope.where("o")
    row = await db.fetchone(
        f"SELECT {_RECORD_COLUMNS} FROM orders o WHERE {' AND '.join(['o.id = ?', *where])}", [order_id, *params]
    )
    return row_to(OrderRecord, row)


async def list_order_records(
    db: Database,
    scope: Scope,
    *,
    product_id: str | None = None,
    subscription_id: str | None = None,
    status: str | None = None,
    page: int,
    limit: int,
) -> PageOf[OrderRecord]:
    """A page of the scope's orders, newest first; ``None`` filters are not applied."""
    return await fetch_page(
        db,
        OrderRecord,
        select=_RECORD_COLUMNS,
        source="orders o",
        filters={
            **scope.filters("o"),
            "o.product_id": product_id,
            "o.subscription_id": subscription_id,
            "o.status": status,
        },
        order_by="o.created_at DESC, o.id",
        page=page,
        limit=limit,
    )


async def list_order_item_records(db: Reader, order_id: str) -> list[OrderItemRecord]:
    """The items of an order the caller has already read (and so checked)."""
    rows = await db.fetchall(
        """
        SELECT
            id,
            order_id,
            label,
            quantity,
            unit_amount,
            amount,
            tax_amount,
            proration,
            product_price_id,
            created_at,
            modified_at
        FROM order_items
        WHERE order_id = ?
        ORDER BY position, id
        """,
        (order_id,),
    )
    return rows_to(OrderItemRecord, rows)


# --- API rows: positional, items as JSON (customer-portal API) --------------------------------------------

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


def order_rows(rows: Sequence[sqlite3.Row]) -> list[OrderRow]:
    """``OrderRow``s from rows of ``ORDER_COLUMNS`` (as ``list_order_rows``/``get_order_row`` return them)."""
    if rows and tuple(rows[0].keys()) != OrderRow.__struct_fields__:
        raise RuntimeError("ORDER_COLUMNS and OrderRow disagree on the columns")
    return msgspec.convert([tuple(row) for row in rows], list[OrderRow], strict=False)


_ROW_SOURCE = "orders o"
_ROW_SOURCE_WITH_PRODUCT = "orders o LEFT JOIN products p ON p.id = o.product_id"
ORDER_SORT = {
    "created_at": "o.created_at",
    "amount": "(o.total_amount - o.refunded_amount)",
    "net_amount": "(o.total_amount - o.refunded_amount)",
    "product": "p.name",
    "subscription": "o.subscription_id",
}


async def list_order_rows(
    db: Database,
    scope: Scope,
    *,
    product_id: Sequence[str] | None,
    product_billing_type: Sequence[str] | None,
    subscription_id: Sequence[str] | None,
    query: str | None,
    sorting: Sequence[str] | None,
    page_number: int,
    limit: int,
) -> tuple[list[sqlite3.Row], int]:
    """A page of the scope's orders with Polar's customer-portal filters and ``sorting`` (``ORDER_SORT`` keys), and
    the total; rows of ``ORDER_COLUMNS`` (``order_rows`` reads them)."""
    where, params = scope.where("o")
    add_in(where, params, "o.product_id", product_id)
    add_in(where, params, "o.subscription_id", subscription_id)
    if product_billing_type and set(product_billing_type) != {"one_time", "recurring"}:
        # recurring = subscription creations and renewals; one_time = purchases (Polar's definition).
        where.append(
            "o.subscription_id IS NOT NULL" if "recurring" in product_billing_type else "o.subscription_id IS NULL"
        )
    if query:
        where.append("(p.name LIKE ? ESCAPE '\\' OR o.receipt_number LIKE ? ESCAPE '\\')")
        pattern = like_pattern(query)
        params.extend([pattern, pattern])
    by_product = bool(query) or any(criterion.lstrip("-") == "product" for criterion in sorting or ())
    return await fetch_rows_page(
        db,
        select=ORDER_COLUMNS,
        source=_ROW_SOURCE_WITH_PRODUCT if by_product else _ROW_SOURCE,
        where=where,
        params=params,
        order=order_by(sorting, ORDER_SORT, "-created_at", "o.id"),
        page=page_number,
        limit=limit,
        count_source=None if query else _ROW_SOURCE,  # only the search reads the product's name
    )


async def get_order_row(db: Database, scope: Scope, order_id: str) -> sqlite3.Row | None:
    """One order as a row of ``ORDER_COLUMNS``, or None if it is missing or outside the scope."""
    where, params = scope.where("o")
    return await db.fetchone(
        f"SELECT {ORDER_COLUMNS} FROM {_ROW_SOURCE} WHERE {' AND '.join(['o.id = ?', *where])}", [order_id, *params]
    )


async def count_subscription_orders(db: Reader, subscription_id: str) -> int:
    """How many orders a subscription has had (its first is ``subscription_create``), for a caller that checked
    the subscription is its organization's."""
    return int(await db.fetchval("SELECT COUNT(*) FROM orders WHERE subscription_id = ?", (subscription_id,)) or 0)


# --- seller console: aggregates of one organization (portal.console.dashboard) -------------------------------


class MonthlySales(msgspec.Struct, frozen=True, kw_only=True):
    """One month (``YYYY-MM``, UTC) and currency of an organization's orders that were paid."""

    month: str
    currency: str
    orders: int
    revenue: int  # total_amount of paid (also later refunded) orders, in the currency's smallest unit
    refunded: int  # refunded_amount of those orders


async def monthly_sales(db: Reader, scope: Scope, since: str) -> list[MonthlySales]:
    """The scope's orders (an organization's) created at or after ``since`` (ISO), by month and currency; pending
    and void orders are not sales. Read from the covering index ``orders_org_month`` (migration 17): no order row
    is visited."""
    organization_id = scope.organization_id
    if organization_id is None or scope.customer_id is not None:
        raise ValueError("monthly sales are read per organization")
    rows = await db.fetchall(
        """
        SELECT substr(created_at, 1, 7) AS month,
               currency,
               COUNT(*) AS orders,
               SUM(total_amount) AS revenue,
               SUM(refunded_amount) AS refunded
        FROM orders INDEXED BY orders_org_month
        WHERE organization_id = ?
          AND created_at >= ?
          AND status IN ('paid', 'refunded', 'partially_refunded')
        GROUP BY month, currency
        ORDER BY month, currency
        """,
        (organization_id, since),
    )
    return rows_to(MonthlySales, rows)


async def paid_one_time_orders_of_product(db: Reader, product_id: str) -> list[sqlite3.Row]:
    """``id``, ``customer_id`` of the product's one-time orders that hold their benefits (paid, or only partly
    refunded), for a benefit added to the product afterwards (a processor import's downloads)."""
    return await db.fetchall(
        """
        SELECT id, customer_id FROM orders
        WHERE product_id = ? AND subscription_id IS NULL AND status IN ('paid', 'partially_refunded')
        ORDER BY created_at, id
        """,
        (product_id,),
    )


# --- seller console: the customer an order number, id or processor id belongs to (portal.console.customer_search)


async def customers_by_order_reference(db: Reader, scope: Scope, reference: str) -> list[tuple[str, str, str]]:
    """``(customer id, order id, what matched)`` of the organization's orders whose receipt number, invoice number,
    id or external (processor) id is ``reference``: four unique-index lookups."""
    if scope.organization_id is None:
        raise ValueError("an order search needs an organization")
    where, params = scope.where("o")
    found: list[tuple[str, str, str]] = []
    for column in ("receipt_number", "invoice_number", "id", "external_id"):
        rows = await db.fetchall(
            f"SELECT o.customer_id, o.id FROM orders o WHERE {' AND '.join(where)} AND o.{column} = ? LIMIT 2",
            [*params, reference],
        )
        found += [(str(row["customer_id"]), str(row["id"]), column) for row in rows]
    return found


class CustomerRefund(msgspec.Struct, frozen=True, kw_only=True):
    """A refund of one of a customer's orders (the console's customer timeline)."""

    id: str
    order_id: str
    amount: int
    currency: str
    reason: str | None
    created_at: str


async def customer_refunds(db: Reader, scope: Scope, limit: int = 100) -> list[CustomerRefund]:
    """Refunds of the customer's newest orders (the orders in index order, ``orders_customer_org_created``, each
    order's refunds by ``refunds_order``: no sort of everything the customer ever bought)."""
    organization_id, customer_id = scope.customer_ids()
    rows = await db.fetchall(
        """
        SELECT r.id, r.order_id, r.amount, o.currency, r.reason, r.created_at
        FROM orders o JOIN refunds r ON r.order_id = o.id
        WHERE o.customer_id = ? AND o.organization_id = ?
        ORDER BY o.created_at DESC
        LIMIT ?
        """,
        (customer_id, organization_id, limit),
    )
    return rows_to(CustomerRefund, rows)
