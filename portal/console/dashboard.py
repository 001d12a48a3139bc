"""The console home's numbers and charts: 12 months of sales, orders, refunds and new customers of one
organization, and its active subscriptions with their monthly recurring revenue.

The reads are the areas' own aggregate functions (``orders.reads.monthly_sales``,
``subscriptions.reads.recurring_revenue``, ``customers.reads.new_customers_by_month``); this module only fills
the months without data and lays the bars out for an SVG drawn by the template (no script, no external asset).
Amounts are charted in the organization's default currency; other currencies are listed in the data tables.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

import msgspec
from babel.dates import format_date, format_skeleton

from portal.customers import reads as customer_reads
from portal.db import Database
from portal.money import format_money
from portal.orders import reads as order_reads
from portal.orders.reads import MonthlySales
from portal.scope import Scope
from portal.subscriptions import reads as subscription_reads
from portal.subscriptions.reads import RecurringRevenue

MONTHS = 12
# The SVG's coordinate system (it scales to its container): bars between the left margin and the right edge.
# The axis has two lines under each bar: the month, and its year.
WIDTH, HEIGHT, LEFT, TOP, BOTTOM = 640, 230, 8, 22, 40


class Bar(msgspec.Struct, frozen=True, kw_only=True):
    month: str  # YYYY-MM
    label: str  # the month with its year, in the reader's language ("Jan 2026", "janv. 2026")
    axis_month: str  # the axis' first line ("Jan")
    axis_year: str  # and its second ("2026"): 12 months across a new year read correctly
    value: int
    text: str  # the value as shown (money formatted, or the count)
    x: float
    y: float
    width: float
    height: float


class Chart(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    bars: list[Bar]
    total_text: str
    width: int = WIDTH
    height: int = HEIGHT
    baseline: float = HEIGHT - BOTTOM


class Dashboard(msgspec.Struct, frozen=True, kw_only=True):
    currency: str
    charts: dict[str, Chart]
    recurring: list[RecurringRevenue]
    sales: list[MonthlySales]  # every currency, for the data table
    months: list[str]


def last_months(now: datetime, count: int = MONTHS) -> list[str]:
    """``count`` months ending with ``now``'s, oldest first, as ``YYYY-MM``."""
    year, month = now.year, now.month
    months = []
    for _ in range(count):
        months.append(f"{year:04d}-{month:02d}")
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return months[::-1]


def month_labels(month: str, locale: str) -> tuple[str, str, str]:
    """``YYYY-MM`` as (month with year, month alone, year), localised by Babel's skeletons (CLDR patterns)."""
    day = date(int(month[:4]), int(month[5:7]), 1)
    return (
        format_skeleton("yMMM", day, locale=locale),
        format_date(day, "LLL", locale=locale),  # a pattern: CLDR has no "LLL" skeleton for every locale
        format_date(day, "y", locale=locale),
    )


def _chart(key: str, months: list[str], values: dict[str, int], fmt: Callable[[int], str], locale: str) -> Chart:
    top = max(values.values(), default=0) or 1
    slot = (WIDTH - LEFT) / len(months)
    usable = HEIGHT - TOP - BOTTOM
    bars = []
    for index, month in enumerate(months):
        value = values.get(month, 0)
        height = round(usable * value / top, 1)
        label, axis_month, axis_year = month_labels(month, locale)
        bars.append(
            Bar(
                month=month,
                label=label,
                axis_month=axis_month,
                axis_year=axis_year,
                value=value,
                text=fmt(value),
                x=round(LEFT + index * slot + slot * 0.15, 1),
                y=round(HEIGHT - BOTTOM - height, 1),
                width=round(slot * 0.7, 1),
                height=height,
            )
        )
    return Chart(key=key, bars=bars, total_text=fmt(sum(values.get(month, 0) for month in months)))


async def build(db: Database, organization_id: str, currency: str, now: datetime, locale: str) -> Dashboard:
    months = last_months(now)
    since = f"{months[0]}-01T00:00:00"
    scope = Scope.of_organization(organization_id)
    sales = await order_reads.monthly_sales(db, scope, since)
    customers = await customer_reads.new_customers_by_month(db, scope, since)
    recurring = await subscription_reads.recurring_revenue(db, scope)
    mine = [row for row in sales if row.currency.lower() == currency.lower()]

    def money(value: int) -> str:
        return format_money(value, currency, locale)

    def count(value: int) -> str:
        return str(value)

    charts = {
        "revenue": _chart("revenue", months, {row.month: row.revenue for row in mine}, money, locale),
        "orders": _chart("orders", months, _sum_by_month(sales, "orders"), count, locale),
        "refunds": _chart("refunds", months, {row.month: row.refunded for row in mine}, money, locale),
        "customers": _chart("customers", months, {row.month: row.count for row in customers}, count, locale),
    }
    return Dashboard(currency=currency, charts=charts, recurring=recurring, sales=sales, months=months)


def _sum_by_month(rows: list[MonthlySales], field: str) -> dict[str, int]:
    totals: dict[str, int] = {}
    for row in rows:
        totals[row.month] = totals.get(row.month, 0) + int(getattr(row, field))
    return totals
