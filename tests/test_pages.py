"""Portal pages over HTTP (sync TestClient): overview, orders, subscriptions (cancel/resume/change plan), benefits
(activations, signed downloads, notes), billing details, empty states and 404s — with structural assertions."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime

import msgspec
import pytest
from bs4 import BeautifulSoup
from litestar import Litestar
from litestar.testing import TestClient

from portal.clock import Clock
from portal.settings import Settings
from tests.browser_helpers import (
    csrf_token,
    customer_id,
    new_session,
    one,
    pay_new_order,
    query,
)

pytestmark = pytest.mark.seeded  # data_dir: a copy of the demo seed (tests/conftest.py)


@pytest.fixture
def client(app: Litestar) -> Iterator[TestClient[Litestar]]:
    with TestClient(app, base_url="http://testserver.local") as test_client:
        test_client.follow_redirects = False
        yield test_client


def sign_in(client: TestClient[Litestar], settings: Settings, slug: str, email: str, **kw: object) -> None:
    name, token = new_session(settings, slug, email, **kw)  # type: ignore[arg-type]
    client.cookies.set(name, token)


def soup(response) -> BeautifulSoup:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text[:500]
    return BeautifulSoup(response.text, "html.parser")


def sub_id(settings: Settings, external_id: str) -> str:
    return one(settings, "SELECT id FROM subscriptions WHERE external_id = ?", (external_id,))["id"]


def order_id(settings: Settings, external_id: str) -> str:
    return one(settings, "SELECT id FROM orders WHERE external_id = ?", (external_id,))["id"]


def events(settings: Settings, name: str) -> list:
    return query(settings, "SELECT * FROM events WHERE name = ? ORDER BY created_at", (name,))


def post(client: TestClient[Litestar], path: str, data: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return client.post(path, data={"_csrf_token": csrf_token(client, "/acme/portal"), **(data or {})})


def test_overview_shows_subscriptions_orders_benefits(client, settings) -> None:
    sign_in(client, settings, "acme", "alex@example.com", return_url="https://acme.example/account")
    page = soup(client.get("/acme/portal"))
    nav = [a.get_text(strip=True) for a in page.select("nav.portal-nav a")]
    assert nav == ["Overview", "Orders", "Subscriptions", "Benefits", "Billing details"]
    assert page.select_one('nav.portal-nav a[aria-current="page"]').get_text(strip=True) == "Overview"
    assert "alex@example.com" in page.select_one(".account-email").get_text()
    logout = page.select_one('form[action="/acme/portal/logout"]')
    assert logout["method"] == "post" and logout.select_one('input[name="_csrf_token"]')
    back = page.select_one("a.back-link")
    assert back["href"] == "https://acme.example/account" and "Acme Software" in back.get_text()
    cards = page.select('section[aria-labelledby="subs-title"] .row-card')
    assert cards and "Next charge" in cards[0].get_text() and "$12.00" in cards[0].get_text()
    assert len(page.select("table.orders tbody tr")) == 5
    assert page.select('section[aria-labelledby="benefits-title"] li')
    assert page.select_one('script[src="/static/portal.js"]') is not None
    assert not page.select("script:not([src])"), "no inline script (CSP)"


def test_orders_list_detail_and_pagination(client, settings) -> None:
    sign_in(client, settings, "acme", "alex@example.com")
    page = soup(client.get("/acme/portal/orders"))
    rows = page.select("table.orders tbody tr")
    total = one(
        settings,
        "SELECT COUNT(*) AS n FROM orders WHERE customer_id = ?",
        (customer_id(settings, "acme", "alex@example.com"),),
    )["n"]
    assert len(rows) == min(total, 20)
    dates = [row.select("td")[0].get_text() for row in rows]
    assert all(dates)
    statuses = {row.select_one(".badge").get_text() for row in rows}
    assert {"Paid", "Refunded", "Partially refunded"} <= statuses
    empty = soup(client.get("/acme/portal/orders?page=99"))
    assert empty.select_one(".empty") is not None
    detail = soup(client.get(f"/acme/portal/orders/{order_id(settings, 'acme-ord-alex-icons')}"))
    assert detail.select("table.items tbody tr")
    assert detail.select_one('[data-field="total"]').get_text().startswith("$")
    assert detail.select("table.refunds tbody tr"), "the partial refund is listed"
    assert detail.select_one("address.bill-to") is not None
    assert detail.select_one('a[href$="/receipt"]') is not None
    assert client.get("/acme/portal/orders/not-an-order").status_code == 404


def test_cancel_then_resume_records_events(client, settings) -> None:
    sign_in(client, settings, "acme", "alex@example.com")
    sid = sub_id(settings, "acme-sub-alex-pro")
    detail = soup(client.get(f"/acme/portal/subscriptions/{sid}"))
    # Cancelling is its own step (issue 22): the detail page links to it; the survey is on that page.
    assert not detail.select('input[name="cancellation_reason"]')
    assert detail.select_one('[data-action="start-cancel"]')["href"] == f"/acme/portal/subscriptions/{sid}/cancel"
    page = soup(client.get(f"/acme/portal/subscriptions/{sid}/cancel"))
    assert page.select_one(f'form[action="/acme/portal/subscriptions/{sid}/cancel"] button.danger') is not None
    reasons = [i["value"] for i in page.select('input[name="cancellation_reason"]')]
    assert not any(i.has_attr("checked") for i in page.select('input[name="cancellation_reason"]'))
    assert sorted(reasons) == sorted(
        [
            "customer_service",
            "low_quality",
            "missing_features",
            "switched_service",
            "too_complex",
            "too_expensive",
            "unused",
            "other",
        ]
    )
    response = post(
        client,
        f"/acme/portal/subscriptions/{sid}/cancel",
        {"cancellation_reason": "too_expensive", "cancellation_comment": "Budget cuts"},
    )
    assert response.status_code == 303 and response.headers["location"].endswith("?done=canceled")
    row = one(settings, "SELECT * FROM subscriptions WHERE id = ?", (sid,))
    assert row["cancel_at_period_end"] == 1 and row["ends_at"] == row["current_period_end"]
    assert (
        row["customer_cancellation_reason"] == "too_expensive" and row["customer_cancellation_comment"] == "Budget cuts"
    )
    assert row["status"] == "active"
    page = soup(client.get(response.headers["location"]))
    assert page.select_one('[role="status"]') is not None
    assert "Ends on" in page.select_one('[data-field="next"]').get_text()
    assert page.select_one(f'form[action="/acme/portal/subscriptions/{sid}/uncancel"]') is not None
    assert page.select_one(f'form[action="/acme/portal/subscriptions/{sid}/cancel"]') is None
    # One badge saying when it ends, not "Active" + "Canceling".
    badges = page.select(".section-head .badge")
    assert len(badges) == 1 and badges[0].get_text().startswith("Cancels on ")
    # The cancel step of a canceling subscription leads back to it.
    again = client.get(f"/acme/portal/subscriptions/{sid}/cancel", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == f"/acme/portal/subscriptions/{sid}"
    # canceling twice is refused (409 page) and writes nothing
    assert post(client, f"/acme/portal/subscriptions/{sid}/cancel").status_code == 409
    response = post(client, f"/acme/portal/subscriptions/{sid}/uncancel")
    assert response.status_code == 303
    row = one(settings, "SELECT * FROM subscriptions WHERE id = ?", (sid,))
    assert row["cancel_at_period_end"] == 0 and row["ends_at"] is None and row["customer_cancellation_reason"] is None
    assert [e["subject_id"] for e in events(settings, "subscription.canceled")] == [sid]
    assert len(events(settings, "subscription.uncanceled")) == 1
    data = msgspec.json.decode(events(settings, "subscription.canceled")[0]["data"])
    assert data["reason"] == "too_expensive"


def test_cancel_rejects_unknown_reason(client, settings) -> None:
    sign_in(client, settings, "acme", "alex@example.com")
    sid = sub_id(settings, "acme-sub-alex-pro")
    assert post(client, f"/acme/portal/subscriptions/{sid}/cancel", {"cancellation_reason": "bored"}).status_code == 422
    assert one(settings, "SELECT cancel_at_period_end FROM subscriptions WHERE id = ?", (sid,))[0] == 0


def test_change_plan_with_confirmation(client, settings) -> None:
    sign_in(client, settings, "acme", "alex@example.com")
    sid = sub_id(settings, "acme-sub-alex-pro")
    choose = soup(client.get(f"/acme/portal/subscriptions/{sid}/change-plan"))
    options = {i["value"] for i in choose.select('input[name="product_id"]')}
    assert not any(i.has_attr("checked") for i in choose.select('input[name="product_id"]')), "nothing pre-selected"
    yearly = one(settings, "SELECT id FROM products WHERE external_id = 'acme-pro-yearly'")["id"]
    monthly = one(settings, "SELECT id FROM products WHERE external_id = 'acme-pro-monthly'")["id"]
    one_time = one(settings, "SELECT id FROM products WHERE external_id = 'acme-toolkit'")["id"]
    assert yearly in options and monthly not in options and one_time not in options
    confirm = soup(client.get(f"/acme/portal/subscriptions/{sid}/change-plan/confirm?product_id={yearly}"))
    assert "Acme Pro" in confirm.select_one('[data-field="new-plan"]').get_text()
    assert "$120.00" in confirm.select_one('[data-field="new-price"]').get_text()
    assert confirm.select_one('[data-field="old-interval"]').get_text(strip=True) == "month"
    assert confirm.select_one('[data-field="new-interval"]').get_text(strip=True) == "year"
    # Benefits gained and lost; a monthly→yearly change bills a year from the end of the paid month.
    assert "cloud render credits" in confirm.select_one('[data-field="gained"]').get_text()
    assert confirm.select_one('[data-field="lost"]') is None
    end = one(settings, "SELECT current_period_end FROM subscriptions WHERE id = ?", (sid,))[0]
    start = datetime.fromisoformat(end.replace("Z", "+00:00"))
    period = confirm.select_one('[data-field="next-period"]').get_text(" ", strip=True)
    assert f"{start:%b} {start.day}, {start.year} – " in period and f", {start.year + 1}." in period
    assert one(settings, "SELECT product_id FROM subscriptions WHERE id = ?", (sid,))[0] == monthly, (
        "nothing changes before confirming"
    )
    assert client.get(f"/acme/portal/subscriptions/{sid}/change-plan/confirm?product_id={one_time}").status_code == 404
    assert post(client, f"/acme/portal/subscriptions/{sid}/change-plan", {"product_id": one_time}).status_code == 404
    response = post(client, f"/acme/portal/subscriptions/{sid}/change-plan", {"product_id": yearly})
    assert response.status_code == 303
    row = one(settings, "SELECT * FROM subscriptions WHERE id = ?", (sid,))
    assert row["product_id"] == yearly and row["amount"] == 12000 and row["recurring_interval"] == "year"
    # the yearly plan adds cloud credits: granted to the subscription now
    credits = query(
        settings,
        "SELECT g.id FROM benefit_grants g JOIN benefits b ON b.id = g.benefit_id "
        "WHERE g.subscription_id = ? AND b.external_id = 'acme-cloud-credits' AND g.revoked_at IS NULL",
        (sid,),
    )
    assert len(credits) == 1
    assert len(events(settings, "subscription.plan_changed")) == 1
    # And back: going to the monthly plan says what is lost.
    back = soup(client.get(f"/acme/portal/subscriptions/{sid}/change-plan/confirm?product_id={monthly}"))
    assert "cloud render credits" in back.select_one('[data-field="lost"]').get_text()


def test_change_plan_refused_when_org_disallows(client, settings) -> None:
    from portal.db import connect_sync

    conn = connect_sync(settings.db_path)
    conn.execute("UPDATE organizations SET allow_plan_change = 0 WHERE slug = 'acme'")
    conn.close()
    sign_in(client, settings, "acme", "alex@example.com")
    sid = sub_id(settings, "acme-sub-alex-pro")
    page = soup(client.get(f"/acme/portal/subscriptions/{sid}"))
    assert page.select_one('a[href$="/change-plan"]') is None
    assert client.get(f"/acme/portal/subscriptions/{sid}/change-plan").status_code == 404
    yearly = one(settings, "SELECT id FROM products WHERE external_id = 'acme-pro-yearly'")["id"]
    assert post(client, f"/acme/portal/subscriptions/{sid}/change-plan", {"product_id": yearly}).status_code == 400
    assert not events(settings, "subscription.plan_changed")


def test_benefits_page_keys_activations_downloads_notes(client, settings) -> None:
    sign_in(client, settings, "acme", "alex@example.com")
    page = soup(client.get("/acme/portal/benefits"))
    keys = page.select("code.key")
    assert keys and all(k.get_text().startswith("ACME") for k in keys)
    assert page.select("button[data-copy][hidden]"), "copy buttons appear only with JavaScript"
    note = page.select_one('[data-type="custom"] .note')
    link = note.select_one("a")
    assert link["href"] == "https://acme.example/docs/quick-start" and set(link["rel"]) == {"noopener", "nofollow"}
    assert page.select_one('[data-type="discord"] a[href="https://discord.gg/acme-pro"]') is not None
    files = page.select('[data-type="downloadables"] a[download]')
    assert files and all("sig=" in a["href"] for a in files)


def test_deactivate_activation(client, settings) -> None:
    sign_in(client, settings, "acme", "alex@example.com")
    page = soup(client.get("/acme/portal/benefits"))
    # Deactivating asks first (issue 22): a link to a confirmation page, whose form does it.
    assert not page.select('form[action$="/deactivate"]')
    links = page.select('a[data-action="deactivate"]')
    assert links, "the toolkit key allows customer deactivation"
    confirm = soup(client.get(links[0]["href"]))
    forms = confirm.select('form[action$="/deactivate"]')
    action = forms[0]["action"]
    assert action == links[0]["href"] and confirm.select_one("h1").get_text().startswith("Deactivate ")
    activation = action.split("/activations/")[1].split("/")[0]
    response = post(client, action)
    assert response.status_code == 303
    assert not query(settings, "SELECT id FROM license_key_activations WHERE id = ?", (activation,))
    assert len(events(settings, "license_key.deactivated")) == 1
    assert post(client, action).status_code == 404


def test_deactivate_refused_when_benefit_disallows(client, settings) -> None:
    sign_in(client, settings, "acme", "alex@example.com")
    rows = query(
        settings,
        "SELECT a.id, k.id AS key_id FROM license_key_activations a JOIN license_keys k ON k.id = a.license_key_id "
        "JOIN benefits b ON b.id = k.benefit_id WHERE b.external_id = 'acme-pro-license' AND k.customer_id = ?",
        (customer_id(settings, "acme", "alex@example.com"),),
    )
    if not rows:
        pytest.skip("demo seed has no pro activations for alex")
    path = f"/acme/portal/benefits/license-keys/{rows[0]['key_id']}/activations/{rows[0]['id']}/deactivate"
    assert post(client, path).status_code == 400
    assert query(settings, "SELECT id FROM license_key_activations WHERE id = ?", (rows[0]["id"],))


def test_download_streams_file_and_counts(client, settings) -> None:
    sign_in(client, settings, "acme", "alex@example.com")
    page = soup(client.get("/acme/portal/benefits"))
    link = page.select_one('[data-type="downloadables"] a[download]')["href"]
    file_id = link.split("?")[0].rsplit("/", 1)[1]
    file = one(settings, "SELECT * FROM files WHERE id = ?", (file_id,))
    client.cookies.clear()  # the signed link works without the session
    response = client.get(link)
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == file["checksum_sha256_hex"]
    assert response.headers["content-length"] == str(file["size"])
    assert response.headers["content-disposition"].startswith("attachment")
    assert response.headers["content-type"].startswith(file["mime_type"])
    assert len(events(settings, "file.downloaded")) == 1
    tampered = link.replace(file_id, "0" * len(file_id))
    assert client.get(tampered).status_code == 404
    assert client.get(link.split("?")[0]).status_code == 404
    assert client.get(link.replace("/acme/", "/lumen/")).status_code == 404
    assert len(events(settings, "file.downloaded")) == 1


def test_download_link_expires_and_revoked_grant_cannot_download(client, settings, clock) -> None:
    sign_in(client, settings, "acme", "alex@example.com")
    page = soup(client.get("/acme/portal/benefits"))
    link = page.select_one('[data-type="downloadables"] a[download]')["href"]
    grant_id = link.split("/downloads/")[1].split("/")[0]
    clock.advance(3600)
    # Expired: its signed-in owner is sent on to a fresh link (issue 22); the old one itself downloads nothing.
    expired = client.get(link, follow_redirects=False)
    assert expired.status_code == 303 and expired.headers["location"] != link
    clock.advance(-3600)
    from portal.db import connect_sync

    conn = connect_sync(settings.db_path)
    conn.execute("UPDATE benefit_grants SET revoked_at = '2020-01-01T00:00:00.000000Z' WHERE id = ?", (grant_id,))
    conn.close()
    assert client.get(link).status_code == 404
    assert not events(settings, "file.downloaded")


def test_billing_details_validation_and_snapshot(client, settings) -> None:
    sign_in(client, settings, "acme", "alex@example.com")
    form = soup(client.get("/acme/portal/settings"))
    assert form.select_one('select[name="country"] option[value="DE"]') is not None
    response = post(
        client,
        "/acme/portal/settings",
        {"billing_name": "X", "line1": "1 Road", "city": "", "country": "ZZ", "tax_id": "<bad>"},
    )
    assert response.status_code == 400
    page = BeautifulSoup(response.text, "html.parser")
    invalid = {el["name"] for el in page.select('[aria-invalid="true"]')}
    assert invalid == {"city", "country"}  # a tax ID is checked against a country once there is one
    response = post(
        client,
        "/acme/portal/settings",
        {"billing_name": "X", "line1": "1 Road", "city": "", "country": "DE", "tax_id": "<bad>"},
    )
    assert response.status_code == 400
    page = BeautifulSoup(response.text, "html.parser")
    invalid = {el["name"] for el in page.select('[aria-invalid="true"]')}
    assert invalid == {"city", "tax_id"}
    assert page.select_one("#city-error").get_text(strip=True)
    assert page.select_one('input[name="line1"]')["value"] == "1 Road", "input is kept"
    old_receipt = order_id(settings, "acme-ord-alex-toolkit")
    before = client.get(f"/acme/portal/orders/{old_receipt}/receipt").text
    response = post(
        client,
        "/acme/portal/settings",
        {
            "billing_name": "Alex Corp Ltd",
            "line1": "9 Harbour St",
            "postal_code": "2000",
            "city": "Sydney",
            "country": "AU",
            "tax_id": "51 824 753 556",
        },
    )
    assert response.status_code == 303
    row = one(
        settings,
        "SELECT billing_name, billing_address, tax_id FROM customers WHERE id = ?",
        (customer_id(settings, "acme", "alex@example.com"),),
    )
    assert row["billing_name"] == "Alex Corp Ltd" and msgspec.json.decode(row["billing_address"])["country"] == "AU"
    new_order = pay_new_order(settings, "acme", "alex@example.com", "Acme Icons", 1900, "usd")
    new = soup(client.get(f"/acme/portal/orders/{new_order}/receipt"))
    bill_to = new.select_one('[data-field="bill-to"]').get_text(" ", strip=True)
    assert "Alex Corp Ltd" in bill_to and "Australia" in bill_to and "51824753556" in bill_to
    assert client.get(f"/acme/portal/orders/{old_receipt}/receipt").text == before
    assert len(events(settings, "customer.billing_updated")) == 1


def test_empty_states(client, settings) -> None:
    from portal.customers.service import CustomerInput, create_customer
    from tests.browser_helpers import _with_db, org_id, run

    organization = org_id(settings, "acme")

    async def work(db):  # type: ignore[no-untyped-def]
        async with db.write() as tx:
            await create_customer(tx, organization, CustomerInput(email="new@example.com"), now=Clock().now())

    run(_with_db(settings, work))
    sign_in(client, settings, "acme", "new@example.com")
    for path in ["/acme/portal", "/acme/portal/orders", "/acme/portal/subscriptions", "/acme/portal/benefits"]:
        page = soup(client.get(path))
        assert page.select(".empty"), path


def test_other_customers_objects_are_404_like_missing(client, settings) -> None:
    sign_in(client, settings, "acme", "sam@example.com")
    alex_order = order_id(settings, "acme-ord-alex-icons")
    alex_sub = sub_id(settings, "acme-sub-alex-pro")
    missing = client.get("/acme/portal/orders/00000000-0000-4000-8000-000000000000")
    theirs = client.get(f"/acme/portal/orders/{alex_order}")
    assert missing.status_code == theirs.status_code == 404
    assert (
        BeautifulSoup(missing.text, "html.parser").select_one("main").get_text()
        == BeautifulSoup(theirs.text, "html.parser").select_one("main").get_text()
    )
    assert client.get(f"/acme/portal/orders/{alex_order}/receipt").status_code == 404
    assert client.get(f"/acme/portal/subscriptions/{alex_sub}").status_code == 404
    page = BeautifulSoup(theirs.text, "html.parser")
    assert "Acme Software" in page.select_one(".brand").get_text(), "error page in the org's layout"
