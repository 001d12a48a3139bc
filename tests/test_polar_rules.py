"""Polar's own customer-portal rules, checked through the real ``polar-sdk`` against a served Portal (raw HTTP
where the SDK hides the detail): issue 23, items 1-7 and 11 (revoked grants, license-key rotation, tax IDs and
billing address, default payment method, uncancel of an ended subscription, pending_update, limit clamping,
benefit and product visibility). Each test names the Polar rule it pins. Items 8-10 and 12 live with their areas:
tests/test_polar_sdk_sessions.py and test_signin_api.py (polar_cst_ tokens, &email=), test_signin_codes.py
(6-symbol codes), test_downloadables_redirect.py (302 downloads), test_sdk_2027_01.py (API version 2027-01)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from polar.base import PolarClientError
from polar.v2026_10.client import Polar
from polar.v2026_10.errors import HTTPValidationError, ResourceNotFound, RotateNotPermitted

from portal.settings import Settings
from tests.admin_support import api, bearer, mint_token
from tests.api_server import api_token, execute, served_portal
from tests.browser_helpers import csrf_token, new_session, one, query

pytestmark = pytest.mark.seeded  # data_dir: a copy of the demo seed (tests/conftest.py)


@pytest.fixture
def portal(settings: Settings) -> Iterator[tuple[str, Settings]]:
    with served_portal(settings) as served:
        yield served


def sdk(portal: tuple[str, Settings], email: str = "alex@example.com", slug: str = "acme") -> Polar:
    base_url, settings = portal
    return Polar(access_token=api_token(settings, slug, email), base_url=base_url)


def raw(portal: tuple[str, Settings], email: str = "alex@example.com") -> httpx.Client:
    base_url, settings = portal
    token = api_token(settings, "acme", email)
    return httpx.Client(base_url=f"{base_url}/v1/customer-portal", headers={"Authorization": f"Bearer {token}"})


def locs(response: httpx.Response) -> list[list[Any]]:
    return [item["loc"] for item in response.json()["detail"]]


def msgs(response: httpx.Response) -> list[str]:
    return [item["msg"] for item in response.json()["detail"]]


# --- 1. revoked grants -----------------------------------------------------------------------------------


def revoked_grant_ids(settings: Settings, email: str) -> list[str]:
    rows = query(
        settings,
        "SELECT g.id FROM benefit_grants g JOIN customers c ON c.id = g.customer_id "
        "WHERE c.email = ? AND g.revoked_at IS NOT NULL",
        (email,),
    )
    return [row["id"] for row in rows]


def test_revoked_grants_are_not_listed_and_answer_404(portal: tuple[str, Settings]) -> None:
    _, settings = portal
    revoked = revoked_grant_ids(settings, "alex@example.com")
    assert revoked, "the demo seed gives alex a revoked grant"
    with sdk(portal) as polar:
        grants = polar.customer_portal.benefit_grants
        listed = list(grants.iter_list(limit=100))
        with pytest.raises(ResourceNotFound):
            grants.get(revoked[0])
        with pytest.raises(ResourceNotFound):
            grants.update(revoked[0], benefit_type="custom")
    assert listed and not any(g.is_revoked for g in listed)
    assert not {g.id for g in listed} & set(revoked)


def test_html_portal_lists_past_benefits_instead_of_none(portal: tuple[str, Settings]) -> None:
    base_url, settings = portal
    email = "casey@example.com"  # the demo customer whose only subscription ended
    assert revoked_grant_ids(settings, email)
    name, token = new_session(settings, "acme", email)
    page = httpx.get(f"{base_url}/acme/portal/benefits/", cookies={name: token}, follow_redirects=True)
    assert page.status_code == 200
    assert "Past benefits" in page.text and 'id="past-benefits"' in page.text
    assert "No benefits yet" not in page.text


# --- 2. license-key rotation by the customer ---------------------------------------------------------------


def license_key(settings: Settings, benefit: str, status: str = "granted") -> dict[str, Any]:
    return dict(
        one(
            settings,
            "SELECT k.id, k.key, k.benefit_id FROM license_keys k JOIN customers c ON c.id = k.customer_id "
            "JOIN benefits b ON b.id = k.benefit_id WHERE c.email = 'alex@example.com' AND b.external_id = ? "
            "AND k.status = ?",
            (benefit, status),
        )
    )


@pytest.mark.parametrize("status", ["granted", "disabled"])
def test_rotation_is_allowed_by_default_for_granted_and_disabled_keys(
    portal: tuple[str, Settings], status: str
) -> None:
    _, settings = portal
    key = license_key(settings, "acme-toolkit-license")
    execute(settings, "UPDATE license_keys SET status = ? WHERE id = ?", (status, key["id"]))
    with sdk(portal) as polar:
        rotated = polar.customer_portal.license_keys.rotate(key["id"])
    assert rotated.id == key["id"] and rotated.key != key["key"] and rotated.status == status


def test_rotation_of_a_revoked_key_answers_polars_400(portal: tuple[str, Settings]) -> None:
    _, settings = portal
    revoked = license_key(settings, "acme-toolkit-license", "revoked")
    with sdk(portal) as polar, pytest.raises(RotateNotPermitted):
        polar.customer_portal.license_keys.rotate(revoked["id"])
    with raw(portal) as client:
        response = client.post(f"/license-keys/{revoked['id']}/rotate")
    assert response.status_code == 400
    assert response.json() == {
        "error": "RotateNotPermitted",
        "detail": "License key cannot be rotated in its current status. Current status: revoked. "
        "Allowed statuses: disabled, granted.",
    }
    assert one(settings, "SELECT key FROM license_keys WHERE id = ?", (revoked["id"],))["key"] == revoked["key"]


def test_seller_can_switch_customer_rotation_off_per_benefit(portal: tuple[str, Settings]) -> None:
    base_url, settings = portal
    key = license_key(settings, "acme-toolkit-license")
    admin = mint_token(settings, one(settings, "SELECT id FROM organizations WHERE slug = 'acme'")["id"])
    with httpx.Client(base_url=base_url) as client:
        benefit = api(client, admin, "GET", f"/v1/benefits/{key['benefit_id']}", 200)
        assert benefit["properties"]["allow_customer_rotation"] is True  # Polar's default: on
        properties = {**benefit["properties"], "allow_customer_rotation": False}
        api(client, admin, "PATCH", f"/v1/benefits/{key['benefit_id']}", 200, json={"properties": properties})
    with sdk(portal) as polar, pytest.raises(RotateNotPermitted) as refused:
        polar.customer_portal.license_keys.rotate(key["id"])
    assert refused.value.error.detail == "The seller does not allow rotating this license key."
    assert one(settings, "SELECT key FROM license_keys WHERE id = ?", (key["id"],))["key"] == key["key"]


# --- 3. tax IDs, validated and typed ---------------------------------------------------------------------


def me(portal: tuple[str, Settings], email: str) -> dict[str, Any]:
    with raw(portal, email=email) as client:
        return client.get("/customers/me").json()


def test_tax_id_without_a_billing_country_answers_422(portal: tuple[str, Settings]) -> None:
    email = "casey@example.com"  # the demo customer without a billing address
    with sdk(portal, email=email) as polar, pytest.raises(HTTPValidationError) as refused:
        polar.customer_portal.customers.update(tax_id="FR11123456782")
    assert refused.value.error.detail is not None
    assert [(d.loc, d.msg) for d in refused.value.error.detail] == [
        (["body", "billing_address"], "Country is required to validate tax ID.")
    ]
    assert me(portal, email)["tax_id"] is None


@pytest.mark.parametrize(
    ("country", "given", "stored"),
    [
        ("US", "91-1144442", ["911144442", "us_ein"]),
        ("FR", "FR 11 123 456 782", ["FR11123456782", "eu_vat"]),
        ("DE", "DE136695976", ["DE136695976", "eu_vat"]),
        ("GB", "GB 123 4567 27", ["123456727", "gb_vat"]),
        ("CA", "123456782 RT0001", ["123456782RT0001", "ca_gst_hst"]),
    ],
)
def test_valid_tax_ids_are_stored_compact_with_polars_format_name(
    portal: tuple[str, Settings], country: str, given: str, stored: list[str]
) -> None:
    with sdk(portal) as polar:
        updated = polar.customer_portal.customers.update(
            billing_address={"line1": "1 Main St", "city": "Town", "country": country}, tax_id=given
        )
        again = polar.customer_portal.customers.get()
    assert updated.tax_id == stored and again.tax_id == stored


def test_invalid_tax_id_for_the_country_answers_422_and_writes_nothing(portal: tuple[str, Settings]) -> None:
    before = me(portal, "alex@example.com")
    with sdk(portal) as polar, pytest.raises(HTTPValidationError) as refused:
        polar.customer_portal.customers.update(
            billing_name="Not saved",
            billing_address={"line1": "1 Rue", "city": "Lyon", "country": "FR"},
            tax_id="FR123",
        )
    assert refused.value.error.detail is not None
    assert [(d.loc, d.msg) for d in refused.value.error.detail] == [(["body", "tax_id"], "Invalid tax ID.")]
    assert me(portal, "alex@example.com") == before


def test_changing_the_billing_country_revalidates_the_stored_tax_id(portal: tuple[str, Settings]) -> None:
    french = {"line1": "1 Rue", "city": "Lyon", "country": "FR"}
    with sdk(portal) as polar:
        polar.customer_portal.customers.update(billing_address=french, tax_id="FR11123456782")
        with pytest.raises(HTTPValidationError) as refused:
            polar.customer_portal.customers.update(billing_address={**french, "country": "US"})
        kept = polar.customer_portal.customers.get()
        moved = polar.customer_portal.customers.update(billing_address={**french, "country": "US"}, tax_id="911144442")
    assert refused.value.error.detail is not None and refused.value.error.detail[0].loc == ["body", "tax_id"]
    assert kept.billing_address is not None and kept.billing_address.country == "FR"
    assert kept.tax_id == ["FR11123456782", "eu_vat"]
    assert moved.tax_id == ["911144442", "us_ein"]


def test_billing_address_cannot_be_reset_to_null(portal: tuple[str, Settings]) -> None:
    with raw(portal) as client:
        response = client.patch("/customers/me", json={"billing_address": None})
        after = client.get("/customers/me").json()
    assert response.status_code == 422
    assert locs(response) == [["body", "billing_address"]]
    assert msgs(response) == ["Customer billing address cannot be reset to null once set."]
    assert after["billing_address"]["country"] == "US"


def test_demo_seed_tax_ids_are_valid_and_typed(portal: tuple[str, Settings]) -> None:
    _, settings = portal
    rows = query(
        settings,
        "SELECT c.email, o.slug FROM customers c JOIN organizations o ON o.id = c.organization_id "
        "WHERE c.tax_id IS NOT NULL",
    )
    assert len(rows) >= 3
    for row in rows:
        with sdk(portal, email=row["email"], slug=row["slug"]) as polar:
            tax_id = polar.customer_portal.customers.get().tax_id
        assert tax_id is not None and tax_id[1] in {"eu_vat", "gb_vat", "ca_gst_hst"}, (row["email"], tax_id)


def test_tax_id_stored_before_validation_is_not_answered_as_unknown(portal: tuple[str, Settings]) -> None:
    base_url, settings = portal
    execute(settings, "UPDATE customers SET tax_id = 'US-123' WHERE email = 'alex@example.com'")
    assert me(portal, "alex@example.com")["tax_id"] is None
    # The billing page asks the customer to correct it.
    name, token = new_session(settings, "acme", "alex@example.com")
    page = httpx.get(f"{base_url}/acme/portal/settings", cookies={name: token})
    assert page.status_code == 200
    assert 'id="tax_id-error"' in page.text and "This is not a valid tax ID for United States." in page.text


def _billing_form(**changes: str) -> dict[str, str]:
    form = {"billing_name": "", "line1": "2101 Mission Street", "line2": "", "postal_code": "94110"}
    form |= {"city": "San Francisco", "state": "CA", "country": "US", "tax_id": ""}
    return form | changes


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"tax_id": "12345"}, "tax_id", "This is not a valid tax ID for United States."),
        ({"line1": "", "postal_code": "", "city": "", "state": "", "country": ""}, "country", "can be changed"),
        ({"country": "DE", "tax_id": "911144442"}, "tax_id", "This is not a valid tax ID for Germany."),
    ],
)
def test_html_billing_page_follows_the_same_rules(
    portal: tuple[str, Settings], changes: dict[str, str], field: str, message: str
) -> None:
    base_url, settings = portal
    name, token = new_session(settings, "acme", "alex@example.com")
    with httpx.Client(base_url=base_url, cookies={name: token}) as client:
        form = _billing_form(**changes) | {"_csrf_token": csrf_token(client, "/acme/portal/settings")}
        before = me(portal, "alex@example.com")
        refused = client.post("/acme/portal/settings", data=form)
    assert refused.status_code == 400
    assert f'id="{field}-error"' in refused.text and message in refused.text
    assert me(portal, "alex@example.com") == before


def test_html_billing_page_saves_a_valid_tax_id_typed(portal: tuple[str, Settings]) -> None:
    base_url, settings = portal
    name, token = new_session(settings, "acme", "casey@example.com")
    with httpx.Client(base_url=base_url, cookies={name: token}) as client:
        missing = _billing_form(line1="", postal_code="", city="", state="", country="", tax_id="911144442")
        form = {"_csrf_token": csrf_token(client, "/acme/portal/settings")}
        no_country = client.post("/acme/portal/settings", data=missing | form)
        saved = client.post("/acme/portal/settings", data=_billing_form(tax_id="91-1144442") | form)
    assert no_country.status_code == 400 and 'id="tax_id-error"' in no_country.text
    assert saved.status_code == 303
    assert me(portal, "casey@example.com")["tax_id"] == ["911144442", "us_ein"]


# --- 4. default payment method ---------------------------------------------------------------------------


def test_default_payment_method_cannot_be_reset_to_null(portal: tuple[str, Settings]) -> None:
    with raw(portal) as client:
        response = client.patch("/customers/me", json={"default_payment_method_id": None})
    assert response.status_code == 422
    assert locs(response) == [["body", "default_payment_method_id"]]
    assert msgs(response) == ["Default payment method cannot be reset to null."]


# --- 5. uncancel of an ended subscription ----------------------------------------------------------------


def test_uncancel_of_an_ended_subscription_answers_410(portal: tuple[str, Settings]) -> None:
    _, settings = portal
    ended = one(settings, "SELECT id FROM subscriptions WHERE external_id = 'acme-sub-casey-pro'")["id"]
    with sdk(portal, email="casey@example.com") as polar, pytest.raises(PolarClientError) as gone:
        polar.customer_portal.subscriptions.update(ended, cancel_at_period_end=False)
    assert gone.value.status_code == 410
    with raw(portal, email="casey@example.com") as client:
        body = client.patch(f"/subscriptions/{ended}", json={"cancel_at_period_end": False}).json()
    assert body["error"] == "ResourceUnavailable"


# --- 6. pending_update: null with nothing pending --------------------------------------------------------


def test_clearing_a_pending_update_that_does_not_exist_answers_422(portal: tuple[str, Settings]) -> None:
    _, settings = portal
    live = one(settings, "SELECT id FROM subscriptions WHERE external_id = 'acme-sub-alex-pro'")["id"]
    with raw(portal) as client:
        response = client.patch(f"/subscriptions/{live}", json={"pending_update": None})
    assert response.status_code == 422
    assert locs(response) == [["body", "pending_update"]]


# --- 7. pagination ---------------------------------------------------------------------------------------

LISTS = ["/orders/", "/subscriptions/", "/benefit-grants/", "/license-keys/", "/downloadables/"]


@pytest.mark.parametrize("path", LISTS)
def test_limit_above_100_is_clamped_and_zero_is_refused(portal: tuple[str, Settings], path: str) -> None:
    with raw(portal) as client:
        clamped = client.get(path, params={"limit": 1000})
        hundred = client.get(path, params={"limit": 100})
        zero_limit = client.get(path, params={"limit": 0})
        zero_page = client.get(path, params={"page": 0})
        negative = client.get(path, params={"limit": -5})
    assert clamped.status_code == 200, clamped.text
    assert clamped.json() == hundred.json()
    for refused in (zero_limit, zero_page, negative):
        assert refused.status_code == 422


def test_sdk_pages_with_a_large_limit(portal: tuple[str, Settings]) -> None:
    with sdk(portal) as polar:
        page = polar.customer_portal.orders.list(limit=500)
    assert page.pagination.total_count and page.pagination.max_page == math.ceil(page.pagination.total_count / 100)
    with sdk(portal) as polar, pytest.raises(HTTPValidationError):
        polar.customer_portal.orders.list(limit=0)


# --- 11. benefit and product visibility ------------------------------------------------------------------


def benefit_id(settings: Settings, external_id: str) -> str:
    return one(settings, "SELECT id FROM benefits WHERE external_id = ?", (external_id,))["id"]


def acme_admin(settings: Settings) -> str:
    return mint_token(settings, one(settings, "SELECT id FROM organizations WHERE slug = 'acme'")["id"])


def customer_view(portal: tuple[str, Settings]) -> dict[str, Any]:
    """Where Polar's customer portal shows benefits: grants, and the benefits of products in orders, subscriptions
    and the organization's catalog."""
    _, settings = portal
    order = one(settings, "SELECT id FROM orders WHERE external_id = 'acme-ord-alex-toolkit'")["id"]
    subscription = one(settings, "SELECT id FROM subscriptions WHERE external_id = 'acme-sub-alex-pro'")["id"]
    with sdk(portal) as polar:
        cp = polar.customer_portal
        return {
            "grants": {g.benefit_id for g in cp.benefit_grants.iter_list(limit=100)},
            "order": {b.id for b in cp.orders.get(order).product.benefits},  # type: ignore[union-attr]
            "subscription": {b.id for b in cp.subscriptions.get(subscription).product.benefits},
            "catalog": {b.id for p in cp.organizations.get("acme").products for b in p.benefits},
            "products": {p.id for p in cp.organizations.get("acme").products},
            "license_keys": {k.benefit_id for k in cp.license_keys.iter_list(limit=100)},
        }


