"""The console's Customers section on the demo seed (acme and lumen, with Sam a customer of both): search by every
kind (and never another organization's customer, by any kind), the customer page, and every action end to end: the
sign-in link opens the portal over HTTP, the emailed link arrives on a real SMTP server, sign out everywhere, email
change with its refusals."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html import unescape
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from portal.clock import Clock, iso, new_id
from portal.settings import Settings
from tests.apps import app_for
from tests.browser_helpers import serve
from tests.conftest import SMTPInbox, free_port
from tests.console_helpers import NOW, Team, audit_actions, console_cookie, make_team, plant_session, sql
from tests.signin_helpers import csrf, sign_in_browser

pytestmark = pytest.mark.seeded


class Shop:
    def __init__(self, settings: Settings, team: Team) -> None:
        self.team = team
        self.acme = team.acme_id
        (self.lumen,) = sql(settings, "SELECT id FROM organizations WHERE slug = 'lumen'")[0]
        self.ids = {
            (slug, email): str(cid)
            for slug, email, cid in sql(
                settings,
                "SELECT o.slug, c.email, c.id FROM customers c JOIN organizations o ON o.id = c.organization_id",
            )
        }
        self.alex = self.ids[("acme", "alex@example.com")]
        self.lena = self.ids[("lumen", "lena.schmidt@example.de")]
        # An invoice number on one order of each organization (the seed issues none).
        self.invoices = {}
        for slug, customer in (("acme", self.alex), ("lumen", self.lena)):
            (order_id, org_id) = sql(
                settings,
                "SELECT id, organization_id FROM orders WHERE customer_id = ? ORDER BY created_at LIMIT 1",
                (customer,),
            )[0]
            number = f"{slug.upper()}-INV-0007"
            sql(
                settings,
                "INSERT INTO invoices (id, organization_id, customer_id, order_id, invoice_number, billing_name, "
                "billing_address, snapshot, issued_at) VALUES (?, ?, ?, ?, ?, 'X', '{}', '{}', ?)",
                (new_id(), org_id, customer, order_id, number, iso(NOW)),
            )
            self.invoices[slug] = (number, order_id)
        # Processor links: a Stripe customer of acme's connection (made by make_team), a Stripe charge of lumen's.
        connections = "SELECT id FROM connector_connections WHERE organization_id = ?"
        (acme_connection,) = sql(settings, connections, (self.acme,))[0]
        lumen_connection = new_id()
        sql(
            settings,
            "INSERT INTO connector_connections (id, organization_id, processor, secrets, created_at) "
            "VALUES (?, ?, 'stripe', 'x', ?)",
            (lumen_connection, self.lumen, iso(NOW)),
        )
        sql(
            settings,
            "INSERT INTO connector_links (connection_id, kind, processor_id, portal_id) VALUES (?, 'customer', "
            "'cus_AcmeAlex', ?)",
            (acme_connection, self.alex),
        )
        (lena_order,) = sql(settings, "SELECT id FROM orders WHERE customer_id = ? LIMIT 1", (self.lena,))[0]
        sql(
            settings,
            "INSERT INTO connector_links (connection_id, kind, processor_id, portal_id) VALUES (?, 'charge', "
            "'ch_LumenLena', ?)",
            (lumen_connection, lena_order),
        )


@pytest.fixture
def shop(settings: Settings, client: TestClient[Litestar]) -> Shop:
    return Shop(settings, make_team(settings))


def _owner(client: TestClient[Litestar], settings: Settings, shop: Shop) -> None:
    console_cookie(client, settings, plant_session(settings, shop.team.owner))


def _hits(html: str) -> dict[str, str]:
    """customer id -> the row's HTML, from the search results table."""
    rows = re.findall(r'<tr>\s*<th scope="row"><a href="/console/acme/customers/([^"]+)">.*?</tr>', html, re.S)
    bodies = re.findall(r"(<tr>\s*<th scope=\"row\">.*?</tr>)", html, re.S)
    return dict(zip(rows, bodies, strict=True))


