"""Issue 22 in Debian's chromium (Playwright), phone (390×844) and desktop: a sign-in that recovers (a deep link
survives it, an expired code is explained and re-sent to the kept address, sign-out is confirmed), no dead ends,
and the customer flows. Screenshots land in test-artifacts/flows-*.png."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from portal.clock import Clock
from portal.settings import Settings
from tests.apps import app_for
from tests.browser_helpers import (
    chromium_path,
    free_port_for_tests,
    in_thread,
    login_code,
    new_session,
    one,
    screenshot,
    serve,
)

pytestmark = [
    pytest.mark.seeded,  # data_dir: a copy of the demo seed (tests/conftest.py)
    pytest.mark.skipif(chromium_path() is None, reason="Debian's chromium is not installed"),
]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}


class Served(msgspec.Struct):
    base_url: str
    settings: Settings
    clock: Clock


@pytest.fixture
def served(smtp_settings: Settings) -> Iterator[Served]:
    port = free_port_for_tests()
    settings = msgspec.structs.replace(smtp_settings, base_url=f"http://127.0.0.1:{port}")
    clock = Clock()
    with serve(app_for(settings, clock=clock), port) as base_url:
        yield Served(base_url=base_url, settings=settings, clock=clock)


@pytest.fixture
def page(served: Served, chromium: Any) -> Any:
    context = chromium.new_context(base_url=served.base_url, viewport=PHONE, accept_downloads=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=served.base_url)
    return context.new_page()


def shots(page: Any, name: str) -> None:
    """The page at phone size, then at desktop size (back to phone afterwards)."""
    page.set_viewport_size(PHONE)
    screenshot(page, f"flows-{name}-phone")
    page.set_viewport_size(DESKTOP)
    screenshot(page, f"flows-{name}-desktop")
    page.set_viewport_size(PHONE)


def sign_in_as(page: Any, served: Served, email: str, slug: str = "acme") -> None:
    name, token = in_thread(new_session, served.settings, slug, email)
    page.context.add_cookies([{"name": name, "value": token, "url": served.base_url}])


def test_sign_in_recovers(page, served: Served, smtp_server) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    inbox, _ = smtp_server
    order = in_thread(one, served.settings, "SELECT id FROM orders WHERE external_id = 'acme-ord-alex-icons'")["id"]

    # A deep link opened signed out: the sign-in form says the page comes right after.
    page.goto(f"/acme/portal/orders/{order}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Sign in to")
    expect(page.locator('[data-notice="next"]')).to_be_visible()
    shots(page, "01-sign-in-deep-link")
    page.get_by_label("Email").fill("alex@example.com")
    page.get_by_role("button", name="Send code").click()
    expect(page.locator('[data-field="validity"]')).to_contain_text("valid for 15 more minutes")
    shots(page, "02-code")
    first = login_code(inbox.wait_for(1)[-1])

    # The code expires: the page keeps the address, says so, and re-sends to it.
    served.clock.advance(16 * 60)
    page.reload()
    expect(page.get_by_role("alert")).to_contain_text("has expired")
    expect(page.locator("main")).to_contain_text("alex@example.com")
    shots(page, "03-code-expired")
    page.get_by_role("button", name="Send a new code").click()
    second = login_code(inbox.wait_for(2)[-1])
    assert second != first
    page.get_by_label("Code").fill(second)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/acme/portal/orders/{order}")
    expect(page.locator(".account-email")).to_contain_text("alex@example.com")

    # Signing out is confirmed; /acme leads to the portal.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_contain_text("You are signed out")
    shots(page, "04-signed-out")
    page.goto("/acme")
    page.wait_for_url("**/acme/portal")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Sign in to")


def test_no_dead_ends(page, served: Served) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    settings = served.settings
    order = in_thread(one, settings, "SELECT id FROM orders WHERE external_id = 'acme-ord-sam-icons'")["id"]
    in_thread(execute, settings, "UPDATE orders SET billing_name = NULL, billing_address = NULL WHERE id = ?", (order,))
    in_thread(
        execute,
        settings,
        "UPDATE customers SET billing_name = NULL, billing_address = NULL WHERE email = 'sam@example.com'",
    )
    sign_in_as(page, served, "sam@example.com")

    # An invoice without billing details: the form with a notice, then straight back to the new invoice.
    page.goto(f"/acme/portal/orders/{order}")
    expect(page.locator('[data-hint="billing-missing"]')).to_be_visible()
    page.get_by_role("button", name="Generate invoice").click()
    expect(page.get_by_role("status")).to_contain_text("An invoice needs your billing name and address")
    shots(page, "05-invoice-needs-billing")
    page.get_by_label("Name or company").fill("Sam Example GmbH")
    page.get_by_label("Address", exact=True).fill("Invalidenstraße 1")
    page.get_by_label("Postal code").fill("10115")
    page.get_by_label("City").fill("Berlin")
    page.get_by_label("Country").select_option("DE")
    page.get_by_role("button", name="Save billing details").click()
    page.wait_for_url(f"**/acme/portal/orders/{order}/invoice")
    expect(page.locator("body")).to_contain_text("Sam Example GmbH")

    # An error page of a signed-in customer keeps the brand and the navigation.
    page.goto("/acme/portal/orders/no-such-order")
    expect(page.get_by_role("navigation", name="Portal")).to_be_visible()
    expect(page.locator(".account-email")).to_contain_text("sam@example.com")
    shots(page, "06-error-signed-in")

    # An expired download link: signed in, a fresh link downloads at once; signed out, back to Benefits.
    page.goto("/acme/portal/benefits")
    link = page.locator('[data-type="downloadables"] a[download]').first.get_attribute("href")
    served.clock.advance(3600)
    with page.expect_download() as info:
        page.evaluate("url => { const a = document.createElement('a'); a.href = url; a.click(); }", link)
    assert info.value.suggested_filename
    page.context.clear_cookies()
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_contain_text("This download link has expired")
    expect(page.locator(".brand")).to_contain_text("Acme Software")
    shots(page, "07-download-expired")
    page.get_by_role("link", name="Back to Benefits").click()
    expect(page.locator('[data-notice="next"]')).to_be_visible()  # sign in, then Benefits


def execute(settings: Settings, sql: str, params: tuple[object, ...] = ()) -> None:
    from portal.db import connect_sync

    conn = connect_sync(settings.db_path)
    try:
        conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


def test_flows(page, served: Served) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    settings = served.settings
    sign_in_as(page, served, "alex@example.com")
    sub = in_thread(one, settings, "SELECT id FROM subscriptions WHERE external_id = 'acme-sub-alex-pro'")["id"]

    # Cancelling is its own step; then one badge says when it ends.
    page.goto(f"/acme/portal/subscriptions/{sub}")
    expect(page.get_by_label("Too expensive")).to_have_count(0)
    page.get_by_role("link", name="Cancel subscription…").click()
    shots(page, "08-cancel-step")
    page.get_by_label("Too expensive").check()
    page.get_by_role("button", name="Confirm cancellation").click()
    expect(page.locator('.section-head [data-field="status"]')).to_contain_text("Cancels on")
    shots(page, "09-canceling")
    page.get_by_role("button", name="Resume subscription").click()
    expect(page.get_by_role("status")).to_contain_text("active again")

    # Plan change: nothing chosen for the customer; the confirmation compares price, interval and benefits.
    page.get_by_role("link", name="Change plan").click()
    assert page.locator('input[name="product_id"]:checked').count() == 0
    shots(page, "10-change-plan")
    page.locator("label.plan-option", has_text="Yearly").click()
    page.get_by_role("button", name="Review change").click()
    expect(page.locator('[data-field="new-interval"]')).to_have_text("year")
    expect(page.locator('[data-field="gained"]')).to_contain_text("cloud render credits")
    shots(page, "11-change-plan-confirm")

    # Benefits grouped by what granted them; deactivating asks first; the copy button speaks German.
    page.goto("/acme/portal/benefits")
    expect(page.locator("section.benefit-group").first).to_be_visible()
    shots(page, "12-benefits")
    page.locator('[data-action="deactivate"]').first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Deactivate")
    shots(page, "13-deactivate-confirm")
    page.get_by_role("link", name="Keep it active").click()
    page.goto("/acme/portal/benefits?locale=de")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=served.base_url)
    copy = page.locator("button[data-copy]").first
    copy.click()
    expect(copy).to_contain_text("Kopiert")
    expect(page.locator("#copy-status")).to_have_text("In die Zwischenablage kopiert.")


def test_rotation_and_resubscribe(page, served: Served) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    settings = served.settings
    in_thread(
        execute,
        settings,
        "UPDATE benefits SET properties = json_set(properties, '$.allow_customer_rotation', json('true')) "
        "WHERE external_id = 'acme-pro-license'",
    )
    in_thread(
        execute,
        settings,
        "UPDATE organizations SET resubscribe_url = 'https://acme.example/pricing' WHERE slug = 'acme'",
    )
    sign_in_as(page, served, "alex@example.com")
    page.goto("/acme/portal/benefits")
    old_key = page.locator("code.key").first.inner_text().strip()
    page.locator('[data-action="rotate"]').first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Replace your license key?")
    shots(page, "14-rotate-confirm")
    page.get_by_role("button", name="Replace key").click()
    expect(page.get_by_role("status")).to_contain_text("license key was replaced")
    assert page.locator("code.key").first.inner_text().strip() != old_key

    page.context.clear_cookies()
    sign_in_as(page, served, "casey@example.com")
    ended = in_thread(one, settings, "SELECT id FROM subscriptions WHERE external_id = 'acme-sub-casey-pro'")["id"]
    page.goto(f"/acme/portal/subscriptions/{ended}")
    expect(page.get_by_role("link", name="Subscribe again")).to_have_attribute("href", "https://acme.example/pricing")
    shots(page, "15-resubscribe")
