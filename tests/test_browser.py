"""End to end in Debian's chromium (Playwright): sign in with the code from a real SMTP server, open an order and
its receipt, cancel then resume a subscription, change plan, copy a license key, deactivate an activation,
download a file (sha256 checked), edit billing details and see them on the next receipt only, sign out.
Screenshots of every page land in test-artifacts/."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from portal.clock import Clock
from portal.settings import Settings
from tests.apps import app_for
from tests.browser_helpers import (
    chromium_path,
    customer_id,
    free_port_for_tests,
    in_thread,
    login_code,
    one,
    pay_new_order,
    query,
    screenshot,
    serve,
)

pytestmark = [
    pytest.mark.seeded,  # data_dir: a copy of the demo seed (tests/conftest.py)
    pytest.mark.skipif(chromium_path() is None, reason="Debian's chromium is not installed"),
]


@pytest.fixture
def served(smtp_settings: Settings) -> Iterator[tuple[str, Settings]]:
    port = free_port_for_tests()
    settings = msgspec.structs.replace(smtp_settings, base_url=f"http://127.0.0.1:{port}")
    with serve(app_for(settings, clock=Clock()), port) as base_url:
        yield base_url, settings


@pytest.fixture
def browser_page(served: tuple[str, Settings], chromium: Any) -> Any:
    base_url, _ = served
    context = chromium.new_context(base_url=base_url, accept_downloads=True, viewport={"width": 1100, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    return context.new_page()


def test_customer_journey(browser_page, served, smtp_server) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    page = browser_page
    _, settings = served
    inbox, _ = smtp_server
    alex = in_thread(customer_id, settings, "acme", "alex@example.com")

    # Sign in with the emailed code.
    page.goto("/acme/portal")
    screenshot(page, "01-sign-in")
    page.get_by_label("Email").fill("alex@example.com")
    page.get_by_role("button", name="Send code").click()
    code = login_code(inbox.wait_for(1)[-1])
    page.get_by_label("Code").fill(code)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")  # first sign-in (issue 22)
    expect(page.locator(".account-email")).to_contain_text("alex@example.com")
    screenshot(page, "02-overview")

    # Orders, an order, its receipt.
    page.get_by_role("navigation", name="Portal").get_by_role("link", name="Orders").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Orders")
    screenshot(page, "03-orders")
    icons_order = in_thread(one, settings, "SELECT id FROM orders WHERE external_id = 'acme-ord-alex-icons'")["id"]
    page.locator(f'a[href="/acme/portal/orders/{icons_order}"]').first.click()
    expect(page.locator(".badge").first).to_have_text("Partially refunded")
    screenshot(page, "04-order")
    page.get_by_role("link", name="View receipt").click()
    expect(page.get_by_role("heading", name="Receipt")).to_be_visible()
    expect(page.locator("[data-print]")).to_be_visible()  # revealed by the static script
    expect(page.locator('[data-field="mark"]')).to_have_text("Partially refunded")
    screenshot(page, "05-receipt")
    page.go_back()

    # Cancel, then resume, the Pro subscription.
    sub = in_thread(one, settings, "SELECT id FROM subscriptions WHERE external_id = 'acme-sub-alex-pro'")["id"]
    page.goto(f"/acme/portal/subscriptions/{sub}")
    screenshot(page, "06-subscription")
    page.get_by_role("link", name="Cancel subscription…").click()  # its own step (issue 22)
    page.get_by_label("Too expensive").check()
    page.get_by_label("Anything else you want to share?").fill("Trying a cheaper plan")
    page.get_by_role("button", name="Confirm cancellation").click()
    expect(page.get_by_role("status")).to_contain_text("canceled")
    expect(page.locator('[data-field="next"]')).to_contain_text("Ends on")
    screenshot(page, "07-subscription-canceled")
    page.get_by_role("button", name="Resume subscription").click()
    expect(page.get_by_role("status")).to_contain_text("active again")
    row = in_thread(one, settings, "SELECT cancel_at_period_end FROM subscriptions WHERE id = ?", (sub,))
    assert row[0] == 0

    # Change plan, through the confirmation page.
    page.get_by_role("link", name="Change plan").click()
    page.locator("label.plan-option", has_text="Yearly").click()
    screenshot(page, "08-change-plan")
    page.get_by_role("button", name="Review change").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your plan change")
    screenshot(page, "09-change-plan-confirm")
    page.get_by_role("button", name="Confirm change").click()
    expect(page.get_by_role("status")).to_contain_text("plan has been changed")
    expect(page.locator('[data-field="amount"]')).to_contain_text("$120.00")
    assert in_thread(one, settings, "SELECT recurring_interval FROM subscriptions WHERE id = ?", (sub,))[0] == "year"

    # Benefits: copy a license key, deactivate an activation, download a file.
    page.get_by_role("navigation", name="Portal").get_by_role("link", name="Benefits").click()
    key = page.locator("code.key").first
    key_text = key.inner_text().strip()
    copy = page.locator("button[data-copy]").first
    expect(copy).to_be_visible()
    copy.click()
    expect(copy).to_contain_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == key_text
    screenshot(page, "10-benefits")
    activations_before = page.locator("li.activation").count()
    page.locator('[data-action="deactivate"]').first.click()  # asks first (issue 22)
    page.get_by_role("button", name="Deactivate").click()
    expect(page.get_by_role("status")).to_contain_text("activation was removed")
    assert page.locator("li.activation").count() == activations_before - 1
    with page.expect_download() as info:
        page.locator('[data-type="downloadables"] a[download]').first.click()
    download = info.value
    path = Path(download.path())
    file = in_thread(
        one, settings, "SELECT checksum_sha256_hex, name FROM files WHERE name = ?", (download.suggested_filename,)
    )
    assert hashlib.sha256(path.read_bytes()).hexdigest() == file["checksum_sha256_hex"]
    assert in_thread(query, settings, "SELECT id FROM events WHERE name = 'file.downloaded'")

    # Billing details: an error first, then saved; only receipts paid afterwards show them.
    old_order = in_thread(one, settings, "SELECT id FROM orders WHERE external_id = 'acme-ord-alex-toolkit'")["id"]
    page.get_by_role("navigation", name="Portal").get_by_role("link", name="Billing details").click()
    page.get_by_label("Name or company").fill("Alex Corp Ltd")
    page.get_by_label("Address", exact=True).fill("9 Harbour St")
    page.get_by_label("City").fill("")
    page.get_by_label("Country").select_option("AU")
    page.get_by_role("button", name="Save billing details").click()
    expect(page.locator("#city-error")).to_be_visible()
    screenshot(page, "11-billing-errors")
    page.get_by_label("Postal code").fill("2000")
    page.get_by_label("State or region").fill("NSW")
    page.get_by_label("City").fill("Sydney")
    page.get_by_label("Tax ID").fill("51 824 753 556")
    page.get_by_role("button", name="Save billing details").click()
    expect(page.get_by_role("status")).to_contain_text("Billing details saved")
    screenshot(page, "12-billing-saved")
    new_order = in_thread(pay_new_order, settings, "acme", "alex@example.com", "Acme Icons", 1900, "usd")
    page.goto(f"/acme/portal/orders/{new_order}/receipt")
    bill_to = page.locator('[data-field="bill-to"]')
    expect(bill_to).to_contain_text("Alex Corp Ltd")
    expect(bill_to).to_contain_text("Sydney")
    expect(bill_to).to_contain_text("Australia")
    expect(bill_to).to_contain_text("51824753556")  # stored compact once validated
    screenshot(page, "13-receipt-new-details")
    page.goto(f"/acme/portal/orders/{old_order}/receipt")
    expect(page.locator('[data-field="bill-to"]')).not_to_contain_text("Alex Corp Ltd")
    assert alex

    # Sign out.
    page.goto("/acme/portal")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Email")).to_be_visible()
    page.goto("/acme/portal/orders")
    expect(page.get_by_label("Email")).to_be_visible()
    screenshot(page, "14-signed-out")
