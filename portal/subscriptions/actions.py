"""What a customer may do to their own subscription — cancel at period end, resume (uncancel), change plan — and
the rules deciding when each is allowed. Shared by the HTML portal and the customer-portal JSON API: every
function takes the database and the caller's ``SessionContext``, re-reads the subscription inside the write
transaction scoped by organization AND customer, and appends an ``events`` row.

A subscription billed by a payment processor (``portal.subscriptions.remote``) is changed there first: the
processor is called before the write transaction (a network call never holds the writer), and Portal changes
only when it accepted; ``remote.ActionUnavailable`` / ``remote.ProcessorFailed`` otherwise, nothing written."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, get_args

import msgspec

from portal.benefits.grants import sync_subscription_grants
from portal.clock import iso, new_id
from portal.connectors.base import Action
from portal.db import Database, Transaction
from portal.errors import Conflict, DomainError, InvalidInput, NotFound
from portal.i18n import lazy_gettext as _l
from portal.notifications import hooks as notify
from portal.organizations.queries import Organization
from portal.scope import Scope
from portal.sessions.store import SessionContext
from portal.settings import Settings
from portal.subscriptions import remote
from portal.subscriptions import service as subscription_service
from portal.subscriptions.reads import Subscription, get_plan_option, get_subscription
from portal.subscriptions.service import CancellationReason

# Run inside an action's own write transaction (the seller console writes its audit entry there); it gets the
# name of the processor the action went through, or None for a subscription made in Portal.
AlsoInTransaction = Callable[[Transaction, str | None], Awaitable[None]]

CANCELLATION_REASONS: tuple[str, ...] = get_args(CancellationReason)

# Labels as Polar's portal words them, in its order; lazy, translated when shown (imported before any request).
CANCELLATION_REASON_LABELS: dict[str, Any] = {
    "unused": _l("Not using it enough"),
    "too_expensive": _l("Too expensive"),
    "missing_features": _l("Missing features"),
    "switched_service": _l("Switched to another service"),
    "customer_service": _l("Customer service"),
    "low_quality": _l("Not satisfied with the quality"),
    "too_complex": _l("Too complicated"),
    "other": _l("Other"),
}

MAX_COMMENT_LENGTH = 2000
CANCELABLE_STATUSES = frozenset({"trialing", "active", "past_due"})
PLAN_CHANGE_STATUSES = frozenset({"trialing", "active"})


class PlanChangeNotAllowed(DomainError):
    """The organization does not let customers change plans (Polar answers 403)."""


class CancelNotAllowed(DomainError):
    """The organization does not let customers cancel (``settings.customer_actions.cancel`` off; 403)."""


EVENT_INSERT = """
INSERT INTO events (id, organization_id, customer_id, name, subject_id, data, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""


def event_row(
    *,
    organization_id: str,
    customer_id: str | None,
    name: str,
    subject_id: str | None,
    now: datetime,
    data: dict[str, Any] | None,
) -> tuple[str, str, str | None, str, str | None, str, str]:
    """The ``EVENT_INSERT`` parameters of one audit event (its id first)."""
    return (
        new_id(),
        organization_id,
        customer_id,
        name,
        subject_id,
        msgspec.json.encode(data or {}).decode(),
        iso(now),
    )


async def record_event(
    tx: Transaction,
    *,
    organization_id: str,
    customer_id: str | None,
    name: str,
    subject_id: str | None,
    now: datetime,
    data: dict[str, Any] | None = None,
) -> str:
    """Append one row to the ``events`` audit table (inside the caller's write transaction)."""
    row = event_row(
        organization_id=organization_id, customer_id=customer_id, name=name, subject_id=subject_id, now=now, data=data
    )
    await tx.execute(EVENT_INSERT, row)
    return row[0]


# --- rules (pure: the pages use them to decide which buttons to show) -------------------------------------


def _not_over(subscription: Subscription, now: datetime) -> bool:
    end = subscription.current_period_end
    return subscription.ended_at is None and (end is None or end > iso(now))


def can_cancel(subscription: Subscription, now: datetime) -> bool:
    return (
        subscription.status in CANCELABLE_STATUSES
        and not subscription.cancel_at_period_end
        and _not_over(subscription, now)
    )


def can_uncancel(subscription: Subscription, now: datetime) -> bool:
    return (
        subscription.status in CANCELABLE_STATUSES
        and subscription.cancel_at_period_end
        and _not_over(subscription, now)
    )


def can_change_plan(organization: Organization, subscription: Subscription, now: datetime) -> bool:
    return (
        organization.allow_plan_change
        and subscription.status in PLAN_CHANGE_STATUSES
        and not subscription.cancel_at_period_end
        and _not_over(subscription, now)
    )


# --- actions ----------------------------------------------------------------------------------------------


async def _in_scope(tx: Database | Transaction, scope: Scope, subscription_id: str) -> Subscription:
    subscription = await get_subscription(tx, scope, subscription_id)
    if subscription is None:
        raise NotFound("subscription not found")
    return subscription


async def _own(tx: Database | Transaction, context: SessionContext, subscription_id: str) -> Subscription:
    return await _in_scope(tx, _customer_scope(context), subscription_id)


def _customer_scope(context: SessionContext) -> Scope:
    return Scope.of_customer(context.organization.id, context.customer.id)


def _clean_comment(comment: str | None) -> str | None:
    if comment is None or not comment.strip():
        return None
    if len(comment) > MAX_COMMENT_LENGTH:
        raise InvalidInput(f"at most {MAX_COMMENT_LENGTH} characters", "cancellation_comment")
    return comment.strip()


async def _push_first(db: Database, settings: Settings, subscription: Subscription, action: Action) -> str | None:
    """Send the action to the subscription's processor, if it has one; returns the processor's name (recorded
    on the event) or None for a subscription made in Portal."""
    source = await remote.source_of(db, subscription.organization_id, subscription.id)
    if source is None:
        return None
    await remote.push(db, settings, source, action, customer_id=subscription.customer_id)
    return source.connection.processor


async def cancel_subscription(
    db: Database,
    settings: Settings,
    context: SessionContext,
    subscription_id: str,
    *,
    now: datetime,
    reason: str | None = None,
    comment: str | None = None,
) -> None:
    """Cancel at the end of the current period; benefits stay until then. ``Conflict`` if already canceled,
    ``CancelNotAllowed`` when the seller switched customer cancellation off (checked before anything else; a
    seller's own cancel through ``cancel_in_scope`` is not a customer action and is not subject to it)."""
    if not context.organization.allow_cancel:
        raise CancelNotAllowed("Canceling subscriptions is not allowed by this seller.")
    await cancel_in_scope(
        db, settings, _customer_scope(context), subscription_id, now=now, reason=reason, comment=comment
    )


async def cancel_in_scope(
    db: Database,
    settings: Settings,
    scope: Scope,
    subscription_id: str,
    *,
    now: datetime,
    reason: str | None = None,
    comment: str | None = None,
    by_seller: bool = False,
    also: AlsoInTransaction | None = None,
) -> str | None:
    """``cancel_subscription`` for any scope: the customer's own (the portal) or the organization's (the seller
    console, ``by_seller``: recorded on the event). Through the subscription's processor first when it has one;
    ``also`` runs in the change's transaction. Returns the processor's name, or None."""
    if reason is not None and reason not in CANCELLATION_REASONS:
        raise InvalidInput("unknown cancellation reason", "cancellation_reason")
    comment = _clean_comment(comment)
    current = await _in_scope(db, scope, subscription_id)
    if not can_cancel(current, now):
        raise Conflict("this subscription is already canceled or has ended", "cancel_at_period_end")
    processor = await _push_first(db, settings, current, "cancel")
    async with db.write() as tx:
        subscription = await _in_scope(tx, scope, subscription_id)
        if not can_cancel(subscription, now):
            if processor is not None and subscription.cancel_at_period_end:
                # The processor's own event (webhook) already applied this very change.
                if also is not None:
                    await also(tx, processor)
                return processor
            raise Conflict("this subscription is already canceled or has ended", "cancel_at_period_end")
        before = await notify.subscription_snapshot(tx, subscription.id)
        await tx.execute(
            """
            UPDATE subscriptions SET
                cancel_at_period_end = 1,
                canceled_at = ?,
                ends_at = current_period_end,
                customer_cancellation_reason = ?,
                customer_cancellation_comment = ?,
                modified_at = ?
            WHERE id = ?
            """,
            (iso(now), reason, comment, iso(now), subscription.id),
        )
        await record_event(
            tx,
            organization_id=subscription.organization_id,
            customer_id=subscription.customer_id,
            name="subscription.canceled",
            subject_id=subscription.id,
            now=now,
            data={
                "reason": reason,
                "comment": comment,
                "ends_at": subscription.current_period_end,
                **({"processor": processor} if processor else {}),
                **({"by": "seller"} if by_seller else {}),
            },
        )
        await notify.subscription_changed(tx, before, now=now)
        if also is not None:
            await also(tx, processor)
    return processor


async def uncancel_subscription(
    db: Database, settings: Settings, context: SessionContext, subscription_id: str, *, now: datetime
) -> None:
    """Resume a subscription scheduled to cancel, before its period ends. ``Conflict`` otherwise."""
    await uncancel_in_scope(db, settings, _customer_scope(context), subscription_id, now=now)


async def uncancel_in_scope(
    db: Database,
    settings: Settings,
    scope: Scope,
    subscription_id: str,
    *,
    now: datetime,
    by_seller: bool = False,
    also: AlsoInTransaction | None = None,
) -> str | None:
    """``uncancel_subscription`` for any scope (see ``cancel_in_scope``). Returns the processor's name, or None."""
    current = await _in_scope(db, scope, subscription_id)
    if not can_uncancel(current, now):
        raise Conflict("this subscription is not scheduled to cancel", "cancel_at_period_end")
    processor = await _push_first(db, settings, current, "uncancel")
    async with db.write() as tx:
        subscription = await _in_scope(tx, scope, subscription_id)
        if not can_uncancel(subscription, now):
            if processor is not None and not subscription.cancel_at_period_end and subscription.ended_at is None:
                # The processor's own event (webhook) already applied this very change.
                if also is not None:
                    await also(tx, processor)
                return processor
            raise Conflict("this subscription is not scheduled to cancel", "cancel_at_period_end")
        before = await notify.subscription_snapshot(tx, subscription.id)
        await tx.execute(
            """
            UPDATE subscriptions SET
                cancel_at_period_end = 0,
                canceled_at = NULL,
                ends_at = NULL,
                customer_cancellation_reason = NULL,
                customer_cancellation_comment = NULL,
                modified_at = ?
            WHERE id = ?
            """,
            (iso(now), subscription.id),
        )
        data = {**({"processor": processor} if processor else {}), **({"by": "seller"} if by_seller else {})}
        await record_event(
            tx,
            organization_id=subscription.organization_id,
            customer_id=subscription.customer_id,
            name="subscription.uncanceled",
            subject_id=subscription.id,
            now=now,
            data=data or None,
        )
        await notify.subscription_changed(tx, before, now=now)
        if also is not None:
            await also(tx, processor)
    return processor


def can_end_now(subscription: Subscription) -> bool:
    """Whether a subscription may be ended at once (not already ended)."""
    return subscription.status != "canceled" and subscription.ended_at is None


async def end_now_in_scope(
    db: Database,
    scope: Scope,
    subscription_id: str,
    *,
    now: datetime,
    also: AlsoInTransaction | None = None,
) -> None:
    """End a subscription made in Portal at once (the seller console; the admin API's revoke does the same):
    status ``canceled``, its benefits revoked, ``subscription.canceled``/``.revoked`` sent. A subscription billed
    by a processor is refused (``ActionUnavailable``): no processor connector can end one at once, and ending it
    only here would leave the processor charging the customer."""
    current = await _in_scope(db, scope, subscription_id)
    source = await remote.source_of(db, current.organization_id, current.id)
    if source is not None:
        raise remote.ActionUnavailable(
            f"this subscription is billed by {source.label}: end it there, or cancel it at the period end here"
        )
    if not can_end_now(current):
        raise Conflict("subscription has already ended", "status")
    async with db.write() as tx:
        subscription = await _in_scope(tx, scope, subscription_id)
        await subscription_service.end_subscription(tx, subscription.id, now=now)
        await record_event(
            tx,
            organization_id=subscription.organization_id,
            customer_id=subscription.customer_id,
            name="subscription.revoked",
            subject_id=subscription.id,
            now=now,
            data={"by": "seller"},
        )
        if also is not None:
            await also(tx, None)


async def change_plan(
    db: Database, settings: Settings, context: SessionContext, subscription_id: str, product_id: str, *, now: datetime
) -> None:
    """Switch to another public recurring product of the same organization, priced in the same currency.

    The new product's benefits replace the old ones now; the new amount and interval apply from the next charge
    (no proration: the current period was paid at the old price). ``PlanChangeNotAllowed`` when the organization
    disables plan changes, ``NotFound`` for a product that is not a valid option (for a processor's
    subscription: also one without a mapped processor price), ``Conflict`` for a canceled subscription. Billed by
    a processor, the processor's proration applies there (the seller's setting)."""
    if not context.organization.allow_plan_change:
        raise PlanChangeNotAllowed("Changing plans is not allowed by this seller.")
    current = await _own(db, context, subscription_id)
    if not can_change_plan(context.organization, current, now):
        raise Conflict("only an active subscription that is not canceled can change plan", "status")
    source = await remote.source_of(db, context.organization.id, current.id)
    processor: str | None = None
    if source is not None:
        remote.require(source, "change_plan")
        valid = await get_plan_option(db, current, product_id)
        prices = await remote.plan_prices(db, source, [product_id]) or {}
        if valid is None or product_id not in prices:
            raise NotFound("product not found", "product_id")
        await remote.push(
            db, settings, source, "change_plan", customer_id=context.customer.id, processor_price_id=prices[product_id]
        )
        processor = source.connection.processor
    async with db.write() as tx:
        subscription = await _own(tx, context, subscription_id)
        if processor is not None and subscription.product_id == product_id:
            return  # the processor's own event (webhook) already applied this very change
        if not can_change_plan(context.organization, subscription, now):
            raise Conflict("only an active subscription that is not canceled can change plan", "status")
        option = await get_plan_option(tx, subscription, product_id)
        if option is None:
            raise NotFound("product not found", "product_id")
        before = await notify.subscription_snapshot(tx, subscription.id)
        await tx.execute(
            """
            UPDATE subscriptions SET
                product_id = ?,
                price_id = ?,
                amount = ?,
                recurring_interval = ?,
                recurring_interval_count = ?,
                modified_at = ?
            WHERE id = ?
            """,
            (
                option.product_id,
                option.price_id,
                option.amount,
                option.recurring_interval,
                option.recurring_interval_count,
                iso(now),
                subscription.id,
            ),
        )
        await sync_subscription_grants(tx, subscription.id, now=now)
        await record_event(
            tx,
            organization_id=subscription.organization_id,
            customer_id=subscription.customer_id,
            name="subscription.plan_changed",
            subject_id=subscription.id,
            now=now,
            data={
                "from_product_id": subscription.product_id,
                "to_product_id": option.product_id,
                "from_amount": subscription.amount,
                "to_amount": option.amount,
                "currency": subscription.currency,
                **({"processor": processor} if processor else {}),
            },
        )
        await notify.subscription_changed(tx, before, now=now)
