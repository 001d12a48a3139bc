"""Receipts of the demo data, checked structurally with BeautifulSoup: numbers, line items, totals, refunds and
their marks, bill-to snapshots, and money formatted per currency and the org's locale (USD/en, EUR/de, JPY)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import msgspec
import pytest
from bs4 import BeautifulSoup
from litestar import Litestar
from litestar.testing import TestClient

from portal import i18n
from portal.i18n import gettext as _
from portal.money import format_money
from portal.settings import Settings
from tests.browser_helpers import new_session, one, pay_new_order, query

pytestmark = pytest.mark.seeded  # data_dir: a copy of the demo seed (tests/conftest.py)


@pytest.fixture
def client(app: Litestar) -> Iterator[TestClient[Litestar]]:
    with TestClient(app, base_url="http://testserver.local") as test_client:
        test_client.follow_redirects = False
        yield test_client


def _text(page: BeautifulSoup, field: str) -> str:
    node = page.select_one(f'[data-field="{field}"]')
    assert node is not None, field
    return node.get_text(" ", strip=True)


def _receipt(client: TestClient[Litestar], settings: Settings, order: dict) -> BeautifulSoup:  # type: ignore[type-arg]
    client.cookies.clear()
    name, token = new_session(settings, order["slug"], order["email"])
    client.cookies.set(name, token)
    response = client.get(f"/{order['slug']}/portal/orders/{order['id']}/receipt")
    assert response.status_code == 200, response.text[:300]
    assert "no-store" in response.headers["cache-control"]
    return BeautifulSoup(response.text, "html.parser")


ORDERS_SQL = """
SELECT o.*, org.slug, COALESCE(c.locale, org.default_locale) AS locale, org.name AS org_name, c.email
FROM orders o
JOIN organizations org ON org.id = o.organization_id
JOIN customers c ON c.id = o.customer_id
ORDER BY org.slug, o.created_at
"""


def test_every_demo_receipt_adds_up(client: TestClient[Litestar], settings: Settings) -> None:
    orders = [dict(row) for row in query(settings, ORDERS_SQL)]
    paid = [o for o in orders if o["receipt_number"]]
    assert len(paid) >= 20 and {o["slug"] for o in paid} == {"acme", "lumen"}
    statuses = {o["status"] for o in paid}
    assert {"paid", "refunded", "partially_refunded"} <= statuses
    for order in paid:
        page = _receipt(client, settings, order)
        currency, locale = order["currency"], order["locale"]

        def money(amount: int, currency: str = currency, locale: str = locale) -> str:
            return format_money(amount, currency, locale)

        assert _text(page, "receipt-number") == order["receipt_number"]
        assert order["org_name"] in page.select_one(".seller-name").get_text()
        items = query(settings, "SELECT * FROM order_items WHERE order_id = ? ORDER BY position", (order["id"],))
        rows = page.select("tr.line-item")
        assert len(rows) == len(items)
        for row, item in zip(rows, items, strict=True):
            assert row.select_one(".desc").get_text(strip=True) == item["label"]
            assert row.select_one(".qty").get_text(strip=True) == str(item["quantity"])
            assert row.select_one(".unit").get_text(strip=True) == money(item["unit_amount"])
            assert row.select_one(".amount").get_text(strip=True) == money(item["amount"])
        assert sum(i["amount"] for i in items) == order["subtotal_amount"]
        assert order["subtotal_amount"] - order["discount_amount"] + order["tax_amount"] == order["total_amount"]
        assert _text(page, "subtotal") == money(order["subtotal_amount"])
        assert _text(page, "tax") == money(order["tax_amount"])
        assert _text(page, "total") == money(order["total_amount"])
        assert _text(page, "amount-paid") == money(order["total_amount"])
        if order["discount_amount"]:
            assert _text(page, "discount") == "−" + money(order["discount_amount"])
        refunds = query(settings, "SELECT * FROM refunds WHERE order_id = ? ORDER BY created_at", (order["id"],))
        assert [t.get_text(strip=True) for t in page.select('[data-field="refund-amount"]')] == [
            "−" + money(r["amount"]) for r in refunds
        ]
        assert len(page.select('[data-field="refund-date"]')) == len(refunds)
        mark = page.select_one('[data-field="mark"]')
        with i18n.use_locale(locale):  # the customer's saved language, else the organization's
            marks = {"refunded": _("Refunded"), "partially_refunded": _("Partially refunded")}
        expected_mark = marks.get(order["status"])
        assert (mark.get_text(strip=True) if mark else None) == expected_mark
        if refunds:
            assert _text(page, "net") == money(order["total_amount"] - sum(r["amount"] for r in refunds))
        bill_to = _text(page, "bill-to")
        assert order["email"] in bill_to
        if order["billing_name"]:
            assert order["billing_name"] in bill_to
        if order["tax_id"]:
            assert order["tax_id"] in bill_to
        if order["billing_address"]:
            assert msgspec.json.decode(order["billing_address"]).get("city", "") in bill_to
        # Printable and CSP-clean: a static script reveals the print button; no inline script.
        assert page.select_one("button[data-print]") is not None
        assert page.select_one('script[src="/static/print.js"]') is not None
        assert not page.select("script:not([src])")


def test_currency_formatting_per_org_locale(client: TestClient[Litestar], settings: Settings) -> None:
    orders = [dict(row) for row in query(settings, ORDERS_SQL)]
    eur = next(
        o
        for o in orders
        if o["slug"] == "lumen" and o["receipt_number"] and o["currency"] == "eur" and o["locale"] == "de"
    )
    page = _receipt(client, settings, eur)
    assert re.fullmatch(r"\d{1,3}(\.\d{3})*,\d{2}\xa0€", _text(page, "total")), _text(page, "total")
    assert page.html["lang"] == "de"
    usd = next(o for o in orders if o["slug"] == "acme" and o["receipt_number"] and o["currency"] == "usd")
    assert re.fullmatch(r"\$\d{1,3}(,\d{3})*\.\d{2}", _text(_receipt(client, settings, usd), "total"))
    jpy_id = pay_new_order(settings, "acme", "alex@example.com", "Toolkit (Japan)", 1200, "jpy")
    jpy = dict(one(settings, ORDERS_SQL.replace("ORDER BY", "WHERE o.id = ? ORDER BY"), (jpy_id,)))
    page = _receipt(client, settings, jpy)
    assert _text(page, "total") == "¥1,200"
    assert re.fullmatch(r"ACME-\d{4}", _text(page, "receipt-number"))


def test_unpaid_orders_have_no_receipt(client: TestClient[Litestar], settings: Settings) -> None:
    pending = pay_new_order(settings, "acme", "alex@example.com", "Unpaid", 500, "usd", paid=False)
    order = dict(one(settings, ORDERS_SQL.replace("ORDER BY", "WHERE o.id = ? ORDER BY"), (pending,)))
    name, token = new_session(settings, order["slug"], order["email"])
    client.cookies.set(name, token)
    assert client.get(f"/{order['slug']}/portal/orders/{order['id']}/receipt").status_code == 404
    page = BeautifulSoup(client.get(f"/{order['slug']}/portal/orders/{order['id']}").text, "html.parser")
    assert page.select_one('a[href$="/receipt"]') is None, "the order page offers no receipt for unpaid orders"
