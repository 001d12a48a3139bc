"""The console's Catalog section end to end: products and prices, benefits per type, files, notes with a preview,
which products grant which benefits — each action read back through the admin API (or the customer's own pages),
the refused input named on a 400 page with nothing written, isolation between organizations, the support role
read-only, and the audit entries."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from portal.app import create_app
from portal.clock import Clock
from portal.settings import Settings
from tests.admin_support import api, mint_token
from tests.console_helpers import Team, audit_actions, console_cookie, make_team, plant_session, sql
from tests.signin_helpers import csrf, insert_customer, sign_in_browser


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
    assert api(owner, token, "GET", "/v1/benefits/")["pagination"]["total_count"] == 0

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
    assert api(owner, token, "GET", "/v1/benefits/")["pagination"]["total_count"] == 0
