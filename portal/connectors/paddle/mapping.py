"""Paddle Billing entities -> Portal rows, applied inside the caller's write transaction through the area services
(as ``portal.connectors.stripe.mapping`` does: the same customer matching, receipts, benefit grants, emails and
outgoing webhooks; history mode keeps Paddle's dates and sends nothing). Used by the webhook endpoint and by
``portal import paddle``.

* ``apply_customer``: a ``customer`` (``ctm_…``): email and name, by link then email.
* ``apply_transaction``: a ``completed`` transaction (``txn_…``): a one-time purchase -> paid Portal order of its
  first item's price's product; a subscription's -> the subscription's order (``origin`` gives the billing reason).
* ``apply_subscription``: a subscription's status, billing period, scheduled cancellation and price.
* ``apply_adjustment``: an ``adjustment`` with ``action: refund``: ``approved`` refunds its total on the
  transaction's order (once per adjustment); ``pending_approval`` and ``rejected`` change nothing.

Paddle has no license keys: Portal issues them through the product's benefits, as for any order.

Prices (``pri_…``) map to Portal products through ``connector_prices``, else the price's ``custom_data``
``portal_product_id``; an unmapped price answers ``unmapped`` and the event waits for the mapping.

Ordering: customers and subscriptions store their ``updated_at`` as version (an older state is skipped);
transactions and adjustments are facts applied once by id. A transaction or subscription whose customer (or
subscription) Portal has not seen raises ``NeedObject`` and the current entity is fetched and applied first.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Any

from portal.connectors.base import ApplyContext, MappingError, NeedObject, Outcome
from portal.connectors.links import get_link, linked_id, mapped_product, set_link
from portal.connectors.stripe.mapping import ensure_customer, subscription_differs
from portal.db import Transaction
from portal.notifications.mute import muted
from portal.orders import service as order_service
from portal.orders.service import BillingReason, OrderInput, OrderItemInput
from portal.products.service import get_active_price
from portal.references import owner_of
from portal.subscriptions import service as subscription_service
from portal.subscriptions.service import SubscriptionInput, SubscriptionStatus

PRODUCT_KEY = "portal_product_id"
STATUSES: dict[str, SubscriptionStatus] = {
    "active": "active",
    "trialing": "trialing",
    "past_due": "past_due",
    "paused": "unpaid",
    "canceled": "canceled",
}
# A transaction's origin -> the billing reason of a subscription's order.
ORIGINS: dict[str, BillingReason] = {
    "subscription_recurring": "subscription_cycle",
    "subscription_update": "subscription_update",
    "subscription_charge": "subscription_update",
}


def moment(value: Any) -> datetime | None:
    """An RFC 3339 time as Paddle writes them (``2024-04-12T10:18:49.738972Z``), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MappingError(f"not a time: {value!r}") from None


def stamp(value: Any) -> int:
    found = moment(value)
    return 0 if found is None else int(found.timestamp())


def _quiet(ctx: ApplyContext) -> AbstractContextManager[None]:
    return muted() if ctx.history else nullcontext()


def _when(ctx: ApplyContext, value: Any) -> datetime:
    found = moment(value) if ctx.history else None
    return found or ctx.now


def _amount(value: Any) -> int:
    """Paddle's amounts are strings of minor units."""
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        raise MappingError(f"not an amount: {value!r}") from None


async def product_for_price(tx: Transaction, ctx: ApplyContext, price: dict[str, Any]) -> str | None:
    price_id = str(price.get("id"))
    mapped = await mapped_product(tx, ctx, price_id)
    if mapped is not None:
        return mapped
    candidate = (price.get("custom_data") or {}).get(PRODUCT_KEY)
    if isinstance(candidate, str) and await owner_of(tx, "product", candidate) == ctx.connection.organization_id:
        return candidate
    return None


def _first_price(entity: dict[str, Any]) -> dict[str, Any]:
    items = entity.get("items") or []
    if not items or not isinstance(items[0].get("price"), dict):
        raise MappingError(f"the Paddle {entity.get('id')} has no items with a price")
    return dict(items[0]["price"])


# --- customers ---------------------------------------------------------------------------------------------------


