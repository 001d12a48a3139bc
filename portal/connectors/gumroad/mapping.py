"""Gumroad objects -> Portal rows: a sale (``GET /v2/sales/{id}``'s ``sale``) and a subscriber
(``GET /v2/subscribers/{id}``'s ``subscriber``), always as fetched from Gumroad's API (a ping is never trusted),
applied through the area services like an admin-API write; history (``portal import gumroad``) keeps Gumroad's
dates and sends no email and no webhook.

* A sale is a fact, created once (keyed by its id): the customer (matched by email), a paid order of the mapped
  product (``portal connect map --processor gumroad``: Gumroad's product id -> a Portal product; unmapped sales wait
  for the mapping), and its license key: Portal issues one for the product's license-keys benefit and it takes the
  key Gumroad sold (``adopt_license_key``; ``license_disabled`` -> disabled), so it keeps validating through Portal.
  A sale refunded in full (``refunded``) refunds the Portal order (its benefits revoked if the seller chose so); a
  ``partially_refunded`` one refunds it up to the amount Gumroad refunded (cumulative: a later, larger partial
  refund adds the difference).
* A subscriber's state (status, cancellation, period from ``created_at``, ``recurrence`` and
  ``charge_occurrence_count``) is always the one Gumroad's API answered when the ping arrived, so pings in any
  order end in Gumroad's current state; it is versioned by when it was fetched (a slower, older fetch never
  replaces a newer one).
  A sale of a subscription Portal has not seen raises ``NeedObject("subscribers", id)``."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from portal.benefits import license_keys
from portal.benefits.license_keys import add_interval
from portal.connectors.base import ApplyContext, MappingError, NeedObject, Outcome
from portal.connectors.links import get_link, linked_id, mapped_product, set_link
from portal.connectors.stripe.mapping import ensure_customer
from portal.db import Transaction
from portal.money import minor_unit_digits
from portal.notifications.mute import muted
from portal.orders import reads as order_reads
from portal.orders import service as order_service
from portal.orders.service import BillingReason, OrderInput, OrderItemInput
from portal.subscriptions import service as subscription_service
from portal.subscriptions.service import SubscriptionInput, SubscriptionStatus

# Gumroad's recurrence -> (interval, count).
RECURRENCES = {
    "monthly": ("month", 1),
    "quarterly": ("month", 3),
    "biannually": ("month", 6),
    "yearly": ("year", 1),
    "every_two_years": ("year", 2),
}
STATUSES: dict[str, SubscriptionStatus] = {
    "alive": "active",
    "pending_cancellation": "active",
    "pending_failure": "past_due",
    "failed_payment": "unpaid",
    "fixed_subscription_period_ended": "canceled",
    "cancelled": "canceled",
}


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def refunded_amount(sale: dict[str, Any], total: int) -> int:
    """How much of the sale Gumroad has refunded, in minor units (cumulative, at most ``total``): all of it when
    ``refunded`` or ``chargebacked``; for ``partially_refunded``, ``amount_refunded_in_cents`` when the sale carries
    it, else the price less ``amount_refundable_in_currency`` (Gumroad formats it without symbol and without cents
    when whole: "19", "19.50", "1,019.50")."""
    if _flag(sale.get("refunded")) or _flag(sale.get("chargebacked")):
        return total
    if not _flag(sale.get("partially_refunded")):
        return 0
    refunded: int | None = None
    given = sale.get("amount_refunded_in_cents")
    if isinstance(given, int) or (isinstance(given, str) and given.isdigit()):
        refunded = int(given)
    else:
        refundable = str(sale.get("amount_refundable_in_currency") or "").replace(",", "").strip()
        try:
            left = int(Decimal(refundable).scaleb(minor_unit_digits(str(sale.get("currency") or "usd"))))
        except (InvalidOperation, ValueError, OverflowError):
            return 0  # not a figure Portal can read: no refund rather than a wrong one
        refunded = int(sale.get("price") or 0) - left
    return max(0, min(refunded, total))


def _when(ctx: ApplyContext, value: Any) -> datetime:
    parsed = parse_time(value)
    return parsed if ctx.history and parsed is not None else ctx.now


class _Quiet:
    """History writes no email and calls no webhook."""

    def __init__(self, ctx: ApplyContext) -> None:
        self.mute = muted() if ctx.history else None

    def __enter__(self) -> None:
        if self.mute is not None:
            self.mute.__enter__()

    def __exit__(self, *exc: Any) -> None:
        if self.mute is not None:
            self.mute.__exit__(*exc)


async def _customer(tx: Transaction, ctx: ApplyContext, email: Any, name: Any, created: Any) -> str:
    if not isinstance(email, str) or not email:
        raise MappingError("the Gumroad sale has no buyer email")
    moment = parse_time(created)
    with _Quiet(ctx):
        return await ensure_customer(
            tx,
            ctx,
            stripe_id=None,
            email=email,
            name=name if isinstance(name, str) and name else None,
            address=None,
            tax_ids=None,
            created=None if moment is None else int(moment.timestamp()),
            version=None,
        )


# --- subscribers -------------------------------------------------------------------------------------------------


def _period(subscriber: dict[str, Any]) -> tuple[datetime, datetime | None]:
    created = parse_time(subscriber.get("created_at"))
    if created is None:
        raise MappingError("the Gumroad subscriber has no created_at")
    interval = RECURRENCES.get(str(subscriber.get("recurrence")))
    if interval is None:
        return created, None
    charges = max(int(subscriber.get("charge_occurrence_count") or 1), 1)
    start = add_interval(created, interval[0], interval[1] * (charges - 1))
    return start, add_interval(start, interval[0], interval[1])


async def apply_subscriber(tx: Transaction, ctx: ApplyContext, subscriber: dict[str, Any]) -> Outcome:
    """A Gumroad subscription's current status, cancellation and period."""
    link = await get_link(tx, ctx, "subscription", str(subscriber["id"]))
    # Always the state Gumroad's API answered just now (never the ping's): versioned by when it was fetched.
    version = int(ctx.now.timestamp())
    if link is not None and version < int(link["version"]):
        return Outcome("ignored", "stale: a newer state of this subscription is applied")
    product_id = await mapped_product(tx, ctx, str(subscriber.get("product_id")))
    if product_id is None:
        return Outcome("unmapped", "no Portal product for this Gumroad product", str(subscriber.get("product_id")))
    status = STATUSES.get(str(subscriber.get("status")))
    if status is None:
        raise MappingError(f"unknown Gumroad subscription status {subscriber.get('status')!r}")
    customer_id = await _customer(tx, ctx, subscriber.get("user_email"), None, subscriber.get("created_at"))
    start, end = _period(subscriber)
    cancel_at_period_end = subscriber.get("status") == "pending_cancellation"
    ended_at = (
        parse_time(subscriber.get("ended_at") or subscriber.get("cancelled_at")) if status == "canceled" else None
    )
    canceled_at = parse_time(subscriber.get("user_requested_cancellation_at") or subscriber.get("cancelled_at"))
    if status == "canceled":
        ended_at = ended_at or start
        canceled_at = canceled_at or ended_at
    elif not cancel_at_period_end:
        canceled_at = None
    elif canceled_at is None:  # Gumroad does not always say when the cancellation was asked for
        canceled_at = min(start, ctx.now)
    data = SubscriptionInput(
        customer_id=customer_id,
        product_id=product_id,
        status=status,
        current_period_start=start,
        current_period_end=end,
        cancel_at_period_end=cancel_at_period_end,
        canceled_at=canceled_at if cancel_at_period_end or status == "canceled" else None,
        started_at=parse_time(subscriber.get("created_at")),
        ends_at=end if cancel_at_period_end else None,
        ended_at=ended_at,
        metadata={"gumroad_subscription": str(subscriber["id"])},
    )
    with _Quiet(ctx):
        if link is None:
            portal_id = await subscription_service.create_subscription(
                tx, ctx.connection.organization_id, data, now=_when(ctx, subscriber.get("created_at"))
            )
        else:
            portal_id = str(link["portal_id"])
            row = await subscription_service.get_subscription_row(tx, portal_id)
            current = subscription_service.input_from_row(row)
            names = ("status", "product_id", "current_period_start", "current_period_end", "cancel_at_period_end")
            if any(getattr(current, name) != getattr(data, name) for name in names):
                await subscription_service.update_subscription(tx, portal_id, data, now=ctx.now)
    await set_link(tx, ctx, "subscription", str(subscriber["id"]), portal_id, version)
    return Outcome("applied")


