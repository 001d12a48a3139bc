"""What domain services call, inside their write transaction, after a change customers or the seller's app
should hear about. Each hook queues the webhook events (Polar's names) and the customer email for the change;
both commit or roll back with it. Muted (``portal.notifications.mute``) while seeding.

* ``order_paid``: ``order.paid`` + the receipt email (license keys, downloads);
* ``order_refunded``: ``order.refunded`` + the refund email;
* ``subscription_snapshot`` before a subscription change, ``subscription_changed`` after it:
  ``subscription.updated`` always, and ``subscription.canceled`` / ``.uncanceled`` / ``.revoked`` / ``.active``
  on those transitions, with the canceled / resumed / plan-changed emails;
* ``grant_created`` / ``grant_restored`` / ``grant_revoked``: ``benefit_grant.created|updated|revoked``;
* ``customer_updated``: ``customer.updated``;
* ``license_key_activated`` / ``license_key_deactivated`` (call the latter before deleting the activation).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from portal.benefits import reads as benefit_reads
from portal.customers.reads import get_customer_record
from portal.db import Transaction, row_dict
from portal.notifications import emails
from portal.notifications.mute import is_muted
from portal.orders.reads import order_owner
from portal.scope import EVERY_ORGANIZATION
from portal.webhooks import payloads
from portal.webhooks.service import emit


class SubscriptionSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The fields whose change decides which events and emails a subscription update produces."""

    id: str
    organization_id: str
    status: str
    cancel_at_period_end: bool
    product_id: str
    product_name: str


async def order_paid(tx: Transaction, order_id: str, *, now: datetime, send_receipt: bool = True) -> None:
    if is_muted():
        return
    owner = await order_owner(tx, order_id)
    assert owner is not None  # the caller has just paid it
    await emit(
        tx,
        organization_id=owner.organization_id,
        event_type="order.paid",
        build=lambda: payloads.order(tx, order_id),
        now=now,
    )
    if send_receipt:
        await emails.enqueue_receipt(tx, order_id, now=now)


async def order_refunded(tx: Transaction, order_id: str, refund_id: str, *, now: datetime) -> None:
    if is_muted():
        return
    owner = await order_owner(tx, order_id)
    assert owner is not None  # the caller has just refunded it
    await emit(
        tx,
        organization_id=owner.organization_id,
        event_type="order.refunded",
        build=lambda: payloads.order(tx, order_id),
        now=now,
    )
    await emails.enqueue_refund(tx, order_id, refund_id, now=now)


async def subscription_snapshot(tx: Transaction, subscription_id: str) -> SubscriptionSnapshot | None:
    """Read before changing a subscription; pass to ``subscription_changed`` after."""
    row = await tx.fetchone(
        """
        SELECT s.id, s.organization_id, s.status, s.cancel_at_period_end, s.product_id, p.name AS product_name
        FROM subscriptions s
        JOIN products p ON p.id = s.product_id
        WHERE s.id = ?
        """,
        (subscription_id,),
    )
    return None if row is None else msgspec.convert(row_dict(row), SubscriptionSnapshot, strict=False)


def subscription_events(before: SubscriptionSnapshot, after: SubscriptionSnapshot) -> list[str]:
    """Polar's events for a change from ``before`` to ``after`` (``subscription.updated`` first)."""
    events = ["subscription.updated"]
    live = after.status != "canceled"
    if after.status == "active" and before.status != "active":
        events.append("subscription.active")
    if (live and after.cancel_at_period_end and not before.cancel_at_period_end) or (
        not live and before.status != "canceled" and not before.cancel_at_period_end
    ):
        events.append("subscription.canceled")
    if live and before.cancel_at_period_end and not after.cancel_at_period_end:
        events.append("subscription.uncanceled")
    if not live and before.status != "canceled":
        events.append("subscription.revoked")
    return events


def subscription_email(before: SubscriptionSnapshot, after: SubscriptionSnapshot) -> str | None:
    """The customer email for the change, if any (a plan change, a cancel at period end, a resume)."""
    if after.status == "canceled":
        return None
    if after.cancel_at_period_end and not before.cancel_at_period_end:
        return "subscription_canceled"
    if before.cancel_at_period_end and not after.cancel_at_period_end:
        return "subscription_uncanceled"
    if after.product_id != before.product_id:
        return "subscription_updated"
    return None


async def subscription_changed(tx: Transaction, before: SubscriptionSnapshot | None, *, now: datetime) -> None:
    if is_muted() or before is None:
        return
    after = await subscription_snapshot(tx, before.id)
    if after is None:
        return
    data: dict[str, Any] | None = None

    async def build() -> dict[str, Any]:
        nonlocal data
        if data is None:
            data = await payloads.subscription(tx, before.id)
        return data

    for event_type in subscription_events(before, after):
        await emit(tx, organization_id=after.organization_id, event_type=event_type, build=build, now=now)
    kind = subscription_email(before, after)
    if kind is not None:
        await emails.enqueue_subscription(
            tx,
            kind,
            before.id,
            now=now,
            previous_product_name=before.product_name if kind == "subscription_updated" else None,
        )


async def _grant_event(tx: Transaction, grant_id: str, event_type: str, now: datetime) -> None:
    if is_muted():
        return
    grant = await benefit_reads.get_grant_record(tx, EVERY_ORGANIZATION, grant_id)
    if grant is None:  # nothing to describe (and no organization to send it to)
        return
    await emit(
        tx,
        organization_id=grant.organization_id,
        event_type=event_type,
        build=lambda: payloads.benefit_grant(tx, grant_id),
        now=now,
    )


async def grant_created(tx: Transaction, grant_id: str, *, now: datetime) -> None:
    await _grant_event(tx, grant_id, "benefit_grant.created", now)


async def grant_restored(tx: Transaction, grant_id: str, *, now: datetime) -> None:
    await _grant_event(tx, grant_id, "benefit_grant.updated", now)


async def grant_revoked(tx: Transaction, grant_id: str, *, now: datetime) -> None:
    await _grant_event(tx, grant_id, "benefit_grant.revoked", now)


async def customer_updated(tx: Transaction, customer_id: str, *, now: datetime) -> None:
    if is_muted():
        return
    customer = await get_customer_record(tx, EVERY_ORGANIZATION, customer_id, include_deleted=True)
    assert customer is not None  # the caller has just updated it
    await emit(
        tx,
        organization_id=customer.organization_id,
        event_type="customer.updated",
        build=lambda: payloads.customer(tx, customer_id),
        now=now,
    )


async def _activation_event(tx: Transaction, activation_id: str, event_type: str, now: datetime) -> None:
    if is_muted():
        return
    activation = await benefit_reads.get_activation_row(tx, activation_id)
    key = (
        None
        if activation is None
        else await benefit_reads.get_license_key_row(tx, EVERY_ORGANIZATION, activation["license_key_id"])
    )
    if key is None:
        return
    organization_id = key["organization_id"]
    await emit(
        tx,
        organization_id=organization_id,
        event_type=event_type,
        build=lambda: payloads.license_key_activation(tx, activation_id),
        now=now,
    )


async def license_key_activated(tx: Transaction, activation_id: str, *, now: datetime) -> None:
    await _activation_event(tx, activation_id, "license_key.activated", now)


async def license_key_deactivated(tx: Transaction, activation_id: str, *, now: datetime) -> None:
    """Call BEFORE deleting the activation row (the payload describes it)."""
    await _activation_event(tx, activation_id, "license_key.deactivated", now)
