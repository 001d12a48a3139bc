"""The Customers section in chromium (one browser for the module): the search results and a customer's page on a
desktop (1440x900) and a phone (390x844), light and dark, with axe reporting no serious or critical violation
(screenshots in test-artifacts/console-customers-*), the sign-in link shown in a selectable read-only field, and
the portal viewed as the customer with its banner."""

from __future__ import annotations

from typing import Any

import pytest

from portal.settings import Settings
from tests.browser_helpers import (
    AXE_PATH,
    axe_both_schemes,
    axe_context,
    axe_violations,
    chromium_path,
    in_thread,
    screenshot,
)
from tests.console_helpers import Team, audit_actions, plant_session, sql

pytestmark = [
    pytest.mark.seeded,
    pytest.mark.skipif(chromium_path() is None, reason="Debian's chromium is not installed"),
    pytest.mark.skipif(not AXE_PATH.exists(), reason="run `npm install --prefix tests/js` for axe-core"),
]

VIEWPORTS = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}


def test_search_and_customer_pages_are_accessible_and_the_actions_work(
    served_console: tuple[str, Settings, Team], chromium: Any
) -> None:
    from playwright.sync_api import expect

    base_url, settings, team = served_console
    token = in_thread(plant_session, settings, team.support)
    ((alex,),) = in_thread(
        sql,
        settings,
        "SELECT c.id FROM customers c JOIN organizations o ON o.id = c.organization_id "
        "WHERE o.slug = 'acme' AND c.email = 'alex@example.com'",
    )
    problems: dict[str, list[str]] = {}
    for viewport in VIEWPORTS:
        context = axe_context(chromium, base_url=base_url, viewport=VIEWPORTS[viewport], color_scheme="light")
        context.add_cookies([{"name": "console_session", "value": token, "url": f"{base_url}/console"}])
        page = context.new_page()
        for name, path in (
            ("search", "/console/acme/customers?q=a"),
            ("customer", f"/console/acme/customers/{alex}"),
        ):
            page.goto(path)
            axe_both_schemes(page, problems, f"{viewport} {name}", f"console-customers-{viewport}-{{scheme}}-{name}")
        context.close()
    # The actions, with the keyboard-reachable forms, on a desktop.
    context = axe_context(chromium, base_url=base_url, viewport=VIEWPORTS["desktop"])
    context.add_cookies([{"name": "console_session", "value": token, "url": f"{base_url}/console"}])
    page = context.new_page()
    page.goto("/console/acme")
    page.get_by_role("link", name="Customers").click()
    page.get_by_label("Find a customer").fill("ACME-0002")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("row", name="alex@example.com")).to_contain_text("Receipt number")
    page.get_by_role("link", name="alex@example.com").click()
    page.get_by_role("button", name="Create a sign-in link").click()
    link = page.get_by_role("textbox", name="Sign-in link")
    expect(link).to_have_attribute("readonly", "")
    value = link.input_value()
    assert value.startswith(f"{base_url}/acme/portal?customer_session_token=polar_cst_")
    screenshot(page, "console-customers-desktop-light-link")
    page.get_by_role("button", name="View the portal as this customer").click()
    expect(page.get_by_text("Viewing as alex@example.com — read only.")).to_be_visible()
    if found := axe_violations(page):
        problems["view-as portal"] = found
    screenshot(page, "console-customers-desktop-light-view-as")
    page.get_by_role("link", name="Back to the console").click()
    page.get_by_role("button", name="Stop viewing").click()
    expect(page.get_by_role("status")).to_have_text("You stopped viewing the portal as this customer.")
    context.close()
    assert not problems, "\n".join(f"{where}: {issue}" for where, issues in problems.items() for issue in issues)
    actions = [entry[0] for entry in in_thread(audit_actions, settings, team.acme_id)]
    assert actions == ["customer.sign_in_link", "customer.view_as", "customer.view_as_end"]
