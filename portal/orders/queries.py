"""Read queries for a customer's orders: the paginated list, one order with its items and refunds, and the
latest few for the overview. Every query is scoped by organization AND customer, so another customer's order
is indistinguishable from a missing one."""

from __future__ import annotations

from typing import Any

import msgspec

from portal.db import Database, row_to, rows_to


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


async def list_orders(
    db: Database, organization_id: str, customer_id: str, *, page: int = 1, limit: int = PAGE_SIZE
) -> tuple[list[OrderSummary], int]:
    """One page of the customer's orders, newest first, and the total count (two indexed queries)."""
    page = max(1, page)
    total = await db.fetchval(
        "SELECT COUNT(*) FROM orders WHERE customer_id = ? AND organization_id = ?",
        (customer_id, organization_id),
    )
    return await _summaries(db, organization_id, customer_id, limit, (page - 1) * limit), int(total or 0)


async def latest_orders(db: Database, organization_id: str, customer_id: str, limit: int = 5) -> list[OrderSummary]:
    """The newest ``limit`` orders (the overview; no count needed)."""
    return await _summaries(db, organization_id, customer_id, limit, 0)


async def _summaries(
    db: Database, organization_id: str, customer_id: str, limit: int, offset: int
) -> list[OrderSummary]:
    rows = await db.fetchall(
        f"""
        SELECT {_SUMMARY_COLUMNS}
        FROM orders o
        LEFT JOIN products p ON p.id = o.product_id
        WHERE o.customer_id = ? AND o.organization_id = ?
        ORDER BY o.created_at DESC, o.id
        LIMIT ? OFFSET ?
        """,
        (customer_id, organization_id, limit, offset),
    )
    return rows_to(OrderSummary, rows)


# The order columns every whole-order read selects, up to ``paid_at`` (each reader appends its own tail:
# the admin API ``external_id``/``metadata``, the customer portal the product name).
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


_DETAIL = """
SELECT
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
FROM orders o
LEFT JOIN products p ON p.id = o.product_id
WHERE o.id = ? AND o.organization_id = ? AND o.customer_id = ?
"""


async def get_order(db: Database, organization_id: str, customer_id: str, order_id: str) -> OrderDetail | None:
    """The order with its items and refunds (three queries), or None if it is not this customer's."""
    order = row_to(OrderDetail, await db.fetchone(_DETAIL, (order_id, organization_id, customer_id)))
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


# --- seller console: aggregates of one organization (portal.console.dashboard) -------------------------------


class MonthlySales(msgspec.Struct, frozen=True, kw_only=True):
    """One month (``YYYY-MM``, UTC) and currency of an organization's orders that were paid."""

    month: str
    currency: str
    orders: int
    revenue: int  # total_amount of paid (also later refunded) orders, in the currency's smallest unit
    refunded: int  # refunded_amount of those orders


async def monthly_sales(db: Database, organization_id: str, since: str) -> list[MonthlySales]:
    """Orders created at or after ``since`` (ISO), by month and currency; pending and void orders are not sales.
    Read from the covering index ``orders_org_month`` (migration 22): no order row is visited."""
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