async def apply_customer(tx: Transaction, ctx: ApplyContext, customer: dict[str, Any]) -> Outcome:
    if not customer.get("email"):
        return Outcome("ignored", "a Paddle customer without an email address")
    link = await get_link(tx, ctx, "customer", customer["id"])
    version = stamp(customer.get("updated_at"))
    if link is not None and version < int(link["version"]):
        return Outcome("ignored", "stale: a newer state of this customer is applied")
    with _quiet(ctx):
        await ensure_customer(
            tx,
            ctx,
            stripe_id=customer["id"],
            email=customer["email"],
            name=customer.get("name"),
            address=None,
            tax_ids=None,
            created=stamp(customer.get("created_at")) or None,
            version=version,
        )
    return Outcome("applied")


async def _customer_of(tx: Transaction, ctx: ApplyContext, customer_id: Any) -> str:
    if not isinstance(customer_id, str):
        raise MappingError("no Paddle customer_id")
    portal_id = await linked_id(tx, ctx, "customer", customer_id)
    if portal_id is None:
        raise NeedObject("customers", customer_id)
    return portal_id


# --- transactions ------------------------------------------------------------------------------------------------


async def apply_transaction(tx: Transaction, ctx: ApplyContext, transaction: dict[str, Any]) -> Outcome:
    """A completed transaction: the customer (fetched if new) and one paid Portal order."""
    if transaction.get("status") != "completed":
        return Outcome("ignored", f"the transaction is {transaction.get('status')}, not completed")
    if await get_link(tx, ctx, "transaction", transaction["id"]) is not None:
        return Outcome("ignored", "this transaction is applied already")
    if transaction.get("origin") == "subscription_payment_method_change":
        return Outcome("ignored", "a payment-method change (nothing sold)")
    totals = (transaction.get("details") or {}).get("totals") or {}
    subtotal, discount = _amount(totals.get("subtotal")), _amount(totals.get("discount"))
    currency = str(transaction.get("currency_code") or "").lower()
    subscription_id = None
    reason: BillingReason = "purchase"
    if transaction.get("subscription_id"):
        subscription_id = await linked_id(tx, ctx, "subscription", transaction["subscription_id"])
        if subscription_id is None:
            raise NeedObject("subscriptions", transaction["subscription_id"])
        subscription = await subscription_service.get_subscription_row(tx, subscription_id)
        customer_id, product_id = str(subscription["customer_id"]), str(subscription["product_id"])
        reason = ORIGINS.get(str(transaction.get("origin")), "subscription_create")
        price_row = None
    else:
        price = _first_price(transaction)
        found = await product_for_price(tx, ctx, price)
        if found is None:
            return Outcome("unmapped", "no Portal product for this Paddle price", str(price.get("id")))
        product_id = found
        customer_id = await _customer_of(tx, ctx, transaction.get("customer_id"))
        price_row = await get_active_price(tx, product_id, currency)
    label = str(_first_price(transaction).get("description") or "Purchase")
    when = _when(ctx, transaction.get("billed_at") or transaction.get("created_at"))
    with _quiet(ctx):
        order_id = await order_service.create_order(
            tx,
            ctx.connection.organization_id,
            OrderInput(
                customer_id=customer_id,
                currency=currency,
                product_id=product_id,
                subscription_id=subscription_id,
                billing_reason=reason,
                items=[
                    OrderItemInput(
                        label=label,
                        unit_amount=subtotal,
                        product_price_id=None if price_row is None else price_row["id"],
                    )
                ],
                discount_amount=min(discount, subtotal),
                tax_amount=_amount(totals.get("tax")),
                external_id=f"paddle:{transaction['id']}",
                metadata={"paddle_transaction": transaction["id"]},
            ),
            now=when,
        )
        await order_service.mark_order_paid(tx, order_id, now=when)
    await set_link(tx, ctx, "transaction", transaction["id"], order_id)
    return Outcome("applied")


# --- subscriptions -----------------------------------------------------------------------------------------------


