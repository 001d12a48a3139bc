"""Stripe objects -> Portal rows: one function per Stripe object kind, each applying the object's CURRENT state to
Portal inside the caller's write transaction, through the area services (customers, orders, subscriptions), so
that everything downstream (benefit grants, receipt numbers, receipt and subscription emails, outgoing webhooks)
is exactly what an admin-API write does. Used by the live webhook endpoint (``portal.connectors.events``) and by
``portal import stripe`` (history: ``ApplyContext.history``: Stripe's own dates kept, no emails, no webhooks).

Interface (stable; the importer builds on it), each ``async (tx, ctx, obj) -> Outcome``:

* ``apply_customer(tx, ctx, customer)``: a Stripe ``customer``;
* ``apply_checkout_session(tx, ctx, session)``: a ``checkout.session`` with ``line_items`` expanded (payment mode:
  customer + paid order; subscription mode only links the customer, the subscription's own objects do the rest);
* ``apply_subscription(tx, ctx, subscription)``: a ``subscription`` (items with their prices, as Stripe sends);
* ``apply_invoice(tx, ctx, invoice, prices=None)``: a paid ``invoice`` -> the subscription's order with its
  ``billing_reason`` (``prices``: Stripe price objects by id, for lines whose price is mapped by metadata only);
* ``apply_invoice_payment_failed(tx, ctx, invoice)``: the subscription goes ``past_due`` + the fix-your-card email;
* ``apply_charge(tx, ctx, charge, payment=None)``: refunded amounts (cumulative ``amount_refunded``; a full refund
  revokes the order's benefits when the connection's ``revoke_on_full_refund`` is on).

Each returns ``Outcome`` (``applied``, ``ignored`` with the reason, ``unmapped`` with the price id) or raises
``NeedObject(kind, id)`` (``customers``, ``subscriptions``, ``prices``, ``payments``, ``checkout/sessions/line_items``:
fetch it, apply it first, call again; an import applies customers before subscriptions before invoices and rarely
sees it) or ``MappingError`` / a ``DomainError`` (the object cannot be applied: the caller's transaction rolls back).

Ordering (why out-of-order deliveries end in the same state as in-order ones):

* State objects (customers, subscriptions) carry a version in ``connector_links.version``: the Unix time (Stripe's
  clock) of the event whose state was applied last (``ApplyContext.version``; None, for an import: Portal's now).
  An older state than the one applied is skipped (``ignored``, reason ``stale``); an equal or newer one is applied.
* Facts (a paid checkout, a paid invoice) are applied once, keyed by their Stripe id in ``connector_links``.
* Amounts are cumulative: a charge's ``amount_refunded`` only ever grows, so Portal refunds the difference between
  it and what the order already had refunded; an older, smaller figure does nothing.
* A fact whose parent Portal does not know yet (an invoice before its subscription, a subscription before its
  customer) raises ``NeedObject``: the caller fetches that object from Stripe's API, applies its current state
  first in the same transaction, versioned as the event that needed it (at least that new; never Portal's clock,
  which may run ahead of Stripe's and would then hide a later change), and applies the event again. Deliveries
  out of order may show an older state for a while; once every event has arrived (Stripe retries until then), the
  newest one's state is what remains.

Prices map to Portal products through the connection's mapping (``connector_prices``, set with ``portal connect map``
or ``PUT /v1/connectors/stripe/prices/{price_id}``), else the price's metadata ``portal_product_id``. A price with
neither answers ``Outcome("unmapped", price_id=...)``: the event is kept and applied once the mapping exists.

A checkout of several products gives one order per product (a Portal order grants one product's benefits); its
payment is linked to the first, so Stripe refunds of that payment are applied to the first order (up to its total).

Stripe's ``paused`` status has no Polar equivalent (Portal's API is Polar's): a paused subscription is shown as
``unpaid`` (benefits withheld) and comes back ``active`` when Stripe resumes it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import msgspec

from portal.clock import iso
from portal.connectors.base import ApplyContext, MappingError, NeedObject, Outcome
from portal.connectors.links import get_link, linked_id, mapped_product, set_link
from portal.customers import service as customer_service
from portal.customers.service import Address, CustomerInput, CustomerUpdate
from portal.db import Transaction
from portal.notifications import emails
from portal.notifications.mute import muted
from portal.orders import service as order_service
from portal.orders.service import BillingReason, OrderInput, OrderItemInput
from portal.products.service import get_active_price
from portal.references import owner_of
from portal.subscriptions import service as subscription_service
from portal.subscriptions.service import SubscriptionInput, SubscriptionStatus

PROCESSOR = "stripe"
PRODUCT_METADATA_KEY = "portal_product_id"

# Stripe subscription status -> Portal's (Polar's) status.
STATUSES: dict[str, SubscriptionStatus] = {
    "incomplete": "incomplete",
    "incomplete_expired": "incomplete_expired",
    "trialing": "trialing",
    "active": "active",
    "past_due": "past_due",
    "canceled": "canceled",
    "unpaid": "unpaid",
    "paused": "unpaid",
}
# Stripe invoice billing_reason -> Portal order billing_reason.
BILLING_REASONS: dict[str, BillingReason] = {
    "subscription_create": "subscription_create",
    "subscription_cycle": "subscription_cycle",
    "subscription_update": "subscription_update",
    "subscription": "subscription_cycle",
    "subscription_threshold": "subscription_cycle",
    "manual": "subscription_cycle",
}


# --- prices -----------------------------------------------------------------------------------------------------


async def product_for_price(tx: Transaction, ctx: ApplyContext, price: dict[str, Any] | str | None) -> str | None:
    """The Portal product a Stripe price (object or id) maps to, or None (unmapped)."""
    if price is None:
        return None
    price_id = price if isinstance(price, str) else price.get("id")
    mapped = await mapped_product(tx, ctx, str(price_id))
    if mapped is not None:
        return mapped
    if isinstance(price, dict):
        candidate = (price.get("metadata") or {}).get(PRODUCT_METADATA_KEY)
        if isinstance(candidate, str) and await owner_of(tx, "product", candidate) == ctx.connection.organization_id:
            return candidate
    return None


# --- helpers -----------------------------------------------------------------------------------------------------


def moment(stamp: int | None) -> datetime | None:
    return None if stamp is None else datetime.fromtimestamp(int(stamp), UTC)


def _when(ctx: ApplyContext, stamp: int | None) -> datetime:
    """The time a change is recorded at: Stripe's own for history, now for live events."""
    if ctx.history and stamp is not None:
        return datetime.fromtimestamp(int(stamp), UTC)
    return ctx.now


