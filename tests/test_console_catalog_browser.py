"""The console's Catalog in chromium: a product, a note benefit (previewed) and its link to the product made
through the forms with the keyboard-reachable controls, then every catalog page on a desktop (1440x900) and a phone
(390x844), light and dark, with axe reporting no serious or critical violation (screenshots in
test-artifacts/console-catalog-*). One browser for the module, few page loads."""

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
    in_thread,
    screenshot,
)
from tests.console_helpers import Team, audit_actions, plant_session

pytestmark = [
    pytest.mark.skipif(chromium_path() is None, reason="Debian's chromium is not installed"),
    pytest.mark.skipif(not AXE_PATH.exists(), reason="run `npm install --prefix tests/js` for axe-core"),
]

VIEWPORTS = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}


def test_catalog_forms_and_pages_in_the_browser(served_console: tuple[str, Settings, Team], chromium: Any) -> None:
    from playwright.sync_api import expect

    base_url, settings, team = served_console
    token = in_thread(plant_session, settings, team.owner)
    cookie = {"name": "console_session", "value": token, "url": f"{base_url}/console"}
    problems: dict[str, list[str]] = {}
    context = chromium.new_context(base_url=base_url, viewport=VIEWPORTS["desktop"])
    context.add_cookies([cookie])
    page = context.new_page()
    # A product with two prices, made with the form.
    page.goto("/console/acme")
    page.get_by_role("link", name="Catalog").click()
    page.get_by_role("link", name="New product").click()
    page.get_by_label("Name").fill("Studio")
    page.get_by_label("Billing").select_option("year")
    page.get_by_label("Currency").fill("usd")
    page.get_by_label("Amount").fill("49.00")
    page.get_by_role("button", name="Create product").click()
    expect(page.get_by_role("status")).to_have_text("Product created.")
    product_url = page.url.split("?")[0]
    # A refused amount is named at its field.
    page.locator("#f-price-0-amount").fill("forty")
    page.get_by_role("button", name="Save product").click()
    expect(page.locator("#f-price-0-amount-error")).to_contain_text("Enter an amount")
    screenshot(page, "console-catalog-desktop-light-product-error")
    # A note benefit, previewed (hostile markup stays text), then created.
    page.goto("/console/acme/catalog")
    page.get_by_role("link", name="Note", exact=True).click()
    page.get_by_label("Description").fill("Welcome")
    page.get_by_label("Note for customers").fill("Hi <b>there</b>\n\nDocs: [guide](https://acme.example/guide)")
    page.get_by_role("button", name="Preview without saving").click()
    expect(page.locator(".note-preview .note a")).to_have_attribute("href", "https://acme.example/guide")
    expect(page.locator(".note-preview .note")).to_contain_text("Hi <b>there</b>")
    page.get_by_role("button", name="Create benefit").click()
    expect(page.get_by_role("status")).to_have_text("Benefit created.")
    note_url = page.url.split("?")[0]
    # The product grants it.
    page.goto(product_url)
    page.get_by_label(re.compile("^Welcome")).check()
    page.get_by_role("button", name="Save benefits").click()
    expect(page.get_by_role("status")).to_have_text("Benefits of the product saved.")
    expect(page.get_by_label(re.compile("^Welcome"))).to_be_checked()
    context.close()

    paths = [
        "/console/acme/catalog",
        product_url.removeprefix(base_url),
        note_url.removeprefix(base_url),
        f"/console/acme/catalog/benefits/{team.benefit_id}",
        "/console/acme/catalog/benefits/new/license_keys",
    ]
    for viewport in VIEWPORTS:
        context = axe_context(chromium, base_url=base_url, viewport=VIEWPORTS[viewport], color_scheme="light")
        context.add_cookies([cookie])
        page = context.new_page()
        for index, path in enumerate(paths):
            page.goto(path)
            axe_both_schemes(page, problems, f"{viewport} {path}", f"console-catalog-{viewport}-{{scheme}}-{index}")
        context.close()
    assert not problems, "\n".join(f"{where}: {issue}" for where, issues in problems.items() for issue in issues)
    actions = [entry[0] for entry in in_thread(audit_actions, settings, team.acme_id)]
    assert actions == ["product.create", "benefit.create", "product.benefits"]
