"""Polar's own customer-portal rules, checked through the real ``polar-sdk`` against a served Portal (raw HTTP
where the SDK hides the detail): issue 23, items 1-7 and 11. Each test names the Polar rule it pins."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from polar.base import PolarClientError
from polar.v2026_10.client import Polar
from polar.v2026_10.errors import HTTPValidationError, ResourceNotFound

from portal.settings import Settings
from tests.api_server import api_token, served_portal
from tests.browser_helpers import new_session, one, query

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