@pytest.mark.parametrize(("external_id", "where"), [("acme-welcome", "order"), ("acme-beta", "subscription")])
def test_non_public_benefits_are_left_out_where_polar_leaves_them_out(
    portal: tuple[str, Settings], external_id: str, where: str
) -> None:
    base_url, settings = portal
    hidden = benefit_id(settings, external_id)
    description = one(settings, "SELECT description FROM benefits WHERE id = ?", (hidden,))["description"]
    grant = one(
        settings,
        "SELECT g.id FROM benefit_grants g JOIN customers c ON c.id = g.customer_id "
        "WHERE c.email = 'alex@example.com' AND g.benefit_id = ? AND g.revoked_at IS NULL",
        (hidden,),
    )["id"]
    before = customer_view(portal)
    assert hidden in before["grants"] and hidden in before[where] and hidden in before["catalog"]
    admin = acme_admin(settings)
    name, token = new_session(settings, "acme", "alex@example.com")
    with httpx.Client(base_url=base_url, cookies={name: token}) as client:
        assert description in client.get("/acme/portal/benefits/").text
        for visibility in ("private", "draft"):
            benefit = api(client, admin, "PATCH", f"/v1/benefits/{hidden}", 200, json={"visibility": visibility})
            assert benefit["visibility"] == visibility and benefit["visibility_configurable"] is True
            after = customer_view(portal)
            for place in ("grants", "order", "subscription", "catalog"):
                assert hidden not in after[place], (visibility, place)
            with sdk(portal) as polar, pytest.raises(ResourceNotFound):
                polar.customer_portal.benefit_grants.get(grant)
            page = client.get("/acme/portal/benefits/")
            assert page.status_code == 200 and description not in page.text
        api(client, admin, "PATCH", f"/v1/benefits/{hidden}", 200, json={"visibility": "public"})
    assert customer_view(portal) == before


