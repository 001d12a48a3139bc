"""Phone layout and colour schemes in Debian's chromium (issue 22, Layout and Dark mode).

At 390x844: every navigation tab is on screen (the active one too), orders are cards with their status badge
inside the screen, dates stay on one line, the receipt's print button is on screen, and ``main`` keeps space
above and below it (cards do not touch the header or the footer). In the dark scheme pages, receipts and invoices
are dark, printing stays light, and the seller's accent keeps at least 4.5:1 contrast as link text and under the
primary button's label in both schemes, even for a pale accent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from portal.clock import Clock
from portal.settings import Settings
from portal.templating.accent import contrast, palette
from tests.apps import app_for
from tests.browser_helpers import (
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

PHONE = {"width": 390, "height": 844}

# WCAG contrast between two computed CSS colours (rgb()/rgba() strings), evaluated in the page.
CONTRAST_JS = """
([a, b]) => {
  const parse = (c) => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = (rgb) => {
    const [r, g, b] = rgb.map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const [x, y] = [lum(parse(a)), lum(parse(b))].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}
"""


@pytest.fixture
def served(settings: Settings) -> Iterator[tuple[str, Settings]]:
    port = free_port_for_tests()
    settings = msgspec.structs.replace(settings, base_url=f"http://127.0.0.1:{port}")
    with serve(app_for(settings, clock=Clock()), port) as base_url:
        yield base_url, settings


@pytest.fixture
def browser(served: tuple[str, Settings], chromium: Any) -> Any:
    return chromium


def signed_in(browser: Any, served: tuple[str, Settings], scheme: str = "light", viewport: Any = PHONE) -> Any:
    base_url, settings = served
    cookie, token = in_thread(new_session, settings, "acme", "alex@example.com")
    context = browser.new_context(base_url=base_url, viewport=viewport, color_scheme=scheme)
    context.add_cookies([{"name": cookie, "value": token, "url": base_url}])
    return context.new_page()


def box(page: Any, selector: str) -> dict[str, float]:
    found = page.locator(selector).first.bounding_box()
    assert found is not None, selector
    return dict(found)


def test_phone_nav_shows_every_tab_and_the_active_one(browser: Any, served: tuple[str, Settings]) -> None:
    page = signed_in(browser, served)
    page.goto("/acme/portal/settings")
    links = page.locator("nav.portal-nav a")
    assert links.count() == 5
    for index in range(links.count()):
        link = links.nth(index).bounding_box()
        assert link is not None
        assert link["x"] >= 0 and link["x"] + link["width"] <= PHONE["width"], (links.nth(index).inner_text(), link)
    active = box(page, 'nav.portal-nav a[aria-current="page"]')
    assert page.locator('nav.portal-nav a[aria-current="page"]').inner_text() == "Billing details"
    assert active["x"] + active["width"] <= PHONE["width"]
    screenshot(page, "phone-billing")


def test_phone_orders_are_cards_with_badges_and_one_line_dates(browser: Any, served: tuple[str, Settings]) -> None:
    page = signed_in(browser, served)
    page.goto("/acme/portal/orders")
    table = box(page, "table.orders")
    assert table["width"] <= PHONE["width"]
    scroller = page.evaluate(
        "() => { const s = document.querySelector('.table-scroll'); return [s.scrollWidth, s.clientWidth]; }"
    )
    assert scroller[0] <= scroller[1], f"the orders list scrolls sideways: {scroller}"
    badges = page.locator("table.orders .badge")
    assert badges.count() > 5
    for index in range(badges.count()):
        badge = badges.nth(index).bounding_box()
        assert badge is not None and badge["x"] + badge["width"] <= PHONE["width"] - 8, badge
        assert badge["height"] < 30, f"badge wraps: {badge}"  # one line
    line_height = page.evaluate("() => parseFloat(getComputedStyle(document.querySelector('td.date')).lineHeight)")
    dates = page.locator("table.orders td.date")
    for index in range(dates.count()):
        date = dates.nth(index).bounding_box()
        assert date is not None and date["height"] < 1.5 * line_height, f"date wraps: {dates.nth(index).inner_text()}"
    screenshot(page, "phone-orders")


def test_phone_receipt_toolbar_is_on_screen(browser: Any, served: tuple[str, Settings]) -> None:
    page = signed_in(browser, served)
    _, settings = served
    order = in_thread(one, settings, "SELECT id FROM orders WHERE external_id = 'acme-ord-alex-icons'")["id"]
    page.goto(f"/acme/portal/orders/{order}/receipt")
    button = box(page, "[data-print]")
    assert button["x"] >= 0 and button["x"] + button["width"] <= PHONE["width"], button
    assert button["height"] < 60, f"the print button's label wraps: {button}"


def test_main_has_space_above_and_below(browser: Any, served: tuple[str, Settings]) -> None:
    base_url, _ = served
    for viewport in (PHONE, {"width": 1440, "height": 900}):
        context = browser.new_context(base_url=base_url, viewport=viewport)
        page = context.new_page()
        for path in ("/acme/portal", "/no-such-seller/portal"):
            page.goto(path)
            header, card, footer = box(page, ".site-header"), box(page, "main .card"), box(page, ".site-footer")
            assert card["y"] - (header["y"] + header["height"]) >= 16, (path, viewport, header, card)
            assert footer["y"] - (card["y"] + card["height"]) >= 16, (path, viewport, card, footer)
        context.close()


def test_dark_scheme_pages_receipts_and_invoices_print_light(browser: Any, served: tuple[str, Settings]) -> None:
    _, settings = served
    order = in_thread(one, settings, "SELECT id FROM orders WHERE external_id = 'acme-ord-alex-icons'")["id"]
    from tests.test_layout_matrix import issue_invoice

    invoice = in_thread(issue_invoice, settings, order)
    background = "() => getComputedStyle(document.querySelector('{}')).backgroundColor"
    white = "rgb(255, 255, 255)"
    for scheme in ("light", "dark"):
        page = signed_in(browser, served, scheme=scheme)
        for path, surface in (
            ("/acme/portal/orders", "html"),
            (f"/acme/portal/orders/{order}/receipt", ".receipt"),
            (f"/acme/portal/orders/{order}/invoices/{invoice}", ".receipt"),
        ):
            page.goto(path)
            assert page.locator('meta[name="color-scheme"]').get_attribute("content") == "light dark"
            bright = page.evaluate(CONTRAST_JS, [page.evaluate(background.format(surface)), "rgb(0, 0, 0)"])
            if scheme == "dark":
                assert bright < 2, f"{path} is not dark in the dark scheme"
                page.emulate_media(media="print")
                assert page.evaluate(background.format(surface)) in (white, "rgba(0, 0, 0, 0)"), f"{path} prints dark"
                page.emulate_media(media="screen")
            else:
                assert bright > 15, f"{path} is not light in the light scheme"
        screenshot(page, f"invoice-{scheme}")


@pytest.mark.parametrize("accent", ["#facc15", "#1e1b4b", "#2563eb"])
def test_accent_keeps_contrast_in_both_schemes(browser: Any, served: tuple[str, Settings], accent: str) -> None:
    _, settings = served
    from tests.api_server import execute  # a direct UPDATE: the seller's choice, whatever it is

    in_thread(execute, settings, "UPDATE organizations SET accent_color = ? WHERE slug = 'acme'", (accent,))
    for scheme in ("light", "dark"):
        page = signed_in(browser, served, scheme=scheme)
        page.goto("/acme/portal")
        link = page.evaluate("() => getComputedStyle(document.querySelector('main a')).color")
        card = page.evaluate("() => getComputedStyle(document.querySelector('.card')).backgroundColor")
        assert page.evaluate(CONTRAST_JS, [link, card]) >= 4.5, (accent, scheme, link, card)
        page.goto("/acme/portal/settings")
        button = page.locator("button.primary").first
        fg = button.evaluate("b => getComputedStyle(b).color")
        bg = button.evaluate("b => getComputedStyle(b).backgroundColor")
        assert page.evaluate(CONTRAST_JS, [fg, bg]) >= 4.5, (accent, scheme, fg, bg)


@pytest.mark.parametrize("accent", ["#ffffff", "#000000", "#facc15", "#7c3aed", "#22c55e", "#fff", "nonsense"])
def test_palette_meets_contrast(accent: str) -> None:
    colors = palette(accent)
    assert contrast(colors["light"], "#ffffff") >= 4.5
    assert contrast(colors["on_light"], colors["light"]) >= 4.5
    assert contrast(colors["dark"], "#1b2230") >= 4.5
    assert contrast(colors["dark"], "#0f141c") >= 4.5
    assert contrast(colors["on_dark"], colors["dark"]) >= 4.5


def test_stylesheet_defaults_are_the_default_accent_palette() -> None:
    """Pages without a seller (the landing page) use portal.css's own accent: the same palette, both schemes."""
    from tests.browser_helpers import REPO_ROOT

    css = (REPO_ROOT / "templates" / "static" / "portal.css").read_text()
    colors = palette(None)
    dark_block = css[css.index("prefers-color-scheme: dark") :]
    assert f"--accent: {colors['light']};" in css.split("@media")[0]
    assert f"--accent: {colors['dark']};" in dark_block and f"--on-accent: {colors['on_dark']};" in dark_block
