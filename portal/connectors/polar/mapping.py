"""Polar objects -> Portal rows, in Polar's own shapes (``Customer``, ``Order``, ``Subscription``,
``LicenseKeyWithActivations``; Portal's admin API answers the same shapes). Each function applies the object's
current state inside the caller's write transaction through the area services, so that everything downstream
(benefit grants, receipt numbers, emails, outgoing webhooks) is what an admin-API write does; history
(``ApplyContext.history``, ``portal import polar``) keeps Polar's dates and sends no email and no webhook.

Ordering: Polar's objects carry ``modified_at``; a customer's or a subscription's state is versioned by it
(``connector_links.version``, seconds) and an older state than the one applied is skipped. Orders are facts,
created once (keyed by Polar's order id); their refunds are cumulative (``refunded_amount`` only grows). An order
of a subscription Portal has not seen raises ``NeedObject("subscriptions", id)``; a license key of an order not
applied yet raises ``NeedObject("orders", id)``: the caller fetches it from Polar's API and applies it first.

Products: a Polar product maps to a Portal product through the connection's mapping (``portal connect map
--processor polar``; ``connector_prices`` holds the Polar product id), else the product's metadata
``portal_product_id``. An unmapped product answers ``Outcome("unmapped")``: the event waits for the mapping.

License keys: Portal issues a key for each license-keys benefit of the mapped product, as for any order; the key
Polar shipped then replaces it (``adopt_license_key``: the same string, status, usage, limits, expiry and
activations), so customers' keys keep validating through Portal.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from portal.benefits import license_keys
from portal.connectors.base import ApplyContext, MappingError, NeedObject, Outcome
from portal.connectors.links import get_link, linked_id, mapped_product, set_link
from portal.connectors.stripe.mapping import ensure_customer
from portal.db import Transaction
from portal.notifications.mute import muted
from portal.orders import service as order_service
from portal.orders.service import BillingReason, OrderInput, OrderItemInput
from portal.products.service import get_active_price
from portal.references import owner_of
from portal.subscriptions import service as subscription_service
from portal.subscriptions.service import SubscriptionInput, SubscriptionStatus

PRODUCT_METADATA_KEY = "portal_product_id"
STATUSES: dict[str, SubscriptionStatus] = {
    status: status
    for status in ("incomplete", "incomplete_expired", "trialing", "active", "past_due", "canceled", "unpaid")
}
BILLING_REASONS: frozenset[str] = frozenset(
    {"purchase", "subscription_create", "subscription_cycle", "subscription_update"}
)
PAID = ("paid", "refunded", "partially_refunded")


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _stamp(value: Any) -> int | None:
    parsed = parse_time(value)
    return None if parsed is None else int(parsed.timestamp())


def object_version(obj: dict[str, Any]) -> int:
    """The version of a Polar object's state: its ``modified_at`` (else ``created_at``), in seconds."""
    return _stamp(obj.get("modified_at")) or _stamp(obj.get("created_at")) or 0


def _when(ctx: ApplyContext, value: Any) -> datetime:
    """Polar's date for history; now for live events."""
    parsed = parse_time(value)
    return parsed if ctx.history and parsed is not None else ctx.now


def _iso(value: Any) -> str | None:
    parsed = parse_time(value)
    return None if parsed is None else parsed.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def product_for(tx: Transaction, ctx: ApplyContext, product_id: Any, product: Any) -> str | None:
    """The Portal product of a Polar product (mapping, then metadata ``portal_product_id``), or None."""
    if not isinstance(product_id, str):
        return None
    mapped = await mapped_product(tx, ctx, product_id)
    if mapped is not None:
        return mapped
    candidate = ((product or {}).get("metadata") or {}).get(PRODUCT_METADATA_KEY) if isinstance(product, dict) else None
    if isinstance(candidate, str) and await owner_of(tx, "product", candidate) == ctx.connection.organization_id:
        return candidate
    return None


# --- customers ---------------------------------------------------------------------------------------------------


def _tax_ids(raw: Any) -> list[dict[str, str]] | None:
    """Polar's ``tax_id`` is ``[value, type]``."""
    if isinstance(raw, list) and raw and isinstance(raw[0], str):
        return [{"value": raw[0]}]
    return None


