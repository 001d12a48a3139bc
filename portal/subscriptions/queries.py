"""Read queries for a customer's subscriptions (list, one, the live ones for the overview) and the plans a
subscription may change to. Scoped by organization AND customer: someone else's subscription reads as missing."""

from __future__ import annotations

import msgspec

from portal.db import Database, row_to, rows_to

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


async def list_subscriptions(
    db: Database, organization_id: str, customer_id: str, *, live_only: bool = False
) -> list[Subscription]:
    """The customer's subscriptions, live ones first, then newest first (one query)."""
    live = "AND s.status IN ('trialing', 'active', 'past_due') AND s.ended_at IS NULL" if live_only else ""
    rows = await db.fetchall(
        f"""
        SELECT {SUBSCRIPTION_COLUMNS}
        FROM subscriptions s
        JOIN products p ON p.id = s.product_id
        WHERE s.customer_id = ? AND s.organization_id = ? {live}
        ORDER BY s.status NOT IN ('trialing', 'active', 'past_due'), s.created_at DESC, s.id
        """,
        (customer_id, organization_id),
    )
    return rows_to(Subscription, rows)


async def get_subscription(
    db: Database, organization_id: str, customer_id: str, subscription_id: str
) -> Subscription | None:
    row = await db.fetchone(
        f"""
        SELECT {SUBSCRIPTION_COLUMNS}
        FROM subscriptions s
        JOIN products p ON p.id = s.product_id
        WHERE s.id = ? AND s.organization_id = ? AND s.customer_id = ?
        """,
        (subscription_id, organization_id, customer_id),
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


async def list_plan_options(db: Database, subscription: Subscription) -> list[PlanOption]:
    """Public, unarchived recurring products of the same organization with a price in the same currency."""
    rows = await db.fetchall(
        PLAN_OPTIONS_SQL + " ORDER BY pp.price_amount, p.name",
        (subscription.currency, subscription.organization_id, subscription.product_id),
    )
    return rows_to(PlanOption, rows)


async def get_plan_option(db: Database, subscription: Subscription, product_id: str) -> PlanOption | None:
    row = await db.fetchone(
        PLAN_OPTIONS_SQL + " AND p.id = ?",
        (subscription.currency, subscription.organization_id, subscription.product_id, product_id),
    )
    return row_to(PlanOption, row)


# --- seller console: aggregates of one organization (portal.console.dashboard) -------------------------------


class RecurringRevenue(msgspec.Struct, frozen=True, kw_only=True):
    """An organization's active subscriptions in one currency and their monthly recurring revenue."""

    currency: str
    active: int
    mrr: int  # smallest currency unit per month: yearly plans count 1/12, weekly 52/12, daily 365/12


async def recurring_revenue(db: Database, organization_id: str) -> list[RecurringRevenue]:
    """Active subscriptions (``subscriptions_org_status``), by currency, with their amounts brought to a month."""
    rows = await db.fetchall(
        """
        SELECT currency,
               COUNT(*) AS active,
               CAST(ROUND(SUM(
                   amount * CASE recurring_interval
                       WHEN 'month' THEN 1.0
                       WHEN 'year' THEN 1.0 / 12
                       WHEN 'week' THEN 52.0 / 12
                       ELSE 365.0 / 12
                   END / MAX(recurring_interval_count, 1)
               )) AS INTEGER) AS mrr
        FROM subscriptions
        WHERE organization_id = ? AND status = 'active'
        GROUP BY currency
        ORDER BY currency
        """,
        (organization_id,),
    )
    return rows_to(RecurringRevenue, rows)
