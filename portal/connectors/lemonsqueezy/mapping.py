"""Lemon Squeezy objects (JSON:API resources: ``{"type", "id", "attributes", "relationships"}``) -> Portal rows,
applied inside the caller's write transaction through the area services, exactly as the Stripe mapping does
(``portal.connectors.stripe.mapping``: the same customer matching, receipt numbers, benefit grants, emails and
outgoing webhooks; history mode keeps Lemon Squeezy's dates and sends nothing). Used by the webhook endpoint and by
``portal import lemonsqueezy``.

* ``apply_order``: an ``orders`` resource: a paid one-time purchase -> customer + paid Portal order; its cumulative
  ``refunded_amount`` -> refunds. An order for a variant mapped to a recurring Portal product is the first payment
  of a subscription: the subscription's invoices make its Portal orders, so the order itself is only linked.
* ``apply_subscription``: a ``subscriptions`` resource's status, period, cancellation and variant.
* ``apply_subscription_invoice``: a paid ``subscription-invoices`` resource -> the subscription's order
  (``billing_reason`` initial / renewal / updated); ``apply_payment_failed``: past due + the fix-your-card email.
* ``apply_license_key``: a ``license-keys`` resource: the Portal key its order's license-keys benefit issued takes
  the key string, status, activation limit and expiry Lemon Squeezy shipped (``adopt_license_key``), and the
  ``license-key-instances`` given become activations with the instance ids apps already hold.

Variants map to Portal products through ``connector_prices`` (the variant id is the "price"): an unmapped variant
answers ``unmapped`` and the event waits for the mapping.

Ordering: payloads carry no event id, but every resource has ``updated_at``; states (customers, subscriptions,
license keys) store it as their version in ``connector_links`` and an older state is skipped; facts (orders,
invoices) are applied once by id; refunds are cumulative. An invoice or key whose subscription or order Portal has
not seen raises ``NeedObject`` and the current resource is fetched and applied first.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Any

from portal.benefits import license_keys
from portal.connectors.base import ApplyContext, MappingError, NeedObject, Outcome
from portal.connectors.links import get_link, linked_id, mapped_product, set_link
from portal.connectors.stripe.mapping import ensure_customer, subscription_differs
from portal.db import Transaction
from portal.notifications import emails
from portal.notifications.mute import muted
from portal.orders import service as order_service
from portal.orders.service import BillingReason, OrderInput, OrderItemInput
from portal.products.service import get_active_price, get_product_row
from portal.subscriptions import service as subscription_service
from portal.subscriptions.service import SubscriptionInput, SubscriptionStatus

PAID = ("paid", "refunded", "partial_refund")
# What ``NeedObject`` asks for when an order's license keys are needed: ``GET /v1/license-keys?filter[order_id]=``.
ORDER_LICENSE_KEYS = "order_license_keys"
# Lemon Squeezy subscription status -> Portal's (Polar's). "cancelled" is LS's grace period: still active until
# ``ends_at``; "paused" withholds benefits as Stripe's does (shown ``unpaid``); "expired" has ended.
STATUSES: dict[str, SubscriptionStatus] = {
    "on_trial": "trialing",
    "active": "active",
    "cancelled": "active",
    "paused": "unpaid",
    "past_due": "past_due",
    "unpaid": "unpaid",
    "expired": "canceled",
}
BILLING_REASONS: dict[str, BillingReason] = {
    "initial": "subscription_create",
    "renewal": "subscription_cycle",
    "updated": "subscription_update",
}


# --- helpers -----------------------------------------------------------------------------------------------------


def moment(value: Any) -> datetime | None:
    """An ISO 8601 time as Lemon Squeezy writes them (``2021-08-11T13:47:28.000000Z``), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MappingError(f"not a time: {value!r}") from None


def stamp(value: Any) -> int:
    """``updated_at`` as Unix seconds (the version of a state); 0 without one."""
    found = moment(value)
    return 0 if found is None else int(found.timestamp())


def attributes(resource: dict[str, Any]) -> dict[str, Any]:
    found = resource.get("attributes")
    if not isinstance(found, dict) or resource.get("id") is None:
        raise MappingError("not a Lemon Squeezy resource (no id or attributes)")
    return found