def version_of(ctx: ApplyContext) -> int:
    return ctx.version if ctx.version is not None else int(ctx.now.timestamp())


@contextmanager
def _quiet(ctx: ApplyContext) -> Iterator[None]:
    """History writes no email and calls no webhook."""
    if ctx.history:
        with muted():
            yield
    else:
        yield


def _id(value: Any) -> str | None:
    """An expandable field: its id whether Stripe sent the id or the expanded object."""
    if isinstance(value, dict):
        found = value.get("id")
        return found if isinstance(found, str) else None
    return value if isinstance(value, str) else None


def _address(raw: dict[str, Any] | None) -> Address | None:
    if not raw or not raw.get("country"):
        return None
    return Address(
        line1=raw.get("line1") or None,
        line2=raw.get("line2") or None,
        postal_code=raw.get("postal_code") or None,
        city=raw.get("city") or None,
        state=raw.get("state") or None,
        country=str(raw["country"]).upper(),
    )


def _tax_id(raw: Any) -> str | None:
    """The first tax id's value (customer ``tax_ids`` list object when expanded, or checkout's list)."""
    items = raw.get("data") if isinstance(raw, dict) else raw
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict) and item.get("value"):
                return str(item["value"])
    return None


# --- customers ---------------------------------------------------------------------------------------------------