def _one(settings: Settings, statement: str, params: tuple[Any, ...] = ()) -> Any:
    return sql(settings, statement, params)[0][0]


def test_search_finds_a_customer_by_every_kind_and_says_what_matched(
    client: TestClient[Litestar], settings: Settings, shop: Shop
) -> None:
    _owner(client, settings, shop)
    alex = shop.alex
    receipt = _one(settings, "SELECT receipt_number FROM orders WHERE customer_id = ? LIMIT 1", (alex,))
    order_id, order_external = sql(
        settings, "SELECT id, external_id FROM orders WHERE customer_id = ? AND external_id IS NOT NULL", (alex,)
    )[0]
    sub_id, sub_external = sql(settings, "SELECT id, external_id FROM subscriptions WHERE customer_id = ?", (alex,))[0]
    key = _one(settings, "SELECT key FROM license_keys WHERE customer_id = ? LIMIT 1", (alex,))
    cases = [
        ("alex@example.com", "Email"),
        ("ALEX@Example.COM", "Email"),
        ("ale", "Email starts with"),
        ("alex rivera", "Name starts with"),
        ("Alex", "Name starts with"),
        ("acme-alex", "External ID"),
        (alex, "Customer ID"),
        (receipt, "Receipt number"),
        (shop.invoices["acme"][0], "Invoice number"),
        (order_id, "Order ID"),
        (order_external, "Order external ID"),
        (sub_id, "Subscription ID"),
        (sub_external, "Subscription external ID"),
        ("cus_AcmeAlex", "Processor ID"),
        (key[:9], "License key starts with"),
        (key[:9].lower(), "License key starts with"),
    ]
    for query, label in cases:
        page = client.get("/console/acme/customers", params={"q": query})
        assert page.status_code == 200, query
        hits = _hits(page.text)
        assert alex in hits, (query, list(hits))
        assert f'<span class="badge">{label}</span>' in hits[alex], (query, hits[alex])
    # A prefix finds every customer it starts: "a" is Alex's email and no other acme customer's.
    page = client.get("/console/acme/customers", params={"q": "s"}).text
    assert shop.ids[("acme", "sam@example.com")] in _hits(page)
    nothing = client.get("/console/acme/customers", params={"q": "zz-nobody"}).text
    assert "No customer matches" in nothing and not _hits(nothing)


def test_search_never_finds_another_organizations_customer(
    client: TestClient[Litestar], settings: Settings, shop: Shop
) -> None:
    _owner(client, settings, shop)
    lena = shop.lena
    receipt = _one(settings, "SELECT receipt_number FROM orders WHERE customer_id = ? LIMIT 1", (lena,))
    order_id, order_external = sql(
        settings, "SELECT id, external_id FROM orders WHERE customer_id = ? AND external_id IS NOT NULL", (lena,)
    )[0]
    sub_id, sub_external = sql(settings, "SELECT id, external_id FROM subscriptions WHERE customer_id = ?", (lena,))[0]
    key = _one(settings, "SELECT key FROM license_keys WHERE customer_id = ? LIMIT 1", (lena,))
    queries = [
        "lena.schmidt@example.de",
        "lena",
        "Lena Schmidt",
        "lumen-lena",
        lena,
        receipt,
        shop.invoices["lumen"][0],
        order_id,
        order_external,
        sub_id,
        sub_external,
        "ch_LumenLena",
        key[:10],
    ]
    for query in queries:
        page = client.get("/console/acme/customers", params={"q": query}).text
        assert _hits(page) == {}, query
        assert "No customer matches" in page, query
        results = page.split("</form>", 2)[2].split("</main>")[0]  # after the sign-out and search forms
        assert "lena.schmidt@example.de" not in results.replace(f"“{query}”", ""), query
    # Sam is a customer of both: acme's seller finds acme's Sam only.
    page = client.get("/console/acme/customers", params={"q": "sam@example.com"}).text
    assert list(_hits(page)) == [shop.ids[("acme", "sam@example.com")]]
    # And lumen's customer page is a 404 in acme's console.
    assert client.get(f"/console/acme/customers/{lena}").status_code == 404


