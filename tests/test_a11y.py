"""Accessibility: axe-core (npm, tests/js) injected by Playwright into every portal page — signed out and signed
in, desktop and phone widths — reports no serious or critical violation. Phone screenshots go to test-artifacts/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from portal.clock import Clock
from portal.settings import Settings
from tests.apps import app_for
from tests.browser_helpers import (
    AXE_PATH,
    REPO_ROOT,
    allow_email_change,
    axe_both_schemes,
    axe_context,
    chromium_path,
    free_port_for_tests,
    in_thread,
    new_session,
    one,
    serve,
)

pytestmark = [
    pytest.mark.seeded,  # data_dir: a copy of the demo seed (tests/conftest.py)
    pytest.mark.skipif(chromium_path() is None, reason="Debian's chromium is not installed"),
    pytest.mark.skipif(not AXE_PATH.exists(), reason="run `npm install --prefix tests/js` for axe-core"),
]

VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture
def served(settings: Settings) -> Iterator[tuple[str, Settings]]:
    import msgspec

    port = free_port_for_tests()
    settings = msgspec.structs.replace(settings, base_url=f"http://127.0.0.1:{port}")
    with serve(app_for(settings, clock=Clock()), port) as base_url:
        yield base_url, settings


def _paths(settings: Settings) -> tuple[list[str], list[str]]:
    def ids() -> dict[str, str]:
        return {
            "order": one(settings, "SELECT id FROM orders WHERE external_id = 'acme-ord-alex-icons'")["id"],
            "sub": one(settings, "SELECT id FROM subscriptions WHERE external_id = 'acme-sub-alex-pro'")["id"],
            "yearly": one(settings, "SELECT id FROM products WHERE external_id = 'acme-pro-yearly'")["id"],
            **one(
                settings,
                "SELECT a.id AS activation, k.id AS key FROM license_key_activations a "
                "JOIN license_keys k ON k.id = a.license_key_id JOIN benefits b ON b.id = k.benefit_id "
                "JOIN customers c ON c.id = k.customer_id WHERE c.email = 'alex@example.com' "
                "AND json_extract(b.properties, '$.activations.enable_customer_admin') ORDER BY a.id LIMIT 1",
            ),
        }

    i = in_thread(ids)
    email_change_link = in_thread(allow_email_change, settings)  # the Billing page shows its Change email form
    signed_out = [
        "/acme/portal/no-such-page",  # the organization's branded 404
        email_change_link,  # an email change's confirm page
        "/acme/portal/email-change?token=SPENT",  # and a spent link
        "/acme/portal",
        "/lumen/portal",
        "/acme/portal/orders/missing-on-purpose",
        "/no-such-org/portal",
        "/acme/portal/authenticate",  # opened in a browser that asked for no code: explained (issue 22)
        "/acme/portal?done=signed_out",
    ]
    signed_in = [
        "/acme/portal",
        "/acme/portal/orders",
        f"/acme/portal/orders/{i['order']}",
        f"/acme/portal/orders/{i['order']}/receipt",
        "/acme/portal/subscriptions",
        f"/acme/portal/subscriptions/{i['sub']}",
        f"/acme/portal/subscriptions/{i['sub']}/change-plan",
        f"/acme/portal/subscriptions/{i['sub']}/change-plan/confirm?product_id={i['yearly']}",
        "/acme/portal/benefits",
        "/acme/portal/settings",
        "/acme/portal/orders/00000000-0000-4000-8000-000000000000",
        f"/acme/portal/subscriptions/{i['sub']}/cancel",
        f"/acme/portal/benefits/license-keys/{i['key']}/activations/{i['activation']}/deactivate",
    ]
    return signed_out, signed_in


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_axe_reports_no_serious_violation(served: tuple[str, Settings], chromium: Any, viewport: str) -> None:
    """Every page, signed out and in, in both colour schemes (dark mode keeps its contrast too): each page is
    loaded once and checked in light then dark (``prefers-color-scheme`` switched in place)."""
    base_url, settings = served
    signed_out, signed_in = _paths(settings)
    name, token = in_thread(new_session, settings, "acme", "alex@example.com", None, "https://acme.example/account")
    problems: dict[str, list[str]] = {}
    context = axe_context(chromium, base_url=base_url, viewport=VIEWPORTS[viewport])
    page = context.new_page()
    for path in signed_out:
        page.goto(path)
        axe_both_schemes(page, problems, f"signed out {path}")
    context.add_cookies([{"name": name, "value": token, "url": base_url}])
    for index, path in enumerate(signed_in):
        page.goto(path)
        shot = f"phone-{{scheme}}-{index:02d}" if viewport == "phone" else None
        axe_both_schemes(page, problems, f"signed in {path}", shot)
    assert not problems, "\n".join(f"{where}: {issue}" for where, issues in problems.items() for issue in issues)


def _dark_scheme_declarations(css: str) -> list[str]:
    """Every ``property`` declared inside an ``@media (prefers-color-scheme: dark)`` block."""
    found = []
    for start in (m.end() for m in re.finditer(r"@media[^{]*prefers-color-scheme:\s*dark[^{]*\{", css)):
        depth, index = 1, start
        while depth:
            depth += {"{": 1, "}": -1}.get(css[index], 0)
            index += 1
        body = re.sub(r"/\*.*?\*/", "", css[start : index - 1], flags=re.S)
        found += re.findall(r"([-\w]+)\s*:[^;{}]*(?:;|(?=\}))", body)
    return found


def test_the_dark_scheme_changes_colours_only() -> None:
    """Why the dark pass of ``axe_both_schemes`` runs axe's colour rules alone: what the dark scheme sets is colours
    (the palette's custom properties and colour properties), never layout, visibility or content."""
    colour = re.compile(
        r"^(--[-\w]+|color|color-scheme|background(-color)?|border(-\w+)?-color|outline-color|fill|stroke)$"
    )
    for name in ("portal.css", "receipt.css"):
        declared = _dark_scheme_declarations((REPO_ROOT / "templates" / "static" / name).read_text())
        assert declared, name
        assert [prop for prop in declared if not colour.match(prop)] == [], name
