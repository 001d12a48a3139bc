"""The console's order page in chromium (issue 21): a refund made with the keyboard-reachable form, then the page on
a desktop (1440x900) and a phone (390x844), light and dark, with axe reporting no serious or critical violation
(screenshots in test-artifacts/console-order-*); an order from a processor (its source, the refund's processor id)
at desktop light and phone dark. One browser, a few page loads: the suite stays fast."""

from __future__ import annotations

from typing import Any

import pytest

from portal.clock import iso, new_id
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
from tests.console_helpers import NOW, Team, audit_actions, insert_paid_order, plant_session, sql

pytestmark = [
    pytest.mark.skipif(chromium_path() is None, reason="Debian's chromium is not installed"),
    pytest.mark.skipif(not AXE_PATH.exists(), reason="run `npm install --prefix tests/js` for axe-core"),
]

VIEWPORTS = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture
def served(served_console: tuple[str, Settings, Team]) -> tuple[str, Settings, Team, str]:
    base_url, settings, team = served_console
    return base_url, settings, team, _stripe_order(settings, team)


def _stripe_order(settings: Settings, team: Team) -> str:
    """An order of acme's Stripe connection with a refund made from the console (the rows those leave)."""
    (customer_id,) = sql(settings, "SELECT customer_id FROM orders WHERE id = ?", (team.order_id,))[0]
    order_id = insert_paid_order(settings, team.acme_id, customer_id, receipt="CONSOLE-0002")
    (connection_id,) = sql(settings, "SELECT id FROM connector_connections WHERE organization_id = ?", (team.acme_id,))[
        0
    ]
    refund_id = new_id()
    sql(
        settings,
        "INSERT INTO refunds (id, order_id, amount, tax_amount, reason, created_at) "
        "VALUES (?, ?, 1000, 183, 'requested_by_customer', ?)",
        (refund_id, order_id, iso(NOW)),
    )
    sql(
        settings,
        "UPDATE orders SET status = 'partially_refunded', refunded_amount = 1000, refunded_tax_amount = 183 "
        "WHERE id = ?",
        (order_id,),
    )
    links = [("payment_intent", "pi_3Q0console", order_id), ("refund", "re_3Q0console", refund_id)]
    for kind, processor_id, portal_id in links:
        sql(
            settings,
            "INSERT INTO connector_links (connection_id, kind, processor_id, portal_id) VALUES (?, ?, ?, ?)",
            (connection_id, kind, processor_id, portal_id),
        )
    return order_id


def test_the_order_page_refunds_and_is_accessible(served: tuple[str, Settings, Team, str], chromium: Any) -> None:
    from playwright.sync_api import expect

    base_url, settings, team, stripe_order = served
    token = in_thread(plant_session, settings, team.owner)
    path = f"/console/acme/orders/{team.order_id}"
    problems: dict[str, list[str]] = {}
    for viewport in VIEWPORTS:
        context = axe_context(chromium, base_url=base_url, viewport=VIEWPORTS[viewport], color_scheme="light")
        context.add_cookies([{"name": "console_session", "value": token, "url": f"{base_url}/console"}])
        page = context.new_page()
        page.goto(path)
        if viewport == "desktop":
            # A partial refund through the form, in light (the order was made in Portal: refunded locally).
            page.get_by_label("Amount (USD)").fill("5.00")
            page.get_by_label("Reason").select_option(label="Duplicate payment")
            page.get_by_role("button", name="Refund", exact=True).click()
            expect(page.get_by_role("status")).to_have_text("Refund recorded.")
            expect(page.get_by_role("row", name="Duplicate payment")).to_contain_text("−$5.00")
            # An amount over what is left is named on its field; the form keeps it.
            page.get_by_label("Amount (USD)").fill("45.00")
            page.get_by_role("button", name="Refund", exact=True).click()
            expect(page.locator("#refund-amount-error")).to_have_text("At most 44.00 USD is left to refund.")
            screenshot(page, "console-order-desktop-light-error")
            page.goto(path)
        axe_both_schemes(page, problems, viewport, f"console-order-{viewport}-{{scheme}}")
        # An order from Stripe (its source and the refund's Stripe id): desktop light, phone dark.
        scheme = "light" if viewport == "desktop" else "dark"
        page.emulate_media(color_scheme=scheme)
        page.goto(f"/console/acme/orders/{stripe_order}")
        expect(page.locator("[data-field=source]")).to_have_text("Stripe · pi_3Q0console")
        expect(page.get_by_role("row", name="Requested by the customer")).to_contain_text("re_3Q0console")
        if found := axe_violations(page):
            problems[f"stripe order {viewport} {scheme}"] = found
        screenshot(page, f"console-order-stripe-{viewport}-{scheme}")
        context.close()
    assert not problems, "\n".join(f"{where}: {issue}" for where, issues in problems.items() for issue in issues)
    assert [entry[0] for entry in in_thread(audit_actions, settings, team.acme_id)] == ["order.refund"]
