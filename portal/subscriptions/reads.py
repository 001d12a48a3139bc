"""Every read of subscriptions, for every surface; the writes are in ``service`` and ``actions``.

Each function takes a ``portal.scope.Scope`` (see there). Three shapes, one per need:

- ``Subscription`` / ``PlanOption`` (HTML pages and the subscription actions): with the product's name, and the
  plans a subscription may change to.
- ``SubscriptionRecord`` (admin API, webhook payloads): the whole row, converted to Polar's ``Subscription``.
- rows of ``ROW_COLUMNS`` (customer-portal API): Polar's filters and ``sorting``, and the batch read of the
  subscriptions a page of orders embeds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

import msgspec

from portal.db import Database, Reader, row_to, rows_to
from portal.errors import NotFound
from portal.pagination import PageOf, add_in, fetch_page, fetch_rows_page, like_pattern, marks, order_by
from portal.scope import EVERY_ORGANIZATION, Scope

Row = sqlite3.Row

# Statuses in which the customer still has (or is about to regain) the service.
LIVE_STATUSES = ("trialing", "active", "past_due")


class Subscription(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    organization_id: str
    customer_id: str
    product_id: str
    product_name: str
    product_description: str | None
    price_id: str | None
    status: str
    amount: int
    currency: str
    recurring_interval: str
    recurring_interval_count: int
    current_period_start: str
    current_period_end: str | None
    trial_end: str | None
    cancel_at_period_end: bool
    canceled_at: str | None
    started_at: str | None
    ends_at: str | None
    ended_at: str | None
    customer_cancellation_reason: str | None
    customer_cancellation_comment: str | None
    created_at: str

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES and self.ended_at is None


class PlanOption(msgspec.Struct, frozen=True, kw_only=True):
    """A recurring product the subscription can switch to, priced in the subscription's currency."""

    product_id: str
    name: str
    description: str | None
    price_id: str
    amount: int
    currency: str
    recurring_interval: str
    recurring_interval_count: int


# The subscription columns every unjoined subscription read selects, up to the cancellation comment (each
# reader appends its own tail).
SUBSCRIPTION_BASE_COLUMNS = """
    s.id,
    s.organization_id,
    s.customer_id,
    s.product_id,
    s.price_id,
    s.status,
    s.amount,
    s.currency,
    s.recurring_interval,
    s.recurring_interval_count,
    s.current_period_start,
    s.current_period_end,
    s.trial_start,
    s.trial_end,
    s.cancel_at_period_end,
    s.canceled_at,
    s.started_at,
    s.ends_at,
    s.ended_at,
    s.customer_cancellation_reason,
    s.customer_cancellation_comment,
"""


SUBSCRIPTION_COLUMNS = """
    s.id,
    s.organization_id,
    s.customer_id,
    s.product_id,
    p.name AS product_name,
    p.description AS product_description,
    s.price_id,
    s.status,
    s.amount,
    s.currency,
    s.recurring_interval,
    s.recurring_interval_count,
    s.current_period_start,
    s.current_period_end,
    s.trial_end,
    s.cancel_at_period_end,
    s.canceled_at,
    s.started_at,
    s.ends_at,
    s.ended_at,
    s.customer_cancellation_reason,
    s.customer_cancellation_comment,
    s.created_at
"""


async def list_subscriptions(db: Database, scope: Scope, *, live_only: bool = False) -> list[Subscription]:
    """The scope's subscriptions, live ones first, then newest first (one query)."""
    live = "AND s.status IN ('trialing', 'active', 'past_due') AND s.ended_at IS NULL" if live_only else ""
    where, params = scope.where("s")
    rows = await db.fetchall(
        f"""
        SELECT {SUBSCRIPTION_COLUMNS}
        FROM subscriptions s
        JOIN products p ON p.id = s.product_id
        WHERE {" AND ".join(where)} {live}
        ORDER BY s.status NOT IN ('trialing', 'active', 'past_due'), s.created_at DESC, s.id
        """,
        params,
    )
    return rows_to(Subscription, rows)


async def get_subscription(db: Reader, scope: Scope, subscription_id: str) -> Subscription | None:
    """The subscription with its product's name, or None if missing or outside the scope."""
    where, params = scope.where("s")
    row = await db.fetchone(
        f"""
        SELECT {SUBSCRIPTION_COLUMNS}
        FROM subscriptions s
        JOIN products p ON p.id = s.product_id
        WHERE {" AND ".join(["s.id = ?", *where])}
        """,
        [subscription_id, *params],
    )
    return row_to(Subscription, row)


