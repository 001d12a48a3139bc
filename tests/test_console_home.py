"""The console home on the demo data: its monthly sales, refunds, new customers and MRR agree with the raw rows
(computed here in Python, independently of the aggregate SQL), the charts are accessible SVG with a data table,
and the aggregate reads use their indexes (EXPLAIN QUERY PLAN)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from bs4 import BeautifulSoup
from litestar import Litestar
from litestar.testing import TestClient

from portal.console.dashboard import last_months, month_labels
from portal.db import connect_sync
from portal.money import format_money
from portal.settings import Settings
from tests.console_helpers import add_member, console_cookie, insert_seller, plant_session, sql

pytestmark = pytest.mark.seeded


def test_last_months_cross_the_year() -> None:
    assert last_months(datetime(2026, 2, 10, tzinfo=UTC), 4) == ["2025-11", "2025-12", "2026-01", "2026-02"]


def test_month_labels_carry_the_year_in_the_readers_language() -> None:
    assert month_labels("2025-12", "en") == ("Dec 2025", "Dec", "2025")
    assert month_labels("2026-01", "en") == ("Jan 2026", "Jan", "2026")
    assert month_labels("2026-01", "fr")[0] == "janv. 2026"
    assert month_labels("2026-03", "de")[0] == "März 2026"


def _table(soup: BeautifulSoup, title: str) -> dict[str, str]:
    section = soup.find("h2", string=title).find_parent("section")  # type: ignore[union-attr]
    svg = section.find("svg")
    assert svg["role"] == "img" and svg.find("title").get_text() == title and svg.find("desc").get_text()
    return {
        row.th.get_text(strip=True): row.td.get_text(strip=True)
        for row in section.select("details tbody tr")  # type: ignore[union-attr]
    }


def test_home_numbers_match_the_rows(client: TestClient[Litestar], settings: Settings) -> None:
    ((org_id, currency),) = sql(settings, "SELECT id, default_currency FROM organizations WHERE slug = 'acme'")
    seller = insert_seller(settings, "owner@acme.example")
    add_member(settings, seller, org_id, "owner")
    console_cookie(client, settings, plant_session(settings, seller))
    soup = BeautifulSoup(client.get("/console/acme").text, "html.parser")
    months = last_months(datetime.now(UTC))
    # The table and the axis say "Jan 2026": months of two years never read as one.
    label = {month: month_labels(month, "en")[0] for month in months}
    axis = [text.get_text(" ", strip=True) for text in soup.select("svg.console-chart")[0].select("text.label")]
    assert axis == [f"{month_labels(m, 'en')[1]} {m[:4]}" for m in months]
    revenue = dict.fromkeys(months, 0)
    refunds = dict.fromkeys(months, 0)
    orders = dict.fromkeys(months, 0)
    for created, status, cur, total, refunded in sql(
        settings,
        "SELECT created_at, status, currency, total_amount, refunded_amount FROM orders WHERE organization_id = ?",
        (org_id,),
    ):
        month = created[:7]
        if month not in revenue or status not in ("paid", "refunded", "partially_refunded"):
            continue
        orders[month] += 1
        if cur == currency:
            revenue[month] += total
            refunds[month] += refunded
    assert sum(orders.values()) > 0 and sum(refunds.values()) > 0, "the demo has sales and refunds this year"
    assert _table(soup, "Revenue per month") == {label[m]: format_money(v, currency, "en") for m, v in revenue.items()}
    assert _table(soup, "Refunds per month") == {label[m]: format_money(v, currency, "en") for m, v in refunds.items()}
    assert _table(soup, "Orders per month") == {label[m]: str(v) for m, v in orders.items()}
    new = dict.fromkeys(months, 0)
    for (created,) in sql(
        settings, "SELECT created_at FROM customers WHERE organization_id = ? AND deleted_at IS NULL", (org_id,)
    ):
        if created[:7] in new:
            new[created[:7]] += 1
    assert _table(soup, "New customers per month") == {label[m]: str(v) for m, v in new.items()}
    # MRR: active subscriptions, each brought to a month.
    per_month = {"month": 1.0, "year": 1 / 12, "week": 52 / 12, "day": 365 / 12}
    mrr = round(
        sum(
            amount * per_month[interval] / max(count, 1)
            for amount, interval, count in sql(
                settings,
                "SELECT amount, recurring_interval, recurring_interval_count FROM subscriptions "
                "WHERE organization_id = ? AND status = 'active' AND currency = ?",
                (org_id, currency),
            )
        )
    )
    stats = soup.select(".console-stats strong")
    assert format_money(mrr, currency, "en") in [s.get_text() for s in stats]


def test_aggregate_reads_use_their_indexes(client: TestClient[Litestar], settings: Settings) -> None:
    conn = connect_sync(settings.db_path)
    try:
        plans = {}
        for name, statement in {
            "sales": "SELECT substr(created_at, 1, 7) AS month, currency, COUNT(*), SUM(total_amount), "
            "SUM(refunded_amount) FROM orders INDEXED BY orders_org_month WHERE organization_id = ? "
            "AND created_at >= ? AND status IN ('paid', 'refunded', 'partially_refunded') GROUP BY month, currency",
            "customers": "SELECT substr(created_at, 1, 7) AS month, COUNT(*) FROM customers "
            "WHERE organization_id = ? AND created_at >= ? AND deleted_at IS NULL GROUP BY month",
            "audit": "SELECT id FROM seller_audit_log WHERE organization_id = ? ORDER BY created_at DESC LIMIT 100",
            "webhooks": "SELECT id FROM webhook_events WHERE organization_id = ? ORDER BY created_at DESC LIMIT 100",
        }.items():
            rows = conn.execute(f"EXPLAIN QUERY PLAN {statement}", ("x", "2026-01")[: statement.count("?")])
            plans[name] = " | ".join(str(row[3]) for row in rows)
    finally:
        conn.close()
    assert "COVERING INDEX orders_org_month (organization_id=? AND created_at>?)" in plans["sales"]
    assert "INDEX customers_org_created (organization_id=? AND created_at>?)" in plans["customers"]
    assert "INDEX seller_audit_log_org (organization_id=?)" in plans["audit"]
    assert "INDEX webhook_events_org (organization_id=?)" in plans["webhooks"]
    for plan in plans.values():
        assert not re.search(r"\bSCAN (orders|customers|seller_audit_log|webhook_events)\b(?! USING)", plan), plan


def test_the_seller_tax_id_set_in_the_console_is_on_receipts(client: TestClient[Litestar], settings: Settings) -> None:
    from tests.browser_helpers import new_session
    from tests.signin_helpers import csrf

    ((org_id,),) = sql(settings, "SELECT id FROM organizations WHERE slug = 'acme'")
    seller = insert_seller(settings, "owner@acme.example")
    add_member(settings, seller, org_id, "owner")
    console_cookie(client, settings, plant_session(settings, seller))
    page = client.get("/console/acme/settings").text
    name = re.search(r'id="f-name"[^>]*value="([^"]*)"', page)
    assert name is not None
    saved = client.post(
        "/console/acme/settings",
        data={
            "name": name.group(1),
            "accent_color": "#2563eb",
            "tax_country": "DE",
            "tax_id": "DE136695976",
            "_csrf_token": csrf(client),
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text[:300]
    cookie, token = new_session(settings, "acme", "alex@example.com")
    client.cookies.set(cookie, token)
    ((order,),) = sql(
        settings,
        "SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.email = 'alex@example.com' "
        "AND o.organization_id = ? AND o.receipt_number IS NOT NULL LIMIT 1",
        (org_id,),
    )
    receipt = client.get(f"/acme/portal/orders/{order}/receipt")
    assert receipt.status_code == 200
    assert "Tax ID: DE136695976" in BeautifulSoup(receipt.text, "html.parser").select_one(".seller").get_text()  # type: ignore[union-attr]