def test_license_keys_of_a_private_benefit_stay_listed_as_in_polar(portal: tuple[str, Settings]) -> None:
    _, settings = portal
    hidden = benefit_id(settings, "acme-toolkit-license")
    with httpx.Client(base_url=portal[0]) as client:
        api(client, acme_admin(settings), "PATCH", f"/v1/benefits/{hidden}", 200, json={"visibility": "private"})
    view = customer_view(portal)
    # Polar's license-key endpoints do not look at the benefit's visibility; its grant endpoints do.
    assert hidden in view["license_keys"] and hidden not in view["grants"]


def test_visibility_is_configurable_only_where_polar_allows(portal: tuple[str, Settings]) -> None:
    base_url, settings = portal
    admin = acme_admin(settings)
    discord = benefit_id(settings, "acme-discord")
    with httpx.Client(base_url=base_url) as client:
        refused = api(client, admin, "PATCH", f"/v1/benefits/{discord}", 422, json={"visibility": "private"})
        current = api(client, admin, "GET", f"/v1/benefits/{discord}", 200)
        flag = api(
            client,
            admin,
            "POST",
            "/v1/benefits/",
            201,
            json={"type": "feature_flag", "description": "Internal flag", "properties": {"metadata": {}}},
        )
        note = api(client, admin, "POST", "/v1/benefits/", 201, json={"type": "custom", "description": "Note"})
    assert refused["detail"] == [
        {
            "loc": ["body", "visibility"],
            "msg": "Visibility is not configurable for this benefit type and must be public.",
            "type": "value_error",
        }
    ]
    assert current["visibility"] == "public" and current["visibility_configurable"] is False
    assert flag["visibility"] == "private" and note["visibility"] == "public"  # Polar's defaults per type