# --- sales -------------------------------------------------------------------------------------------------------


async def apply_sale(tx: Transaction, ctx: ApplyContext, sale: dict[str, Any]) -> Outcome:
    """A Gumroad sale: created once (customer, paid order, license key), then refunded up to what Gumroad refunded
    (all of it, or a partial refund)."""
    sale_id = str(sale["id"])
    order_id = await linked_id(tx, ctx, "sale", sale_id)
    if order_id is None:
        product_id = await mapped_product(tx, ctx, str(sale.get("product_id")))
        if product_id is None:
            return Outcome("unmapped", "no Portal product for this Gumroad product", str(sale.get("product_id")))
        subscription_id: str | None = None
        gumroad_subscription = sale.get("subscription_id")
        if isinstance(gumroad_subscription, str) and gumroad_subscription:
            subscription_id = await linked_id(tx, ctx, "subscription", gumroad_subscription)
            if subscription_id is None:
                raise NeedObject("subscribers", gumroad_subscription)
        customer_id = await _customer(tx, ctx, sale.get("email"), sale.get("full_name"), sale.get("created_at"))
        price = max(int(sale.get("price") or 0), 0)
        quantity = max(int(sale.get("quantity") or 1), 1)
        unit, count = (price // quantity, quantity) if price % quantity == 0 else (price, 1)
        reason: BillingReason = "purchase"
        if subscription_id is not None:
            earlier = await order_reads.count_subscription_orders(tx, subscription_id)
            reason = "subscription_create" if earlier == 0 else "subscription_cycle"
        when = _when(ctx, sale.get("created_at"))
        with _Quiet(ctx):
            order_id = await order_service.create_order(
                tx,
                ctx.connection.organization_id,
                OrderInput(
                    customer_id=customer_id,
                    currency=str(sale.get("currency") or "usd").lower(),
                    product_id=product_id,
                    subscription_id=subscription_id,
                    billing_reason=reason,
                    items=[
                        OrderItemInput(
                            label=str(sale.get("product_name") or "Purchase")[:200], unit_amount=unit, quantity=count
                        )
                    ],
                    external_id=f"gumroad:{sale_id}",
                    metadata={"gumroad_sale": sale_id},
                ),
                now=when,
            )
            await order_service.mark_order_paid(tx, order_id, now=when)
        await set_link(tx, ctx, "sale", sale_id, order_id)
        await _license_key(tx, ctx, sale, order_id, subscription_id)
    elif sale.get("license_key"):
        await _license_key(tx, ctx, sale, order_id, None)
    row = await order_service.get_order_row(tx, order_id)
    missing = refunded_amount(sale, int(row["total_amount"])) - int(row["refunded_amount"])
    if row["status"] in ("paid", "partially_refunded") and missing > 0:
        with _Quiet(ctx):
            await order_service.refund_order(
                tx,
                order_id,
                missing,
                now=ctx.now,
                revoke_grants=ctx.connection.settings.revoke_on_full_refund,
            )
    return Outcome("applied")


async def _license_key(
    tx: Transaction, ctx: ApplyContext, sale: dict[str, Any], order_id: str, subscription_id: str | None
) -> None:
    """The key Gumroad sold with the sale, carried by the key Portal issued for the same sale."""
    key = sale.get("license_key")
    if not isinstance(key, str) or not key:
        return
    link_id = str(sale.get("license_id") or key)
    portal_key = await linked_id(tx, ctx, "license_key", link_id)
    if portal_key is None:
        candidates = await license_keys.grant_license_key_ids(tx, order_id=order_id, subscription_id=None)
        if subscription_id is not None:
            candidates += await license_keys.grant_license_key_ids(tx, order_id=None, subscription_id=subscription_id)
        for candidate in candidates:
            claimed = await tx.fetchval(
                "SELECT 1 FROM connector_links WHERE connection_id = ? AND kind = 'license_key' AND portal_id = ?",
                (ctx.connection.id, candidate),
            )
            if claimed is None:
                portal_key = candidate
                break
    if portal_key is None:
        return  # the mapped product has no license-keys benefit: nothing carries the key
    row = await license_keys.get_license_key_row(tx, portal_key)
    await license_keys.adopt_license_key(
        tx,
        portal_key,
        key=key,
        status="disabled" if _flag(sale.get("license_disabled")) else row["status"],
        usage=int(row["usage"]),
        limit_usage=row["limit_usage"],
        limit_activations=row["limit_activations"],
        validations=int(row["validations"]),
        last_validated_at=row["last_validated_at"],
        expires_at=row["expires_at"],
        now=ctx.now,
    )
    await set_link(tx, ctx, "license_key", link_id, portal_key)