async def customer_id_of(tx: Transaction, ctx: ApplyContext, customer: Any, *, state: bool) -> str:
    """The Portal customer of a Polar ``Customer`` (by link, then email; created if new); ``state``: also bring
    its details up to date (unless an newer state is applied)."""
    if not isinstance(customer, dict) or not isinstance(customer.get("id"), str):
        raise MappingError("the Polar object carries no customer")
    with muted() if ctx.history else _nothing():
        return await ensure_customer(
            tx,
            ctx,
            stripe_id=customer["id"],
            email=customer.get("email"),
            name=customer.get("name"),
            address=customer.get("billing_address"),
            tax_ids=_tax_ids(customer.get("tax_id")),
            created=_stamp(customer.get("created_at")),
            version=object_version(customer) if state else None,
        )


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


async def apply_customer(tx: Transaction, ctx: ApplyContext, customer: dict[str, Any], event_type: str = "") -> Outcome:
    """``customer.created/updated`` (and the import): email, name, address, tax id; ``customer.deleted`` keeps the
    Portal customer and their orders (the seller's records)."""
    if event_type == "customer.deleted" or customer.get("deleted_at"):
        return Outcome("ignored", "a deleted Polar customer: the Portal customer and their orders are kept")
    link = await get_link(tx, ctx, "customer", customer["id"])
    if link is None and not customer.get("email"):
        return Outcome("ignored", "a Polar customer without an email address")
    if link is not None and object_version(customer) < int(link["version"]):
        return Outcome("ignored", "stale: a newer state of this customer is applied")
    await customer_id_of(tx, ctx, customer, state=True)
    return Outcome("applied")


# --- subscriptions -----------------------------------------------------------------------------------------------


def _subscription_input(subscription: dict[str, Any], customer_id: str, product_id: str) -> SubscriptionInput:
    status = STATUSES.get(str(subscription.get("status")))
    if status is None:
        raise MappingError(f"unknown Polar subscription status {subscription.get('status')!r}")
    start = parse_time(subscription.get("current_period_start"))
    if start is None:
        raise MappingError("the Polar subscription has no current_period_start")
    end = parse_time(subscription.get("current_period_end"))
    if end is not None and end <= start:
        end = None
    cancel_at_period_end = bool(subscription.get("cancel_at_period_end"))
    canceled_at = parse_time(subscription.get("canceled_at"))
    ended_at = parse_time(subscription.get("ended_at"))
    if status == "canceled":
        cancel_at_period_end = False
        ended_at = ended_at or canceled_at or start
        canceled_at = canceled_at or ended_at
    else:
        ended_at = None
    if cancel_at_period_end and canceled_at is None:
        canceled_at = start
    amount = subscription.get("amount")
    return SubscriptionInput(
        customer_id=customer_id,
        product_id=product_id,
        status=status,
        current_period_start=start,
        current_period_end=end,
        amount=amount if isinstance(amount, int) else None,
        currency=str(subscription.get("currency") or "").lower() or None,
        trial_start=parse_time(subscription.get("trial_start")),
        trial_end=parse_time(subscription.get("trial_end")),
        cancel_at_period_end=cancel_at_period_end,
        canceled_at=canceled_at,
        started_at=parse_time(subscription.get("started_at")),
        ends_at=parse_time(subscription.get("ends_at")) if cancel_at_period_end else None,
        ended_at=ended_at,
        metadata={"polar_subscription": subscription["id"]},
    )


async def apply_subscription(tx: Transaction, ctx: ApplyContext, subscription: dict[str, Any]) -> Outcome:
    """A Polar subscription's current status, period, cancellation and product."""
    link = await get_link(tx, ctx, "subscription", subscription["id"])
    version = object_version(subscription)
    if link is not None and version < int(link["version"]):
        return Outcome("ignored", "stale: a newer state of this subscription is applied")
    product_id = await product_for(tx, ctx, subscription.get("product_id"), subscription.get("product"))
    if product_id is None:
        return Outcome("unmapped", "no Portal product for this Polar product", subscription.get("product_id"))
    customer_id = await customer_id_of(tx, ctx, subscription.get("customer"), state=False)
    data = _subscription_input(subscription, customer_id, product_id)
    price = await get_active_price(tx, product_id, data.currency or "")
    if price is not None and price["price_amount"] == data.amount:
        data.price_id = price["id"]
    with muted() if ctx.history else _nothing():
        if link is None:
            portal_id = await subscription_service.create_subscription(
                tx, ctx.connection.organization_id, data, now=_when(ctx, subscription.get("created_at"))
            )
        else:
            portal_id = str(link["portal_id"])
            if await _subscription_differs(tx, portal_id, data):
                await subscription_service.update_subscription(tx, portal_id, data, now=ctx.now)
    await set_link(tx, ctx, "subscription", subscription["id"], portal_id, version)
    return Outcome("applied")


