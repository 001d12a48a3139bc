"""Customer flows (issue 22) over HTTP: benefits grouped by the subscription or order that granted them, past
benefits collapsed, and the copy-button strings of portal.js rendered by the page in the customer's language."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup

from portal.settings import Settings
from tests.browser_helpers import new_session, one

pytestmark = pytest.mark.seeded  # data_dir: a copy of the demo seed (tests/conftest.py)


def page(client, path: str) -> BeautifulSoup:  # type: ignore[no-untyped-def]
    response = client.get(path)
    assert response.status_code == 200, response.text[:300]
    return BeautifulSoup(response.text, "html.parser")


def test_benefits_are_grouped_by_what_granted_them(client, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    name, token = new_session(settings, "acme", "alex@example.com")
    client.cookies.set(name, token)
    html = page(client, "/acme/portal/benefits")
    groups = html.select("section.benefit-group")
    assert len(groups) >= 2
    sub = one(settings, "SELECT id FROM subscriptions WHERE external_id = 'acme-sub-alex-pro'")["id"]
    sub_group = html.select_one(f'section.benefit-group h2 a[href="/acme/portal/subscriptions/{sub}"]')
    assert sub_group is not None and sub_group.get_text(strip=True).startswith("Acme Pro")
    section = sub_group.find_parent("section", class_="benefit-group")
    assert section["data-group"] == "subscription" and section.select("section.benefit")
    # Every live grant sits in exactly one group, each under its product's heading.
    assert len(html.select("section.benefit-group section.benefit")) == len(html.select("section.benefit"))
    assert any(group["data-group"] == "order" for group in groups)


def test_past_benefits_are_collapsed(client, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    from portal.db import connect_sync

    grant = one(
        settings,
        "SELECT g.id FROM benefit_grants g JOIN customers c ON c.id = g.customer_id "
        "WHERE c.email = 'alex@example.com' AND g.revoked_at IS NULL LIMIT 1",
    )["id"]
    conn = connect_sync(settings.db_path)
    conn.execute("UPDATE benefit_grants SET revoked_at = '2026-01-01T00:00:00.000000Z' WHERE id = ?", (grant,))
    conn.commit()
    conn.close()
    name, token = new_session(settings, "acme", "alex@example.com")
    client.cookies.set(name, token)
    html = page(client, "/acme/portal/benefits")
    details = html.select_one("#past-benefits details")
    assert details is not None and not details.has_attr("open")
    assert details.select_one("summary").get_text(" ", strip=True).startswith("Past benefits")
    assert details.select_one(f'[data-past-grant="{grant}"]') is not None


def test_copy_strings_come_from_the_catalogs(client, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    name, token = new_session(settings, "acme", "alex@example.com")
    client.cookies.set(name, token)
    status = page(client, "/acme/portal/benefits?locale=de").select_one("#copy-status")
    assert status["data-copied"] == "Kopiert"
    assert status["data-copied-status"] and status["data-copied-status"] != "Copied to the clipboard."
    assert status["data-copy-failed"] != "Copy failed; select the text and copy it."


def test_license_key_rotation_where_the_seller_allows_it(client, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    from portal.db import connect_sync
    from tests.browser_helpers import csrf_token, query

    alex = one(settings, "SELECT id FROM customers WHERE email = 'alex@example.com' AND organization_id = "
               "(SELECT id FROM organizations WHERE slug = 'acme')")["id"]  # fmt: skip
    keys = query(
        settings,
        "SELECT k.id, k.key, b.id AS benefit_id FROM license_keys k JOIN benefits b ON b.id = k.benefit_id "
        "WHERE k.customer_id = ? ORDER BY b.external_id",
        (alex,),
    )
    assert len(keys) >= 2
    allowed, other = keys[0], keys[1]
    conn = connect_sync(settings.db_path)
    conn.execute(
        "UPDATE benefits SET properties = json_set(properties, '$.allow_customer_rotation', json('true')) WHERE id = ?",
        (allowed["benefit_id"],),
    )
    # Polar's default is on (issue 23.2): every other license-key benefit is switched off by the seller.
    conn.execute(
        "UPDATE benefits SET properties = json_set(properties, '$.allow_customer_rotation', json('false')) "
        "WHERE type = 'license_keys' AND id != ?",
        (allowed["benefit_id"],),
    )
    conn.commit()
    conn.close()
    name, token = new_session(settings, "acme", "alex@example.com")
    client.cookies.set(name, token)
    html = page(client, "/acme/portal/benefits")
    links = [a["href"] for a in html.select('a[data-action="rotate"]')]
    assert links == [f"/acme/portal/benefits/license-keys/{allowed['id']}/rotate"]
    confirm = page(client, links[0])
    assert allowed["key"] in confirm.select_one("code.key").get_text()
    csrf = csrf_token(client, "/acme/portal")
    done = client.post(links[0], data={"_csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/acme/portal/benefits?done=rotated"
    new_key = one(settings, "SELECT key FROM license_keys WHERE id = ?", (allowed["id"],))["key"]
    assert new_key != allowed["key"] and new_key in client.get("/acme/portal/benefits").text
    # Not allowed by the seller: no link, no page, and the POST is refused without a change.
    path = f"/acme/portal/benefits/license-keys/{other['id']}/rotate"
    assert client.get(path).status_code == 404
    assert client.post(path, data={"_csrf_token": csrf}).status_code == 400
    assert one(settings, "SELECT key FROM license_keys WHERE id = ?", (other["id"],))["key"] == other["key"]


def test_ended_subscription_offers_the_sellers_resubscribe_link(client, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    from tests.admin_support import api, mint_token

    admin = mint_token(settings)
    org = one(settings, "SELECT id FROM organizations WHERE slug = 'acme'")["id"]
    ended = one(settings, "SELECT id FROM subscriptions WHERE external_id = 'acme-sub-casey-pro'")["id"]
    name, token = new_session(settings, "acme", "casey@example.com")
    client.cookies.set(name, token)
    # None set: nothing offered.
    assert page(client, f"/acme/portal/subscriptions/{ended}").select_one('[data-action="resubscribe"]') is None

    # Bad values are refused naming the field; a real URL is kept and shown on ended subscriptions only.
    for bad in ("javascript:alert(1)", "//evil.example", "ftp://x.example/", "https://"):
        problem = api(client, admin, "PATCH", f"/v1/organizations/{org}", 422, json={"resubscribe_url": bad})
        assert problem["detail"][0]["loc"] == ["body", "resubscribe_url"], bad
    url = "https://acme.example/pricing?plan=pro"
    body = api(client, admin, "PATCH", f"/v1/organizations/{org}", 200, json={"resubscribe_url": url})
    assert body["resubscribe_url"] == url
    client.cookies.set(name, token)
    link = page(client, f"/acme/portal/subscriptions/{ended}").select_one('[data-action="resubscribe"]')
    assert link is not None and link["href"] == url
    alex_name, alex_token = new_session(settings, "acme", "alex@example.com")
    client.cookies.set(alex_name, alex_token)
    live = one(settings, "SELECT id FROM subscriptions WHERE external_id = 'acme-sub-alex-pro'")["id"]
    assert page(client, f"/acme/portal/subscriptions/{live}").select_one('[data-action="resubscribe"]') is None
    # Cleared with null.
    assert (
        api(client, admin, "PATCH", f"/v1/organizations/{org}", 200, json={"resubscribe_url": None})["resubscribe_url"]
        is None
    )


def test_seed_sets_the_resubscribe_link() -> None:
    import msgspec

    from portal.seeding.models import SeedOrganization

    seeded = msgspec.convert(
        {"slug": "x", "name": "X", "resubscribe_url": "https://x.example/subscribe"}, SeedOrganization
    )
    assert seeded.resubscribe_url == "https://x.example/subscribe"
