"""Write side of orders: create an order with its items (totals computed and checked here), mark it paid
(receipt number allocated in the caller's write transaction, billing details snapshotted, benefits granted)
and refund it (partial or full; a full refund revokes the grants the order gave)."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any, Literal

import msgspec

from portal.benefits.grants import grant_product_benefits, revoke_order_grants
from portal.clock import iso, new_id
from portal.customers.service import get_customer_row
from portal.db import Transaction
from portal.errors import Conflict, DomainError, InvalidInput, NotFound
from portal.fields import INT64_MAX, NonNegative, Quantity, SingleLine
from portal.notifications import hooks as notify
from portal.organizations.service import allocate_receipt_number, currency_problem
from portal.references import require_owned
from portal.scope import EVERY_ORGANIZATION
from portal.subscriptions.reads import get_subscription_record

BillingReason = Literal["purchase", "subscription_create", "subscription_cycle", "subscription_update"]
OrderStatus = Literal["pending", "paid", "refunded", "partially_refunded", "void"]


class OrderItemInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    label: SingleLine
    unit_amount: NonNegative
    quantity: Quantity = 1
    tax_amount: NonNegative = 0
    proration: bool = False
    product_price_id: str | None = None


class OrderInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    customer_id: str
    currency: str
    items: list[OrderItemInput]
    product_id: str | None = None
    subscription_id: str | None = None
    billing_reason: BillingReason = "purchase"
    discount_amount: NonNegative = 0
    tax_amount: NonNegative | None = None  # None: the sum of the items' tax amounts
    external_id: str | None = None
    metadata: dict[str, Any] = {}


class OrderTotals(msgspec.Struct, frozen=True, kw_only=True):
    subtotal_amount: int
    discount_amount: int
    tax_amount: int
    total_amount: int


def compute_totals(items: list[OrderItemInput], discount_amount: int, tax_amount: int | None) -> OrderTotals:
    """subtotal = Σ quantity × unit_amount; total = subtotal − discount + tax. ``InvalidInput`` when the
    discount exceeds the subtotal."""
    subtotal = sum(item.quantity * item.unit_amount for item in items)
    tax = sum(item.tax_amount for item in items) if tax_amount is None else tax_amount
    if discount_amount > subtotal:
        raise InvalidInput("discount exceeds the subtotal", "discount_amount")
    if subtotal + tax > INT64_MAX:
        # Each amount is bounded (``fields.NonNegative``); only many large items can add up past SQLite's range.
        raise InvalidInput("the items add up to more than can be stored", "items")
    return OrderTotals(
        subtotal_amount=subtotal,
        discount_amount=discount_amount,
        tax_amount=tax,
        total_amount=subtotal - discount_amount + tax,
    )


def check_order(data: OrderInput) -> list[DomainError]:
    problems: list[DomainError] = []
    if (message := currency_problem(data.currency)) is not None:
        problems.append(InvalidInput(message, "currency"))
    if not data.items:
        problems.append(InvalidInput("an order needs at least one item", "items"))
    for index, item in enumerate(data.items):
        if not item.label.strip():
            problems.append(InvalidInput("must not be empty", f"items[{index}].label"))
    try:
        compute_totals(data.items, data.discount_amount, data.tax_amount)
    except DomainError as exc:
        problems.append(exc)
    if data.billing_reason == "purchase" and data.subscription_id is not None:
        problems.append(InvalidInput("a purchase has no subscription", "billing_reason"))
    if data.billing_reason != "purchase" and data.subscription_id is None:
        problems.append(InvalidInput(f"{data.billing_reason} needs a subscription", "subscription_id"))
    return problems


async def check_references(tx: Transaction, organization_id: str, data: OrderInput) -> None:
    """Every id the order would store is ``organization_id``'s: its customer, product, subscription (and that
    subscription is the customer's) and each item's price. ``UnknownReference`` (422) names the field."""
    await require_owned(tx, "customer", data.customer_id, organization_id, "customer_id")
    if data.product_id is not None:
        await require_owned(tx, "product", data.product_id, organization_id, "product_id")
    if data.subscription_id is not None:
        await require_owned(tx, "subscription", data.subscription_id, organization_id, "subscription_id")
        subscription = await get_subscription_record(tx, EVERY_ORGANIZATION, data.subscription_id)
        if subscription is None or subscription.customer_id != data.customer_id:
            raise InvalidInput("the subscription belongs to another customer", "subscription_id")
    for index, item in enumerate(data.items):
        if item.product_price_id is not None:
            field = f"items[{index}].product_price_id"
            await require_owned(tx, "price", item.product_price_id, organization_id, field)


async def create_order(tx: Transaction, organization_id: str, data: OrderInput, *, now: datetime) -> str:
    """Insert a ``pending`` order and its items (created at ``now``); returns the order id."""
    problems = check_order(data)
    if problems:
        raise problems[0]
    totals = compute_totals(data.items, data.discount_amount, data.tax_amount)
    await check_references(tx, organization_id, data)
    if data.external_id is not None:
        taken = await tx.fetchval(
            "SELECT id FROM orders WHERE organization_id = ? AND external_id = ?",
            (organization_id, data.external_id),
        )
        if taken is not None:
            raise Conflict("an order with this external_id exists", "external_id")
    order_id = new_id()
    await tx.execute(
        """
        INSERT INTO orders (
            id,
            organization_id,
            customer_id,
            product_id,
            subscription_id,
            status,
            billing_reason,
            subtotal_amount,
            discount_amount,
            tax_amount,
            total_amount,
            currency,
            external_id,
            metadata,
            created_at
        ) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        (
            order_id,
            organization_id,
            data.customer_id,
            data.product_id,
            data.subscription_id,
            data.billing_reason,
            totals.subtotal_amount,
            totals.discount_amount,
            totals.tax_amount,
            totals.total_amount,
            data.currency,
            data.external_id,
            msgspec.json.encode(data.metadata).decode(),
            iso(now),
        ),
    )
    await tx.executemany(
        """
        INSERT INTO order_items (
            id,
            order_id,
            label,
            quantity,
            unit_amount,
            amount,
            tax_amount,
            proration,
            product_price_id,
            position,
            created_at
        ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        [
            (
                new_id(),
                order_id,
                item.label.strip(),
                item.quantity,
                item.unit_amount,
                item.quantity * item.unit_amount,
                item.tax_amount,
                item.proration,
                item.product_price_id,
                position,
                iso(now),
            )
            for position, item in enumerate(data.items)
        ],
    )
    return order_id


async def get_order_row(tx: Transaction, order_id: str, *, organization_id: str | None = None) -> sqlite3.Row:
    row = await tx.fetchone("SELECT * FROM orders WHERE id = ?", (order_id,))
    if row is None or (organization_id is not None and row["organization_id"] != organization_id):
        raise NotFound("order not found")
    return row


async def find_order_id(tx: Transaction, organization_id: str, external_id: str) -> str | None:
    return await tx.fetchval(
        "SELECT id FROM orders WHERE organization_id = ? AND external_id = ?",
        (organization_id, external_id),
    )


async def mark_order_paid(tx: Transaction, order_id: str, *, now: datetime, send_receipt: bool = True) -> str:
    """Pay a pending order at ``now``; returns its receipt number (e.g. ``ACME-0007``). ``send_receipt=False``
    (an imported, backdated order) sends the customer no receipt email; the ``order.paid`` webhook still goes.

    Inside the caller's transaction: allocates the next receipt number of the organization (gap-free),
    snapshots the customer's billing name/address/tax id, and — for purchases, not subscription invoices,
    whose benefits follow the subscription — grants the product's benefits (license keys issued)."""
    order = await get_order_row(tx, order_id)
    if order["status"] != "pending":
        raise Conflict(f"order is {order['status']}, not pending", "status")
    customer = await get_customer_row(tx, order["customer_id"])
    receipt_number = await allocate_receipt_number(tx, order["organization_id"])
    await tx.execute(
        """
        UPDATE orders SET
            status = 'paid',
            paid_at = ?,
            receipt_number = ?,
            billing_name = ?,
            billing_address = ?,
            tax_id = ?,
            modified_at = ?
        WHERE id = ?
        """,
        (
            iso(now),
            receipt_number,
            customer["billing_name"] or customer["name"],
            customer["billing_address"],
            customer["tax_id"],
            iso(now),
            order_id,
        ),
    )
    if order["product_id"] is not None and order["subscription_id"] is None:
        await grant_product_benefits(
            tx,
            customer_id=order["customer_id"],
            product_id=order["product_id"],
            order_id=order_id,
            now=now,
        )
    await notify.order_paid(tx, order_id, now=now, send_receipt=send_receipt)
    return receipt_number


async def refund_order(
    tx: Transaction,
    order_id: str,
    amount: int,
    *,
    now: datetime,
    reason: str | None = None,
    revoke_grants: bool = True,
) -> str:
    """Refund ``amount`` (minor units) of a paid order; returns the refund id.

    More than what remains -> ``InvalidInput`` on ``amount``. The status becomes ``partially_refunded``, or
    ``refunded`` once nothing remains, which also revokes the grants the order gave (license keys revoked) unless
    ``revoke_grants`` is off (a processor connection whose seller keeps benefits after a full refund).
    The refund's tax share is proportional, and exact on the last refund."""
    order = await get_order_row(tx, order_id)
    if order["status"] not in ("paid", "partially_refunded"):
        raise Conflict(f"order is {order['status']}, it cannot be refunded", "status")
    remaining = order["total_amount"] - order["refunded_amount"]
    if amount <= 0:
        raise InvalidInput("expected a positive amount", "amount")
    if amount > remaining:
        raise InvalidInput(f"at most {remaining} remains to refund", "amount")
    full = amount == remaining
    if full:
        tax = order["tax_amount"] - order["refunded_tax_amount"]
    else:
        tax = amount * order["tax_amount"] // order["total_amount"] if order["total_amount"] else 0
    refund_id = new_id()
    await tx.execute(
        """
        INSERT INTO refunds (id, order_id, amount, tax_amount, reason, created_at)
        VALUES (?, ?, ?, ?, ?, ?)
        """,
        (refund_id, order_id, amount, tax, reason, iso(now)),
    )
    await tx.execute(
        """
        UPDATE orders SET
            refunded_amount = refunded_amount + ?,
            refunded_tax_amount = refunded_tax_amount + ?,
            status = ?,
            modified_at = ?
        WHERE id = ?
        """,
        (amount, tax, "refunded" if full else "partially_refunded", iso(now), order_id),
    )
    if full and revoke_grants:
        await revoke_order_grants(tx, order_id, now=now)
    await notify.order_refunded(tx, order_id, refund_id, now=now)
    return refund_id


async def void_order(tx: Transaction, order_id: str, *, now: datetime) -> None:
    """Void a pending order (never paid, so no receipt number and no grants)."""
    order = await get_order_row(tx, order_id)
    if order["status"] != "pending":
        raise Conflict(f"order is {order['status']}, only pending orders can be voided", "status")
    await tx.execute("UPDATE orders SET status = 'void', modified_at = ? WHERE id = ?", (iso(now), order_id))


async def set_invoice_number(tx: Transaction, order_id: str, invoice_number: str, *, now: datetime) -> None:
    """The number of the order's current invoice (``portal.invoices.service`` issues it in the same transaction)."""
    await tx.execute(
        "UPDATE orders SET invoice_number = ?, modified_at = ? WHERE id = ?", (invoice_number, iso(now), order_id)
    )


async def set_billing(
    tx: Transaction, order_id: str, billing_name: str | None, billing_address: str | None, *, now: datetime
) -> None:
    """The bill-to printed on the order's invoices (``billing_address``: its JSON, validated by the caller)."""
    await tx.execute(
        "UPDATE orders SET billing_name = ?, billing_address = ?, modified_at = ? WHERE id = ?",
        (billing_name, billing_address, iso(now), order_id),
    )