PLAN_OPTIONS_SQL = """
SELECT
    p.id AS product_id,
    p.name,
    p.description,
    pp.id AS price_id,
    pp.price_amount AS amount,
    pp.price_currency AS currency,
    p.recurring_interval,
    p.recurring_interval_count
FROM products p
JOIN product_prices pp ON pp.id = (
    SELECT id FROM product_prices
    WHERE product_id = p.id AND is_archived = 0 AND price_currency = ?
    ORDER BY created_at DESC, rowid DESC
    LIMIT 1
)
WHERE p.organization_id = ?
  AND p.is_recurring = 1
  AND p.is_archived = 0
  AND p.visibility = 'public'
  AND p.recurring_interval IS NOT NULL
  AND p.id != ?
"""


async def list_plan_options(db: Reader, subscription: Subscription) -> list[PlanOption]:
    """Public, unarchived recurring products of the same organization with a price in the same currency."""
    rows = await db.fetchall(
        PLAN_OPTIONS_SQL + " ORDER BY pp.price_amount, p.name",
        (subscription.currency, subscription.organization_id, subscription.product_id),
    )
    return rows_to(PlanOption, rows)


async def get_plan_option(db: Reader, subscription: Subscription, product_id: str) -> PlanOption | None:
    row = await db.fetchone(
        PLAN_OPTIONS_SQL + " AND p.id = ?",
        (subscription.currency, subscription.organization_id, subscription.product_id, product_id),
    )
    return row_to(PlanOption, row)


# --- records: whole rows (admin API, webhook payloads) ---


class SubscriptionRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    organization_id: str
    customer_id: str
    product_id: str
    price_id: str | None
    status: str
    amount: int
    currency: str
    recurring_interval: str
    recurring_interval_count: int
    current_period_start: str
    current_period_end: str | None
    trial_start: str | None
    trial_end: str | None
    cancel_at_period_end: bool
    canceled_at: str | None
    started_at: str | None
    ends_at: str | None
    ended_at: str | None
    customer_cancellation_reason: str | None
    customer_cancellation_comment: str | None
    external_id: str | None
    metadata: str
    created_at: str
    modified_at: str | None


_RECORD_COLUMNS = (
    SUBSCRIPTION_BASE_COLUMNS
    + """    s.external_id,
    s.metadata,
    s.created_at,
    s.modified_at
"""
)


async def get_subscription_record(db: Reader, scope: Scope, subscription_id: str) -> SubscriptionRecord | None:
    """The whole subscription, or None if missing or outside the scope."""
    where, params = scope.where("s")
    row = await db.fetchone(
        f"SELECT {_RECORD_COLUMNS} FROM subscriptions s WHERE {' AND '.join(['s.id = ?', *where])}",
        [subscription_id, *params],
    )
    return row_to(SubscriptionRecord, row)


async def require_subscription_record(tx: Reader, subscription_id: str) -> SubscriptionRecord:
    """The whole subscription as the transaction sees it; ``NotFound`` if it is missing."""
    record = await get_subscription_record(tx, EVERY_ORGANIZATION, subscription_id)
    if record is None:
        raise NotFound("subscription not found")
    return record


async def list_subscription_records(
    db: Reader,
    scope: Scope,
    *,
    product_id: str | None = None,
    status: str | None = None,
    page: int,
    limit: int,
) -> PageOf[SubscriptionRecord]:
    """A page of the scope's subscriptions, newest first; ``None`` filters are not applied."""
    return await fetch_page(
        db,
        SubscriptionRecord,
        select=_RECORD_COLUMNS,
        source="subscriptions s",
        filters={
            **scope.filters("s"),
            "s.product_id": product_id,
            "s.status": status,
        },
        order_by="s.created_at DESC, s.id",
        page=page,
        limit=limit,
    )


# --- API rows (customer-portal API) ---------------------------------------------------------------------

ROW_COLUMNS = (
    SUBSCRIPTION_BASE_COLUMNS
    + """    s.created_at,
    s.modified_at
"""
)
ROW_SOURCE = (
    "subscriptions s JOIN products p ON p.id = s.product_id JOIN organizations org ON org.id = s.organization_id"
)
SUBSCRIPTION_SORT = {
    "started_at": "COALESCE(s.started_at, s.created_at)",
    "amount": "s.amount",
    "status": "s.status",
    "organization": "org.slug",
    "product": "p.name",
}
ACTIVE_STATUSES = ("trialing", "active", "past_due")


async def list_subscription_rows(
    db: Database,
    scope: Scope,
    *,
    product_id: Sequence[str] | None,
    active: bool | None,
    query: str | None,
    sorting: Sequence[str] | None,
    page_number: int,
    limit: int,
) -> tuple[list[Row], int]:
    """A page of the scope's subscriptions with Polar's customer-portal filters and ``sorting``, and the total."""
    where, params = scope.where("s")
    add_in(where, params, "s.product_id", product_id)
    if active is True:
        where.append(f"s.status IN ({marks(ACTIVE_STATUSES)}) AND s.ended_at IS NULL")
        params.extend(ACTIVE_STATUSES)
    elif active is False:
        where.append(f"(s.status NOT IN ({marks(ACTIVE_STATUSES)}) OR s.ended_at IS NOT NULL)")
        params.extend(ACTIVE_STATUSES)
    if query:
        where.append("p.name LIKE ? ESCAPE '\\'")
        params.append(like_pattern(query))
    return await fetch_rows_page(
        db,
        select=ROW_COLUMNS,
        source=ROW_SOURCE,
        where=where,
        params=params,
        order=order_by(sorting, SUBSCRIPTION_SORT, "-started_at", "s.id"),
        page=page_number,
        limit=limit,
    )


