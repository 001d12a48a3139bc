"""The console's commerce pages in chromium (one browser for the module): a subscription, a license key and a
customer's benefits on a desktop (1440x900) and a phone (390x844), light and dark, with axe reporting no serious or
critical violation (screenshots in test-artifacts/console-commerce-*), and a few actions done with the forms."""

from __future__ import annotations

import re
from typing import Any

import pytest

from portal.settings import Settings
from tests.browser_helpers import (
    AXE_PATH,
    axe_both_schemes,
    axe_context,
    chromium_path,
    confirm_destructive,
    in_thread,
    screenshot,
)
from tests.console_helpers import Team, audit_actions, plant_session

pytestmark = [
    pytest.mark.skipif(chromium_path() is None, reason="Debian's chromium is not installed"),
    pytest.mark.skipif(not AXE_PATH.exists(), reason="run `npm install --prefix tests/js` for axe-core"),
]

VIEWPORTS = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}


def test_commerce_pages_are_accessible_and_their_forms_work(
    served_console: tuple[str, Settings, Team], chromium: Any
) -> None:
    from playwright.sync_api import expect

    base_url, settings, team = served_console
    shop = team.commerce
    token = in_thread(plant_session, settings, team.support)
    pages = {
        "subscription": f"/console/acme/subscriptions/{shop.subscription_id}",
        "license-key": f"/console/acme/license-keys/{shop.license_key_id}",
        "benefits": f"/console/acme/customers/{shop.customer_id}/benefits",
    }
    problems: dict[str, list[str]] = {}
    for viewport in VIEWPORTS:
        context = axe_context(chromium, base_url=base_url, viewport=VIEWPORTS[viewport], color_scheme="light")
        context.add_cookies([{"name": "console_session", "value": token, "url": f"{base_url}/console"}])
        page = context.new_page()
        for name, path in pages.items():
            page.goto(path)
            axe_both_schemes(page, problems, f"{viewport} {path}", f"console-commerce-{viewport}-{{scheme}}-{name}")
        context.close()

    # The actions, with the forms (desktop, light): the notices and the refused field are shown.
    context = chromium.new_context(base_url=base_url, viewport=VIEWPORTS["desktop"])
    context.add_cookies([{"name": "console_session", "value": token, "url": f"{base_url}/console"}])
    page = context.new_page()
    page.goto(pages["subscription"])
    page.get_by_role("button", name="Cancel at the end of the period").click()
    expect(page.get_by_role("status")).to_have_text("The subscription will end at the end of its current period.")
    expect(page.get_by_role("cell", name="subscription.canceled")).to_be_visible()
    screenshot(page, "console-commerce-desktop-light-subscription-canceled")
    page.get_by_role("button", name="Resume (un-cancel)").click()
    expect(page.get_by_role("status")).to_have_text("The subscription will renew again.")

    page.goto(pages["license-key"])
    page.get_by_label("Activation limit").fill("0")
    page.get_by_role("button", name="Change limit").click()
    expect(page.locator("#f-limit_activations-error")).to_contain_text("from 1 to 50")
    screenshot(page, "console-commerce-desktop-light-license-key-error")
    page.get_by_role("button", name="Rotate (new key)").click()
    expect(page.locator("#new-key")).to_have_text(re.compile(r"^CON-"))
    screenshot(page, "console-commerce-desktop-light-license-key-rotated")
    page.get_by_role("button", name="Deactivate Bo's laptop").click()
    expect(page.get_by_role("status")).to_have_text("The activation was removed.")

    page.goto(pages["benefits"])
    page.get_by_label("Benefit", exact=True).select_option(label="Priority support")
    page.get_by_role("button", name="Grant", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Benefit granted.")
    confirm_destructive(page, "Revoke Priority support")  # it asks first
    expect(page.get_by_role("status")).to_have_text("Grant revoked.")
    screenshot(page, "console-commerce-desktop-light-benefits-revoked")
    context.close()
    assert not problems, "\n".join(f"{where}: {issue}" for where, issues in problems.items() for issue in issues)
    assert [entry[0] for entry in in_thread(audit_actions, settings, team.acme_id)] == [
        "subscription.cancel",
        "subscription.uncancel",
        "license_key.rotated",
        "license_key.deactivated",
        "benefit.grant",
        "benefit.revoke",
    ]
