"""Route matrix: every portal page and action × (signed out, another customer of the same org, a customer of
another org) answers a sign-in redirect or a 404, and writes nothing (every table's rows hashed before/after)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from portal.settings import Settings
from tests.browser_helpers import csrf_token, new_session, one, query, table_fingerprint

pytestmark = pytest.mark.seeded  # data_dir: a copy of the demo seed (tests/conftest.py)

OWNER = "alex@example.com"


@pytest.fixture
def client(app: Litestar) -> Iterator[TestClient[Litestar]]:
    with TestClient(app, base_url="http://testserver.local") as test_client:
        test_client.follow_redirects = False
        yield test_client


def owner_objects(settings: Settings) -> dict[str, str]:
    """Ids of objects that belong to alex in acme (a cancel-able subscription, an order, a key + activation,
    a downloadable grant + file, a plan to change to)."""
    customer = one(
        settings,
        "SELECT id FROM customers WHERE email = ? "
        "AND organization_id = (SELECT id FROM organizations WHERE slug = 'acme')",
        (OWNER,),
    )["id"]
    activation = one(
        settings,
        "SELECT a.id, k.id AS key_id FROM license_key_activations a JOIN license_keys k ON k.id = a.license_key_id "
        "WHERE k.customer_id = ? LIMIT 1",
        (customer,),
    )
    grant = query(
        settings,
        "SELECT g.id, g.properties FROM benefit_grants g JOIN benefits b ON b.id = g.benefit_id "
        "WHERE g.customer_id = ? AND b.type = 'downloadables' AND g.revoked_at IS NULL",
        (customer,),
    )[0]
    import msgspec

    return {
        "order": one(settings, "SELECT id FROM orders WHERE external_id = 'acme-ord-alex-icons'")["id"],
        "sub": one(settings, "SELECT id FROM subscriptions WHERE external_id = 'acme-sub-alex-pro'")["id"],
        "product": one(settings, "SELECT id FROM products WHERE external_id = 'acme-pro-yearly'")["id"],
        "key": activation["key_id"],
        "activation": activation["id"],
        "grant": grant["id"],
        "file": msgspec.json.decode(grant["properties"])["files"][0],
    }


# (method, path, form fields, is it about one object of the owner?)
ROUTES = [
    ("GET", "/acme/portal/orders", {}, False),
    ("GET", "/acme/portal/orders/{order}", {}, True),
    ("GET", "/acme/portal/orders/{order}/receipt", {}, True),
    ("GET", "/acme/portal/subscriptions", {}, False),
    ("GET", "/acme/portal/subscriptions/{sub}", {}, True),
    ("POST", "/acme/portal/subscriptions/{sub}/cancel", {"cancellation_reason": "other"}, True),
    ("POST", "/acme/portal/subscriptions/{sub}/uncancel", {}, True),
    ("GET", "/acme/portal/subscriptions/{sub}/change-plan", {}, True),
    ("GET", "/acme/portal/subscriptions/{sub}/change-plan/confirm?product_id={product}", {}, True),
    ("POST", "/acme/portal/subscriptions/{sub}/change-plan", {"product_id": "{product}"}, True),
    ("GET", "/acme/portal/benefits", {}, False),
    ("POST", "/acme/portal/benefits/license-keys/{key}/activations/{activation}/deactivate", {}, True),
    ("GET", "/acme/portal/downloads/{grant}/{file}", {}, True),
    ("GET", "/acme/portal/settings", {}, False),
    ("POST", "/acme/portal/settings", {"billing_name": "Mallory", "country": "FR"}, False),
]

IDENTITIES = ["signed_out", "other_customer", "other_org", "other_org_token_as_acme_cookie"]


def _identify(client: TestClient[Litestar], settings: Settings, identity: str) -> None:
    client.cookies.clear()
    if identity == "other_customer":
        name, token = new_session(settings, "acme", "sam@example.com")
        client.cookies.set(name, token)
    elif identity == "other_org":
        name, token = new_session(settings, "lumen", "sam@example.com")
        client.cookies.set(name, token)
    elif identity == "other_org_token_as_acme_cookie":
        _, token = new_session(settings, "lumen", "sam@example.com")
        acme_name, _ = new_session(settings, "acme", "sam@example.com")
        client.cookies.set(acme_name, token)


@pytest.mark.parametrize("identity", IDENTITIES)
def test_route_matrix(client: TestClient[Litestar], settings: Settings, identity: str) -> None:
    ids = owner_objects(settings)
    _identify(client, settings, identity)
    token = csrf_token(client, "/acme/portal")
    checked = 0
    for method, template, fields, about_object in ROUTES:
        if identity == "other_customer" and not about_object:
            continue  # their own lists and settings: covered by test_pages
        path = template.format(**ids)
        before = table_fingerprint(settings)
        if method == "GET":
            response = client.get(path)
        else:
            data = {key: value.format(**ids) for key, value in fields.items()}
            response = client.post(path, data={"_csrf_token": token, **data})
        allowed = {404} if about_object and identity == "other_customer" else {303, 404}
        assert response.status_code in allowed, (identity, method, path, response.status_code)
        if response.status_code == 303:
            # To sign-in; a GET carries the page along as ``next`` (deep links survive sign-in, issue 22).
            wanted = f"/acme/portal?next={quote(path, safe='/')}" if method == "GET" else "/acme/portal"
            assert response.headers["location"] == wanted, (identity, path)
        assert table_fingerprint(settings) == before, f"{identity} {method} {path} wrote to the database"
        checked += 1
    assert checked >= 9


def test_matrix_owner_sanity(client: TestClient[Litestar], settings: Settings) -> None:
    """The same object routes do answer the owner (so the 404s above are about ownership, not typos)."""
    ids = owner_objects(settings)
    name, token = new_session(settings, "acme", OWNER)
    client.cookies.set(name, token)
    for method, template, _fields, about_object in ROUTES:
        if method == "GET" and about_object and "downloads" not in template:
            assert client.get(template.format(**ids)).status_code == 200, template