async def _subscription_differs(tx: Transaction, subscription_id: str, data: SubscriptionInput) -> bool:
    row = await subscription_service.get_subscription_row(tx, subscription_id)
    current = subscription_service.input_from_row(row)
    fields: tuple[str, ...] = (
        "status",
        "product_id",
        "current_period_start",
        "current_period_end",
        "cancel_at_period_end",
        "amount",
        "ended_at",
    )
    return any(getattr(current, name) != getattr(data, name) for name in fields if getattr(data, name) is not None)


# --- orders ------------------------------------------------------------------------------------------------------


def _items(order: dict[str, Any]) -> list[OrderItemInput]:
    items: list[OrderItemInput] = []
    for item in order.get("items") or []:
        if not isinstance(item, dict):
            continue
        amount = int(item.get("amount") or 0)
        quantity = int(item.get("quantity") or 1)
        unit = item.get("unit_amount")
        if not isinstance(unit, int) or unit * quantity != amount:
            unit, quantity = amount, 1
        items.append(
            OrderItemInput(
                label=str(item.get("label") or "Purchase")[:500],
                unit_amount=max(unit, 0),
                quantity=max(quantity, 1),
                tax_amount=max(int(item.get("tax_amount") or 0), 0),
                proration=bool(item.get("proration")),
            )
        )
    if not items:
        items.append(OrderItemInput(label="Purchase", unit_amount=max(int(order.get("subtotal_amount") or 0), 0)))
    return items


async def apply_order(tx: Transaction, ctx: ApplyContext, order: dict[str, Any]) -> Outcome:
    """A Polar order: created once when paid (customer, paid order, benefits, receipt), then its refunded amount
    (cumulative: Portal refunds what it had not yet)."""
    order_id = await linked_id(tx, ctx, "order", order["id"])
    if order_id is None:
        if order.get("status") not in PAID:
            return Outcome("ignored", f"the Polar order is {order.get('status')}, not paid")
        product_id = await product_for(tx, ctx, order.get("product_id"), order.get("product"))
        if product_id is None:
            return Outcome("unmapped", "no Portal product for this Polar product", order.get("product_id"))
        subscription_id: str | None = None
        polar_subscription = order.get("subscription_id")
        if isinstance(polar_subscription, str):
            subscription_id = await linked_id(tx, ctx, "subscription", polar_subscription)
            if subscription_id is None:
                raise NeedObject("subscriptions", polar_subscription)
        customer_id = await customer_id_of(tx, ctx, order.get("customer"), state=False)
        reason = str(order.get("billing_reason") or "purchase")
        billing_reason: BillingReason = reason if reason in BILLING_REASONS else "purchase"  # type: ignore[assignment]
        if subscription_id is None:
            billing_reason = "purchase"
        elif billing_reason == "purchase":
            billing_reason = "subscription_cycle"
        items = _items(order)
        subtotal = sum(item.unit_amount * item.quantity for item in items)
        when = _when(ctx, order.get("created_at"))
        with muted() if ctx.history else _nothing():
            order_id = await order_service.create_order(
                tx,
                ctx.connection.organization_id,
                OrderInput(
                    customer_id=customer_id,
                    currency=str(order.get("currency") or "usd").lower(),
                    product_id=product_id,
                    subscription_id=subscription_id,
                    billing_reason=billing_reason,
                    items=items,
                    discount_amount=min(max(int(order.get("discount_amount") or 0), 0), subtotal),
                    tax_amount=max(int(order.get("tax_amount") or 0), 0),
                    external_id=f"polar:{order['id']}",
                    metadata={"polar_order": order["id"]},
                ),
                now=when,
            )
            await order_service.mark_order_paid(
                tx, order_id, now=_when(ctx, order.get("paid_at") or order.get("created_at"))
            )
        await set_link(tx, ctx, "order", order["id"], order_id)
    await _refunds(tx, ctx, order, order_id)
    return Outcome("applied")