def test_newest_customers_page_by_page(client: TestClient[Litestar], settings: Settings, shop: Shop) -> None:
    for number in range(30):
        sql(
            settings,
            "INSERT INTO customers (id, organization_id, email, created_at) VALUES (?, ?, ?, ?)",
            (new_id(), shop.acme, f"bulk{number:02d}@acme.example", f"2099-01-01T00:00:{number:02d}.000000Z"),
        )
    _owner(client, settings, shop)
    first = client.get("/console/acme/customers").text
    assert "bulk29@acme.example" in first and "bulk05@acme.example" in first and "bulk04@acme.example" not in first
    assert 'href="/console/acme/customers?page=2"' in first
    second = client.get("/console/acme/customers", params={"page": 2}).text
    assert "bulk04@acme.example" in second and "bulk29@acme.example" not in second
    assert "lena.schmidt" not in first + second
    assert client.get("/console/acme/customers", params={"page": 0}).status_code == 400


def test_customer_page_shows_profile_orders_subscriptions_grants_keys_sessions_emails_timeline(
    client: TestClient[Litestar], settings: Settings, shop: Shop
) -> None:
    alex = shop.alex
    sign_in_browser(client, settings, "acme", shop.acme, alex)
    sql(
        settings,
        "INSERT INTO email_outbox (id, organization_id, customer_id, kind, to_address, status, next_attempt_at, "
        "created_at) VALUES (?, ?, ?, 'receipt', 'alex@example.com', 'sent', ?, ?)",
        (new_id(), shop.acme, alex, iso(NOW), iso(NOW)),
    )
    _owner(client, settings, shop)
    page = client.get(f"/console/acme/customers/{alex}")
    assert page.status_code == 200
    html = page.text
    assert "Alex Rivera" in html and "alex@example.com" in html and "acme-alex" in html
    for (order_id,) in sql(settings, "SELECT id FROM orders WHERE customer_id = ?", (alex,)):
        assert f'href="/console/acme/orders/{order_id}"' in html
    for (sub_id,) in sql(settings, "SELECT id FROM subscriptions WHERE customer_id = ?", (alex,)):
        assert f'href="/console/acme/subscriptions/{sub_id}"' in html
    for key_id, display in sql(settings, "SELECT id, display_key FROM license_keys WHERE customer_id = ?", (alex,)):
        assert f'href="/console/acme/license-keys/{key_id}"' in html and display in html
    for (label,) in sql(
        settings,
        "SELECT a.label FROM license_key_activations a JOIN license_keys k ON k.id = a.license_key_id "
        "WHERE k.customer_id = ?",
        (alex,),
    ):
        assert label in unescape(html)
    assert f'href="/console/acme/customers/{alex}/benefits"' in html
    for (description,) in sql(
        settings,
        "SELECT b.description FROM benefit_grants g JOIN benefits b ON b.id = g.benefit_id WHERE g.customer_id = ?",
        (alex,),
    ):
        assert description in unescape(html)
    sessions = html.split('id="sessions-title"')[1].split("</section>")[0]
    assert "Browser" in sessions and "No active sessions" not in sessions
    emails = html.split('id="emails-title"')[1].split("</section>")[0]
    assert "<code>receipt</code>" in emails
    # Statuses in the seller's words, not the stored codes (the same labels as the emails and subscription pages).
    assert '<span class="badge">Sent</span>' in emails and ">sent<" not in emails
    assert re.search(r'<span class="badge">(Active|Trialing|Past due|Ended)</span>', html)
    assert not re.search(r'<span class="badge">(active|trialing|granted|revoked|disabled)</span>', html)
    orders = html.split('id="orders-title"')[1].split("</section>")[0]
    assert re.search(r'<span class="badge[^"]*">(Paid|Refunded|Partially refunded)</span>', orders)
    assert not re.search(r'<span class="badge[^"]*">(paid|refunded|partially_refunded|pending)</span>', orders)
    timeline = html.split('id="timeline-title"')[1].split("</section>")[0]
    times = re.findall(r'<time datetime="([^"]+)"', timeline)
    assert len(times) > 10 and times == sorted(times, reverse=True)
    assert "Signed in" in timeline and "Order " in timeline and "Email receipt" in timeline
    # No dead links. The order, subscription, license-key and benefits pages belong to other sections of the console
    # built separately (issue 21): they 404 on this branch, so they are left out here.
    elsewhere = re.compile(
        r"^/console/acme/(orders|subscriptions|license-keys)/|^/console/acme/customers/[^/]+/benefits$"
    )
    for href in sorted(set(re.findall(r'href="(/[^"]*)"', html))):
        if elsewhere.match(href) or href.startswith("/static/"):
            continue
        assert client.get(unescape(href)).status_code == 200, href
    # Nothing of Sam's other organization on acme's Sam.
    sam = client.get(f"/console/acme/customers/{shop.ids[('acme', 'sam@example.com')]}").text
    assert "lumen-sam" not in sam


