"""The admin API end to end through the sync TestClient: every resource's create/list/get/update/delete,
Polar shapes (parsed with the official SDK's models), status changes with their grants, files, errors."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from polar import deserialize
from polar.v2026_10 import outputs

from portal.settings import Settings
from tests.admin_support import api, bearer, create_org, mint_token


@pytest.fixture
def admin(settings: Settings) -> str:
    return mint_token(settings)


@pytest.fixture
def org(client, admin: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return create_org(client, admin, "acme", email="support@acme.example")


@pytest.fixture
def token(settings: Settings, org: dict[str, Any]) -> str:
    return mint_token(settings, org["id"])


def _product(client, token: str, **fields: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    body = {"name": "Toolkit", "prices": [{"amount_type": "fixed", "price_amount": 4900, "price_currency": "usd"}]}
    return api(client, token, "POST", "/v1/products/", 201, json={**body, **fields})  # type: ignore[no-any-return]


def _license_benefit(client, token: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return api(  # type: ignore[no-any-return]
        client,
        token,
        "POST",
        "/v1/benefits/",
        201,
        json={
            "type": "license_keys",
            "description": "Toolkit license",
            "properties": {
                "prefix": "ACME",
                "expires": {"ttl": 1, "timeframe": "year"},
                "activations": {"limit": 2, "enable_customer_admin": True},
                "limit_usage": None,
            },
        },
    )


def _customer(client, token: str, email: str = "ada@example.com", **fields: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return api(client, token, "POST", "/v1/customers/", 201, json={"email": email, **fields})  # type: ignore[no-any-return]


def test_organizations_crud_and_sdk_shape(client, admin: str, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    org = create_org(client, admin, "lumen", default_presentment_currency="eur", default_locale="de")
    parsed = deserialize(org, outputs.Organization)
    assert parsed.slug == "lumen" and parsed.default_presentment_currency == "eur"
    assert org["portal_url"] == "http://testserver.local/lumen/portal"
    assert api(client, admin, "POST", "/v1/organizations/", 409, json={"name": "X", "slug": "lumen"})["error"] == (
        "Conflict"
    )
    updated = api(
        client,
        admin,
        "PATCH",
        f"/v1/organizations/{org['id']}",
        200,
        json={"name": "Lumen Studio", "customer_portal_settings": {"subscription": {"update_plan": False}}},
    )
    assert updated["name"] == "Lumen Studio"
    assert updated["customer_portal_settings"]["subscription"]["update_plan"] is False
    listed = api(client, admin, "GET", "/v1/organizations/", 200)
    assert listed["pagination"] == {"total_count": 1, "max_page": 1}
    org_token = mint_token(settings, org["id"])
    # An organization token may read and update its own organization, never create or delete one.
    assert api(client, org_token, "GET", f"/v1/organizations/{org['id']}", 200)["id"] == org["id"]
    assert api(client, org_token, "POST", "/v1/organizations/", 403, json={"name": "Y", "slug": "y"})["error"] == (
        "NotPermitted"
    )
    assert client.delete(f"/v1/organizations/{org['id']}", headers=bearer(org_token)).status_code == 403
    assert client.delete(f"/v1/organizations/{org['id']}", headers=bearer(admin)).status_code == 204
    assert client.get(f"/v1/organizations/{org['id']}", headers=bearer(admin)).status_code == 404
    # Its tokens went with it.
    assert client.get("/v1/products/", headers=bearer(org_token)).status_code == 401


def test_products_prices_and_benefits(client, token: str) -> None:  # type: ignore[no-untyped-def]
    benefit = _license_benefit(client, token)
    product = _product(client, token, recurring_interval="month", benefits=[benefit["id"]])
    parsed = deserialize(product, outputs.Product)
    assert parsed.is_recurring and parsed.recurring_interval == "month"
    assert [b["id"] for b in product["benefits"]] == [benefit["id"]]
    old_price = product["prices"][0]
    # A changed amount archives the old price (past orders keep it); a new currency adds one.
    updated = api(
        client,
        token,
        "PATCH",
        f"/v1/products/{product['id']}",
        200,
        json={
            "name": "Toolkit Pro",
            "prices": [
                {"amount_type": "fixed", "price_amount": 5900, "price_currency": "usd"},
                {"amount_type": "fixed", "price_amount": 5500, "price_currency": "eur"},
            ],
        },
    )
    assert updated["name"] == "Toolkit Pro"
    assert sorted((p["price_currency"], p["price_amount"]) for p in updated["prices"]) == [
        ("eur", 5500),
        ("usd", 5900),
    ]
    assert old_price["id"] not in {p["id"] for p in updated["prices"]}
    kept = api(
        client,
        token,
        "PATCH",
        f"/v1/products/{product['id']}",
        200,
        json={"prices": [{"id": updated["prices"][0]["id"]}]},
    )
    assert [p["id"] for p in kept["prices"]] == [updated["prices"][0]["id"]]
    cleared = api(client, token, "POST", f"/v1/products/{product['id']}/benefits", 200, json={"benefits": []})
    assert cleared["benefits"] == []
    assert client.delete(f"/v1/products/{product['id']}", headers=bearer(token)).status_code == 204
    assert api(client, token, "GET", f"/v1/products/{product['id']}", 200)["is_archived"] is True
    assert api(client, token, "GET", "/v1/products/?is_archived=false", 200)["pagination"]["total_count"] == 0
    problem = api(client, token, "POST", "/v1/products/", 422, json={"name": "Bad", "prices": []})
    assert problem["detail"][0]["loc"] == ["body", "prices"]


BENEFITS = [
    ("custom", {"note": "Thanks! Read the [guide](https://acme.example/guide)."}),
    ("license_keys", {"prefix": "KEY", "expires": None, "activations": None, "limit_usage": 10}),
    ("discord", {"invite_url": "https://discord.gg/acme"}),
    ("github_repository", {"repository_owner": "acme", "repository_name": "toolkit", "permission": "pull"}),
    ("meter_credit", {"units": 100, "meter_id": "m1", "rollover": False}),
    ("feature_flag", {"metadata": {"tier": "pro"}}),
]


@pytest.mark.parametrize(("kind", "properties"), BENEFITS)
def test_every_benefit_type_round_trips(client, token: str, kind: str, properties: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    benefit = api(
        client, token, "POST", "/v1/benefits/", 201, json={"type": kind, "description": kind, "properties": properties}
    )
    parsed = deserialize(benefit, outputs.Benefit)
    assert parsed.type == kind
    assert api(client, token, "GET", f"/v1/benefits/{benefit['id']}", 200) == benefit
    changed = api(client, token, "PATCH", f"/v1/benefits/{benefit['id']}", 200, json={"description": "Renamed"})
    assert changed["description"] == "Renamed" and changed["properties"] == benefit["properties"]
    assert api(client, token, "GET", f"/v1/benefits/?type={kind}", 200)["pagination"]["total_count"] == 1
    assert client.delete(f"/v1/benefits/{benefit['id']}", headers=bearer(token)).status_code == 204
    assert client.get(f"/v1/benefits/{benefit['id']}", headers=bearer(token)).status_code == 404


def test_benefit_properties_are_validated_with_polar_shape(client, token: str) -> None:  # type: ignore[no-untyped-def]
    body = api(
        client,
        token,
        "POST",
        "/v1/benefits/",
        422,
        json={"type": "license_keys", "description": "K", "properties": {"activations": {"limit": "three"}}},
    )
    (problem,) = body["detail"]
    assert problem["loc"][:3] == ["body", "properties", "activations"]
    assert set(problem) >= {"loc", "msg", "type"}
    assert client.post("/v1/benefits/", json={"type": "nope"}, headers=bearer(token)).status_code == 422
    assert client.post("/v1/benefits/", content=b"{not json", headers=bearer(token)).status_code in (400, 422)


def test_downloadable_file_upload(client, token: str, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    content = b"%PDF-1.4 guide\n" * 100
    response = client.post(
        "/v1/files/",
        files={"file": ("guide.pdf", content, "application/pdf")},
        data={"version": "1.2"},
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text
    uploaded = response.json()
    deserialize(uploaded, outputs.DownloadableFileRead)
    assert uploaded["size"] == len(content)
    assert uploaded["checksum_sha256_hex"] == hashlib.sha256(content).hexdigest()
    assert uploaded["mime_type"] == "application/pdf" and uploaded["version"] == "1.2"
    on_disk = settings.files_dir / uploaded["path"]
    assert on_disk.read_bytes() == content
    benefit = api(
        client,
        token,
        "POST",
        "/v1/benefits/",
        201,
        json={"type": "downloadables", "description": "Guide", "properties": {"files": [uploaded["id"]]}},
    )
    assert benefit["properties"]["files"] == [uploaded["id"]]
    # Still listed by a benefit: refused; once the benefit is gone, the file and its bytes go.
    assert client.delete(f"/v1/files/{uploaded['id']}", headers=bearer(token)).status_code == 409
    client.delete(f"/v1/benefits/{benefit['id']}", headers=bearer(token))
    assert client.delete(f"/v1/files/{uploaded['id']}", headers=bearer(token)).status_code == 204
    assert not on_disk.exists()
    assert api(client, token, "GET", "/v1/files/", 200)["items"] == []


def test_customers_unique_email_and_external_id(client, token: str) -> None:  # type: ignore[no-untyped-def]
    customer = _customer(
        client,
        token,
        name="Ada",
        external_id="user-1",
        billing_address={"country": "FR", "city": "Paris"},
        tax_id="FR11123456782",
    )
    parsed = deserialize(customer, outputs.CustomerIndividual)
    assert parsed.billing_address is not None and parsed.billing_address.country == "FR"
    assert parsed.tax_id == ["FR11123456782", "eu_vat"]  # validated for the country and typed, as Polar's
    refused = api(client, token, "PATCH", f"/v1/customers/{customer['id']}", 422, json={"tax_id": "FR123"})
    assert refused["detail"][0]["loc"] == ["body", "tax_id"] and refused["detail"][0]["msg"] == "Invalid tax ID."
    assert api(client, token, "POST", "/v1/customers/", 409, json={"email": "ADA@example.com"})["error"] == "Conflict"
    assert api(client, token, "POST", "/v1/customers/", 409, json={"email": "x@example.com", "external_id": "user-1"})
    assert api(client, token, "GET", "/v1/customers/external/user-1", 200)["id"] == customer["id"]
    renamed = api(client, token, "PATCH", "/v1/customers/external/user-1", 200, json={"name": "Ada L."})
    assert renamed["name"] == "Ada L."
    found = api(client, token, "GET", "/v1/customers/?email=ada@example.com", 200)
    assert [c["id"] for c in found["items"]] == [customer["id"]]
    bad = api(client, token, "POST", "/v1/customers/", 422, json={"email": "not-an-email"})
    assert bad["detail"][0]["loc"] == ["body", "email"]
    assert client.delete(f"/v1/customers/{customer['id']}", headers=bearer(token)).status_code == 204
    assert client.get(f"/v1/customers/{customer['id']}", headers=bearer(token)).status_code == 404
    assert _customer(client, token)["email"] == "ada@example.com"  # the email is free again


def test_order_paid_refunded_with_grants_and_receipts(client, token: str) -> None:  # type: ignore[no-untyped-def]
    benefit = _license_benefit(client, token)
    product = _product(client, token, benefits=[benefit["id"]])
    customer = _customer(client, token)
    pending = api(
        client,
        token,
        "POST",
        "/v1/orders/",
        201,
        json={
            "customer_id": customer["id"],
            "product_id": product["id"],
            "status": "pending",
            "items": [{"label": "Toolkit", "unit_amount": 4900, "quantity": 2, "tax_amount": 980}],
        },
    )
    assert pending["status"] == "pending" and pending["receipt_number"] is None
    assert pending["total_amount"] == 2 * 4900 + 980
    assert api(client, token, "GET", f"/v1/benefit-grants/?order_id={pending['id']}", 200)["items"] == []
    paid = api(client, token, "PATCH", f"/v1/orders/{pending['id']}", 200, json={"status": "paid"})
    parsed = deserialize(paid, outputs.Order)
    assert parsed.paid and parsed.receipt_number == "ACME-0001"
    second = api(
        client, token, "POST", "/v1/orders/", 201, json={"customer_id": customer["id"], "product_id": product["id"]}
    )
    assert second["receipt_number"] == "ACME-0002" and second["total_amount"] == 4900
    grants = api(client, token, "GET", f"/v1/benefit-grants/?order_id={paid['id']}", 200)["items"]
    assert len(grants) == 1 and grants[0]["is_granted"]
    deserialize(grants[0], outputs.BenefitGrant)
    assert grants[0]["properties"]["display_key"].startswith("****-")
    partial = api(client, token, "PATCH", f"/v1/orders/{paid['id']}", 200, json={"refund_amount": 1000})
    assert partial["status"] == "partially_refunded" and partial["refunded_amount"] == 1000
    assert api(client, token, "GET", f"/v1/benefit-grants/{grants[0]['id']}", 200)["is_granted"] is True
    too_much = api(client, token, "PATCH", f"/v1/orders/{paid['id']}", 422, json={"refund_amount": 10**6})
    assert too_much["detail"][0]["loc"] == ["body", "amount"]
    refunded = api(client, token, "PATCH", f"/v1/orders/{paid['id']}", 200, json={"status": "refunded"})
    assert refunded["status"] == "refunded" and refunded["refunded_amount"] == refunded["total_amount"]
    revoked = api(client, token, "GET", f"/v1/benefit-grants/{grants[0]['id']}", 200)
    assert revoked["is_revoked"] and not revoked["is_granted"]
    assert api(client, token, "PATCH", f"/v1/orders/{paid['id']}", 409, json={"status": "paid"})["error"] == "Conflict"
    void = api(
        client,
        token,
        "POST",
        "/v1/orders/",
        201,
        json={"customer_id": customer["id"], "product_id": product["id"], "status": "pending"},
    )
    assert api(client, token, "PATCH", f"/v1/orders/{void['id']}", 200, json={"status": "void"})["status"] == "void"
    listing = api(client, token, "GET", f"/v1/orders/?customer_id={customer['id']}&limit=2&page=2", 200)
    assert listing["pagination"] == {"total_count": 3, "max_page": 2} and len(listing["items"]) == 1


def test_subscription_lifecycle_grants_and_revokes(client, token: str) -> None:  # type: ignore[no-untyped-def]
    benefit = _license_benefit(client, token)
    product = _product(client, token, recurring_interval="month", benefits=[benefit["id"]])
    customer = _customer(client, token)
    sub = api(
        client,
        token,
        "POST",
        "/v1/subscriptions/",
        201,
        json={
            "customer_id": customer["id"],
            "product_id": product["id"],
            "status": "active",
            "current_period_start": "2026-11-01T00:00:00Z",
        },
    )
    parsed = deserialize(sub, outputs.Subscription)
    assert parsed.status == "active" and parsed.amount == 4900
    assert sub["current_period_end"].startswith("2026-12-01")
    grants = api(client, token, "GET", f"/v1/benefit-grants/?subscription_id={sub['id']}&is_granted=true", 200)
    assert grants["pagination"]["total_count"] == 1
    canceling = api(client, token, "PATCH", f"/v1/subscriptions/{sub['id']}", 200, json={"cancel_at_period_end": True})
    assert canceling["cancel_at_period_end"] and canceling["canceled_at"] and canceling["ends_at"]
    uncanceled = api(
        client, token, "PATCH", f"/v1/subscriptions/{sub['id']}", 200, json={"cancel_at_period_end": False}
    )
    assert not uncanceled["cancel_at_period_end"] and uncanceled["canceled_at"] is None
    past_due = api(client, token, "PATCH", f"/v1/subscriptions/{sub['id']}", 200, json={"status": "past_due"})
    assert past_due["status"] == "past_due"
    assert (
        api(client, token, "GET", f"/v1/benefit-grants/?subscription_id={sub['id']}&is_granted=true", 200)["items"]
        == []
    )
    active = api(client, token, "PATCH", f"/v1/subscriptions/{sub['id']}", 200, json={"status": "active"})
    assert active["status"] == "active"
    ended = api(client, token, "DELETE", f"/v1/subscriptions/{sub['id']}", 200)
    assert ended["status"] == "canceled" and ended["ended_at"]
    assert (
        api(client, token, "GET", f"/v1/benefit-grants/?subscription_id={sub['id']}&is_granted=true", 200)["items"]
        == []
    )
    assert api(client, token, "DELETE", f"/v1/subscriptions/{sub['id']}", 409)["error"] == "Conflict"
    bad = api(
        client,
        token,
        "POST",
        "/v1/subscriptions/",
        422,
        json={
            "customer_id": customer["id"],
            "product_id": product["id"],
            "status": "trialing",
            "current_period_start": "2026-11-01T00:00:00Z",
        },
    )
    assert bad["detail"][0]["loc"] == ["body", "trial_end"]


def test_manual_grant_and_revoke(client, token: str) -> None:  # type: ignore[no-untyped-def]
    benefit = api(
        client, token, "POST", "/v1/benefits/", 201, json={"type": "custom", "description": "Bonus", "properties": {}}
    )
    product = _product(client, token)
    customer = _customer(client, token)
    order = api(
        client, token, "POST", "/v1/orders/", 201, json={"customer_id": customer["id"], "product_id": product["id"]}
    )
    grant = api(
        client,
        token,
        "POST",
        "/v1/benefit-grants/",
        201,
        json={"customer_id": customer["id"], "benefit_id": benefit["id"], "order_id": order["id"]},
    )
    assert grant["is_granted"] and grant["benefit"]["id"] == benefit["id"]
    listed = api(client, token, "GET", f"/v1/benefits/{benefit['id']}/grants", 200)
    assert [g["id"] for g in listed["items"]] == [grant["id"]]
    revoked = api(client, token, "DELETE", f"/v1/benefit-grants/{grant['id']}", 200)
    assert revoked["is_revoked"]
    missing_source = api(
        client,
        token,
        "POST",
        "/v1/benefit-grants/",
        422,
        json={"customer_id": customer["id"], "benefit_id": benefit["id"]},
    )
    assert missing_source["detail"][0]["loc"] == ["body", "order_id"]


def test_admin_token_must_name_the_organization(client, admin: str, org: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    problem = api(client, admin, "POST", "/v1/customers/", 422, json={"email": "a@example.com"})
    assert problem["detail"][0]["loc"] == ["body", "organization_id"]
    made = api(
        client, admin, "POST", "/v1/customers/", 201, json={"email": "a@example.com", "organization_id": org["id"]}
    )
    assert made["organization_id"] == org["id"]
    unknown = api(
        client, admin, "POST", "/v1/customers/", 422, json={"email": "b@example.com", "organization_id": "nope"}
    )
    assert unknown["detail"][0]["loc"] == ["body", "organization_id"]


def test_openapi_documents_every_admin_route(client) -> None:  # type: ignore[no-untyped-def]
    schema = client.get("/docs/openapi.json").json()
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    admin_prefixes = (
        "/v1/organizations",
        "/v1/products",
        "/v1/benefits",
        "/v1/files",
        "/v1/customers",
        "/v1/orders",
        "/v1/subscriptions",
        "/v1/benefit-grants",
        "/v1/customer-sessions",
        "/v1/admin/seed",
    )
    seen = set()
    for path, operations in schema["paths"].items():
        if not path.startswith(admin_prefixes):
            continue
        for method, operation in operations.items():
            seen.add(path.split("/")[2])
            assert operation.get("security") == [{"bearerAuth": []}], (method, path)
            assert "401" in operation["responses"], (method, path)
            if method in ("post", "patch"):
                assert "422" in operation["responses"], (method, path)
            if "{" in path:
                assert "404" in operation["responses"], (method, path)
    assert seen == {p.split("/")[2] for p in admin_prefixes}


def test_duplicate_external_ids_are_409_not_500(client, token: str) -> None:  # type: ignore[no-untyped-def]
    _product(client, token, external_id="p-1")
    assert (
        api(
            client,
            token,
            "POST",
            "/v1/products/",
            409,
            json={"name": "Again", "external_id": "p-1", "prices": [{"price_amount": 1, "price_currency": "usd"}]},
        )["error"]
        == "Conflict"
    )
    body = {"type": "custom", "description": "x", "external_id": "b-1"}
    api(client, token, "POST", "/v1/benefits/", 201, json=body)
    assert api(client, token, "POST", "/v1/benefits/", 409, json=body)["error"] == "Conflict"
