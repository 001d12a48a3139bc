"""Write side of subscriptions: create/replace a subscription (periods, trial, cancellation flags checked
here) and end one. Its benefit grants follow its status through ``portal.benefits.grants`` (granted while
``active``/``trialing``, revoked otherwise) — reuse ``sync_subscription_grants`` after any status or product
change (cancel at period end, uncancel, plan change)."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from portal.benefits.grants import sync_subscription_grants
from portal.benefits.license_keys import add_interval
from portal.clock import iso, new_id, parse_iso
from portal.db import Transaction
from portal.errors import Conflict, DomainError, InvalidInput, NotFound
from portal.notifications import hooks as notify
from portal.organizations.service import currency_problem
from portal.products.service import get_active_price, get_product_row
from portal.references import UnknownReference, require_owned

SubscriptionStatus = Literal["incomplete", "incomplete_expired", "trialing", "active", "past_due", "canceled", "unpaid"]
# Polar's CustomerCancellationReason values.
CancellationReason = Literal[
    "customer_service",
    "low_quality",
    "missing_features",
    "switched_service",
    "too_complex",
    "too_expensive",
    "unused",
    "other",
]


class SubscriptionInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A whole subscription. Left out: ``price_id``/``amount``/``currency`` come from the product's price
    (in ``currency``, else its first price); ``current_period_end`` is start + the product's interval;
    ``started_at`` is the period start; ``ends_at`` is the period end when canceling at period end."""

    customer_id: str
    product_id: str
    status: SubscriptionStatus
    current_period_start: datetime
    current_period_end: datetime | None = None
    price_id: str | None = None
    amount: Annotated[int, msgspec.Meta(ge=0)] | None = None
    currency: str | None = None
    trial_start: datetime | None = None
    trial_end: datetime | None = None
    cancel_at_period_end: bool = False
    canceled_at: datetime | None = None
    started_at: datetime | None = None
    ends_at: datetime | None = None
    ended_at: datetime | None = None
    customer_cancellation_reason: CancellationReason | None = None
    customer_cancellation_comment: str | None = None
    external_id: str | None = None
    metadata: dict[str, Any] = {}


def check_subscription(data: SubscriptionInput) -> list[DomainError]:
    """Rules that need no database: status vs. trial/cancellation fields, period order."""
    problems: list[DomainError] = []
    if data.currency is not None and (message := currency_problem(data.currency)):
        problems.append(InvalidInput(message, "currency"))
    if data.current_period_end is not None and data.current_period_end <= data.current_period_start:
        problems.append(InvalidInput("must be after current_period_start", "current_period_end"))
    if data.status == "trialing" and data.trial_end is None:
        problems.append(InvalidInput("a trialing subscription needs trial_end", "trial_end"))
    if data.trial_start and data.trial_end and data.trial_end <= data.trial_start:
        problems.append(InvalidInput("must be after trial_start", "trial_end"))
    if data.status == "canceled" and data.ended_at is None:
        problems.append(InvalidInput("a canceled subscription needs ended_at", "ended_at"))
    if data.status != "canceled" and data.ended_at is not None:
        problems.append(InvalidInput("only a canceled subscription has ended", "ended_at"))
    if data.cancel_at_period_end and data.status == "canceled":
        problems.append(InvalidInput("an ended subscription cannot cancel at period end", "cancel_at_period_end"))
    if data.cancel_at_period_end and data.canceled_at is None:
        problems.append(InvalidInput("canceling at period end needs canceled_at", "canceled_at"))
    return problems


class _Resolved(msgspec.Struct, kw_only=True):
    organization_id: str
    price_id: str | None
    amount: int
    currency: str
    interval: str
    interval_count: int
    period_end: datetime
    ends_at: datetime | None