async def ensure_customer(
    tx: Transaction,
    ctx: ApplyContext,
    *,
    stripe_id: str | None,
    email: str | None,
    name: str | None,
    address: dict[str, Any] | None,
    tax_ids: Any,
    created: int | None,
    version: int | None,
) -> str:
    """The Portal customer for a Stripe customer (by link, then by email in the organization, else created), with
    its details brought up to date when ``version`` is given and not older than the one applied."""
    organization_id = ctx.connection.organization_id
    portal_id: str | None = None
    current_version = 0
    if stripe_id:
        link = await get_link(tx, ctx, "customer", stripe_id)
        if link is not None:
            portal_id, current_version = str(link["portal_id"]), int(link["version"])
    if portal_id is None and email:
        portal_id = await customer_service.find_customer_id(tx, organization_id, email=email)
    when = _when(ctx, created)
    if portal_id is None:
        if not email:
            raise MappingError("the Stripe customer has no email address")
        portal_id = await customer_service.create_customer(
            tx,
            organization_id,
            CustomerInput(
                email=email,
                name=name or None,
                billing_name=name or None,
                billing_address=_address(address),
                tax_id=_tax_id(tax_ids),
            ),
            now=when,
        )
    elif version is not None and version >= current_version:
        changes = CustomerUpdate()
        if email:
            changes.email = email
        if name:
            changes.name = name
            changes.billing_name = name
        if _address(address) is not None:
            changes.billing_address = _address(address)
        if _tax_id(tax_ids) is not None:
            changes.tax_id = _tax_id(tax_ids)
        row = await customer_service.get_customer_row(tx, portal_id)
        if _differs(row, changes):
            await customer_service.update_customer(tx, portal_id, changes, now=ctx.now)
    if stripe_id:
        await set_link(tx, ctx, "customer", stripe_id, portal_id, version or 0)
    return portal_id


def _differs(row: sqlite3.Row, changes: CustomerUpdate) -> bool:
    """Whether applying ``changes`` would change the row (an unchanged customer emits no ``customer.updated``)."""
    for field in ("email", "name", "billing_name", "tax_id"):
        value = getattr(changes, field)
        if isinstance(value, str) and (row[field] or "") != value:
            return True
    if isinstance(changes.billing_address, Address):
        return row["billing_address"] != msgspec.json.encode(changes.billing_address).decode()
    return False


async def apply_customer(tx: Transaction, ctx: ApplyContext, customer: dict[str, Any]) -> Outcome:
    """A Stripe customer's current email, name, address and tax id (matched by link, then email)."""
    if customer.get("deleted"):
        return Outcome("ignored", "a deleted Stripe customer: the Portal customer and their orders are kept")
    link = await get_link(tx, ctx, "customer", customer["id"])
    version = version_of(ctx)
    if link is None and not customer.get("email"):
        return Outcome("ignored", "a Stripe customer without an email address (nobody to sign in yet)")
    if link is not None and version < int(link["version"]):
        return Outcome("ignored", "stale: a newer state of this customer is applied")
    with _quiet(ctx):
        await ensure_customer(
            tx,
            ctx,
            stripe_id=customer["id"],
            email=customer.get("email"),
            name=customer.get("name"),
            address=customer.get("address"),
            tax_ids=customer.get("tax_ids"),
            created=customer.get("created"),
            version=version,
        )
    return Outcome("applied")


async def _customer_of(tx: Transaction, ctx: ApplyContext, stripe_customer: Any) -> str:
    """The Portal customer of a Stripe customer id (``NeedObject`` when Portal has not seen it)."""
    stripe_id = _id(stripe_customer)
    if stripe_id is None:
        raise MappingError("no Stripe customer")
    portal_id = await linked_id(tx, ctx, "customer", stripe_id)
    if portal_id is None:
        raise NeedObject("customers", stripe_id)
    return portal_id


# --- checkout sessions -------------------------------------------------------------------------------------------


