"""Invoices: issued only for paid orders with a billing name and address (Polar's errors otherwise), numbered per
organization, frozen once issued (a billing change issues a corrected invoice; the old one stays retrievable),
served through signed URLs (API) and from the order page (Generate / Download, CSRF-checked POST)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import httpx
import pytest
from bs4 import BeautifulSoup
from litestar import Litestar
from litestar.testing import TestClient
from polar.v2026_10.client import Polar
from polar.v2026_10.errors import (
    HTTPValidationError,
    MissingInvoiceBillingDetails,
    OrderNotEligibleForInvoice,
    ResourceNotFound,
)

from portal.settings import Settings
from tests.api_server import api_token, execute, served_portal
from tests.browser_helpers import csrf_token, new_session, one, pay_new_order, query

pytestmark = pytest.mark.seeded  # data_dir: a copy of the demo seed (tests/conftest.py)


@pytest.fixture
def portal(settings: Settings) -> Iterator[tuple[str, Settings]]:
    with served_portal(settings) as served:
        yield served


def order_id(settings: Settings, external_id: str) -> str:
    return one(settings, "SELECT id FROM orders WHERE external_id = ?", (external_id,))["id"]


def test_generate_fetch_correct_and_keep_the_old_invoice(portal: tuple[str, Settings]) -> None:
    base_url, settings = portal
    order = order_id(settings, "acme-ord-alex-toolkit")
    other = order_id(settings, "acme-ord-alex-pro-01")
    with Polar(access_token=api_token(settings, "acme", "alex@example.com"), base_url=base_url) as polar:
        orders = polar.customer_portal.orders
        with pytest.raises(ResourceNotFound):
            orders.invoice(order)
        assert orders.generate_invoice(order) is None
        first = orders.invoice(order)
        assert orders.generate_invoice(order) is None  # no change: same invoice, no new number
        same = orders.invoice(order)
        issued = orders.get(order)
        orders.generate_invoice(other)
        with pytest.raises(HTTPValidationError) as country:
            orders.update(order, billing_address={"line1": "x", "city": "y", "country": "DE"})
        updated = orders.update(
            order,
            billing_name="Rivera Design Inc.",
            billing_address={**dataclasses.asdict(issued.billing_address), "line1": "500 Market Street"},
        )
        orders.generate_invoice(order)
        corrected = orders.invoice(order)
    assert issued.is_invoice_generated and issued.invoice_number == "ACME-INV-0001"
    assert country.value.error.detail[0].loc == ["body", "billing_address", "country"]
    assert updated.billing_name == "Rivera Design Inc." and updated.billing_address.line1 == "500 Market Street"
    with httpx.Client() as anonymous:
        old_page = anonymous.get(first.url)
        again = anonymous.get(same.url)
        new_page = anonymous.get(corrected.url)
    assert old_page.status_code == 200 and again.status_code == 200 and new_page.status_code == 200
    old, new = BeautifulSoup(old_page.text, "html.parser"), BeautifulSoup(new_page.text, "html.parser")
    assert old.select_one("[data-field=invoice-number]").text == "ACME-INV-0001"
    assert "Rivera Design LLC" in old.select_one("[data-field=bill-to]").text  # frozen at issue time
    assert old.select_one("[data-field=superseded]") is not None
    # Numbers are per organization and allocated in order: the other order took 0002.
    assert new.select_one("[data-field=invoice-number]").text == "ACME-INV-0003"
    assert new.select_one("[data-field=corrects]").text == "ACME-INV-0001"
    assert "500 Market Street" in new.select_one("[data-field=bill-to]").text
    rows = query(settings, "SELECT invoice_number FROM invoices ORDER BY issued_at, rowid")
    assert [r["invoice_number"] for r in rows] == ["ACME-INV-0001", "ACME-INV-0002", "ACME-INV-0003"]
    assert one(settings, "SELECT invoice_number FROM orders WHERE id = ?", (order,))[0] == "ACME-INV-0003"
    events = [r["name"] for r in query(settings, "SELECT name FROM events WHERE name LIKE 'invoice.%'")]
    assert events == ["invoice.issued", "invoice.issued", "invoice.corrected"]


def test_invoice_needs_billing_details_and_a_paid_order(portal: tuple[str, Settings]) -> None:
    base_url, settings = portal
    unpaid = pay_new_order(settings, "acme", "casey@example.com", "Pending thing", 500, "usd", paid=False)
    paid = pay_new_order(settings, "acme", "casey@example.com", "Paid thing", 700, "usd")
    with Polar(access_token=api_token(settings, "acme", "casey@example.com"), base_url=base_url) as polar:
        orders = polar.customer_portal.orders
        with pytest.raises(OrderNotEligibleForInvoice):
            orders.generate_invoice(unpaid)
        with pytest.raises(MissingInvoiceBillingDetails) as missing:
            orders.generate_invoice(paid)
        orders.update(
            paid, billing_name="Casey Co", billing_address={"line1": "1 Rd", "city": "Austin", "country": "US"}
        )
        orders.generate_invoice(paid)
        url = orders.invoice(paid).url
    assert missing.value.error.detail == "Billing name and address are required to generate an invoice for this order."
    assert httpx.get(url).status_code == 200


def test_invoice_numbers_are_per_organization(portal: tuple[str, Settings]) -> None:
    base_url, settings = portal
    lumen_order = one(
        settings,
        "SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id "
        "WHERE c.email = 'marie.dubois@example.fr' AND o.billing_name IS NOT NULL",
    )["id"]
    with Polar(access_token=api_token(settings, "lumen", "marie.dubois@example.fr"), base_url=base_url) as polar:
        polar.customer_portal.orders.generate_invoice(lumen_order)
        number = polar.customer_portal.orders.get(lumen_order).invoice_number
    prefix = one(settings, "SELECT receipt_prefix FROM organizations WHERE slug = 'lumen'")[0]
    assert number == f"{prefix}-INV-0001"


@pytest.fixture
def browser(app: Litestar) -> Iterator[TestClient[Litestar]]:
    with TestClient(app, base_url="http://testserver.local") as client:
        client.follow_redirects = False
        yield client


def test_order_page_generates_and_downloads_invoices(browser: TestClient[Litestar], settings: Settings) -> None:
    name, token = new_session(settings, "acme", "alex@example.com")
    browser.cookies.set(name, token)
    order = order_id(settings, "acme-ord-alex-icons")
    path = f"/acme/portal/orders/{order}/invoice"
    assert browser.get(path).status_code == 404  # none yet
    refused = browser.post(path, data={})  # no CSRF token
    assert refused.status_code == 403
    made = browser.post(path, data={"_csrf_token": csrf_token(browser, "/acme/portal")})
    assert made.status_code == 303 and made.headers["location"] == path
    page = browser.get(path)
    assert page.status_code == 200
    html = BeautifulSoup(page.text, "html.parser")
    assert html.select_one("[data-field=invoice-number]").text == "ACME-INV-0001"
    assert html.select_one("[data-field=mark]").text == "Partially refunded"
    invoice_id = one(settings, "SELECT id FROM invoices WHERE order_id = ?", (order,))["id"]
    assert browser.get(f"/acme/portal/orders/{order}/invoices/{invoice_id}").status_code == 200
    # Another customer's session cannot open it.
    other_name, other_token = new_session(settings, "acme", "jordan@example.com")
    browser.cookies.set(other_name, other_token)  # the same cookie name: replaces alex's session
    assert browser.get(path).status_code == 404
    assert browser.get(f"/acme/portal/orders/{order}/invoices/{invoice_id}").status_code == 404


def test_partial_renders_generate_then_download(settings: Settings) -> None:
    from portal.templating import build_environment

    template = build_environment().get_template("_partials/invoice_actions.html")
    order = {"id": "o1", "status": "paid", "invoice_number": None, "billing_name": None, "billing_address_dict": None}
    customer = {"billing_name": None, "billing_address_dict": None}
    common = {"portal_root": "/acme/portal", "customer": customer}
    before = BeautifulSoup(template.render(order=order, csrf_input="<i>", **common), "html.parser")
    assert before.select_one("[data-action=generate-invoice]") is not None
    order["invoice_number"] = "ACME-INV-0001"
    after = BeautifulSoup(template.render(order=order, csrf_input="<i>", **common), "html.parser")
    assert after.select_one("[data-action=download-invoice]")["href"] == "/acme/portal/orders/o1/invoice"
    order["status"] = "pending"
    order["invoice_number"] = None
    assert not template.render(order=order, csrf_input="", **common).strip()


def test_page_uses_customer_billing_when_order_has_none(browser: TestClient[Litestar], settings: Settings) -> None:
    order = order_id(settings, "acme-ord-alex-pro-02")
    execute(settings, "UPDATE orders SET billing_name = NULL, billing_address = NULL WHERE id = ?", (order,))
    name, token = new_session(settings, "acme", "alex@example.com")
    browser.cookies.set(name, token)
    made = browser.post(
        f"/acme/portal/orders/{order}/invoice", data={"_csrf_token": csrf_token(browser, "/acme/portal")}
    )
    assert made.status_code == 303
    assert one(settings, "SELECT billing_name FROM orders WHERE id = ?", (order,))[0] == "Rivera Design LLC"


def test_order_page_shows_invoice_actions(browser: TestClient[Litestar], settings: Settings) -> None:
    name, token = new_session(settings, "acme", "alex@example.com")
    browser.cookies.set(name, token)
    order = order_id(settings, "acme-ord-alex-icons")
    page = BeautifulSoup(browser.get(f"/acme/portal/orders/{order}").text, "html.parser")
    form = page.select_one("[data-action=generate-invoice]").find_parent("form")
    assert form["action"] == f"/acme/portal/orders/{order}/invoice"
    token_field = form.select_one("input[name=_csrf_token]")
    made = browser.post(form["action"], data={"_csrf_token": token_field["value"]})
    assert made.status_code == 303
    page = BeautifulSoup(browser.get(f"/acme/portal/orders/{order}").text, "html.parser")
    assert page.select_one("[data-action=download-invoice]") is not None
