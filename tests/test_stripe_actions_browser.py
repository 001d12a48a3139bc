"""The subscription page's action area in chromium (issue 19, actions out), served for real: a Stripe
subscription offers "Update payment method" and the button really takes the browser to the (fake) billing portal
and back (the page's CSP lets that form leave Portal); Stripe down shows the notice; a processor that cannot
receive actions shows no buttons, only how to reach the seller. Screenshots, phone and desktop, light and dark:
``test-artifacts/stripe-actions-*.png``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from portal.clock import Clock
from portal.connectors import base
from portal.settings import Settings
from tests.admin_support import api, free_port
from tests.apps import app_for
from tests.browser_helpers import chromium_path, in_thread, new_session, screenshot, serve
from tests.stripe_actions_support import SUPPORT_EMAIL, LedgerProcessor, StripeShop, make_shop
from tests.stripe_fake import FakeStripe, fake_stripe

pytestmark = pytest.mark.skipif(chromium_path() is None, reason="Debian's chromium is not installed")

VIEWS = {
    "desktop-light": {"viewport": {"width": 1100, "height": 900}, "color_scheme": "light"},
    "phone-dark": {"viewport": {"width": 390, "height": 844}, "color_scheme": "dark", "is_mobile": True},
    "phone-light": {"viewport": {"width": 390, "height": 844}, "color_scheme": "light", "is_mobile": True},
    "desktop-dark": {"viewport": {"width": 1100, "height": 900}, "color_scheme": "dark"},
}


@pytest.fixture
def served(settings: Settings) -> Iterator[tuple[str, Settings, FakeStripe, StripeShop, StripeShop]]:
    ledger = LedgerProcessor()
    base.register(ledger)
    port = free_port()
    try:
        with fake_stripe() as fake:
            live = msgspec.structs.replace(
                settings, base_url=f"http://127.0.0.1:{port}", stripe_api_base=fake.base_url
            ).resolve_secrets()
            with TestClient(app_for(live), base_url="http://testserver.local") as client:
                stripe_shop = make_shop(client, live, fake)
                ledger_shop = make_shop(client, live, fake, processor="ledger", slug="globex")
                api(
                    client,
                    stripe_shop.admin,
                    "PATCH",
                    "/v1/connectors/stripe",
                    200,
                    json={"payment_method_update": True},
                )
            with serve(app_for(live, clock=Clock()), port) as base_url:
                yield base_url, live, fake, stripe_shop, ledger_shop
    finally:
        base.unregister(ledger.name)


def _page(browser: Any, base_url: str, cookies: list[tuple[str, str]], view: dict[str, Any]) -> Any:
    context = browser.new_context(base_url=base_url, **view)
    context.add_cookies([{"name": name, "value": value, "url": base_url} for name, value in cookies])
    return context.new_page()


def test_action_area_in_chromium(
    served: tuple[str, Settings, FakeStripe, StripeShop, StripeShop], chromium: Any
) -> None:
    base_url, settings, fake, stripe_shop, ledger_shop = served
    stripe_path = f"/acme/portal/subscriptions/{stripe_shop.subscription_id}"
    ledger_path = f"/globex/portal/subscriptions/{ledger_shop.subscription_id}"
    acme = in_thread(new_session, settings, "acme", "ada@example.com")
    globex = in_thread(new_session, settings, "globex", "ada@example.com")
    pages = {}
    for label, view in VIEWS.items():
        page = pages[label] = _page(chromium, base_url, [acme, globex], view)  # one session per organization
        page.goto(stripe_path)
        assert page.get_by_role("button", name="Update payment method").is_visible()
        assert page.get_by_role("link", name="Cancel subscription…").is_visible()
        screenshot(page, f"stripe-actions-stripe-{label}")

        page.goto(ledger_path)
        managed = page.locator('[data-field="managed-by"]')
        assert managed.is_visible() and SUPPORT_EMAIL in managed.inner_text()
        assert page.get_by_role("link", name="Cancel subscription…").count() == 0
        assert page.get_by_role("link", name="Change plan").count() == 0
        screenshot(page, f"stripe-actions-ledger-{label}")

    # The payment-method button: off to the billing portal (a redirect the CSP allows), and back.
    page = pages["desktop-light"]
    page.goto(stripe_path)
    page.get_by_role("button", name="Update payment method").click()
    page.wait_for_url(f"{fake.base_url}/p/session/**")
    assert "payment_method_update" in page.inner_text("h1")
    page.click("#return")
    page.wait_for_url(f"{base_url}{stripe_path}")

    # Stripe down: the customer is told, and the subscription is as it was.
    fake.down = True
    page.get_by_role("link", name="Cancel subscription…").click()  # the cancel step (issue 22)
    page.get_by_role("button", name="Confirm cancellation").click()
    page.wait_for_url("**?failed=processor_down")
    notice = page.locator('[data-field="action-failure"]')
    assert "nothing was changed" in notice.inner_text()
    assert page.get_by_role("link", name="Cancel subscription…").count() >= 1
    screenshot(page, "stripe-actions-stripe-down-desktop-light")
    fake.down = False
