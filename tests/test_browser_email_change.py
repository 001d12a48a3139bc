"""Issue 22 in Debian's chromium (Playwright): changing the email address in the portal where the seller allows
it. Sign in, ask for the change on the Billing page, read the verification mail from the loopback SMTP server,
open its link, confirm, and see the new address on the page; and no "Change email" form where the seller has not
allowed it. Screenshots (phone 390×844 and desktop 1440×900, light and dark) land in
test-artifacts/email-change-*.png."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from portal.clock import Clock
from portal.db import connect_sync
from portal.settings import Settings
from tests.apps import app_for
from tests.browser_helpers import (
    chromium_path,
    free_port_for_tests,
    in_thread,
    new_session,
    screenshot,
    serve,
)
from tests.conftest import SMTPInbox
from tests.signin_helpers import text_part

pytestmark = [
    pytest.mark.seeded,  # data_dir: a copy of the demo seed (tests/conftest.py)
    pytest.mark.skipif(chromium_path() is None, reason="Debian's chromium is not installed"),
]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}


class Served(msgspec.Struct):
    base_url: str
    settings: Settings


@pytest.fixture
def served(smtp_settings: Settings) -> Iterator[Served]:
    port = free_port_for_tests()
    settings = msgspec.structs.replace(smtp_settings, base_url=f"http://127.0.0.1:{port}")
    with serve(app_for(settings, clock=Clock()), port) as base_url:
        yield Served(base_url=base_url, settings=settings)


@pytest.fixture
def browser(served: Served, chromium: Any) -> Any:
    return chromium


def shots(page: Any, name: str) -> None:
    """Phone and desktop, light and dark."""
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for size, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
            page.set_viewport_size(viewport)
            screenshot(page, f"email-change-{name}-{size}-{scheme}")
    page.emulate_media(color_scheme="light")
    page.set_viewport_size(PHONE)


def _signed_in_page(browser: Any, served: Served, email: str) -> Any:
    context = browser.new_context(base_url=served.base_url, viewport=PHONE)
    name, token = in_thread(new_session, served.settings, "acme", email)
    context.add_cookies([{"name": name, "value": token, "url": served.base_url}])
    return context.new_page()


def _allow(settings: Settings, allowed: bool) -> None:
    conn = connect_sync(settings.db_path)
    conn.execute("UPDATE organizations SET allow_email_change = ? WHERE slug = 'acme'", (int(allowed),))
    conn.commit()
    conn.close()


def test_change_email_in_chromium(served: Served, browser: Any, smtp_server: tuple[SMTPInbox, int]) -> None:
    inbox = smtp_server[0]
    _allow(served.settings, False)
    page = _signed_in_page(browser, served, "alex@example.com")
    page.goto("/acme/portal/settings")
    assert page.locator("form[data-form=email-change]").count() == 0  # not allowed: no form

    _allow(served.settings, True)
    page.goto("/acme/portal/settings")
    form = page.locator("form[data-form=email-change]")
    assert form.count() == 1
    page.fill("#new_email", "not an address")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#new_email-error")
    shots(page, "invalid")
    page.fill("#new_email", "alex.renamed@example.com")
    page.locator("form[data-form=email-change] button[type=submit]").click()
    page.wait_for_url(re.compile(r"done=email_change_sent"))
    assert "We sent a confirmation link" in page.inner_text("body")
    shots(page, "sent")

    [message] = inbox.wait_for(1)
    assert message["To"] == "alex.renamed@example.com"
    link = re.search(r"(http\S+/acme/portal/email-change\?token=[A-Z0-9]{12})", text_part(message))
    assert link is not None
    page.goto(link.group(1))
    assert "alex.renamed@example.com" in page.inner_text("main")
    shots(page, "confirm")
    page.get_by_role("button", name="Confirm new email address").click()
    page.wait_for_url(re.compile(r"/acme/portal/settings\?done=email_changed"))
    body = page.inner_text("body")
    assert "Your email address was changed" in body and "alex.renamed@example.com" in body
    shots(page, "changed")

    # The used link, in the same browser: a clear page, not an error.
    page.goto(link.group(1))
    assert "expired or was already used" in page.inner_text("main")
    shots(page, "used-link")
    page.context.close()
