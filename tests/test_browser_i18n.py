"""The portal in German and French, end to end in Debian's chromium: pick German on the sign-in page, sign in with
the code from a real SMTP server (the email is German too), walk overview, orders, a receipt, subscriptions,
benefits and billing details; switch to French with the footer switcher (a plain form) and walk them again.
Screenshots land in test-artifacts/i18n-*.png."""

from __future__ import annotations

import re
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
    one,
    screenshot,
    serve,
)

pytestmark = [
    pytest.mark.seeded,  # data_dir: a copy of the demo seed (tests/conftest.py)
    pytest.mark.skipif(chromium_path() is None, reason="Debian's chromium is not installed"),
]

# (path suffix, expected <h1> per language)
PAGES = {
    # A first visit (no earlier session): "Welcome", not "Welcome back" (issue 22).
    "overview": ("", {"de": "Willkommen, Alex Rivera", "fr": "Bienvenue, Alex Rivera"}),
    "orders": ("/orders", {"de": "Bestellungen", "fr": "Commandes"}),
    "subscriptions": ("/subscriptions", {"de": "Abonnements", "fr": "Abonnements"}),
    "benefits": ("/benefits", {"de": "Vorteile", "fr": "Avantages"}),
    "billing": ("/settings", {"de": "Rechnungsdaten", "fr": "Coordonnées de facturation"}),
}


@pytest.fixture
def served(smtp_settings: Settings) -> Iterator[tuple[str, Settings]]:
    port = free_port_for_tests()
    settings = msgspec.structs.replace(smtp_settings, base_url=f"http://127.0.0.1:{port}")
    with serve(app_for(settings, clock=Clock()), port) as base_url:
        yield base_url, settings


@pytest.fixture
def page(served: tuple[str, Settings], chromium: Any) -> Any:
    base_url, _ = served
    # An English browser: everything German/French below comes from the choices made in the portal.
    context = chromium.new_context(base_url=base_url, locale="en-US", viewport={"width": 1100, "height": 900})
    return context.new_page()


def walk(page, settings: Settings, language: str) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    for name, (suffix, headings) in PAGES.items():
        page.goto(f"/acme/portal{suffix}")
        expect(page.locator("html")).to_have_attribute("lang", language)
        expect(page.get_by_role("heading", level=1)).to_have_text(headings[language])
        screenshot(page, f"i18n-{language}-{name}")
    order = in_thread(one, settings, "SELECT id FROM orders WHERE external_id = 'acme-ord-alex-icons'")["id"]
    page.goto(f"/acme/portal/orders/{order}")
    expect(page.locator(".badge").first).to_have_text(
        {"de": "Teilweise erstattet", "fr": "Partiellement remboursé"}[language]
    )
    screenshot(page, f"i18n-{language}-order")
    page.goto(f"/acme/portal/orders/{order}/receipt")
    expect(page.get_by_role("heading", level=1)).to_have_text({"de": "Beleg", "fr": "Reçu"}[language])
    total = page.locator('[data-field="total"]').inner_text()
    # The locale's number format: "19,00 $" in German, "19,00 $US" in French (English: "$19.00").
    assert re.fullmatch(r"\d+,\d{2}\xa0\$(US)?", total), total
    screenshot(page, f"i18n-{language}-receipt")


def test_portal_in_german_and_french(page, served, smtp_server) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    _, settings = served
    inbox, _ = smtp_server

    # German, chosen with the switcher links on the sign-in page.
    page.goto("/acme/portal")
    page.locator('.language-switcher a[hreflang="de"]').click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Bei Acme Software anmelden")
    screenshot(page, "i18n-de-sign-in")
    page.get_by_label("E-Mail").fill("alex@example.com")
    page.get_by_role("button", name="Code senden").click()
    message = inbox.wait_for(1)[-1]
    assert message["Subject"] == "Ihr Anmeldecode für Acme Software"
    expect(page.get_by_role("heading", level=1)).to_have_text("Sehen Sie in Ihr E-Mail-Postfach")
    page.get_by_label("Code").fill(login_code(message))
    page.get_by_role("button", name="Anmelden").click()
    expect(page.locator(".account-email")).to_contain_text("alex@example.com")
    walk(page, settings, "de")

    # French, through the footer switcher (a select and a submit button: no JavaScript needed).
    page.goto("/acme/portal/orders")
    page.get_by_label("Sprache").select_option("fr")
    page.get_by_role("button", name="Sprache ändern").click()
    expect(page).to_have_url(re.compile(r".*/acme/portal/orders\?done=locale_saved$"))
    expect(page.get_by_role("status")).to_contain_text("Langue enregistrée")
    walk(page, settings, "fr")
