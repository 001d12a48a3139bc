"""Every page at a phone (390x844) and a desktop (1440x900) size, in the light and the dark scheme, in Debian's
chromium: nothing overflows horizontally (the document is no wider than the window, and no visible element sticks
out of it, unless it sits inside a scroll container of its own). Screenshots of every combination land in
test-artifacts/layout/ (look at them when the CSS changes). Phone-specific rules (nav, orders as cards, dates,
receipt toolbar, main's padding) and dark mode are asserted in tests/test_layout_phone.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from portal.clock import Clock
from portal.settings import Settings
from tests.apps import app_for
from tests.browser_helpers import (
    allow_email_change,
    chromium_path,
    free_port_for_tests,
    in_thread,
    new_session,
    one,
    screenshot,
    serve,
)

pytestmark = [
    pytest.mark.seeded,  # data_dir: a copy of the demo seed (tests/conftest.py)
    pytest.mark.skipif(chromium_path() is None, reason="Debian's chromium is not installed"),
]

SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1440, "height": 900}}
SCHEMES = ("light", "dark")

# Every visible element whose box leaves the window, skipping those clipped on purpose (visually hidden, the skip
# link until focused) and those inside a scroll container (its own scrollbar is the affordance).
OVERFLOW_JS = """
() => {
  const width = window.innerWidth;
  const problems = [];
  if (document.documentElement.scrollWidth > width) {
    problems.push(`document is ${document.documentElement.scrollWidth}px wide in a ${width}px window`);
  }
  const clipped = (el) => {
    for (let node = el.parentElement; node && node !== document.body; node = node.parentElement) {
      const style = getComputedStyle(node);
      if (style.overflowX !== "visible") return true;
    }
    return false;
  };
  for (const el of document.body.querySelectorAll("*")) {
    if (el.closest(".visually-hidden, .skip-link, script, style")) continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    if ((box.right > width + 0.5 || box.left < -0.5) && !clipped(el)) {
      const name = el.tagName.toLowerCase() + (el.className ? "." + String(el.className).split(" ").join(".") : "");
      const text = el.textContent.trim().slice(0, 40);
      problems.push(`${name} spans ${Math.round(box.left)}..${Math.round(box.right)} "${text}"`);
    }
  }
  return problems;
}
"""


@pytest.fixture
def served(smtp_settings: Settings) -> Iterator[tuple[str, Settings]]:
    port = free_port_for_tests()
    settings = msgspec.structs.replace(smtp_settings, base_url=f"http://127.0.0.1:{port}")
    with serve(app_for(settings, clock=Clock()), port) as base_url:
        yield base_url, settings


def issue_invoice(settings: Settings, order_id: str) -> str:
    """Issue an invoice for one of alex's orders through the service (billing details come from the seed)."""
    from portal.db import Database
    from portal.invoices.service import generate_invoice
    from tests.browser_helpers import customer_id, org_id, run

    organization, customer = org_id(settings, "acme"), customer_id(settings, "acme", "alex@example.com")

    async def work() -> None:
        db = Database(settings.db_path)
        await db.open()
        try:
            await generate_invoice(db, organization, customer, order_id, now=Clock().now())
        finally:
            await db.close()

    run(work())
    return str(one(settings, "SELECT id FROM invoices WHERE order_id = ?", (order_id,))["id"])


def signed_in_pages(settings: Settings) -> dict[str, str]:
    order = one(settings, "SELECT id FROM orders WHERE external_id = 'acme-ord-alex-icons'")["id"]
    sub = one(settings, "SELECT id FROM subscriptions WHERE external_id = 'acme-sub-alex-pro'")["id"]
    invoice = issue_invoice(settings, order)
    root = "/acme/portal"
    return {
        "overview": root,
        "orders": f"{root}/orders",
        "order": f"{root}/orders/{order}",
        "receipt": f"{root}/orders/{order}/receipt",
        "invoice": f"{root}/orders/{order}/invoices/{invoice}",
        "subscriptions": f"{root}/subscriptions",
        "subscription": f"{root}/subscriptions/{sub}",
        "change-plan": f"{root}/subscriptions/{sub}/change-plan",
        "benefits": f"{root}/benefits",
        "billing": f"{root}/settings",
        "error-signed-in": f"{root}/orders/not-an-order",
    }


def check(page: Any, name: str, size: str, problems: dict[str, list[str]]) -> None:
    """The loaded page in each scheme: the colour scheme is switched on the loaded page (the stylesheets follow
    ``prefers-color-scheme``; no script reads it), which saves a page load and keeps the check per scheme."""
    for scheme in SCHEMES:
        page.emulate_media(color_scheme=scheme)
        tag = f"{name}-{size}-{scheme}"
        found = page.evaluate(OVERFLOW_JS)
        screenshot(page, f"layout/{tag}")
        if found:
            problems[tag] = found


def test_no_page_overflows_at_any_size_in_either_scheme(
    served: tuple[str, Settings], smtp_server: Any, chromium: Any
) -> None:
    base_url, settings = served
    inbox, _ = smtp_server
    pages = in_thread(signed_in_pages, settings)
    email_change_link = in_thread(allow_email_change, settings)  # the Billing page with its Change email form
    problems: dict[str, list[str]] = {}
    for size, viewport in SIZES.items():
        # Signed out: sign-in, the code page, an unknown organization's error page.
        context = chromium.new_context(base_url=base_url, viewport=viewport)
        page = context.new_page()
        page.goto("/acme/portal")
        check(page, "sign-in", size, problems)
        page.get_by_label("Email").fill("alex@example.com")
        page.get_by_role("button", name="Send code").click()
        page.get_by_label("Code").wait_for()
        check(page, "code", size, problems)
        inbox.clear()
        assert page.goto("/no-such-seller/portal").status == 404  # type: ignore[union-attr]
        check(page, "error-signed-out", size, problems)
        assert page.goto("/acme/portal/no-such-page").status == 404  # type: ignore[union-attr]
        check(page, "error-branded", size, problems)
        page.goto(email_change_link)  # the confirm page of an email change's link
        check(page, "email-change-confirm", size, problems)
        assert page.goto("/acme/portal/email-change?token=SPENT").status == 400  # type: ignore[union-attr]
        check(page, "email-change-expired", size, problems)
        context.close()
        # Signed in as alex.
        cookie, token = in_thread(new_session, settings, "acme", "alex@example.com")
        context = chromium.new_context(base_url=base_url, viewport=viewport)
        context.add_cookies([{"name": cookie, "value": token, "url": base_url}])
        page = context.new_page()
        for name, path in pages.items():
            response = page.goto(path)
            assert response is not None
            assert response.status == (404 if name.startswith("error") else 200), (name, response.status)
            check(page, name, size, problems)
        context.close()
    assert not problems, "\n".join(f"{name}: {found}" for name, found in problems.items())
