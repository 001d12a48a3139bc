"""Customer actions flow back to Stripe (issue 19, "Actions out"): cancel at period end, un-cancel and plan change
from the portal pages and the customer-portal API call the (fake, loopback) Stripe API first with the pinned API
version and the seller's proration setting, then change Portal; Stripe refusing or down leaves Portal unchanged
with a clear message. The safety rule: a processor that cannot receive an action never offers it. "Update payment
method" opens a billing-portal session limited to the payment-method flow, only where the seller enabled it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from bs4 import BeautifulSoup
from litestar import Litestar
from litestar.testing import TestClient

from portal.connectors import base
from portal.connectors.stripe.client import API_VERSION
from portal.db import connect_sync
from portal.settings import Settings
from tests.admin_support import api
from tests.apps import app_for
from tests.browser_helpers import table_fingerprint
from tests.signin_helpers import csrf_from, insert_session, sign_in_browser
from tests.stripe_actions_support import SUPPORT_EMAIL, LedgerProcessor, StripeShop, make_shop
from tests.stripe_fake import FakeStripe, Recorded, fake_stripe

BASE = "http://testserver.local"


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with fake_stripe() as running:
        yield running


@pytest.fixture
def stripe_settings(settings: Settings, fake: FakeStripe) -> Settings:
    return msgspec.structs.replace(settings, stripe_api_base=fake.base_url)


@pytest.fixture
def web(stripe_settings: Settings) -> Iterator[TestClient[Litestar]]:
    with TestClient(app_for(stripe_settings), base_url=BASE) as test_client:
        yield test_client


@pytest.fixture
def shop(web: TestClient[Litestar], stripe_settings: Settings, fake: FakeStripe) -> StripeShop:
    made = make_shop(web, stripe_settings, fake)
    fake.requests.clear()
    return made


def _page(shop: StripeShop) -> str:
    return f"/acme/portal/subscriptions/{shop.subscription_id}"


def _signed_in(web: TestClient[Litestar], settings: Settings, shop: StripeShop) -> str:
    sign_in_browser(web, settings, "acme", shop.org_id, shop.customer_id)
    response = web.get(_page(shop))
    assert response.status_code == 200, response.text
    return response.text


def _api_headers(settings: Settings, shop: StripeShop) -> dict[str, str]:
    token = insert_session(settings, shop.org_id, shop.customer_id, kind="api")
    return {"Authorization": f"Bearer {token}"}


def _subscription(web: TestClient[Litestar], shop: StripeShop) -> dict[str, Any]:
    return api(web, shop.admin, "GET", f"/v1/subscriptions/{shop.subscription_id}", 200)  # type: ignore[no-any-return]


def _writes(fake: FakeStripe) -> list[Recorded]:
    return [r for r in fake.requests if r.method == "POST"]


def _post(web: TestClient[Litestar], path: str, html: str, **fields: str) -> Any:
    return web.post(path, data={"_csrf_token": csrf_from(html), **fields}, follow_redirects=False)


def test_cancel_and_uncancel_from_the_page_go_to_stripe_first(
    web: TestClient[Litestar], stripe_settings: Settings, fake: FakeStripe, shop: StripeShop
) -> None:
    html = _signed_in(web, stripe_settings, shop)
    assert "Cancel subscription" in html
    response = _post(web, _page(shop) + "/cancel", html, cancellation_reason="too_expensive")
    assert response.status_code == 303 and response.headers["location"].endswith("?done=canceled")
    (write,) = _writes(fake)
    assert write.path == "/v1/subscriptions/sub_ada" and write.form == {"cancel_at_period_end": "true"}
    assert write.version == API_VERSION and write.authorization == f"Bearer {fake.api_key}"
    assert fake.objects["subscriptions"]["sub_ada"]["cancel_at_period_end"] is True
    assert _subscription(web, shop)["cancel_at_period_end"] is True

    html = web.get(_page(shop)).text
    response = _post(web, _page(shop) + "/uncancel", html)
    assert response.status_code == 303 and response.headers["location"].endswith("?done=uncanceled")
    assert _writes(fake)[-1].form == {"cancel_at_period_end": "false"}
    assert _subscription(web, shop)["cancel_at_period_end"] is False


def test_plan_change_through_the_api_sends_the_mapped_price_and_the_sellers_proration(
    web: TestClient[Litestar], stripe_settings: Settings, fake: FakeStripe, shop: StripeShop
) -> None:
    headers = _api_headers(stripe_settings, shop)
    path = f"/v1/customer-portal/subscriptions/{shop.subscription_id}"
    answer = web.patch(path, json={"product_id": shop.pro_id}, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["product_id"] == shop.pro_id and answer.json()["amount"] == 1900
    (write,) = _writes(fake)
    assert write.path == "/v1/subscriptions/sub_ada"
    assert write.form == {
        "items[0][id]": "si_ada",
        "items[0][price]": "price_pro",
        "proration_behavior": "always_invoice",
    }
    assert fake.objects["subscriptions"]["sub_ada"]["items"]["data"][0]["price"]["id"] == "price_pro"

    # A plan with no Stripe price is not a valid option: 422 at product_id, nothing sent, nothing changed.
    fake.requests.clear()
    answer = web.patch(path, json={"product_id": shop.team_id}, headers=headers)
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["body", "product_id"]
    assert _writes(fake) == [] and _subscription(web, shop)["product_id"] == shop.pro_id


def test_plan_change_page_offers_only_plans_with_a_stripe_price(
    web: TestClient[Litestar], stripe_settings: Settings, fake: FakeStripe, shop: StripeShop
) -> None:
    _signed_in(web, stripe_settings, shop)
    page = web.get(_page(shop) + "/change-plan")
    assert page.status_code == 200
    assert "Pro" in page.text and "Team" not in page.text
    assert web.get(_page(shop) + f"/change-plan/confirm?product_id={shop.team_id}").status_code == 404
    confirm = web.get(_page(shop) + f"/change-plan/confirm?product_id={shop.pro_id}")
    assert confirm.status_code == 200
    response = _post(web, _page(shop) + "/change-plan", confirm.text, product_id=shop.pro_id)
    assert response.status_code == 303 and response.headers["location"].endswith("?done=plan_changed")
    assert _writes(fake)[-1].form["items[0][price]"] == "price_pro"
    assert _subscription(web, shop)["product_id"] == shop.pro_id


@pytest.mark.parametrize(
    ("failure", "status", "reason"),
    [
        ((400, "invalid_request_error"), 422, "refused"),
        # A restricted key without write permission on subscriptions: a refusal at run time, not the safety rule.
        ((403, "invalid_request_error"), 422, "refused"),
        ("down", 502, "down"),
    ],
)
def test_stripe_refusing_or_down_changes_nothing_and_says_so(
    web: TestClient[Litestar],
    stripe_settings: Settings,
    fake: FakeStripe,
    shop: StripeShop,
    failure: Any,
    status: int,
    reason: str,
) -> None:
    html = _signed_in(web, stripe_settings, shop)
    before = table_fingerprint(stripe_settings)
    if failure == "down":
        fake.down = True
    else:
        fake.fail_with = failure

    # Portal pages: back to the subscription with a notice, nothing written.
    response = _post(web, _page(shop) + "/cancel", html)
    key = "processor_down" if reason == "down" else "processor_refused"
    assert response.status_code == 303 and response.headers["location"].endswith(f"?failed={key}")
    fake.down, fake.fail_with = False, None
    page = web.get(response.headers["location"])
    notice = BeautifulSoup(page.text, "html.parser").select_one('[data-field="action-failure"]')
    assert notice is not None and "nothing was changed" in notice.get_text()
    assert table_fingerprint(stripe_settings) == before
    if failure == "down":
        fake.down = True
    else:
        fake.fail_with = failure

    # The API: Polar's error shapes, nothing written.
    headers = _api_headers(stripe_settings, shop)
    before = table_fingerprint(stripe_settings)
    path = f"/v1/customer-portal/subscriptions/{shop.subscription_id}"
    answer = web.patch(path, json={"cancel_at_period_end": True}, headers=headers)
    assert answer.status_code == status, answer.text
    if status == 502:
        assert answer.json()["error"] == "ProcessorUnavailable" and "Stripe" in answer.json()["detail"]
    else:
        assert answer.json()["detail"][0]["loc"] == ["body", "cancel_at_period_end"]
        assert "Stripe refused" in answer.json()["detail"][0]["msg"]
    assert web.delete(path, headers=headers).status_code == status
    assert web.patch(path, json={"product_id": shop.pro_id}, headers=headers).status_code == status
    assert table_fingerprint(stripe_settings) == before
    fake.down, fake.fail_with = False, None
    assert _subscription(web, shop)["cancel_at_period_end"] is False
    assert _subscription(web, shop)["product_id"] == shop.basic_id


def test_a_subscription_made_in_portal_never_calls_stripe(
    web: TestClient[Litestar], stripe_settings: Settings, fake: FakeStripe, shop: StripeShop
) -> None:
    # Another subscription of the same customer, made through the admin API: no link, nothing to send.
    other = api(
        web,
        shop.admin,
        "POST",
        "/v1/subscriptions/",
        201,
        json={
            "customer_id": shop.customer_id,
            "product_id": shop.team_id,
            "status": "active",
            "current_period_start": _subscription(web, shop)["current_period_start"],
        },
    )
    headers = _api_headers(stripe_settings, shop)
    answer = web.delete(f"/v1/customer-portal/subscriptions/{other['id']}", headers=headers)
    assert answer.status_code == 200 and answer.json()["cancel_at_period_end"] is True
    assert fake.requests == []


@pytest.fixture
def ledger() -> Iterator[LedgerProcessor]:
    processor = LedgerProcessor()
    base.register(processor)
    try:
        yield processor
    finally:
        base.unregister(processor.name)


def test_safety_rule_a_processor_without_the_capability_is_never_offered(
    web: TestClient[Litestar], stripe_settings: Settings, fake: FakeStripe, ledger: LedgerProcessor
) -> None:
    shop = make_shop(web, stripe_settings, fake, processor="ledger")
    html = _signed_in(web, stripe_settings, shop)
    soup = BeautifulSoup(html, "html.parser")
    forms = [form["action"] for form in soup.find_all("form")]
    assert not any(str(action).endswith(("/cancel", "/uncancel", "/payment-method")) for action in forms)
    assert "/change-plan" not in html
    managed = soup.select_one('[data-field="managed-by"]')
    assert managed is not None and "Ledger Pay" in managed.get_text() and SUPPORT_EMAIL in managed.get_text()
    assert web.get(_page(shop) + "/change-plan").status_code == 404

    before = table_fingerprint(stripe_settings)
    # A hand-made POST is refused the same way.
    response = _post(web, _page(shop) + "/cancel", html)
    assert response.status_code == 303 and response.headers["location"].endswith("?failed=unavailable")
    headers = _api_headers(stripe_settings, shop)
    path = f"/v1/customer-portal/subscriptions/{shop.subscription_id}"
    for answer in (
        web.patch(path, json={"cancel_at_period_end": True}, headers=headers),
        web.delete(path, headers=headers),
        web.patch(path, json={"product_id": shop.pro_id}, headers=headers),
    ):
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"] == "NotPermitted" and SUPPORT_EMAIL in answer.json()["detail"]
    assert table_fingerprint(stripe_settings) == before
    assert ledger.calls == [] and fake.requests == []


def test_update_payment_method_opens_the_billing_portal_only_where_enabled(
    web: TestClient[Litestar], stripe_settings: Settings, fake: FakeStripe, shop: StripeShop
) -> None:
    html = _signed_in(web, stripe_settings, shop)
    assert "Update payment method" not in html
    token = csrf_from(html)
    refused = web.post(_page(shop) + "/payment-method", data={"_csrf_token": token}, follow_redirects=False)
    assert refused.status_code == 404 and fake.requests == []

    api(web, shop.admin, "PATCH", "/v1/connectors/stripe", 200, json={"payment_method_update": True})
    page = web.get(_page(shop))
    assert "Update payment method" in page.text
    # The form redirects to Stripe: this page's CSP lets a form go there (and only there, besides Portal).
    assert f"form-action 'self' {fake.base_url}" in page.headers["content-security-policy"]
    # CSRF-checked like every form.
    assert web.post(_page(shop) + "/payment-method", data={}, follow_redirects=False).status_code == 403

    response = _post(web, _page(shop) + "/payment-method", page.text)
    assert response.status_code == 303
    (write,) = _writes(fake)
    return_url = f"{BASE}{_page(shop)}"
    assert write.path == "/v1/billing_portal/sessions" and write.version == API_VERSION
    assert write.form == {
        "customer": "cus_ada",
        "return_url": return_url,
        "flow_data[type]": "payment_method_update",
        "flow_data[after_completion][type]": "redirect",
        "flow_data[after_completion][redirect][return_url]": return_url,
    }
    location = response.headers["location"]
    assert location.startswith(fake.base_url + "/p/session/")

    # Stripe down: back to the page with the notice.
    fake.down = True
    failed = _post(web, _page(shop) + "/payment-method", page.text)
    assert failed.headers["location"].endswith("?failed=processor_down")


def test_payment_method_without_a_linked_customer_asks_stripe_whose_subscription_it_is(
    web: TestClient[Litestar], stripe_settings: Settings, fake: FakeStripe, shop: StripeShop
) -> None:
    # A subscription imported before its customer was linked: the Stripe customer comes from the subscription.
    conn = connect_sync(stripe_settings.db_path)
    try:
        conn.execute("DELETE FROM connector_links WHERE kind = 'customer'")
    finally:
        conn.close()
    api(web, shop.admin, "PATCH", "/v1/connectors/stripe", 200, json={"payment_method_update": True})
    html = _signed_in(web, stripe_settings, shop)
    fake.requests.clear()
    response = _post(web, _page(shop) + "/payment-method", html)
    assert response.status_code == 303 and response.headers["location"].startswith(fake.base_url + "/p/session/")
    retrieve, create = fake.requests
    assert (retrieve.method, retrieve.path) == ("GET", "/v1/subscriptions/sub_ada")
    assert create.path == "/v1/billing_portal/sessions" and create.form["customer"] == "cus_ada"