async def apply_checkout_session(tx: Transaction, ctx: ApplyContext, session: dict[str, Any]) -> Outcome:
    """A completed Checkout Session (Payment Links included). Payment mode, once paid: the customer (by Stripe id,
    then email; created if new) and one paid order per line item's product. Subscription mode: the customer only
    (the subscription and its first invoice arrive as their own objects)."""
    if await get_link(tx, ctx, "checkout_session", session["id"]) is not None:
        return Outcome("ignored", "this checkout session is already applied")
    details = session.get("customer_details") or {}
    mode = session.get("mode")
    if mode not in ("payment", "subscription"):
        return Outcome("ignored", f"checkout mode {mode!r} sells nothing Portal delivers")
    if mode == "payment" and session.get("payment_status") not in ("paid", "no_payment_required"):
        return Outcome("ignored", "payment not completed yet (checkout.session.async_payment_succeeded follows)")
    lines = (session.get("line_items") or {}).get("data")
    if mode == "payment" and lines is None:
        raise NeedObject("checkout/sessions/line_items", session["id"])
    products: list[tuple[dict[str, Any], str]] = []
    for line in lines or []:
        if mode == "subscription":
            break
        product_id = await product_for_price(tx, ctx, line.get("price"))
        if product_id is None:
            return Outcome("unmapped", "no Portal product for this Stripe price", _id(line.get("price")))
        products.append((line, product_id))
    with _quiet(ctx):
        customer_id = await ensure_customer(
            tx,
            ctx,
            stripe_id=_id(session.get("customer")),
            email=details.get("email") or session.get("customer_email"),
            name=details.get("name"),
            address=details.get("address"),
            tax_ids=details.get("tax_ids"),
            created=session.get("created"),
            version=None,
        )
        if mode == "subscription":
            await set_link(tx, ctx, "checkout_session", session["id"], customer_id)
            return Outcome("applied")
        first_order: str | None = None
        for index, (line, product_id) in enumerate(products):
            order_id = await _paid_order(tx, ctx, session, line, product_id, customer_id, index, len(products))
            first_order = first_order or order_id
    if first_order is None:
        return Outcome("ignored", "the checkout session has no line items")
    await set_link(tx, ctx, "checkout_session", session["id"], first_order)
    payment_intent = _id(session.get("payment_intent"))
    if payment_intent:
        await set_link(tx, ctx, "payment_intent", payment_intent, first_order)
    return Outcome("applied")


async def _paid_order(
    tx: Transaction,
    ctx: ApplyContext,
    session: dict[str, Any],
    line: dict[str, Any],
    product_id: str,
    customer_id: str,
    index: int,
    count: int,
) -> str:
    currency = str(line.get("currency") or session.get("currency") or "").lower()
    quantity = int(line.get("quantity") or 1)
    subtotal = int(line.get("amount_subtotal") or 0)
    unit_price = (line.get("price") or {}).get("unit_amount")
    if unit_price is None or int(unit_price) * quantity != subtotal:  # e.g. tiers: one item of the whole subtotal
        unit_price, quantity = subtotal, 1
    price = await get_active_price(tx, product_id, currency)
    external_id = f"stripe:{session['id']}" if count == 1 else f"stripe:{session['id']}:{index}"
    when = _when(ctx, session.get("created"))
    order_id = await order_service.create_order(
        tx,
        ctx.connection.organization_id,
        OrderInput(
            customer_id=customer_id,
            currency=currency,
            product_id=product_id,
            items=[
                OrderItemInput(
                    label=str(line.get("description") or "Purchase"),
                    unit_amount=int(unit_price),
                    quantity=quantity,
                    tax_amount=int(line.get("amount_tax") or 0),
                    product_price_id=None if price is None else price["id"],
                )
            ],
            discount_amount=int(line.get("amount_discount") or 0),
            external_id=external_id,
            metadata={"stripe_checkout_session": session["id"]},
        ),
        now=when,
    )
    await order_service.mark_order_paid(tx, order_id, now=when)
    return order_id


# --- subscriptions -----------------------------------------------------------------------------------------------


def _first_item(subscription: dict[str, Any]) -> dict[str, Any]:
    items = (subscription.get("items") or {}).get("data") or []
    if not items:
        raise MappingError("the Stripe subscription has no items")
    return dict(items[0])


async def apply_subscription(tx: Transaction, ctx: ApplyContext, subscription: dict[str, Any]) -> Outcome:
    """A Stripe subscription's current status, period, cancellation and plan (its first item's price)."""
    link = await get_link(tx, ctx, "subscription", subscription["id"])
    version = version_of(ctx)
    if link is not None and version < int(link["version"]):
        return Outcome("ignored", "stale: a newer state of this subscription is applied")
    item = _first_item(subscription)
    price = item.get("price") or {}
    product_id = await product_for_price(tx, ctx, price)
    if product_id is None:
        return Outcome("unmapped", "no Portal product for this Stripe price", _id(price))
    customer_id = await _customer_of(tx, ctx, subscription.get("customer"))
    data = _subscription_input(subscription, item, price, customer_id, product_id)
    portal_price = await get_active_price(tx, product_id, data.currency)
    if portal_price is not None and portal_price["price_amount"] == data.amount:
        data.price_id = portal_price["id"]
    when = _when(ctx, subscription.get("created"))
    with _quiet(ctx):
        if link is None:
            portal_id = await subscription_service.create_subscription(
                tx, ctx.connection.organization_id, data, now=when
            )
        else:
            portal_id = str(link["portal_id"])
            if await subscription_differs(tx, portal_id, data):
                await subscription_service.update_subscription(tx, portal_id, data, now=ctx.now)
    await set_link(tx, ctx, "subscription", subscription["id"], portal_id, version)
    return Outcome("applied")


