"""The console's Catalog section end to end: products and prices, benefits per type, files, notes with a preview,
which products grant which benefits — each action read back through the admin API (or the customer's own pages),
the refused input named on a 400 page with nothing written, isolation between organizations, the support role
read-only, and the audit entries."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from portal.clock import Clock
from portal.settings import Settings
from tests.admin_support import api, mint_token
from tests.apps import app_for
from tests.console_helpers import Team, audit_actions, console_cookie, make_team, plant_session, sql
from tests.signin_helpers import csrf, sign_in_browser

# ``make_team`` gives acme one downloadables benefit listing one file (the access matrix's target) and, for the
# commerce pages, a license-key benefit and a custom one (``make_commerce``).
TEAM_BENEFITS = 3
TEAM_FILES = 1


@pytest.fixture
def team(settings: Settings, client: TestClient[Litestar]) -> Team:
    return make_team(settings)


@pytest.fixture
def owner(client: TestClient[Litestar], settings: Settings, team: Team) -> TestClient[Litestar]:
    console_cookie(client, settings, plant_session(settings, team.owner))
    return client


@pytest.fixture
def token(settings: Settings, team: Team) -> str:
    return mint_token(settings, team.acme_id)


def post(client: TestClient[Litestar], path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    return client.post(
        f"/console/acme{path}", data={**(data or {}), "_csrf_token": csrf(client)}, follow_redirects=False, **kwargs
    )


def created_id(response: Any, kind: str) -> str:
    assert response.status_code == 303, (response.status_code, response.text[:2000])
    found = re.search(rf"/catalog/{kind}/([A-Za-z0-9_-]+)\?done=", response.headers["location"])
    assert found, response.headers["location"]
    return found.group(1)


def errors_of(html: str) -> set[str]:
    """The ids of the field errors a page shows (``f-name-error`` -> ``name``)."""
    return set(re.findall(r'class="field-error" id="f-([\w-]+)-error"', html))


PRO = {
    "name": "Pro Plan",
    "description": "Everything",
    "visibility": "public",
    "billing": "month",
    "interval_count": "1",
    "price-0-currency": "usd",
    "price-0-type": "fixed",
    "price-0-amount": "19.99",
    "price-1-currency": "EUR",
    "price-1-type": "fixed",
    "price-1-amount": "17",
}


def prices_of(product: dict[str, Any]) -> list[tuple[str, str, int | None]]:
    return sorted((p["price_currency"], p["amount_type"], p.get("price_amount")) for p in product["prices"])


def test_product_create_edit_archive_and_restore(
    owner: TestClient[Litestar], settings: Settings, team: Team, token: str
) -> None:
    before = api(owner, token, "GET", "/v1/products/?limit=100", expect=200)["pagination"]["total_count"]
    bad = post(
        owner,
        "/catalog/products",
        {**PRO, "name": " ", "price-0-currency": "xx", "price-1-amount": "1.234", "billing": "fortnight"},
    )
    assert bad.status_code == 400
    assert errors_of(bad.text) == {"name", "price-0-currency", "price-1-amount", "billing"}
    assert 'value="1.234"' in bad.text  # kept as typed
    no_price = post(
        owner,
        "/catalog/products",
        {"name": "Nothing", "visibility": "draft", "billing": "once", "price-0-currency": ""},
    )
    assert no_price.status_code == 400 and errors_of(no_price.text) == {"prices"}
    assert api(owner, token, "GET", "/v1/products/?limit=100")["pagination"]["total_count"] == before

    product_id = created_id(post(owner, "/catalog/products", PRO), "products")
    product = api(owner, token, "GET", f"/v1/products/{product_id}", expect=200)
    assert (product["name"], product["description"], product["recurring_interval"]) == (
        "Pro Plan",
        "Everything",
        "month",
    )
    assert prices_of(product) == [("eur", "fixed", 1700), ("usd", "fixed", 1999)]
    old_usd = next(p["id"] for p in product["prices"] if p["price_currency"] == "usd")
    page = owner.get(f"/console/acme/catalog/products/{product_id}?done=created")
    assert "Product created." in page.text and 'value="19.99"' in page.text

    # Edit: a new amount in usd (the old price is archived, as the admin API does), eur removed, yen added.
    edit = {**PRO, "name": "Pro Plan 2", "price-0-amount": "24.99", "price-1-remove": "on", "price-1-existing": "1"}
    edit |= {"price-2-currency": "jpy", "price-2-type": "custom", "price-2-amount": "500"}
    assert post(owner, f"/catalog/products/{product_id}", edit).status_code == 303
    product = api(owner, token, "GET", f"/v1/products/{product_id}")
    assert product["name"] == "Pro Plan 2"
    assert [(c, t) for c, t, _ in prices_of(product)] == [("jpy", "custom"), ("usd", "fixed")]
    assert next(p for p in product["prices"] if p["price_currency"] == "usd")["price_amount"] == 2499
    assert old_usd not in {p["id"] for p in product["prices"]}
    # Yen has no minor unit: 5.5 yen is refused, and nothing changes.
    refused = post(owner, f"/catalog/products/{product_id}", {**edit, "price-2-amount": "5.5"})
    assert refused.status_code == 400 and errors_of(refused.text) == {"price-2-amount"}
    assert api(owner, token, "GET", f"/v1/products/{product_id}")["name"] == "Pro Plan 2"

    assert post(owner, f"/catalog/products/{product_id}/archive", {"archived": "true"}).status_code == 303
    assert api(owner, token, "GET", f"/v1/products/{product_id}")["is_archived"] is True
    catalog = owner.get("/console/acme/catalog").text
    archived_part = catalog[catalog.index('id="archived-caption"') :]
    assert "Pro Plan 2" in archived_part
    assert post(owner, f"/catalog/products/{product_id}/archive", {"archived": "false"}).status_code == 303
    assert api(owner, token, "GET", f"/v1/products/{product_id}")["is_archived"] is False
    assert post(owner, f"/catalog/products/{product_id}/archive", {"archived": "maybe"}).status_code == 400

    assert [a[0] for a in audit_actions(settings, team.acme_id)] == [
        "product.create",
        "product.update",
        "product.archive",
        "product.unarchive",
    ]
    # Portal has no product.* webhook events: product writes queue nothing, through the console as through the API.
    assert sql(settings, "SELECT COUNT(*) FROM webhook_events WHERE type LIKE 'product%'")[0][0] == 0


def new_benefit(client: TestClient[Litestar], kind: str, data: dict[str, Any]) -> str:
    return created_id(post(client, f"/catalog/benefits/new/{kind}", data), "benefits")


LICENSE = {
    "description": "License key",
    "visibility": "public",
    "prefix": "ACME",
    "expires_ttl": "2",
    "expires_timeframe": "year",
    "activations_limit": "3",
    "activations_customer_admin": "on",
    "limit_usage": "100",
}


def test_license_key_benefit_typed_form(owner: TestClient[Litestar], settings: Settings, token: str) -> None:
    bad = post(
        owner,
        "/catalog/benefits/new/license_keys",
        {**LICENSE, "prefix": "no spaces!", "activations_limit": "99", "expires_ttl": "x", "description": ""},
    )
    assert bad.status_code == 400
    assert errors_of(bad.text) == {"description", "activations_limit", "expires_ttl", "prefix"}
    assert api(owner, token, "GET", "/v1/benefits/")["pagination"]["total_count"] == TEAM_BENEFITS

    benefit_id = new_benefit(owner, "license_keys", LICENSE)
    benefit = api(owner, token, "GET", f"/v1/benefits/{benefit_id}", expect=200)
    assert benefit["type"] == "license_keys" and benefit["description"] == "License key"
    props = benefit["properties"]
    assert props["prefix"] == "ACME" and props["expires"] == {"ttl": 2, "timeframe": "year"}
    assert props["activations"] == {"limit": 3, "enable_customer_admin": True}
    assert props["limit_usage"] == 100 and props["allow_customer_rotation"] is False  # the box was not ticked

    edited = {**LICENSE, "expires_ttl": "", "activations_limit": "", "allow_customer_rotation": "on"}
    assert post(owner, f"/catalog/benefits/{benefit_id}", edited).status_code == 303
    props = api(owner, token, "GET", f"/v1/benefits/{benefit_id}")["properties"]
    assert props["expires"] is None and props["activations"] is None and props["allow_customer_rotation"] is True
    page = owner.get(f"/console/acme/catalog/benefits/{benefit_id}").text
    assert 'value="ACME"' in page and 'id="f-allow_customer_rotation" name="allow_customer_rotation" checked' in page


@pytest.mark.parametrize(
    ("kind", "data", "expected"),
    [
        (
            "discord",
            {"invite_url": "https://discord.gg/acme", "guild_id": "123"},
            {"invite_url": "https://discord.gg/acme", "guild_id": "123", "kick_member": False},
        ),
        (
            "github_repository",
            {"repository_owner": "acme", "repository_name": "tools", "permission": "push"},
            {"repository_owner": "acme", "repository_name": "tools", "permission": "push"},
        ),
        (
            "meter_credit",
            {"units": "500", "meter_id": "m_1", "rollover": "on"},
            {"units": 500, "meter_id": "m_1", "rollover": True},
        ),
        (
            "feature_flag",
            {"metadata": "plan=pro\nseats=5\nbeta=true"},
            {"metadata": {"plan": "pro", "seats": 5, "beta": True}},
        ),
        ("custom", {"note": "Thanks!"}, {"note": "Thanks!"}),
        ("downloadables", {}, {"files": [], "archived": {}}),
    ],
)
def test_each_benefit_type_has_its_form(
    owner: TestClient[Litestar], token: str, kind: str, data: dict[str, Any], expected: dict[str, Any]
) -> None:
    benefit_id = new_benefit(owner, kind, {"description": f"A {kind}", **data})
    benefit = api(owner, token, "GET", f"/v1/benefits/{benefit_id}", expect=200)
    assert benefit["type"] == kind
    assert {key: benefit["properties"].get(key) for key in expected} == expected


@pytest.mark.parametrize(
    ("kind", "data", "field"),
    [
        ("discord", {"invite_url": "http://discord.gg/acme"}, "invite_url"),
        ("discord", {}, "invite_url"),
        ("github_repository", {"repository_owner": "acme"}, "repository_name"),
        ("meter_credit", {"units": "0", "meter_id": "m"}, "units"),
        ("feature_flag", {"metadata": "no equals sign"}, "metadata"),
    ],
)
def test_refused_benefit_fields_are_named(
    owner: TestClient[Litestar], token: str, kind: str, data: dict[str, Any], field: str
) -> None:
    refused = post(owner, f"/catalog/benefits/new/{kind}", {"description": "x", **data})
    assert refused.status_code == 400 and field in errors_of(refused.text), errors_of(refused.text)
    assert api(owner, token, "GET", "/v1/benefits/")["pagination"]["total_count"] == TEAM_BENEFITS


def buy(client: TestClient[Litestar], token: str, product_id: str, email: str = "ada@example.com") -> str:
    """A customer who bought ``product_id`` (admin API: customer, then a paid order); returns the customer id."""
    customer = api(client, token, "POST", "/v1/customers/", json={"email": email}, expect=201)
    api(
        client,
        token,
        "POST",
        "/v1/orders/",
        json={"customer_id": customer["id"], "product_id": product_id, "currency": "usd"},
        expect=201,
    )
    return str(customer["id"])


def simple_product(client: TestClient[Litestar], name: str = "Tool") -> str:
    data = {"name": name, "visibility": "public", "billing": "once"}
    data |= {"price-0-currency": "usd", "price-0-type": "fixed", "price-0-amount": "10"}
    return created_id(post(client, "/catalog/products", data), "products")


def test_benefits_attach_and_detach_on_the_product_page(
    owner: TestClient[Litestar], settings: Settings, team: Team, token: str
) -> None:
    product_id = simple_product(owner)
    key = new_benefit(owner, "license_keys", LICENSE)
    note = new_benefit(owner, "custom", {"description": "Welcome", "note": "Hello"})
    page = owner.get(f"/console/acme/catalog/products/{product_id}").text
    assert "benefits already granted" not in page and "what customers were already granted stays" in page
    assert post(owner, f"/catalog/products/{product_id}/benefits", {"benefit": [note, key]}).status_code == 303
    # Kept in the order of the page's list (newest benefit first); the admin API sees them.
    granted = [b["id"] for b in api(owner, token, "GET", f"/v1/products/{product_id}")["benefits"]]
    assert set(granted) == {note, key}
    customer_id = buy(owner, token, product_id)
    grants = api(owner, token, "GET", f"/v1/benefit-grants/?customer_id={customer_id}")["items"]
    assert {g["benefit_id"] for g in grants} == {note, key}

    # Detach the note: the product no longer grants it; the customer's grant stays (the admin API's rule).
    assert post(owner, f"/catalog/products/{product_id}/benefits", {"benefit": [key]}).status_code == 303
    assert [b["id"] for b in api(owner, token, "GET", f"/v1/products/{product_id}")["benefits"]] == [key]
    grants = api(owner, token, "GET", f"/v1/benefit-grants/?customer_id={customer_id}&is_granted=true")["items"]
    assert {g["benefit_id"] for g in grants} == {note, key}
    benefit_page = owner.get(f"/console/acme/catalog/benefits/{key}").text
    assert f"/console/acme/catalog/products/{product_id}" in benefit_page

    # A benefit added later reaches the customer who already bought only when the seller asks for it.
    later = new_benefit(owner, "custom", {"description": "Later", "note": "Bonus"})
    assert post(owner, f"/catalog/products/{product_id}/benefits", {"benefit": [key, later]}).status_code == 303
    held = api(owner, token, "GET", f"/v1/benefit-grants/?customer_id={customer_id}&is_granted=true")["items"]
    assert later not in {g["benefit_id"] for g in held}
    post(owner, f"/catalog/products/{product_id}/benefits", {"benefit": [key]})
    both = {"benefit": [key, later], "grant_existing": "on"}
    assert post(owner, f"/catalog/products/{product_id}/benefits", both).status_code == 303
    held = api(owner, token, "GET", f"/v1/benefit-grants/?customer_id={customer_id}&is_granted=true")["items"]
    assert later in {g["benefit_id"] for g in held}
    post(owner, f"/catalog/products/{product_id}/benefits", {"benefit": [key]})

    # Another organization's benefit is refused like a missing one; nothing changes.
    globex_token = mint_token(settings, team.globex_id)
    foreign = api(
        owner, globex_token, "POST", "/v1/benefits/", json={"type": "custom", "description": "G"}, expect=201
    )["id"]
    refused = post(owner, f"/catalog/products/{product_id}/benefits", {"benefit": [key, foreign]})
    assert refused.status_code == 400 and 'id="f-benefits-error"' in refused.text
    assert [b["id"] for b in api(owner, token, "GET", f"/v1/products/{product_id}")["benefits"]] == [key]
    assert [a[0] for a in audit_actions(settings, team.acme_id) if a[0] == "product.benefits"] == [
        "product.benefits"
    ] * 6
    (details,) = sql(settings, "SELECT details FROM seller_audit_log WHERE details LIKE '%\"granted_to_holders\":1%'")
    assert later in details[0]


HOSTILE_NOTE = (
    "Welcome <script>alert(1)</script> & **bold**\n"
    '<img src=x onerror="alert(2)"> [click](javascript:alert(3)) [docs](https://docs.acme.example/a?b=1&c=2)\n\n'
    "Second paragraph: https://acme.example/start."
)


def note_html(page: str) -> str:
    found = re.search(r'<div class="note">(.*?)</div>', page, re.S)
    assert found, "no note on the page"
    return found.group(1)


def test_note_preview_escapes_and_matches_the_customer_portal(
    owner: TestClient[Litestar], settings: Settings, team: Team, token: str
) -> None:
    data = {"description": "Welcome note", "visibility": "public", "note": HOSTILE_NOTE}
    preview = post(owner, "/catalog/benefits/new/custom", {**data, "preview": "1"})
    assert preview.status_code == 200
    shown = note_html(preview.text)
    assert "<script" not in shown and "<img" not in shown and "<strong" not in shown  # markup stays text
    assert "[click](javascript:alert(3))" in shown  # not a link: only http(s) addresses become links
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown
    assert 'href="javascript' not in preview.text
    assert '<a href="https://docs.acme.example/a?b=1&amp;c=2" rel="noopener nofollow">docs</a>' in shown
    assert (
        api(owner, token, "GET", "/v1/benefits/")["pagination"]["total_count"] == TEAM_BENEFITS
    )  # a preview saves nothing
    assert audit_actions(settings, team.acme_id) == []

    benefit_id = new_benefit(owner, "custom", data)
    product_id = simple_product(owner)
    post(owner, f"/catalog/products/{product_id}/benefits", {"benefit": [benefit_id]})
    customer_id = buy(owner, token, product_id)
    # The customer's Benefits page renders the note exactly as the console's preview did.
    sign_in_browser(owner, settings, "acme", team.acme_id, customer_id)
    portal = owner.get("/acme/portal/benefits")
    assert portal.status_code == 200
    assert note_html(portal.text) == shown
    # The saved benefit's page previews the stored note the same way; editing with preview saves nothing.
    assert note_html(owner.get(f"/console/acme/catalog/benefits/{benefit_id}").text) == shown
    again = post(owner, f"/catalog/benefits/{benefit_id}", {**data, "note": "Changed", "preview": "1"})
    assert again.status_code == 200 and note_html(again.text) == "<p>Changed</p>"
    assert api(owner, token, "GET", f"/v1/benefits/{benefit_id}")["properties"]["note"] == HOSTILE_NOTE


def download_link(client: TestClient[Litestar]) -> str:
    page = client.get("/acme/portal/benefits").text
    found = re.search(r'href="(/acme/portal/downloads/[^"]+)" download', page)
    assert found, "no download link"
    return found.group(1).replace("&amp;", "&")


def test_files_upload_replace_hide_and_the_customer_downloads_the_new_file(
    owner: TestClient[Litestar], settings: Settings, team: Team, token: str
) -> None:
    benefit_id = new_benefit(owner, "downloadables", {"description": "Downloads"})
    upload = f"/catalog/benefits/{benefit_id}/files"
    empty = post(owner, upload, files={"file": ("app.zip", b"", "application/zip")})
    assert empty.status_code == 400 and 'id="f-file-error"' in empty.text
    slashed = post(owner, upload, files={"file": ("a\\b.zip", b"PK", "application/zip")})
    assert slashed.status_code == 400 and 'id="f-file-error"' in slashed.text  # register_file's name check
    files_dir = settings.files_dir / team.acme_id
    assert not files_dir.exists() or not any(files_dir.iterdir())  # nothing half-written
    assert api(owner, token, "GET", "/v1/files/")["pagination"]["total_count"] == TEAM_FILES  # the benefit's one file

    first = b"PK\x03\x04 version one"
    assert (
        post(owner, upload, {"version": "1.0"}, files={"file": ("app.zip", first, "application/zip")}).status_code
        == 303
    )
    (file_id,) = api(owner, token, "GET", f"/v1/benefits/{benefit_id}")["properties"]["files"]
    stored = api(owner, token, "GET", f"/v1/files/{file_id}")
    assert (stored["name"], stored["size"], stored["version"]) == ("app.zip", len(first), "1.0")

    product_id = simple_product(owner)
    post(owner, f"/catalog/products/{product_id}/benefits", {"benefit": [benefit_id]})
    customer_id = buy(owner, token, product_id)
    sign_in_browser(owner, settings, "acme", team.acme_id, customer_id)
    assert owner.get(download_link(owner)).content == first

    second = b"PK\x03\x04 version two, larger"
    replaced = post(
        owner,
        f"/catalog/benefits/{benefit_id}/files/{file_id}/replace",
        {"version": "1.1"},
        files={"file": ("app-1.1.zip", second, "application/zip")},
    )
    assert replaced.status_code == 303
    stored = api(owner, token, "GET", f"/v1/files/{file_id}")
    assert (stored["name"], stored["size"], stored["version"]) == ("app-1.1.zip", len(second), "1.1")
    assert owner.get(download_link(owner)).content == second  # the customer who held it gets the new bytes
    assert [p.read_bytes() for p in files_dir.iterdir()] == [second]  # the old bytes are gone from disk

    hide = f"/catalog/benefits/{benefit_id}/files/{file_id}/archive"
    assert post(owner, hide, {"archived": "true"}).status_code == 303
    assert api(owner, token, "GET", f"/v1/benefits/{benefit_id}")["properties"]["archived"] == {file_id: True}
    assert owner.get(download_link(owner)).content == second  # who holds it keeps it
    later = buy(owner, token, product_id, "bob@example.com")
    grants = api(owner, token, "GET", f"/v1/benefit-grants/?customer_id={later}")["items"]
    assert grants[0]["properties"]["files"] == []  # not given to new customers
    assert post(owner, hide, {"archived": "false"}).status_code == 303
    assert api(owner, token, "GET", f"/v1/benefit-grants/?customer_id={later}")["items"]
    # A file of another benefit, or of nothing, is not this benefit's: 404.
    assert post(owner, f"/catalog/benefits/{benefit_id}/files/nope/archive", {"archived": "true"}).status_code == 404
    assert [a[0] for a in audit_actions(settings, team.acme_id) if a[0].startswith("benefit.file")] == [
        "benefit.file_upload",
        "benefit.file_replace",
        "benefit.file_hide",
        "benefit.file_show",
    ]


def test_file_size_limit_is_named_or_refused_before_parsing(settings: Settings, team: Team) -> None:
    small = msgspec.structs.replace(settings, max_body_bytes=256 * 1024)
    with TestClient(app_for(small, clock=Clock()), base_url="http://testserver.local") as client:
        console_cookie(client, small, plant_session(small, team.owner))
        benefit_id = new_benefit(client, "downloadables", {"description": "Downloads"})
        path = f"/catalog/benefits/{benefit_id}/files"
        named = post(client, path, files={"file": ("big.bin", b"x" * (200 * 1024), "application/octet-stream")})
        assert named.status_code == 400 and 'id="f-file-error"' in named.text and "at most 192" in named.text
        too_big = post(client, path, files={"file": ("big.bin", b"x" * (300 * 1024), "application/octet-stream")})
        assert too_big.status_code == 413
        fits = post(client, path, files={"file": ("ok.bin", b"x" * (100 * 1024), "application/octet-stream")})
        assert fits.status_code == 303
        # Other console forms keep the small body limit.
        big_form = post(client, "/catalog/products", {"name": "x" * (100 * 1024)})
        assert big_form.status_code == 413


def test_deleting_a_benefit_revokes_its_grants_and_queues_their_webhooks(
    owner: TestClient[Litestar], settings: Settings, team: Team, token: str
) -> None:
    api(
        owner,
        token,
        "POST",
        "/v1/webhooks/endpoints",
        json={"url": "https://hooks.acme.example/grants", "events": ["benefit_grant.revoked"]},
        expect=201,
    )
    benefit_id = new_benefit(owner, "license_keys", LICENSE)
    product_id = simple_product(owner)
    post(owner, f"/catalog/products/{product_id}/benefits", {"benefit": [benefit_id]})
    customer_id = buy(owner, token, product_id)
    page = owner.get(f"/console/acme/catalog/benefits/{benefit_id}").text
    assert "the 1 customer holding it loses it now" in page
    assert post(owner, f"/catalog/benefits/{benefit_id}/delete").status_code == 303
    assert owner.get(f"/console/acme/catalog/benefits/{benefit_id}").status_code == 404
    assert api(owner, token, "GET", f"/v1/benefits/{benefit_id}").get("detail")
    (grant,) = api(owner, token, "GET", f"/v1/benefit-grants/?customer_id={customer_id}")["items"]
    assert grant["is_revoked"] is True
    assert api(owner, token, "GET", f"/v1/products/{product_id}")["benefits"] == []
    queued = sql(
        settings,
        "SELECT type FROM webhook_events WHERE organization_id = ? AND type LIKE 'benefit_grant%'",
        (team.acme_id,),
    )
    assert [row[0] for row in queued] == ["benefit_grant.revoked"]
    assert audit_actions(settings, team.acme_id)[-1][:2] == ("benefit.delete", "owner@acme.example")


def test_other_organizations_ids_are_not_found_and_support_only_looks(
    client: TestClient[Litestar], settings: Settings, team: Team
) -> None:
    console_cookie(client, settings, plant_session(settings, team.owner))
    product_id = simple_product(client, "Acme only")
    benefit_id = new_benefit(client, "downloadables", {"description": "Acme files"})
    client.post(
        f"/console/acme/catalog/benefits/{benefit_id}/files",
        data={"_csrf_token": csrf(client)},
        files={"file": ("a.zip", b"PK", "application/zip")},
    )
    # Globex's owner, under globex's slug, with acme's ids: 404 for every read and write.
    console_cookie(client, settings, plant_session(settings, team.stranger))
    token = csrf(client)
    for path in (f"/catalog/products/{product_id}", f"/catalog/benefits/{benefit_id}"):
        assert client.get(f"/console/globex{path}").status_code == 404
        assert (
            client.post(
                f"/console/globex{path}", data={"name": "x", "description": "x", "_csrf_token": token}
            ).status_code
            == 404
        )
    assert (
        client.post(f"/console/globex/catalog/benefits/{benefit_id}/delete", data={"_csrf_token": token}).status_code
        == 404
    )
    assert "Acme only" not in client.get("/console/globex/catalog").text
    # Support sees the pages, without a single form that writes; every write answers 403.
    console_cookie(client, settings, plant_session(settings, team.support))
    for path in ("/catalog", f"/catalog/products/{product_id}", f"/catalog/benefits/{benefit_id}"):
        page = client.get(f"/console/acme{path}")
        assert page.status_code == 200
        assert re.findall(r'<form method="post" action="/console/acme/catalog[^"]*"', page.text) == []
    assert "Acme only" in client.get("/console/acme/catalog").text
    assert (
        client.post(
            f"/console/acme/catalog/benefits/{benefit_id}/delete", data={"_csrf_token": csrf(client)}
        ).status_code
        == 403
    )
    assert client.get(f"/console/acme/catalog/benefits/{benefit_id}").status_code == 200


def test_catalog_pages_through_many_products(
    owner: TestClient[Litestar], settings: Settings, team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    from portal.console import catalog_pages

    monkeypatch.setattr(catalog_pages, "LIST_LIMIT", 2)
    for name in ("First", "Second"):
        simple_product(owner, name)
    first = owner.get("/console/acme/catalog").text  # newest first: Second, First; Console Pro on page 2
    assert "Second" in first and "First" in first and "Console Pro" not in first
    assert "Page 1 of 2" in first and "/console/acme/catalog?products_page=2" in first
    second = owner.get("/console/acme/catalog?products_page=2").text
    assert "Console Pro" in second and "Second" not in second and "products_page=1" in second
    assert owner.get("/console/acme/catalog?products_page=0").status_code == 400
