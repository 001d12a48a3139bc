"""No dead ends (issue 22): an invoice asked for without billing details leads to the billing form and back to
the invoice; fully refunded orders offer no new invoice and the billing hint shows only when details are missing;
an expired download link re-signs for its signed-in owner or leads back to Benefits in the seller's look; error
pages of a signed-in customer keep the organization's layout."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from litestar import Litestar
from litestar.testing import TestClient

from portal.db import connect_sync
from portal.settings import Settings
from tests.browser_helpers import csrf_token, new_session, one

pytestmark = pytest.mark.seeded  # data_dir: a copy of the demo seed (tests/conftest.py)


def soup(text: str) -> BeautifulSoup:
    return BeautifulSoup(text, "html.parser")


def sign_in(client: TestClient[Litestar], settings: Settings, email: str) -> None:
    name, token = new_session(settings, "acme", email)
    client.cookies.set(name, token)


def execute(settings: Settings, sql: str, params: tuple[object, ...] = ()) -> None:
    conn = connect_sync(settings.db_path)
    try:
        conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


def order_of(settings: Settings, external_id: str) -> str:
    return str(one(settings, "SELECT id FROM orders WHERE external_id = ?", (external_id,))["id"])


def test_invoice_without_billing_details_goes_through_the_form_and_back(client, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    order = order_of(settings, "acme-ord-sam-icons")
    execute(settings, "UPDATE orders SET billing_name = NULL, billing_address = NULL WHERE id = ?", (order,))
    execute(
        settings,
        "UPDATE customers SET billing_name = NULL, billing_address = NULL WHERE email = 'sam@example.com' "
        "AND organization_id = (SELECT id FROM organizations WHERE slug = 'acme')",
    )
    sign_in(client, settings, "sam@example.com")
    page = soup(client.get(f"/acme/portal/orders/{order}").text)
    assert page.select_one('[data-hint="billing-missing"]') is not None
    token = csrf_token(client, "/acme/portal")

    asked = client.post(f"/acme/portal/orders/{order}/invoice", data={"_csrf_token": token}, follow_redirects=False)
    assert asked.status_code == 303, asked.text[:300]
    assert asked.headers["location"] == f"/acme/portal/settings?done=invoice_needs_billing&for_order={order}"
    form_page = client.get(asked.headers["location"])
    assert form_page.status_code == 200
    assert "An invoice needs your billing name and address" in soup(form_page.text).select_one(".notice").get_text()
    form = soup(form_page.text).select_one("form.billing-form")
    assert form["action"] == f"/acme/portal/settings?for_order={order}"

    saved = client.post(
        form["action"],
        data={
            "_csrf_token": token,
            "billing_name": "Sam Example",
            "line1": "1 Main St",
            "postal_code": "10115",
            "city": "Berlin",
            "country": "DE",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303 and saved.headers["location"] == f"/acme/portal/orders/{order}/invoice"
    invoice = client.get(saved.headers["location"])
    assert invoice.status_code == 200 and "Sam Example" in invoice.text

    # A bad order id in the query is refused by name, never reflected as a URL.
    assert client.get("/acme/portal/settings?for_order=https://evil.example").status_code == 400


def test_refunded_orders_offer_no_new_invoice_and_hint_only_when_missing(client, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    sign_in(client, settings, "alex@example.com")  # Alex has billing details
    refunded = soup(client.get(f"/acme/portal/orders/{order_of(settings, 'acme-ord-alex-toolkit-2')}").text)
    assert refunded.select_one('[data-action="generate-invoice"]') is None
    paid = soup(client.get(f"/acme/portal/orders/{order_of(settings, 'acme-ord-alex-toolkit')}").text)
    assert paid.select_one('[data-action="generate-invoice"]') is not None
    assert paid.select_one('[data-hint="billing-missing"]') is None


def test_expired_download_link_resigns_for_its_owner_or_leads_back(client, settings: Settings, clock) -> None:  # type: ignore[no-untyped-def]
    sign_in(client, settings, "alex@example.com")
    page = soup(client.get("/acme/portal/benefits").text)
    link = page.select_one('[data-type="downloadables"] a[download]')["href"]
    clock.advance(3600)

    # Signed in as the owner: on to a fresh link, which downloads.
    again = client.get(link, follow_redirects=False)
    assert again.status_code == 303
    fresh = again.headers["location"]
    assert fresh.split("?")[0] == link.split("?")[0] and fresh != link
    assert client.get(fresh).status_code == 200

    # Signed out: the seller's page, back to Benefits (not an unbranded 404 with "Home" to /).
    client.cookies.clear()
    gone = client.get(link)
    assert gone.status_code == 404
    html = soup(gone.text)
    assert html.select_one(".brand").get_text(strip=True) == "Acme Software"
    assert html.select_one('[data-action="error-next"]')["href"] == "/acme/portal/benefits"
    assert html.find("a", href="/") is None
    assert "expired" in html.h1.get_text()


def test_signed_in_error_pages_keep_the_layout(client, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    sign_in(client, settings, "alex@example.com")
    missing = client.get("/acme/portal/orders/no-such-order")
    assert missing.status_code == 404
    html = soup(missing.text)
    assert html.select_one("nav.portal-nav") is not None
    assert "alex@example.com" in html.select_one(".account-email").get_text()
    assert html.select_one(".brand").get_text(strip=True) == "Acme Software"
    # Its sign-out button works (the CSRF field is filled in).
    logout = html.select_one('form[action="/acme/portal/logout"]')
    fields = {field["name"]: field["value"] for field in logout.find_all("input")}
    assert fields["_csrf_token"]
    out = client.post("/acme/portal/logout", data=fields, follow_redirects=False)
    assert out.status_code == 303
    # Signed out, the same error is the plain page.
    plain = client.get("/acme/portal/no-such-page")
    assert plain.status_code == 404 and soup(plain.text).select_one("nav.portal-nav") is None