async def get_subscription_row(db: Database, scope: Scope, subscription_id: str) -> Row | None:
    """One subscription as a row of ``ROW_COLUMNS``, or None if missing or outside the scope."""
    where, params = scope.where("s")
    return await db.fetchone(
        f"SELECT {ROW_COLUMNS} FROM {ROW_SOURCE} WHERE {' AND '.join(['s.id = ?', *where])}",
        [subscription_id, *params],
    )


async def subscription_rows_by_id(db: Database, subscription_ids: Iterable[str | None]) -> dict[str, Row]:
    ids = sorted({sid for sid in subscription_ids if sid})
    if not ids:
        return {}
    # The subscription embedded in an order: its own columns only (no product or organization join).
    rows = await db.fetchall(f"SELECT {ROW_COLUMNS} FROM subscriptions s WHERE s.id IN ({marks(ids)})", ids)
    return {row["id"]: row for row in rows}


# --- seller console: aggregates of one organization (portal.console.dashboard) -------------------------------


class RecurringRevenue(msgspec.Struct, frozen=True, kw_only=True):
    """An organization's active subscriptions in one currency and their monthly recurring revenue."""

    currency: str
    active: int
    mrr: int  # smallest currency unit per month: yearly plans count 1/12, weekly 52/12, daily 365/12


async def recurring_revenue(db: Reader, scope: Scope) -> list[RecurringRevenue]:
    """The scope's active subscriptions (``subscriptions_org_status``), by currency, with their amounts brought to
    a month."""
    where, params = scope.where("s")
    rows = await db.fetchall(
        f"""
        SELECT s.currency,
               COUNT(*) AS active,
               CAST(ROUND(SUM(
                   s.amount * CASE s.recurring_interval
                       WHEN 'month' THEN 1.0
                       WHEN 'year' THEN 1.0 / 12
                       WHEN 'week' THEN 52.0 / 12
                       ELSE 365.0 / 12
                   END / MAX(s.recurring_interval_count, 1)
               )) AS INTEGER) AS mrr
        FROM subscriptions s
        WHERE {" AND ".join(where)} AND s.status = 'active'
        GROUP BY s.currency
        ORDER BY s.currency
        """,
        params,
    )
    return rows_to(RecurringRevenue, rows)


async def subscriptions_of_product(db: Reader, product_id: str, statuses: Iterable[str]) -> list[Row]:
    """``id``, ``customer_id`` of the subscriptions on ``product_id`` in one of ``statuses``."""
    wanted = sorted(statuses)
    return await db.fetchall(
        f"SELECT id, customer_id FROM subscriptions WHERE product_id = ? AND status IN ({marks(wanted)}) "
        "ORDER BY created_at, id",
        [product_id, *wanted],
    )


async def customers_by_subscription_reference(db: Reader, scope: Scope, reference: str) -> list[tuple[str, str, str]]:
    """``(customer id, subscription id, what matched)`` of the organization's subscription whose id or external
    (processor) id is ``reference`` (the console's customer search; two unique-index lookups)."""
    if scope.organization_id is None:
        raise ValueError("a subscription search needs an organization")
    where, params = scope.where("s")
    found: list[tuple[str, str, str]] = []
    for column in ("id", "external_id"):
        rows = await db.fetchall(
            f"SELECT s.customer_id, s.id FROM subscriptions s WHERE {' AND '.join(where)} AND s.{column} = ? LIMIT 2",
            [*params, reference],
        )
        found += [(str(row["customer_id"]), str(row["id"]), column) for row in rows]
    return found


# --- what happened to a subscription (the seller console) ---------------------------------------------------


class Change(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the ``events`` table about a subject (a subscription, a license key): its name (e.g.
    ``subscription.canceled``), its data (JSON text) and when."""

    name: str
    data: str
    created_at: str


async def recent_changes(db: Reader, scope: Scope, subject_id: str, *, limit: int = 20) -> list[Change]:
    """The newest ``events`` rows about ``subject_id`` in the scope (``events_subject``, migration 19). The events
    are written by ``actions.record_event`` for every area's customer and seller actions."""
    where, params = scope.where("e")
    rows = await db.fetchall(
        f"""
        SELECT e.name, e.data, e.created_at
        FROM events e
        WHERE {" AND ".join(["e.subject_id = ?", *where])}
        ORDER BY e.created_at DESC, e.id DESC
        LIMIT ?
        """,
        [subject_id, *params, limit],
    )
    return rows_to(Change, rows)