@pytest.mark.parametrize("visibility", ["private", "draft"])
def test_non_public_products_are_left_out_of_the_organization_catalog(
    portal: tuple[str, Settings], visibility: str
) -> None:
    base_url, settings = portal
    icons = one(settings, "SELECT id FROM products WHERE external_id = 'acme-icons'")["id"]
    assert icons in customer_view(portal)["products"]
    with httpx.Client(base_url=base_url) as client:
        product = api(
            client, acme_admin(settings), "PATCH", f"/v1/products/{icons}", 200, json={"visibility": visibility}
        )
    assert product["visibility"] == visibility
    assert icons not in customer_view(portal)["products"]


def test_seed_document_sets_benefit_visibility(portal: tuple[str, Settings]) -> None:
    from tests.test_admin_seed import inline_document

    base_url, settings = portal
    document = inline_document()
    benefits = {b["external_id"]: b for org in document["organizations"] for b in org["benefits"]}
    benefits["acme-welcome"]["visibility"] = "private"
    admin = mint_token(settings)
    with httpx.Client(base_url=base_url, timeout=30) as client:
        loaded = client.post("/v1/admin/seed", json=document, headers=bearer(admin))
        benefits["acme-discord"]["visibility"] = "draft"
        refused = client.post("/v1/admin/seed", json=document, headers=bearer(admin))
    assert loaded.status_code in (200, 201), loaded.text
    assert one(settings, "SELECT visibility FROM benefits WHERE external_id = 'acme-welcome'")[0] == "private"
    assert refused.status_code == 422
    assert "Visibility is not configurable for this benefit type and must be public." in refused.text
    assert one(settings, "SELECT visibility FROM benefits WHERE external_id = 'acme-discord'")[0] == "public"


