"""The console's order page in chromium (issue 21): a refund made with the keyboard-reachable form, then the page on
a desktop (1440x900) and a phone (390x844), light and dark, with axe reporting no serious or critical violation
(screenshots in test-artifacts/console-order-*). One browser, five page loads: the suite stays fast."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest

from portal.app import create_app
from portal.clock import Clock
from portal.settings import Settings
from tests.browser_helpers import (
    AXE_PATH,
    CHROMIUM_ARGS,
    chromium_path,
    free_port_for_tests,
    in_thread,
    screenshot,
    serve,
)
from tests.console_helpers import Team, audit_actions, make_team, plant_session
from tests.test_a11y import _violations

pytestmark = [
    pytest.mark.skipif(chromium_path() is None, reason="Debian's chromium is not installed"),
    pytest.mark.skipif(not AXE_PATH.exists(), reason="run `npm install --prefix tests/js` for axe-core"),
]

VIEWPORTS = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture
def served(settings: Settings) -> Iterator[tuple[str, Settings, Team]]:
    port = free_port_for_tests()
    settings = msgspec.structs.replace(settings, base_url=f"http://127.0.0.1:{port}")
    team = make_team(settings)
    with serve(create_app(settings, clock=Clock()), port) as base_url:
        yield base_url, settings, team


def test_the_order_page_refunds_and_is_accessible(served: tuple[str, Settings, Team]) -> None:
    from playwright.sync_api import expect, sync_playwright

    base_url, settings, team = served
    token = in_thread(plant_session, settings, team.owner)
    path = f"/console/acme/orders/{team.order_id}"
    problems: dict[str, list[str]] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            for viewport in VIEWPORTS:
                for scheme in ("light", "dark"):
                    context = browser.new_context(
                        base_url=base_url, viewport=VIEWPORTS[viewport], bypass_csp=True, color_scheme=scheme
                    )
                    context.add_cookies([{"name": "console_session", "value": token, "url": f"{base_url}/console"}])
                    page = context.new_page()
                    page.goto(path)
                    if viewport == "desktop" and scheme == "light":
                        # A partial refund through the form (the order was made in Portal: refunded locally).
                        page.get_by_label("Amount (USD)").fill("5.00")
                        page.get_by_label("Reason").select_option(label="Duplicate payment")
                        page.get_by_role("button", name="Refund", exact=True).click()
                        expect(page.get_by_role("status")).to_have_text("Refund recorded.")
                        expect(page.get_by_role("row", name="Duplicate payment")).to_contain_text("−$5.00")
                        # An amount over what is left is named on its field; the form keeps it.
                        page.get_by_label("Amount (USD)").fill("45.00")
                        page.get_by_role("button", name="Refund", exact=True).click()
                        expect(page.locator("#refund-amount-error")).to_have_text(
                            "At most 44.00 USD is left to refund."
                        )
                        screenshot(page, "console-order-desktop-light-error")
                        page.goto(path)
                    if found := _violations(page):
                        problems[f"{viewport} {scheme}"] = found
                    screenshot(page, f"console-order-{viewport}-{scheme}")
                    context.close()
        finally:
            browser.close()
    assert not problems, "\n".join(f"{where}: {issue}" for where, issues in problems.items() for issue in issues)
    assert [entry[0] for entry in in_thread(audit_actions, settings, team.acme_id)] == ["order.refund"]