async def _refunds(tx: Transaction, ctx: ApplyContext, order: dict[str, Any], order_id: str) -> None:
    row = await order_service.get_order_row(tx, order_id)
    if row["status"] not in ("paid", "partially_refunded"):
        return
    wanted = int(order.get("refunded_amount") or 0)
    if order.get("status") == "refunded":
        wanted = max(wanted, int(row["total_amount"]))
    missing = min(wanted - int(row["refunded_amount"]), int(row["total_amount"]) - int(row["refunded_amount"]))
    if missing <= 0:
        return
    with muted() if ctx.history else _nothing():
        await order_service.refund_order(
            tx,
            order_id,
            missing,
            now=_when(ctx, order.get("modified_at")),
            revoke_grants=ctx.connection.settings.revoke_on_full_refund,
        )


# --- license keys ------------------------------------------------------------------------------------------------


async def apply_license_key(
    tx: Transaction,
    ctx: ApplyContext,
    key: dict[str, Any],
    *,
    order_id: str | None = None,
    subscription_id: str | None = None,
) -> Outcome:
    """A Polar license key (``LicenseKeyWithActivations``) carried by the Portal key of the same sale: the key
    Portal issued for the order's (or subscription's) license-keys benefit takes Polar's string, status, usage,
    limits, expiry and activations. ``order_id``/``subscription_id``: Polar's, from the grant (else the key's)."""
    if not isinstance(key.get("key"), str) or not key["key"]:
        raise MappingError("the Polar license key has no key")
    portal_key = await linked_id(tx, ctx, "license_key", key["id"])
    if portal_key is None:
        portal_key = await _unclaimed_key(
            tx, ctx, key, order_id or key.get("order_id"), subscription_id or key.get("subscription_id")
        )
        if portal_key is None:
            return Outcome(
                "ignored", "no Portal license key to carry it: give the mapped product a license-keys benefit"
            )
    await license_keys.adopt_license_key(
        tx,
        portal_key,
        key=key["key"],
        status=str(key.get("status") or "granted"),
        usage=max(int(key.get("usage") or 0), 0),
        limit_usage=key.get("limit_usage") if isinstance(key.get("limit_usage"), int) else None,
        limit_activations=key.get("limit_activations") if isinstance(key.get("limit_activations"), int) else None,
        validations=max(int(key.get("validations") or 0), 0),
        last_validated_at=_iso(key.get("last_validated_at")),
        expires_at=_iso(key.get("expires_at")),
        now=ctx.now,
    )
    await set_link(tx, ctx, "license_key", key["id"], portal_key, object_version(key))
    for activation in key.get("activations") or []:
        if not isinstance(activation, dict) or not isinstance(activation.get("id"), str):
            continue
        if await linked_id(tx, ctx, "license_key_activation", activation["id"]) is not None:
            continue
        raw_meta = activation.get("meta")
        meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
        made = await license_keys.adopt_activation(
            tx,
            portal_key,
            label=str(activation.get("label") or "activation")[:200],
            meta=meta,
            created_at=_iso(activation.get("created_at")) or _iso(ctx.now.isoformat()) or "",
        )
        await set_link(tx, ctx, "license_key_activation", activation["id"], made)
    return Outcome("applied")


async def _unclaimed_key(
    tx: Transaction, ctx: ApplyContext, key: dict[str, Any], polar_order: Any, polar_subscription: Any
) -> str | None:
    """The first key Portal issued for the same sale (or, without one named, the same customer) that carries no
    Polar key yet."""
    if isinstance(polar_subscription, str):
        subscription_id = await linked_id(tx, ctx, "subscription", polar_subscription)
        if subscription_id is None:
            raise NeedObject("subscriptions", polar_subscription)
        candidates = await license_keys.grant_license_key_ids(tx, order_id=None, subscription_id=subscription_id)
    elif isinstance(polar_order, str):
        order_id = await linked_id(tx, ctx, "order", polar_order)
        if order_id is None:
            raise NeedObject("orders", polar_order)
        candidates = await license_keys.grant_license_key_ids(tx, order_id=order_id, subscription_id=None)
    else:
        customer_id = await linked_id(tx, ctx, "customer", key.get("customer_id"))
        if customer_id is None:
            customer = key.get("customer")
            if not isinstance(customer, dict):
                return None
            customer_id = await customer_id_of(tx, ctx, customer, state=False)
        candidates = await license_keys.customer_license_key_ids(tx, customer_id)
    for candidate in candidates:
        claimed = await tx.fetchval(
            "SELECT 1 FROM connector_links WHERE connection_id = ? AND kind = 'license_key' AND portal_id = ?",
            (ctx.connection.id, candidate),
        )
        if claimed is None:
            return candidate
    return None