def test_migration_15_turns_customer_rotation_on_and_makes_benefits_public(settings: Settings) -> None:
    """A database from before issue 23: license-key benefits stored ``allow_customer_rotation: false`` (the old
    default) and benefits had no visibility."""
    import sqlite3

    from portal.migrations import MIGRATIONS

    conn = sqlite3.connect(settings.db_path, isolation_level=None)
    try:
        conn.execute("ALTER TABLE benefits DROP COLUMN visibility")
        conn.execute(
            "UPDATE benefits SET properties = json_set(properties, '$.allow_customer_rotation', json('false')) "
            "WHERE type = 'license_keys'"
        )
        (polar_rules,) = [m for m in MIGRATIONS if m.version == 15]
        conn.executescript(f"BEGIN IMMEDIATE;\n{polar_rules.sql}\n;COMMIT;")
        rotation = conn.execute(
            "SELECT json_extract(properties, '$.allow_customer_rotation') FROM benefits WHERE type = 'license_keys'"
        ).fetchall()
        visibilities = {row[0] for row in conn.execute("SELECT visibility FROM benefits")}
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("UPDATE benefits SET visibility = 'hidden'")
    finally:
        conn.close()
    assert rotation and all(value == 1 for (value,) in rotation)
    assert visibilities == {"public"}