def test_the_sign_in_link_opens_the_portal_over_http_and_is_shown_once(
    client: TestClient[Litestar], settings: Settings, shop: Shop
) -> None:
    _owner(client, settings, shop)
    page = client.post(f"/console/acme/customers/{shop.alex}/sign-in-link", data={"_csrf_token": csrf(client)})
    assert page.status_code == 200
    link = re.search(r'id="sign-in-link" type="text" readonly value="([^"]+)"', page.text)
    assert link is not None
    url = link.group(1).replace("&amp;", "&")
    assert url.startswith("http://testserver.local/acme/portal?customer_session_token=polar_cst_")
    assert "polar_cst_" not in client.get(f"/console/acme/customers/{shop.alex}").text  # shown once
    entry = audit_actions(settings, shop.acme)[-1]
    assert entry[:2] == ("customer.sign_in_link", "owner@acme.example") and entry[3] == shop.alex
    # A fresh browser (no cookies) on the served app: the link signs it in as Alex.
    port = free_port()
    served = app_for(settings, clock=Clock())
    with serve(served, port) as base, httpx.Client(base_url=base, follow_redirects=True) as browser:
        opened = browser.get(url.replace("http://testserver.local", ""))
        assert opened.status_code == 200
        assert "alex@example.com" in opened.text and "Sign out" in opened.text
        assert browser.get("/acme/portal/orders").status_code == 200


@pytest.fixture
def mail_app(smtp_settings: Settings) -> Iterator[TestClient[Litestar]]:
    with TestClient(app_for(smtp_settings, clock=Clock()), base_url="http://testserver.local") as test_client:
        yield test_client