async def _resolve(tx: Transaction, organization_id: str, data: SubscriptionInput) -> _Resolved:
    problems = check_subscription(data)
    if problems:
        raise problems[0]
    await require_owned(tx, "customer", data.customer_id, organization_id, "customer_id")
    await require_owned(tx, "product", data.product_id, organization_id, "product_id")
    product = await get_product_row(tx, data.product_id)
    if not product["is_recurring"] or product["recurring_interval"] is None:
        raise InvalidInput("a subscription needs a recurring product", "product_id")
    if data.price_id is not None:
        price = await tx.fetchone(
            "SELECT * FROM product_prices WHERE id = ? AND product_id = ?",
            (data.price_id, data.product_id),
        )
        if price is None:  # unknown, another organization's or another product's: never silently dropped
            raise UnknownReference("price", "price_id")
    else:
        price = await get_active_price(tx, data.product_id, data.currency)
    amount, currency = _amount_and_currency(data, price)
    interval = product["recurring_interval"]
    count = product["recurring_interval_count"]
    period_end = data.current_period_end or add_interval(data.current_period_start, interval, count)
    ends_at = data.ends_at
    if ends_at is None and data.cancel_at_period_end:
        ends_at = period_end
    if ends_at is None and data.status == "canceled":
        ends_at = data.ended_at
    return _Resolved(
        organization_id=organization_id,
        price_id=None if price is None else price["id"],
        amount=amount,
        currency=currency,
        interval=interval,
        interval_count=count,
        period_end=period_end,
        ends_at=ends_at,
    )


def _amount_and_currency(data: SubscriptionInput, price: sqlite3.Row | None) -> tuple[int, str]:
    """The subscription's amount and currency: as given, else the price's; without a price both must be given."""
    if price is None:
        if data.amount is None or data.currency is None:
            raise InvalidInput("the product has no price in this currency", "currency")
        return data.amount, data.currency
    currency = data.currency or price["price_currency"]
    if price["price_currency"] != currency:
        raise InvalidInput("the price is in another currency", "currency")
    return (data.amount if data.amount is not None else price["price_amount"]), currency


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else iso(moment)


def _columns(data: SubscriptionInput, resolved: _Resolved) -> dict[str, Any]:
    return {
        "customer_id": data.customer_id,
        "product_id": data.product_id,
        "price_id": resolved.price_id,
        "status": data.status,
        "amount": resolved.amount,
        "currency": resolved.currency,
        "recurring_interval": resolved.interval,
        "recurring_interval_count": resolved.interval_count,
        "current_period_start": iso(data.current_period_start),
        "current_period_end": iso(resolved.period_end),
        "trial_start": _when(data.trial_start),
        "trial_end": _when(data.trial_end),
        "cancel_at_period_end": data.cancel_at_period_end,
        "canceled_at": _when(data.canceled_at),
        "started_at": _when(data.started_at or data.trial_start or data.current_period_start),
        "ends_at": _when(resolved.ends_at),
        "ended_at": _when(data.ended_at),
        "customer_cancellation_reason": data.customer_cancellation_reason,
        "customer_cancellation_comment": data.customer_cancellation_comment,
        "external_id": data.external_id,
        "metadata": msgspec.json.encode(data.metadata).decode(),
    }


# Column names below come from the fixed dict in _columns, never from input.
async def create_subscription(tx: Transaction, organization_id: str, data: SubscriptionInput, *, now: datetime) -> str:
    """Insert a subscription (created at ``now``) and grant its product's benefits when it is
    active/trialing; returns the subscription id."""
    resolved = await _resolve(tx, organization_id, data)
    if data.external_id is not None:
        taken = await tx.fetchval(
            "SELECT id FROM subscriptions WHERE organization_id = ? AND external_id = ?",
            (organization_id, data.external_id),
        )
        if taken is not None:
            raise Conflict("a subscription with this external_id exists", "external_id")
    subscription_id = new_id()
    columns = {
        "id": subscription_id,
        "organization_id": organization_id,
        **_columns(data, resolved),
        "created_at": iso(now),
    }
    names = ", ".join(columns)
    marks = ", ".join("?" for _ in columns)
    await tx.execute(f"INSERT INTO subscriptions ({names}) VALUES ({marks})", tuple(columns.values()))
    await sync_subscription_grants(tx, subscription_id, now=_grant_time(data, now))
    return subscription_id