def _subscription_input(
    subscription: dict[str, Any], item: dict[str, Any], price: dict[str, Any], customer_id: str, product_id: str
) -> SubscriptionInput:
    status = STATUSES.get(str(subscription.get("status")))
    if status is None:
        raise MappingError(f"unknown Stripe subscription status {subscription.get('status')!r}")
    start = moment(item.get("current_period_start") or subscription.get("start_date"))
    end = moment(item.get("current_period_end"))
    if start is None:
        raise MappingError("the Stripe subscription has no period")
    if end is not None and end <= start:
        end = None
    cancel_at = moment(subscription.get("cancel_at"))
    cancel_at_period_end = bool(subscription.get("cancel_at_period_end")) or (
        cancel_at is not None and end is not None and cancel_at == end
    )
    ended_at = moment(subscription.get("ended_at"))
    canceled_at = moment(subscription.get("canceled_at"))
    if status == "canceled":
        cancel_at_period_end = False
        ended_at = ended_at or canceled_at or start
        canceled_at = canceled_at or ended_at
    else:
        ended_at = None
    if cancel_at_period_end and canceled_at is None:
        canceled_at = start
    trial_end = moment(subscription.get("trial_end"))
    if status == "trialing" and trial_end is None:
        trial_end = end
    unit = price.get("unit_amount")
    quantity = int(item.get("quantity") or 1)
    return SubscriptionInput(
        customer_id=customer_id,
        product_id=product_id,
        status=status,
        current_period_start=start,
        current_period_end=end,
        amount=None if unit is None else int(unit) * quantity,
        currency=str(subscription.get("currency") or price.get("currency") or "").lower() or None,
        trial_start=moment(subscription.get("trial_start")),
        trial_end=trial_end,
        cancel_at_period_end=cancel_at_period_end,
        canceled_at=canceled_at,
        started_at=moment(subscription.get("start_date")),
        ends_at=cancel_at if cancel_at_period_end else None,
        ended_at=ended_at,
        metadata={"stripe_subscription": subscription["id"]},
    )


async def subscription_differs(tx: Transaction, subscription_id: str, data: SubscriptionInput) -> bool:
    """Whether ``data`` changes what the subscription shows (unchanged: no write, no webhook)."""
    row = await subscription_service.get_subscription_row(tx, subscription_id)
    wanted = {
        "status": data.status,
        "product_id": data.product_id,
        "current_period_start": iso(data.current_period_start),
        "current_period_end": None if data.current_period_end is None else iso(data.current_period_end),
        "cancel_at_period_end": int(data.cancel_at_period_end),
        "amount": data.amount,
    }
    return any(row[key] != value for key, value in wanted.items() if value is not None or key == "status")


# --- invoices ----------------------------------------------------------------------------------------------------


def subscription_of_invoice(invoice: dict[str, Any]) -> str | None:
    """The subscription an invoice bills (API 2025-03-31 and later: ``parent.subscription_details``)."""
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") or {}
    found = _id(details.get("subscription"))
    if found is None:  # older shapes kept the id at the top level
        found = _id(invoice.get("subscription"))
    return found


def _line_price(line: dict[str, Any]) -> str | None:
    """The price of an invoice line (API 2025-03-31 and later: ``pricing.price_details.price``)."""
    details = (line.get("pricing") or {}).get("price_details") or {}
    return _id(details.get("price")) or _id(line.get("price"))


