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

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from portal.clock import iso, parse_iso
from portal.settings import Settings
from tests.admin_support import api, bearer, mint_token


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