def _grant_time(data: SubscriptionInput, now: datetime) -> datetime:
    # Benefits of a live subscription date from when it started, not from when the row was written.
    return data.started_at or data.trial_start or min(data.current_period_start, now)


async def update_subscription(tx: Transaction, subscription_id: str, data: SubscriptionInput, *, now: datetime) -> None:
    """Replace a subscription's fields, then re-sync its grants (revoked if it is no longer live)."""
    row = await get_subscription_row(tx, subscription_id)
    before = await notify.subscription_snapshot(tx, subscription_id)
    resolved = await _resolve(tx, row["organization_id"], data)
    columns = {**_columns(data, resolved), "modified_at": iso(now)}
    assignments = ", ".join(f"{name} = ?" for name in columns)
    await tx.execute(
        f"UPDATE subscriptions SET {assignments} WHERE id = ?",
        (*columns.values(), subscription_id),
    )
    revoke_at = data.ended_at if data.status == "canceled" and data.ended_at else now
    await sync_subscription_grants(tx, subscription_id, now=min(revoke_at, now))
    await notify.subscription_changed(tx, before, now=now)


async def end_subscription(
    tx: Transaction,
    subscription_id: str,
    *,
    now: datetime,
    reason: CancellationReason | None = None,
    comment: str | None = None,
) -> None:
    """End a subscription now: status ``canceled``, ``ended_at``/``ends_at`` = now, grants revoked."""
    row = await get_subscription_row(tx, subscription_id)
    if row["status"] == "canceled":
        raise Conflict("subscription has already ended", "status")
    before = await notify.subscription_snapshot(tx, subscription_id)
    await tx.execute(
        """
        UPDATE subscriptions SET
            status = 'canceled',
            cancel_at_period_end = 0,
            canceled_at = COALESCE(canceled_at, ?),
            ends_at = ?,
            ended_at = ?,
            customer_cancellation_reason = COALESCE(?, customer_cancellation_reason),
            customer_cancellation_comment = COALESCE(?, customer_cancellation_comment),
            modified_at = ?
        WHERE id = ?
        """,
        (iso(now), iso(now), iso(now), reason, comment, iso(now), subscription_id),
    )
    await sync_subscription_grants(tx, subscription_id, now=now)
    await notify.subscription_changed(tx, before, now=now)


def input_from_row(row: sqlite3.Row) -> SubscriptionInput:
    """The ``SubscriptionInput`` that rewrites a subscription as it is (change a field, then
    ``update_subscription``: e.g. a processor marking it ``past_due``)."""

    def moment(text: str | None) -> datetime | None:
        return None if text is None else parse_iso(text)

    return SubscriptionInput(
        customer_id=row["customer_id"],
        product_id=row["product_id"],
        status=row["status"],
        current_period_start=parse_iso(row["current_period_start"]),
        current_period_end=moment(row["current_period_end"]),
        price_id=row["price_id"],
        amount=row["amount"],
        currency=row["currency"],
        trial_start=moment(row["trial_start"]),
        trial_end=moment(row["trial_end"]),
        cancel_at_period_end=bool(row["cancel_at_period_end"]),
        canceled_at=moment(row["canceled_at"]),
        started_at=moment(row["started_at"]),
        ends_at=moment(row["ends_at"]),
        ended_at=moment(row["ended_at"]),
        customer_cancellation_reason=row["customer_cancellation_reason"],
        customer_cancellation_comment=row["customer_cancellation_comment"],
        external_id=row["external_id"],
        metadata=msgspec.json.decode(row["metadata"]),
    )


async def get_subscription_row(
    tx: Transaction, subscription_id: str, *, organization_id: str | None = None
) -> sqlite3.Row:
    row = await tx.fetchone("SELECT * FROM subscriptions WHERE id = ?", (subscription_id,))
    if row is None or (organization_id is not None and row["organization_id"] != organization_id):
        raise NotFound("subscription not found")
    return row


async def find_subscription_id(tx: Transaction, organization_id: str, external_id: str) -> str | None:
    return await tx.fetchval(
        "SELECT id FROM subscriptions WHERE organization_id = ? AND external_id = ?",
        (organization_id, external_id),
    )