def test_the_emailed_sign_in_link_arrives_and_signs_in(
    smtp_settings: Settings, smtp_server: tuple[SMTPInbox, int], mail_app: TestClient[Litestar]
) -> None:
    shop = Shop(smtp_settings, make_team(smtp_settings))
    inbox, _ = smtp_server
    client = mail_app
    _owner(client, smtp_settings, shop)
    done = client.post(
        f"/console/acme/customers/{shop.alex}/email-sign-in-link",
        data={"_csrf_token": csrf(client)},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"].endswith("?done=link_emailed")
    [message] = inbox.wait_for(1, timeout=20)
    assert message["To"] == "alex@example.com"
    assert message["Subject"] == "Your sign-in link for Acme Tools" or "sign-in link" in message["Subject"]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    url = re.search(r"http://testserver\.local(/acme/portal/link\?token=\S+)", text)
    assert url is not None
    assert audit_actions(smtp_settings, shop.acme)[-1][0] == "customer.email_sign_in_link"
    assert "<code>sign_in_link</code>" in client.get(f"/console/acme/customers/{shop.alex}").text
    # The link's Continue page signs a fresh browser in (no cookies: not the seller's).
    client.cookies.clear()
    continue_page = client.get(url.group(1))
    assert continue_page.status_code == 200
    token = re.search(r'name="token" value="([^"]+)"', continue_page.text)
    assert token is not None
    signed_in = client.post(
        "/acme/portal/link", data={"token": token.group(1), "_csrf_token": csrf(client)}, follow_redirects=True
    )
    assert signed_in.status_code == 200 and "alex@example.com" in signed_in.text


def test_sign_out_everywhere_revokes_browser_sessions_and_tokens(
    client: TestClient[Litestar], settings: Settings, shop: Shop
) -> None:
    sign_in_browser(client, settings, "acme", shop.acme, shop.alex)
    assert client.get("/acme/portal/orders", follow_redirects=False).status_code == 200
    _owner(client, settings, shop)
    minted = client.post(f"/console/acme/customers/{shop.alex}/sign-in-link", data={"_csrf_token": csrf(client)})
    token = re.search(r"customer_session_token=(polar_cst_[^&\"]+)", minted.text)
    assert token is not None
    bearer = {"Authorization": f"Bearer {token.group(1)}"}
    assert client.get("/v1/customer-portal/customers/me", headers=bearer).status_code == 200
    done = client.post(
        f"/console/acme/customers/{shop.alex}/revoke-sessions",
        data={"_csrf_token": csrf(client)},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert client.get("/acme/portal/orders", follow_redirects=False).status_code == 303
    assert client.get("/v1/customer-portal/customers/me", headers=bearer).status_code == 401
    entry = [e for e in audit_actions(settings, shop.acme) if e[0] == "customer.revoke_sessions"]
    assert entry and entry[-1][3] == shop.alex
    (details,) = sql(settings, "SELECT details FROM seller_audit_log WHERE action = 'customer.revoke_sessions'")[0]
    assert json.loads(details)["revoked"] == 2
    page = client.get(f"/console/acme/customers/{shop.alex}?done=sessions_revoked").text
    assert "Every session of this customer is signed out." in page and "No active sessions." in page


def test_change_email_validates_refuses_a_taken_address_and_signs_the_customer_out(
    client: TestClient[Litestar], settings: Settings, shop: Shop
) -> None:
    sign_in_browser(client, settings, "acme", shop.acme, shop.alex)
    _owner(client, settings, shop)
    url = f"/console/acme/customers/{shop.alex}/email"
    bad = client.post(url, data={"email": "not an email", "_csrf_token": csrf(client)})
    assert bad.status_code == 400 and 'id="customer-email-error"' in bad.text and 'value="not an email"' in bad.text
    taken = client.post(url, data={"email": "Jordan@Example.com", "_csrf_token": csrf(client)})
    assert taken.status_code == 409 and 'id="customer-email-error"' in taken.text
    assert "Another customer of this organization has this email address." in taken.text
    # Lumen's customer's address is not acme's: it is free here.
    assert _one(settings, "SELECT email FROM customers WHERE id = ?", (shop.alex,)) == "alex@example.com"
    assert not [e for e in audit_actions(settings, shop.acme) if e[0] == "customer.change_email"]
    form = {"email": "lena.schmidt@example.de", "_csrf_token": csrf(client)}
    done = client.post(url, data=form, follow_redirects=False)
    assert done.status_code == 303
    assert _one(settings, "SELECT email FROM customers WHERE id = ?", (shop.alex,)) == "lena.schmidt@example.de"
    assert _one(settings, "SELECT email_verified FROM customers WHERE id = ?", (shop.alex,)) == 0
    assert client.get("/acme/portal/orders", follow_redirects=False).status_code == 303  # signed out
    entry = [e for e in audit_actions(settings, shop.acme) if e[0] == "customer.change_email"]
    assert len(entry) == 1 and entry[0][3] == shop.alex