def _when(ctx: ApplyContext, value: Any) -> datetime:
    """Lemon Squeezy's own time for history, now for live events."""
    found = moment(value) if ctx.history else None
    return found or ctx.now


def _quiet(ctx: ApplyContext) -> AbstractContextManager[None]:
    """History writes no email and calls no webhook."""
    return muted() if ctx.history else nullcontext()


async def _customer(tx: Transaction, ctx: ApplyContext, attrs: dict[str, Any]) -> str:
    email = attrs.get("user_email") or attrs.get("customer_email") or attrs.get("email")
    with _quiet(ctx):
        return await ensure_customer(
            tx,
            ctx,
            stripe_id=None if attrs.get("customer_id") is None else str(attrs["customer_id"]),
            email=str(email) if email else None,
            name=attrs.get("user_name") or attrs.get("customer_name") or attrs.get("name"),
            address=None,
            tax_ids=None,
            created=None if moment(attrs.get("created_at")) is None else stamp(attrs.get("created_at")),
            version=stamp(attrs.get("updated_at")),
        )


async def _refund_to(tx: Transaction, ctx: ApplyContext, order_id: str, attrs: dict[str, Any]) -> bool:
    """Bring the order's refunded amount up to Lemon Squeezy's cumulative figure; True if a refund was made."""
    order = await order_service.get_order_row(tx, order_id)
    if order["status"] not in ("paid", "partially_refunded"):
        return False
    total = int(order["total_amount"])
    wanted = int(attrs.get("refunded_amount") or 0)
    if attrs.get("status") == "refunded" or (attrs.get("refunded") and not wanted):
        wanted = total
    missing = min(wanted, total) - int(order["refunded_amount"])
    if missing <= 0:
        return False
    with _quiet(ctx):
        await order_service.refund_order(
            tx,
            order_id,
            missing,
            now=_when(ctx, attrs.get("refunded_at") or attrs.get("updated_at")),
            revoke_grants=ctx.connection.settings.revoke_on_full_refund,
        )
    return True


async def _recurring(tx: Transaction, product_id: str) -> tuple[str, int] | None:
    row = await get_product_row(tx, product_id)
    if row["recurring_interval"] is None:
        return None
    return str(row["recurring_interval"]), int(row["recurring_interval_count"] or 1)


# --- orders ------------------------------------------------------------------------------------------------------


async def apply_order(
    tx: Transaction, ctx: ApplyContext, order: dict[str, Any], shipped_keys: list[dict[str, Any]] | None = None
) -> Outcome:
    """A Lemon Squeezy order: once paid, the customer and one paid Portal order for its variant's product; then its
    refunded amount. Orders of subscriptions are linked only (their invoices make the Portal orders).

    Live, the license keys Lemon Squeezy made for the order (``shipped_keys``, fetched: ``NeedObject`` with kind
    ``order_license_keys``) are adopted in the same transaction, before the receipt is queued: the receipt shows
    the keys the customer already has from Lemon Squeezy, never a Portal key about to be replaced. (History sends
    no receipt; the import's license-keys stream adopts them.)"""
    attrs = attributes(order)
    ls_id = str(order["id"])
    link = await get_link(tx, ctx, "order", ls_id)
    if link is not None:
        if await _refund_to(tx, ctx, str(link["portal_id"]), attrs):
            return Outcome("applied")
        return Outcome("ignored", "this order is applied already, with no new refund")
    if attrs.get("status") not in PAID:
        return Outcome("ignored", f"the order is {attrs.get('status')}, not paid")
    item = attrs.get("first_order_item") or {}
    variant = item.get("variant_id")
    if variant is None:
        raise MappingError("the order has no first_order_item.variant_id")
    product_id = await mapped_product(tx, ctx, str(variant))
    if product_id is None:
        return Outcome("unmapped", "no Portal product for this Lemon Squeezy variant", str(variant))
    if await _recurring(tx, product_id) is not None:
        # Remembered (rolled back with the event if it fails): a key of this order belongs to its subscription.
        await set_link(tx, ctx, "order_seen", ls_id, product_id)
        return Outcome("ignored", "a subscription's first order: the subscription's invoices make its Portal orders")
    if shipped_keys is None and not ctx.history:
        raise NeedObject(ORDER_LICENSE_KEYS, ls_id)
    customer_id = await _customer(tx, ctx, attrs)
    currency = str(attrs.get("currency") or "").lower()
    price = await get_active_price(tx, product_id, currency)
    label = " – ".join(str(x) for x in (item.get("product_name"), item.get("variant_name")) if x and x != "Default")
    when = _when(ctx, attrs.get("created_at"))
    with _quiet(ctx):
        order_id = await order_service.create_order(
            tx,
            ctx.connection.organization_id,
            OrderInput(
                customer_id=customer_id,
                currency=currency,
                product_id=product_id,
                items=[
                    OrderItemInput(
                        label=label or "Purchase",
                        unit_amount=int(attrs.get("subtotal") or 0),
                        product_price_id=None if price is None else price["id"],
                    )
                ],
                discount_amount=min(int(attrs.get("discount_total") or 0), int(attrs.get("subtotal") or 0)),
                tax_amount=int(attrs.get("tax") or 0),
                external_id=f"lemonsqueezy:order:{ls_id}",
                metadata={"lemonsqueezy_order": ls_id},
            ),
            now=when,
        )
        await order_service.mark_order_paid(tx, order_id, now=when, send_receipt=False)
    await set_link(tx, ctx, "order", ls_id, order_id)
    if await license_keys.license_key_of(tx, order_id=order_id, subscription_id=None) is not None:
        for key in shipped_keys or []:  # (a product without a license-keys benefit keeps none)
            await apply_license_key(tx, ctx, key)
    if not ctx.history:
        await emails.enqueue_receipt(tx, order_id, now=when)
    await _refund_to(tx, ctx, order_id, attrs)
    return Outcome("applied")


