"""Destructive console actions ask first (``data-confirm`` forms, ``templates/static/portal.js``): in chromium, the
token's Revoke button opens a modal dialog with the question, focus on Cancel; Cancel and Escape leave the token as
it was, the dialog's own Revoke revokes it; the open dialog passes axe on a phone in the dark scheme. Without
JavaScript the form acts at once, as before."""

from __future__ import annotations

from typing import Any

import pytest

from portal.settings import Settings
from tests.browser_helpers import AXE_PATH, axe_context, axe_violations, chromium_path, in_thread, screenshot
from tests.console_helpers import Team, plant_session, sql

pytestmark = [
    pytest.mark.skipif(chromium_path() is None, reason="Debian's chromium is not installed"),
    pytest.mark.skipif(not AXE_PATH.exists(), reason="run `npm install --prefix tests/js` for axe-core"),
]

PHONE = {"width": 390, "height": 844}


def _revoked(settings: Settings, team: Team) -> bool:
    rows = in_thread(sql, settings, "SELECT revoked_at FROM api_tokens WHERE id = ?", (team.token_id,))
    return rows[0][0] is not None


def test_revoking_a_token_asks_first_and_cancel_keeps_it(
    served_console: tuple[str, Settings, Team], chromium: Any
) -> None:
    from playwright.sync_api import expect

    base_url, settings, team = served_console
    session = in_thread(plant_session, settings, team.owner)
    context = axe_context(chromium, base_url=base_url, viewport=PHONE, color_scheme="dark")
    context.add_cookies([{"name": "console_session", "value": session, "url": f"{base_url}/console"}])
    page = context.new_page()
    page.goto("/console/acme/tokens")
    dialog = page.get_by_role("dialog")

    page.get_by_role("button", name="Revoke ci").click()
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Revoke the token ci? Code using it stops working at once.")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    assert axe_violations(page) == []
    screenshot(page, "console-phone-dark-confirm", full_page=False)
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 1440, "height": 900})
    assert axe_violations(page, ["color-contrast"]) == []
    screenshot(page, "console-desktop-light-confirm", full_page=False)
    for viewport, scheme in (("desktop", "dark"), ("phone", "light")):  # the other two looks, for people to check
        page.emulate_media(color_scheme=scheme)
        page.set_viewport_size(PHONE if viewport == "phone" else {"width": 1440, "height": 900})
        screenshot(page, f"console-{viewport}-{scheme}-confirm", full_page=False)
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert not _revoked(settings, team)

    page.get_by_role("button", name="Revoke ci").click()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert not _revoked(settings, team)

    page.get_by_role("button", name="Revoke ci").click()
    dialog.get_by_role("button", name="Revoke ci").click()
    expect(page.get_by_role("status")).to_have_text("Token revoked.")
    assert _revoked(settings, team)


def test_without_javascript_the_form_acts_at_once(served_console: tuple[str, Settings, Team], chromium: Any) -> None:
    from playwright.sync_api import expect

    base_url, settings, team = served_console
    session = in_thread(plant_session, settings, team.owner)
    context = chromium.new_context(base_url=base_url, viewport=PHONE, java_script_enabled=False)
    context.add_cookies([{"name": "console_session", "value": session, "url": f"{base_url}/console"}])
    page = context.new_page()
    page.goto("/console/acme/tokens")
    page.get_by_role("button", name="Revoke ci").click()
    expect(page.get_by_role("status")).to_have_text("Token revoked.")
    assert _revoked(settings, team)