async def apply_subscription(tx: Transaction, ctx: ApplyContext, subscription: dict[str, Any]) -> Outcome:
    """A subscription's current status, period, scheduled cancellation and price (its first item's)."""
    link = await get_link(tx, ctx, "subscription", subscription["id"])
    version = stamp(subscription.get("updated_at"))
    if link is not None and version < int(link["version"]):
        return Outcome("ignored", "stale: a newer state of this subscription is applied")
    price = _first_price(subscription)
    product_id = await product_for_price(tx, ctx, price)
    if product_id is None:
        return Outcome("unmapped", "no Portal product for this Paddle price", str(price.get("id")))
    status = STATUSES.get(str(subscription.get("status")))
    if status is None:
        raise MappingError(f"unknown Paddle subscription status {subscription.get('status')!r}")
    customer_id = await _customer_of(tx, ctx, subscription.get("customer_id"))
    period = subscription.get("current_billing_period") or {}
    start = moment(period.get("starts_at")) or moment(subscription.get("started_at"))
    start = start or moment(subscription.get("created_at"))
    if start is None:
        raise MappingError("the Paddle subscription has no billing period")
    end = moment(period.get("ends_at"))
    scheduled = subscription.get("scheduled_change") or {}
    cancel_at_period_end = scheduled.get("action") == "cancel" and status != "canceled"
    canceled_at = moment(subscription.get("canceled_at"))
    unit = (price.get("unit_price") or {}).get("amount")
    data = SubscriptionInput(
        customer_id=customer_id,
        product_id=product_id,
        status=status,
        current_period_start=start,
        current_period_end=end if end is not None and end > start else None,
        amount=None
        if unit is None
        else _amount(unit) * int((subscription.get("items") or [{}])[0].get("quantity") or 1),
        currency=str(subscription.get("currency_code") or "").lower() or None,
        cancel_at_period_end=cancel_at_period_end,
        canceled_at=canceled_at or (moment(subscription.get("updated_at")) if cancel_at_period_end else None),
        started_at=moment(subscription.get("started_at")),
        ends_at=moment(scheduled.get("effective_at")) if cancel_at_period_end else None,
        ended_at=(canceled_at or start) if status == "canceled" else None,
        metadata={"paddle_subscription": subscription["id"]},
    )
    if data.currency is not None:
        portal_price = await get_active_price(tx, product_id, data.currency)
        if portal_price is not None and portal_price["price_amount"] == data.amount:
            data.price_id = portal_price["id"]
    with _quiet(ctx):
        if link is None:
            portal_id = await subscription_service.create_subscription(
                tx, ctx.connection.organization_id, data, now=_when(ctx, subscription.get("created_at"))
            )
        else:
            portal_id = str(link["portal_id"])
            if await subscription_differs(tx, portal_id, data):
                await subscription_service.update_subscription(tx, portal_id, data, now=ctx.now)
    await set_link(tx, ctx, "subscription", subscription["id"], portal_id, version)
    return Outcome("applied")


# --- adjustments (refunds) ---------------------------------------------------------------------------------------


async def apply_adjustment(tx: Transaction, ctx: ApplyContext, adjustment: dict[str, Any]) -> Outcome:
    """An approved refund adjustment refunds its total on the transaction's order, once."""
    if adjustment.get("action") != "refund":
        return Outcome("ignored", f"a {adjustment.get('action')} adjustment is not a refund")
    if adjustment.get("status") != "approved":
        return Outcome("ignored", f"the refund is {adjustment.get('status')}")
    if await get_link(tx, ctx, "adjustment", adjustment["id"]) is not None:
        return Outcome("ignored", "this refund is applied already")
    transaction_id = adjustment.get("transaction_id")
    order_id = await linked_id(tx, ctx, "transaction", transaction_id)
    if order_id is None:
        if not isinstance(transaction_id, str):
            raise MappingError("the adjustment names no transaction")
        raise NeedObject("transactions", transaction_id)
    order = await order_service.get_order_row(tx, order_id)
    if order["status"] not in ("paid", "partially_refunded"):
        return Outcome("ignored", f"the order is {order['status']}")
    totals = adjustment.get("totals") or {}
    remaining = int(order["total_amount"]) - int(order["refunded_amount"])
    amount = min(_amount(totals.get("total")), remaining)
    if amount > 0:
        with _quiet(ctx):
            await order_service.refund_order(
                tx,
                order_id,
                amount,
                now=_when(ctx, adjustment.get("updated_at") or adjustment.get("created_at")),
                reason=adjustment.get("reason") or None,
                revoke_grants=ctx.connection.settings.revoke_on_full_refund,
            )
    await set_link(tx, ctx, "adjustment", adjustment["id"], order_id)
    return Outcome("applied")
