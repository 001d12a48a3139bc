"""The console in chromium: signing in through the forms (the code read from the outbox mail), every page on a
desktop (1440x900) and a phone (390x844), light and dark, with axe reporting no serious or critical violation
(screenshots in test-artifacts/console-*), and every action done with the keyboard-reachable forms."""

from __future__ import annotations

import re
import time
from pathlib import Path
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
    pytest.mark.seeded,  # the demo data: the home page's charts have something to show
    pytest.mark.skipif(chromium_path() is None, reason="Debian's chromium is not installed"),
    pytest.mark.skipif(not AXE_PATH.exists(), reason="run `npm install --prefix tests/js` for axe-core"),
]

VIEWPORTS = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}
PAGES = ["", "/team", "/audit", "/tokens", "/emails", "/webhooks", "/processors", "/settings"]


def _code_from_outbox(settings: Settings) -> str:
    """The code of the console sign-in mail (sent in the background: waited for)."""
    deadline = time.monotonic() + 10
    while True:
        for path in Path(settings.data_dir, "outbox").glob("*.eml"):
            if found := re.search(r"is: ([A-Z0-9]{6})", path.read_text()):
                return found.group(1)
        assert time.monotonic() < deadline, "no sign-in code mail"
        time.sleep(0.05)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_every_console_page_is_accessible(
    served_console: tuple[str, Settings, Team], chromium: Any, viewport: str
) -> None:
    base_url, settings, team = served_console
    token = in_thread(plant_session, settings, team.owner)
    problems: dict[str, list[str]] = {}
    context = axe_context(chromium, base_url=base_url, viewport=VIEWPORTS[viewport], color_scheme="light")
    page = context.new_page()

    for where in ("/", "/console"):
        page.goto(where)
        shot = f"console-{viewport}-{{scheme}}-signin" if where == "/console" else None
        axe_both_schemes(page, problems, f"signed out {where}", shot)
    context.add_cookies([{"name": "console_session", "value": token, "url": f"{base_url}/console"}])
    pages = [*PAGES, f"/webhooks/endpoints/{team.endpoint_id}"]
    paths = ["/console", *(f"/console/acme{path}" for path in pages)]
    for index, path in enumerate(paths):
        page.goto(path)
        axe_both_schemes(page, problems, path, f"console-{viewport}-{{scheme}}-{index:02d}")
    assert not problems, "\n".join(f"{where}: {issue}" for where, issues in problems.items() for issue in issues)


def test_sign_in_and_every_action_in_the_browser(served_console: tuple[str, Settings, Team], chromium: Any) -> None:
    from playwright.sync_api import expect

    base_url, settings, team = served_console
    page = chromium.new_context(base_url=base_url, viewport=VIEWPORTS["desktop"]).new_page()
    # Sign in with the form and the emailed code.
    page.goto("/")
    page.get_by_role("link", name="Sign in to the seller console").click()
    page.get_by_label("Email").fill("owner@acme.example")
    page.get_by_role("button", name="Send code").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    page.get_by_label("Code").fill(_code_from_outbox(settings))
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name=re.compile("^Acme")).click()
    expect(page.get_by_role("heading", name="Needs attention")).to_be_visible()
    expect(page.get_by_text("1 email could not be sent")).to_be_visible()
    # Team: invite, change a role, remove.
    page.get_by_role("link", name="Team").click()
    page.get_by_label("Email").fill("new@acme.example")
    page.get_by_label("Role", exact=True).select_option("owner")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_role("status")).to_have_text("Invitation sent.")
    page.get_by_label("Role of target@acme.example").select_option("owner")
    page.get_by_role("row", name=re.compile("target@acme.example")).get_by_role("button", name="Change role").click()
    expect(page.get_by_role("status")).to_have_text("Role changed.")
    confirm_destructive(page, "Remove new@acme.example")  # it asks first
    expect(page.get_by_role("status")).to_have_text("Removed from the team.")
    # Tokens: create (shown once), revoke.
    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("Name").fill("deploy")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#new-token")).to_contain_text("portal_oat_")
    confirm_destructive(page, "Revoke deploy")  # it asks first
    expect(page.get_by_role("status")).to_have_text("Token revoked.")
    # Emails: send again; webhooks: redeliver.
    page.get_by_role("link", name="Emails").click()
    page.get_by_role("button", name=re.compile("^Send again")).click()
    expect(page.get_by_role("status")).to_have_text("The email is queued to be sent again.")
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_role("button", name=re.compile("^Redeliver")).click()
    expect(page.get_by_role("status")).to_have_text("The webhook is queued to be delivered again.")
    page.get_by_label("URL").fill("https://hooks.acme.example/new")
    page.get_by_label("order.refunded").check()
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.locator("#new-secret")).to_contain_text("whsec_")
    screenshot(page, "console-desktop-light-webhook-created")
    # Processors: map a price, replay an event.
    page.get_by_role("link", name="Processors").click()
    page.get_by_label("Processor price id").fill("price_console")
    page.get_by_label("Product").select_option(label="Console Pro")
    page.get_by_role("button", name="Map price").click()
    expect(page.get_by_role("status")).to_have_text("Price mapped; the events that waited on it were applied.")
    expect(page.get_by_text("price_console")).to_be_visible()
    page.get_by_role("button", name="Replay evt_console_1").click()
    expect(page.get_by_role("status")).to_contain_text("The event was applied again")
    # Settings: a too-light accent is refused with the field named, then a good save.
    page.get_by_role("link", name="Settings").click()
    page.locator("#f-accent_color").fill("#ffee00")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#f-accent_color-error")).to_contain_text("too light")
    screenshot(page, "console-desktop-light-settings-error")
    page.locator("#f-accent_color").fill("#0b5e3a")
    page.get_by_label("Sender name").fill("Acme Support")
    page.get_by_label("Renewal reminder").uncheck()
    page.get_by_label("Cancel their subscription").uncheck()
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status")).to_have_text("Settings saved.")
    expect(page.get_by_label("Renewal reminder")).not_to_be_checked()
    expect(page.get_by_label("Cancel their subscription")).not_to_be_checked()
    expect(page.get_by_label("Replace (rotate) their license keys")).to_be_checked()
    # The audit log lists it all, and filters.
    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("Action").select_option("team.invite")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    screenshot(page, "console-desktop-light-audit")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to the seller console")).to_be_visible()
    actions = [entry[0] for entry in in_thread(audit_actions, settings, team.acme_id)]
    assert actions == [
        "team.invite",
        "team.role",
        "team.remove",
        "token.create",
        "token.revoke",
        "email.retry",
        "webhook.redeliver",
        "webhook.endpoint_create",
        "processor.map_price",
        "processor.replay",
        "settings.update",
    ]