async def apply_invoice(
    tx: Transaction, ctx: ApplyContext, invoice: dict[str, Any], prices: Mapping[str, dict[str, Any]] | None = None
) -> Outcome:
    """A paid invoice of a subscription: one paid Portal order for it (``billing_reason`` from Stripe's:
    subscription_create, subscription_cycle, subscription_update), receipt email and ``order.paid``. The order's
    product is that of the invoice's (first charged) price at the time, not the subscription's current one: an
    invoice lines carry only price ids, so a price mapped by metadata is looked up in ``prices`` (price objects by
    id), else ``NeedObject("prices", id)``."""
    if invoice.get("status") != "paid":
        return Outcome("ignored", f"invoice is {invoice.get('status')}, not paid")
    if await get_link(tx, ctx, "invoice", invoice["id"]) is not None:
        return Outcome("ignored", "this invoice is already applied")
    stripe_subscription = subscription_of_invoice(invoice)
    if stripe_subscription is None:
        return Outcome("ignored", "not a subscription invoice (one-time sales arrive as checkout sessions)")
    subscription_id = await linked_id(tx, ctx, "subscription", stripe_subscription)
    if subscription_id is None:
        raise NeedObject("subscriptions", stripe_subscription)
    subscription = await subscription_service.get_subscription_row(tx, subscription_id)
    reason = BILLING_REASONS.get(str(invoice.get("billing_reason")), "subscription_cycle")
    items: list[OrderItemInput] = []
    credits = 0
    product_id: str | None = None
    for line in (invoice.get("lines") or {}).get("data") or []:
        amount = int(line.get("amount") or 0)
        parent = (line.get("parent") or {}).get("subscription_item_details") or {}
        if amount < 0:  # proration credits for unused time: a discount on the order (Portal items are >= 0)
            credits -= amount
            continue
        price_id = _line_price(line)
        if product_id is None and price_id is not None:
            product_id = await mapped_product(tx, ctx, price_id)
            if product_id is None:
                if price_id not in (prices or {}):
                    raise NeedObject("prices", price_id)
                product_id = await product_for_price(tx, ctx, (prices or {})[price_id])
                if product_id is None:
                    return Outcome("unmapped", "no Portal product for this Stripe price", price_id)
        quantity = int(line.get("quantity") or 1)
        exact = quantity > 0 and amount % quantity == 0
        items.append(
            OrderItemInput(
                label=str(line.get("description") or "Subscription"),
                unit_amount=amount // quantity if exact else amount,
                quantity=quantity if exact else 1,
                proration=bool(parent.get("proration")),
            )
        )
    if not items:
        items.append(OrderItemInput(label="Subscription", unit_amount=0))
    discounts = sum(int(d.get("amount") or 0) for d in invoice.get("total_discount_amounts") or [])
    taxes = sum(int(t.get("amount") or 0) for t in invoice.get("total_taxes") or [])
    subtotal = sum(item.unit_amount * item.quantity for item in items)
    when = _when(ctx, (invoice.get("status_transitions") or {}).get("paid_at") or invoice.get("created"))
    with _quiet(ctx):
        order_id = await order_service.create_order(
            tx,
            ctx.connection.organization_id,
            OrderInput(
                customer_id=subscription["customer_id"],
                currency=str(invoice.get("currency") or subscription["currency"]).lower(),
                product_id=product_id or subscription["product_id"],
                subscription_id=subscription_id,
                billing_reason=reason,
                items=items,
                discount_amount=min(subtotal, credits + discounts),
                tax_amount=taxes,
                external_id=f"stripe:{invoice['id']}",
                metadata={"stripe_invoice": invoice["id"]},
            ),
            now=_when(ctx, invoice.get("created")),
        )
        await order_service.mark_order_paid(tx, order_id, now=when)
    await set_link(tx, ctx, "invoice", invoice["id"], order_id)
    for payment in (invoice.get("payments") or {}).get("data") or []:
        details = payment.get("payment") or {}
        if _id(details.get("payment_intent")):
            await set_link(tx, ctx, "payment_intent", str(_id(details.get("payment_intent"))), order_id)
        if _id(details.get("charge")):
            await set_link(tx, ctx, "charge", str(_id(details.get("charge"))), order_id)
    return Outcome("applied")


