"""Organization-wide reads of orders and their items for the admin API (the portal's customer-scoped order
reads are in ``queries``). Returns ``OrderRecord``/``OrderItemRecord`` structs."""

from __future__ import annotations

import msgspec

from portal.db import Database, row_to, rows_to
from portal.orders.queries import ORDER_BASE_COLUMNS
from portal.pagination import PageOf, fetch_page


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


_ORDER_COLUMNS = (
    ORDER_BASE_COLUMNS
    + """    o.external_id,
    o.metadata,
    o.created_at,
    o.modified_at
"""
)


async def get_order(db: Database, order_id: str) -> OrderRecord | None:
    row = await db.fetchone(f"SELECT {_ORDER_COLUMNS} FROM orders o WHERE o.id = ?", (order_id,))
    return row_to(OrderRecord, row)


async def list_orders(
    db: Database,
    *,
    organization_id: str | None,
    customer_id: str | None,
    product_id: str | None,
    subscription_id: str | None,
    status: str | None,
    page: int,
    limit: int,
) -> PageOf[OrderRecord]:
    return await fetch_page(
        db,
        OrderRecord,
        select=_ORDER_COLUMNS,
        source="orders o",
        filters={
            "o.organization_id": organization_id,
            "o.customer_id": customer_id,
            "o.product_id": product_id,
            "o.subscription_id": subscription_id,
            "o.status": status,
        },
        order_by="o.created_at DESC, o.id",
        page=page,
        limit=limit,
    )


async def list_items(db: Database, order_id: str) -> list[OrderItemRecord]:
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