# --- subscriptions -----------------------------------------------------------------------------------------------


async def apply_subscription(tx: Transaction, ctx: ApplyContext, subscription: dict[str, Any]) -> Outcome:
    """A subscription's current status, period end (``renews_at``, or ``ends_at`` once cancelled), cancellation
    and variant; an older ``updated_at`` than the state applied is skipped."""
    attrs = attributes(subscription)
    ls_id = str(subscription["id"])
    version = stamp(attrs.get("updated_at"))
    link = await get_link(tx, ctx, "subscription", ls_id)
    if link is not None and version < int(link["version"]):
        return Outcome("ignored", "stale: a newer state of this subscription is applied")
    variant = attrs.get("variant_id")
    product_id = None if variant is None else await mapped_product(tx, ctx, str(variant))
    if product_id is None:
        return Outcome("unmapped", "no Portal product for this Lemon Squeezy variant", str(variant))
    interval = await _recurring(tx, product_id)
    if interval is None:
        raise MappingError(f"variant {variant} is mapped to a one-time Portal product, not a subscription")
    status = STATUSES.get(str(attrs.get("status")))
    if status is None:
        raise MappingError(f"unknown Lemon Squeezy subscription status {attrs.get('status')!r}")
    customer_id = await _customer(tx, ctx, attrs)
    data = _subscription_input(attrs, status, interval, customer_id, product_id, ls_id)
    with _quiet(ctx):
        if link is None:
            portal_id = await subscription_service.create_subscription(
                tx, ctx.connection.organization_id, data, now=_when(ctx, attrs.get("created_at"))
            )
        else:
            portal_id = str(link["portal_id"])
            if await subscription_differs(tx, portal_id, data):
                await subscription_service.update_subscription(tx, portal_id, data, now=ctx.now)
    await set_link(tx, ctx, "subscription", ls_id, portal_id, version)
    if attrs.get("order_id") is not None:  # its license key names this order
        await set_link(tx, ctx, "subscription_order", str(attrs["order_id"]), portal_id)
    return Outcome("applied")


