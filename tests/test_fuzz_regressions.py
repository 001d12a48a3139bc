"""Regression tests for what the schema fuzzer (``test_fuzz_api.py``) found, pinned as plain examples so they
fail deterministically if they come back:

* a timestamp before year 1000 was stored as ``478-10-14T…`` (glibc's ``%Y`` does not pad), which no read could
  parse again: every later PATCH of that subscription answered 500;
* dates and integers out of range (year 1 at +05:00, a year past 9999 after adding a period, an amount SQLite
  cannot store) answered 500;
* an invalid body field named like a dependency (an organization's ``settings``) answered 500 (Litestar takes it
  for a broken dependency);
* a body that is not JSON answered a bare 400 where Polar answers 422 ``json_invalid``;
* the customer-session endpoints did not document their 401/422/429 answers.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from portal.clock import iso, parse_iso
from portal.settings import Settings
from tests.admin_support import api, bearer, mint_token
from tests.serving import portal_env, run_portal


@pytest.fixture
def admin(settings: Settings) -> str:
    return mint_token(settings)


@pytest.fixture
def sub(client: TestClient[Litestar], admin: str) -> dict[str, Any]:
    org = api(client, admin, "POST", "/v1/organizations/", 201, json={"name": "Initech", "slug": "initech"})
    customer = api(
        client, admin, "POST", "/v1/customers/", 201, json={"email": "a@example.com", "organization_id": org["id"]}
    )
    price = [{"amount_type": "fixed", "price_amount": 100, "price_currency": "usd"}]
    product = api(
        client,
        admin,
        "POST",
        "/v1/products/",
        201,
        json={"organization_id": org["id"], "name": "Plan", "recurring_interval": "month", "prices": price},
    )
    body = {
        "customer_id": customer["id"],
        "product_id": product["id"],
        "status": "active",
        "current_period_start": "2026-11-01T00:00:00Z",
    }
    return {
        "org": org,
        "customer": customer,
        "product": product,
        **api(client, admin, "POST", "/v1/subscriptions/", 201, json=body),
    }


def test_iso_pads_the_year_and_round_trips() -> None:
    for moment in (datetime(478, 10, 14, 7, 41, 22, tzinfo=UTC), datetime(2026, 11, 25, 1, 2, 3, 4, tzinfo=UTC)):
        text = iso(moment)
        assert len(text) == len("2026-11-25T01:02:03.000004Z") and text.endswith("Z")
        assert parse_iso(text) == moment
    assert iso(datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=5)))) == "2025-12-31T19:00:00.000000Z"


def test_an_early_timestamp_does_not_poison_the_row(
    client: TestClient[Litestar], admin: str, sub: dict[str, Any]
) -> None:
    path = f"/v1/subscriptions/{sub['id']}"
    api(client, admin, "PATCH", path, 200, json={"canceled_at": "0478-10-14T07:41:22Z"})
    again = api(client, admin, "PATCH", path, 200, json={})
    assert again["canceled_at"].startswith("0478-10-14T07:41:22")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", "/v1/subscriptions/{sub}", {"ends_at": "0001-01-01T00:00:00+05:00"}),
        ("POST", "/v1/subscriptions/", {"status": "active", "current_period_start": "9999-12-20T00:00:00Z"}),
        ("POST", "/v1/products/", {"name": "P", "prices": [{"price_amount": 10**30, "price_currency": "usd"}]}),
        ("POST", "/v1/products/", {"name": "P", "prices": [{"price_amount": 2**63 + 5, "price_currency": "usd"}]}),
    ],
)
def test_values_out_of_range_answer_422(
    client: TestClient[Litestar], admin: str, sub: dict[str, Any], method: str, path: str, body: dict[str, Any]
) -> None:
    if path == "/v1/subscriptions/":
        body = {**body, "customer_id": sub["customer"]["id"], "product_id": sub["product"]["id"]}
    if path == "/v1/products/":
        body = {**body, "organization_id": sub["org"]["id"]}
    response = client.request(method, path.format(sub=sub["id"]), json=body, headers=bearer(admin))
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][0] == "body"


def test_invalid_settings_field_of_an_organization_is_a_422(
    client: TestClient[Litestar], admin: str, sub: dict[str, Any]
) -> None:
    for method, path in (("POST", "/v1/organizations/"), ("PATCH", f"/v1/organizations/{sub['org']['id']}")):
        response = client.request(
            method, path, json={"name": "X", "slug": "x-corp", "settings": 5}, headers=bearer(admin)
        )
        assert response.status_code == 422, (method, response.text)
        assert response.json()["detail"][0]["loc"] == ["body", "settings"]


def test_a_body_that_is_not_json_is_a_422_json_invalid(client: TestClient[Litestar], admin: str) -> None:
    for body in (b"\x00", b"{", b"{not json"):
        response = client.post(
            "/v1/customers/", content=body, headers={**bearer(admin), "content-type": "application/json"}
        )
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["type"] == "json_invalid"


def test_customer_session_endpoints_document_their_errors(client: TestClient[Litestar]) -> None:
    paths = client.get("/docs/openapi.json").json()["paths"]
    session = "/v1/customer-portal/customer-session"
    assert {"401", "422", "429"} <= set(paths[f"{session}/authenticate"]["post"]["responses"])
    assert {"422", "429"} <= set(paths[f"{session}/request"]["post"]["responses"])
    for name in ("introspect", "user"):
        operation = paths[f"{session}/{name}"]["get"]
        assert "401" in operation["responses"] and operation["security"] == [{"bearerAuth": []}]


# --- issue 17.7: classes of input that answered 500 or a 422 naming no field ----------------------------------


def _request_properties(client: TestClient[Litestar]) -> dict[tuple[str, str], dict[str, Any]]:
    """Every admin write's JSON body properties, from the OpenAPI document (refs resolved one level)."""
    document = client.get("/docs/openapi.json").json()
    schemas = document["components"]["schemas"]

    def resolve(schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
        return schema

    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None and path.startswith("/v1/"):
                found[(method.upper(), path)] = {
                    name: resolve(prop) for name, prop in resolve(body["schema"]).get("properties", {}).items()
                }
    return found


def _is_datetime(schema: dict[str, Any]) -> bool:
    options = schema.get("oneOf") or schema.get("anyOf") or [schema]
    return any(option.get("format") == "date-time" for option in options)


def _datetime_fields(client: TestClient[Litestar]) -> set[tuple[str, str, str]]:
    return {
        (method, path, name)
        for (method, path), properties in _request_properties(client).items()
        for name, schema in properties.items()
        if _is_datetime(schema)
    }


BAD_MOMENTS = [
    ("2026-01-01T00:00:00", "timezone"),  # naive: could not be compared with stored UTC times (500)
    ("9999-12-31T23:59:59Z", "out of range"),  # a period added to it overflows
    ("0001-01-01T00:00:00+05:00", "out of range"),  # before year 1 in UTC
]


def test_every_admin_datetime_field_refuses_naive_and_out_of_range_times(
    client: TestClient[Litestar], admin: str, sub: dict[str, Any]
) -> None:
    """The class: every datetime an admin write takes (found in the OpenAPI document, so a new one is covered)
    answers 422 at its own field for a naive time or one out of range, and writes nothing."""
    fields = _datetime_fields(client)
    assert fields, "the walk found no datetime field"
    base = {
        "customer_id": sub["customer"]["id"],
        "product_id": sub["product"]["id"],
        "status": "active",
        "current_period_start": "2026-11-01T00:00:00Z",
    }
    bases = {
        "/v1/subscriptions": base,
        "/v1/orders": {"customer_id": base["customer_id"], "product_id": base["product_id"]},
    }
    before = api(client, admin, "GET", f"/v1/subscriptions/{sub['id']}")
    orders_before = api(client, admin, "GET", f"/v1/orders/?customer_id={sub['customer']['id']}")
    for method, path, name in sorted(fields):
        # PATCH /v1/license-keys/{id} validates its body before looking the key up: any id shows the 422.
        covered = (*bases, "/v1/subscriptions/{id}", "/v1/license-keys/{id}")
        assert path in covered, f"new datetime field {path} {name}: cover it"
        for value, words in BAD_MOMENTS:
            body = {**bases[path], name: value} if method == "POST" else {name: value}
            url = path.replace("{id}", sub["id"])
            response = client.request(method, url, json=body, headers=bearer(admin))
            assert response.status_code == 422, (method, path, name, value, response.text)
            problem = response.json()["detail"][0]
            assert problem["loc"] == ["body", name], (name, value, problem)
            assert words in problem["msg"], (name, value, problem)
    after = api(client, admin, "GET", f"/v1/subscriptions/{sub['id']}")
    assert after == before
    listed = api(client, admin, "GET", f"/v1/subscriptions/?customer_id={sub['customer']['id']}")
    assert listed["pagination"]["total_count"] == 1
    assert api(client, admin, "GET", f"/v1/orders/?customer_id={sub['customer']['id']}") == orders_before


@pytest.mark.parametrize(
    ("method", "path", "body", "loc"),
    [
        ("POST", "/v1/products/", {"name": "P", "prices": [{"price_amount": 10**30}]}, ["prices", 0, "price_amount"]),
        ("POST", "/v1/products/", {"name": "P", "prices": [{"price_amount": 2**63}]}, ["prices", 0, "price_amount"]),
        ("POST", "/v1/orders/", {"items": [{"label": "x", "unit_amount": 2**64}]}, ["items", 0, "unit_amount"]),
        (
            "POST",
            "/v1/orders/",
            {"items": [{"label": "x", "unit_amount": 1, "quantity": 10**19}]},
            ["items", 0, "quantity"],
        ),
        ("POST", "/v1/orders/", {"items": [{"label": "x", "unit_amount": 1}], "tax_amount": 10**40}, ["tax_amount"]),
        (
            "POST",
            "/v1/orders/",
            {"items": [{"label": "x", "unit_amount": 5}], "discount_amount": 2**63},
            ["discount_amount"],
        ),
        ("PATCH", "/v1/subscriptions/{sub}", {"amount": 10**30}, ["amount"]),
        (
            "POST",
            "/v1/orders/",
            {"items": [{"label": str(n), "unit_amount": 10**12, "quantity": 10**6} for n in range(10)]},
            ["items"],
        ),
    ],
)
def test_huge_integers_answer_422_naming_the_field(
    client: TestClient[Litestar],
    admin: str,
    sub: dict[str, Any],
    method: str,
    path: str,
    body: dict[str, Any],
    loc: list[Any],
) -> None:
    if path == "/v1/products/":
        body = {**body, "organization_id": sub["org"]["id"]}
        body["prices"] = [{"amount_type": "fixed", "price_currency": "usd", **price} for price in body["prices"]]
    if path == "/v1/orders/":
        body = {**body, "customer_id": sub["customer"]["id"]}
    response = client.request(method, path.format(sub=sub["id"]), json=body, headers=bearer(admin))
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", *loc], response.text


@pytest.mark.parametrize(
    "path",
    [
        "/static/app%00.css",
        "/static/%00",
        "/static/a/%00/b.css",
        "/static/%01%7f.css",
        "/static/" + "a" * 256 + ".css",
        "/static/" + "a/" * 600 + "x.css",
        "/static/" + "%C3%A9" * 200 + ".css",
    ],
)
def test_static_names_no_file_can_have_answer_404(client: TestClient[Litestar], path: str) -> None:
    response = client.get(path)
    assert response.status_code in (400, 404), (path[:60], response.status_code)


def test_static_files_are_still_served(client: TestClient[Litestar]) -> None:
    from portal.resources import templates_dir

    name = sorted(p.name for p in (templates_dir() / "static").iterdir() if p.is_file())[0]
    assert client.get(f"/static/{name}").status_code == 200


def test_portal_seed_reports_out_of_range_values_instead_of_a_traceback(tmp_path: Path) -> None:
    """``portal seed`` with huge integers and times prints its "not loaded (N errors)" report, each error at
    its path, and writes nothing."""
    env = portal_env(tmp_path / "data")
    assert run_portal(["migrate"], env).returncode == 0
    document = {
        "organizations": [
            {
                "slug": "big",
                "name": "Big",
                "products": [
                    {
                        "external_id": "plan",
                        "name": "Plan",
                        "recurring_interval": "month",
                        "recurring_interval_count": 10**20,
                        "prices": [{"amount": 10**30, "currency": "usd"}],
                    },
                    {"external_id": "one", "name": "One", "prices": [{"amount": 100, "currency": "usd"}]},
                ],
                "customers": [
                    {"external_id": "c", "email": "c@example.com", "created_at": "0001-01-01T00:00:00+05:00"}
                ],
                "subscriptions": [
                    {
                        "external_id": "s",
                        "customer": "c",
                        "product": "plan",
                        "status": "active",
                        "current_period_start": "9999-12-31T00:00:00Z",
                    },
                    {
                        "external_id": "t",
                        "customer": "c",
                        "product": "plan",
                        "status": "active",
                        "current_period_start": "now+100000y",
                    },
                ],
                "orders": [
                    {
                        "external_id": "o",
                        "customer": "c",
                        "product": "one",
                        "created_at": "now",
                        "items": [{"label": "x", "unit_amount": 2**64, "quantity": 10**19}],
                    }
                ],
            }
        ]
    }
    path = tmp_path / "big.json"
    path.write_text(json.dumps(document))
    result = run_portal(["seed", str(path)], env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "the seed document was not loaded (" in result.stderr, result.stderr
    for where in (
        "organizations[0].products[0].recurring_interval_count",
        "organizations[0].products[0].prices[0].amount",
        "organizations[0].orders[0].items[0].unit_amount",
    ):
        assert where in result.stderr, (where, result.stderr)
    conn = sqlite3.connect(tmp_path / "data" / "portal.db")
    assert conn.execute("SELECT COUNT(*) FROM organizations").fetchone()[0] == 0
    conn.close()


def test_portal_seed_reports_times_out_of_range_at_their_paths(tmp_path: Path) -> None:
    env = portal_env(tmp_path / "data")
    assert run_portal(["migrate"], env).returncode == 0
    organization = {
        "slug": "big",
        "name": "Big",
        "products": [
            {"external_id": "one", "name": "One", "prices": [{"amount": 100, "currency": "usd"}]},
            {
                "external_id": "plan",
                "name": "Plan",
                "recurring_interval": "year",
                "prices": [{"amount": 100, "currency": "usd"}],
            },
        ],
        "customers": [{"external_id": "c", "email": "c@example.com", "created_at": "0001-01-01T00:00:00+05:00"}],
        "subscriptions": [
            {
                "external_id": "s",
                "customer": "c",
                "product": "plan",
                "status": "active",
                "current_period_start": "9999-12-31T00:00:00Z",
            },
            {
                "external_id": "t",
                "customer": "c",
                "product": "plan",
                "status": "active",
                "current_period_start": "now+100000y",
            },
        ],
        "orders": [{"external_id": "o", "customer": "c", "product": "one", "created_at": "9999-12-31T23:59:59-05:00"}],
    }
    path = tmp_path / "times.json"
    path.write_text(json.dumps({"organizations": [organization]}))
    result = run_portal(["seed", str(path)], env)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "not loaded (4 errors)" in result.stderr, result.stderr
    for where in (
        "organizations[0].customers[0].created_at: out of range",
        "organizations[0].orders[0].created_at: out of range",
        "organizations[0].subscriptions[0].current_period_start: out of range",
        "organizations[0].subscriptions[1].current_period_start: expected an ISO-8601 time",
    ):
        assert where in result.stderr, (where, result.stderr)


def test_a_license_key_lifetime_that_would_overflow_is_refused_at_the_benefit(
    client: TestClient[Litestar], admin: str, sub: dict[str, Any]
) -> None:
    """A ttl of 10¹² years was stored, and then every order of a product with that benefit answered 422 "value out
    of range" at ["body"] (the key's expiry overflowed at grant time): the benefit's write refuses it instead."""
    body = {
        "organization_id": sub["org"]["id"],
        "type": "license_keys",
        "description": "Key",
        "properties": {"expires": {"ttl": 10**12, "timeframe": "year"}},
    }
    refused = api(client, admin, "POST", "/v1/benefits/", 422, json=body)
    assert refused["detail"][0]["loc"] == ["body", "properties", "expires"]
    century = {**body, "properties": {"expires": {"ttl": 36600, "timeframe": "day"}}}
    benefit = api(client, admin, "POST", "/v1/benefits/", 201, json=century)
    price = [{"amount_type": "fixed", "price_amount": 100, "price_currency": "usd"}]
    product = api(
        client,
        admin,
        "POST",
        "/v1/products/",
        201,
        json={"organization_id": sub["org"]["id"], "name": "Keyed", "prices": price, "benefits": [benefit["id"]]},
    )
    order = {"customer_id": sub["customer"]["id"], "product_id": product["id"]}
    api(client, admin, "POST", "/v1/orders/", 201, json=order)