async def apply_invoice_payment_failed(tx: Transaction, ctx: ApplyContext, invoice: dict[str, Any]) -> Outcome:
    """A subscription invoice's payment failed: the subscription becomes ``past_due`` (unless a newer state is
    applied or the invoice is paid meanwhile) and the customer gets an email with a link to fix their card."""
    stripe_subscription = subscription_of_invoice(invoice)
    if stripe_subscription is None:
        return Outcome("ignored", "not a subscription invoice")
    if await get_link(tx, ctx, "invoice", invoice["id"]) is not None:
        return Outcome("ignored", "this invoice is paid meanwhile")
    link = await get_link(tx, ctx, "subscription", stripe_subscription)
    if link is None:
        raise NeedObject("subscriptions", stripe_subscription)
    subscription_id = str(link["portal_id"])
    version = version_of(ctx)
    if version < int(link["version"]):
        return Outcome("ignored", "stale: a newer state of this subscription is applied")
    row = await subscription_service.get_subscription_row(tx, subscription_id)
    if row["status"] not in ("active", "trialing", "past_due"):
        return Outcome("ignored", f"the subscription is {row['status']}")
    with _quiet(ctx):
        if row["status"] != "past_due":
            data = subscription_service.input_from_row(row)
            data.status = "past_due"
            await subscription_service.update_subscription(tx, subscription_id, data, now=ctx.now)
        if not ctx.history:
            await emails.enqueue_payment_failed(
                tx,
                subscription_id,
                now=ctx.now,
                next_attempt=moment(invoice.get("next_payment_attempt")),
                dedupe_key=f"stripe-payment-failed:{invoice['id']}:{invoice.get('attempt_count') or 1}",
            )
    await set_link(tx, ctx, "subscription", stripe_subscription, subscription_id, version)
    return Outcome("applied")


# --- charges and refunds -----------------------------------------------------------------------------------------


async def apply_charge(
    tx: Transaction, ctx: ApplyContext, charge: dict[str, Any], payment: dict[str, Any] | None = None
) -> Outcome:
    """A charge's refunded amount (cumulative): Portal refunds what it had not yet, as a refund of the order (its
    email and ``order.refunded``); fully refunded, the order's benefits are revoked if the seller chose so.

    No order for the charge's payment yet: ``NeedObject("payments", payment_intent)``; the caller fetches what the
    payment paid for (``payment``: ``{"checkout_session": …, "invoice": …}``), applies it, and passes it here."""
    order_id = await linked_id(tx, ctx, "charge", charge.get("id"))
    payment_intent = _id(charge.get("payment_intent"))
    order_id = order_id or await linked_id(tx, ctx, "payment_intent", payment_intent)
    if order_id is None and payment is not None:  # what the payment paid for, fetched (and applied) by the caller
        paid_for = payment.get("invoice") or payment.get("checkout_session") or {}
        kind = "invoice" if payment.get("invoice") else "checkout_session"
        order_id = await linked_id(tx, ctx, kind, _id(paid_for))
        if order_id is not None and payment_intent is not None:
            await set_link(tx, ctx, "payment_intent", payment_intent, order_id)
    if order_id is None:
        if payment_intent is None or payment is not None:
            return Outcome("ignored", "no Portal order for this payment")
        # A refund may arrive before the sale it refunds (and an invoice's payment is not in its event): fetch what
        # the payment paid for, apply it first, and link the payment to its order.
        raise NeedObject("payments", payment_intent)
    order = await order_service.get_order_row(tx, order_id)
    if order["status"] not in ("paid", "partially_refunded"):
        return Outcome("ignored", f"the order is {order['status']}")
    remaining = int(order["total_amount"]) - int(order["refunded_amount"])
    wanted = int(charge.get("amount_refunded") or 0)
    if charge.get("refunded"):  # fully refunded in Stripe: all of what Portal had left
        wanted = max(wanted, int(order["total_amount"]))
    missing = min(wanted - int(order["refunded_amount"]), remaining)
    if missing <= 0:
        return Outcome("ignored", "no refund beyond what is applied")
    refunds = (charge.get("refunds") or {}).get("data") or []
    reason = next((r.get("reason") for r in refunds if r.get("reason")), None)
    with _quiet(ctx):
        await order_service.refund_order(
            tx,
            order_id,
            missing,
            now=_when(ctx, charge.get("created")),
            reason=reason,
            revoke_grants=ctx.connection.settings.revoke_on_full_refund,
        )
    await set_link(tx, ctx, "charge", charge["id"], order_id)
    return Outcome("applied")