def _subscription_input(
    attrs: dict[str, Any],
    status: SubscriptionStatus,
    interval: tuple[str, int],
    customer_id: str,
    product_id: str,
    ls_id: str,
) -> SubscriptionInput:
    created = moment(attrs.get("created_at"))
    ls_status = attrs.get("status")
    cancelled = bool(attrs.get("cancelled")) or ls_status == "cancelled"
    ends_at = moment(attrs.get("ends_at"))
    end = moment(attrs.get("renews_at"))
    if cancelled and ends_at is not None:
        end = ends_at
    trial_end = moment(attrs.get("trial_ends_at"))
    # Lemon Squeezy gives the period's end only: its start is one billing interval before (never before creation).
    start = created
    if end is not None:
        start = license_keys.add_interval(end, interval[0], -interval[1])
        if created is not None and start < created:
            start = created
    if start is None:
        raise MappingError("the Lemon Squeezy subscription has no created_at")
    if end is not None and end <= start:
        end = None
    ended_at = None
    cancel_at_period_end = cancelled and status != "canceled"
    if status == "canceled":
        ended_at = ends_at or end or start
    return SubscriptionInput(
        customer_id=customer_id,
        product_id=product_id,
        status=status,
        current_period_start=start,
        current_period_end=end,
        trial_start=created if trial_end is not None else None,
        trial_end=trial_end,
        cancel_at_period_end=cancel_at_period_end,
        canceled_at=(moment(attrs.get("updated_at")) or start) if cancelled or ended_at else None,
        started_at=created,
        ends_at=end if cancel_at_period_end else None,
        ended_at=ended_at,
        metadata={"lemonsqueezy_subscription": ls_id},
    )


async def _subscription_of(tx: Transaction, ctx: ApplyContext, attrs: dict[str, Any]) -> tuple[str, str]:
    ls_subscription = attrs.get("subscription_id")
    if ls_subscription is None:
        raise MappingError("the invoice names no subscription_id")
    portal_id = await linked_id(tx, ctx, "subscription", str(ls_subscription))
    if portal_id is None:
        raise NeedObject("subscriptions", str(ls_subscription))
    return str(ls_subscription), portal_id


async def apply_subscription_invoice(tx: Transaction, ctx: ApplyContext, invoice: dict[str, Any]) -> Outcome:
    """A paid subscription invoice: one paid Portal order of the subscription (receipt, ``order.paid``), then its
    cumulative refunds."""
    attrs = attributes(invoice)
    ls_id = str(invoice["id"])
    link = await get_link(tx, ctx, "invoice", ls_id)
    if link is not None:
        if await _refund_to(tx, ctx, str(link["portal_id"]), attrs):
            return Outcome("applied")
        return Outcome("ignored", "this invoice is applied already, with no new refund")
    if attrs.get("status") not in PAID:
        return Outcome("ignored", f"the invoice is {attrs.get('status')}, not paid")
    _ls_subscription, subscription_id = await _subscription_of(tx, ctx, attrs)
    subscription = await subscription_service.get_subscription_row(tx, subscription_id)
    subtotal = int(attrs.get("subtotal") or 0)
    with _quiet(ctx):
        order_id = await order_service.create_order(
            tx,
            ctx.connection.organization_id,
            OrderInput(
                customer_id=subscription["customer_id"],
                currency=str(attrs.get("currency") or subscription["currency"]).lower(),
                product_id=subscription["product_id"],
                subscription_id=subscription_id,
                billing_reason=BILLING_REASONS.get(str(attrs.get("billing_reason")), "subscription_cycle"),
                items=[OrderItemInput(label="Subscription", unit_amount=subtotal)],
                discount_amount=min(int(attrs.get("discount_total") or 0), subtotal),
                tax_amount=int(attrs.get("tax") or 0),
                external_id=f"lemonsqueezy:invoice:{ls_id}",
                metadata={"lemonsqueezy_subscription_invoice": ls_id},
            ),
            now=_when(ctx, attrs.get("created_at")),
        )
        await order_service.mark_order_paid(tx, order_id, now=_when(ctx, attrs.get("created_at")))
    await set_link(tx, ctx, "invoice", ls_id, order_id)
    await _refund_to(tx, ctx, order_id, attrs)
    return Outcome("applied")


async def apply_payment_failed(tx: Transaction, ctx: ApplyContext, invoice: dict[str, Any]) -> Outcome:
    """A renewal's payment failed: the subscription becomes ``past_due`` (unless a newer state is applied) and the
    customer gets the email with a link to fix their card (once per invoice)."""
    attrs = attributes(invoice)
    if await get_link(tx, ctx, "invoice", str(invoice["id"])) is not None:
        return Outcome("ignored", "this invoice is paid meanwhile")
    ls_subscription, subscription_id = await _subscription_of(tx, ctx, attrs)
    link = await get_link(tx, ctx, "subscription", ls_subscription)
    version = stamp(attrs.get("updated_at"))
    if link is not None and version < int(link["version"]):
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
                tx, subscription_id, now=ctx.now, dedupe_key=f"lemonsqueezy-payment-failed:{invoice['id']}"
            )
    await set_link(tx, ctx, "subscription", ls_subscription, subscription_id, version)
    return Outcome("applied")


# --- license keys ------------------------------------------------------------------------------------------------

KEY_STATUSES = {"inactive": "granted", "active": "granted", "expired": "granted", "disabled": "disabled"}


async def apply_license_key(
    tx: Transaction, ctx: ApplyContext, key: dict[str, Any], instances: list[dict[str, Any]] | None = None
) -> Outcome:
    """A license key shipped by Lemon Squeezy: the Portal key of its order (or of the subscription that order
    started) takes its string, status, limit and expiry; ``instances`` become activations under their own ids."""
    attrs = attributes(key)
    ls_id = str(key["id"])
    version = stamp(attrs.get("updated_at"))
    link = await get_link(tx, ctx, "license_key", ls_id)
    if link is not None and version < int(link["version"]):
        return Outcome("ignored", "stale: a newer state of this license key is applied")
    portal_key = None if link is None else str(link["portal_id"])
    if portal_key is None:
        portal_key = await _issued_key(tx, ctx, attrs)
    value = attrs.get("key")
    if not isinstance(value, str) or not value.strip():
        raise MappingError("the license key has no key")
    status = KEY_STATUSES.get(str(attrs.get("status")), "granted")
    if attrs.get("disabled"):
        status = "disabled"
    limit = attrs.get("activation_limit")
    await license_keys.adopt_license_key(
        tx,
        portal_key,
        key=value.strip(),
        status=status,
        limit_activations=None if limit is None else int(limit),
        expires_at=moment(attrs.get("expires_at")),
        now=ctx.now,
    )
    for instance in instances or []:
        details = instance.get("attributes") or {}
        identifier = details.get("identifier") or instance.get("id")
        if identifier is None:
            continue
        await license_keys.import_activation(
            tx,
            portal_key,
            activation_id=str(identifier),
            label=str(details.get("name") or identifier),
            created_at=moment(details.get("created_at")) or ctx.now,
        )
    await set_link(tx, ctx, "license_key", ls_id, portal_key, version)
    return Outcome("applied")


async def _issued_key(tx: Transaction, ctx: ApplyContext, attrs: dict[str, Any]) -> str:
    """The Portal key issued for the key's order: that order's grant, else the grant of the subscription the
    order started. ``NeedObject`` when Portal has seen neither yet."""
    ls_order = attrs.get("order_id")
    if ls_order is None:
        raise MappingError("the license key names no order_id")
    order_id = await linked_id(tx, ctx, "order", str(ls_order))
    subscription_id = await linked_id(tx, ctx, "subscription_order", str(ls_order))
    if order_id is None and subscription_id is None:
        order = await get_link(tx, ctx, "order_seen", str(ls_order))
        if order is None:
            raise NeedObject("orders", str(ls_order))
        raise NeedObject("order_subscription", str(ls_order))
    found = await license_keys.license_key_of(tx, order_id=order_id, subscription_id=subscription_id)
    if found is None:
        raise MappingError(
            f"the Portal product of Lemon Squeezy order {ls_order} has no license-keys benefit: add one to the "
            "product, then replay this event (portal events replay ID --processor lemonsqueezy)"
        )
    return found


async def apply_customer(tx: Transaction, ctx: ApplyContext, customer: dict[str, Any]) -> Outcome:
    """A ``customers`` resource (import): the Portal customer by link, then email, else created."""
    attrs = attributes(customer)
    if not attrs.get("email"):
        return Outcome("ignored", "a Lemon Squeezy customer without an email address")
    link = await get_link(tx, ctx, "customer", str(customer["id"]))
    if link is not None and stamp(attrs.get("updated_at")) < int(link["version"]):
        return Outcome("ignored", "stale: a newer state of this customer is applied")
    await _customer(tx, ctx, {**attrs, "customer_id": customer["id"], "user_email": attrs["email"]})
    return Outcome("applied")
