"""``/docs`` in Debian's chromium: Swagger UI loads from Portal itself (files of the openapi-ui-bundles package)
under a CSP that allows exactly them, renders the API's operations with no console error (no CSP refusal), asks
nothing of another host, and links ``/docs/openapi.json``. Only the bundle files the page needs are served."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from portal.api_docs import DOCS_CSP
from portal.clock import Clock
from portal.settings import Settings
from tests.apps import app_for
from tests.browser_helpers import chromium_path, free_port_for_tests, screenshot, serve

pytestmark = pytest.mark.skipif(chromium_path() is None, reason="Debian's chromium is not installed")


@pytest.fixture
def served(settings: Settings) -> Iterator[str]:
    port = free_port_for_tests()
    settings = msgspec.structs.replace(settings, base_url=f"http://127.0.0.1:{port}")
    with serve(app_for(settings, clock=Clock()), port) as base_url:
        yield base_url


def test_docs_render_operations_without_csp_errors(served: str, chromium: Any) -> None:
    from playwright.sync_api import expect

    base_url = served
    errors: list[str] = []
    foreign: list[str] = []
    page = chromium.new_page(base_url=base_url, viewport={"width": 1440, "height": 900})
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda r: foreign.append(r.url) if not r.url.startswith(base_url) else None)
    response = page.goto("/docs")
    assert response is not None and response.status == 200
    assert response.headers["content-security-policy"] == DOCS_CSP
    expect(page.locator(".opblock").first).to_be_visible(timeout=15000)
    assert page.locator(".opblock").count() > 20  # the API's operations, not an empty shell
    expect(page.locator(".opblock-summary-path", has_text="/v1/customer-portal/orders/").first).to_be_visible()
    link = page.locator('a[href="/docs/openapi.json"]').first
    expect(link).to_be_visible()
    screenshot(page, "api-docs", full_page=False)
    schema = page.request.get("/docs/openapi.json")
    assert schema.ok and "paths" in schema.json()
    assert not errors, errors
    assert not foreign, foreign


def test_only_the_page_assets_are_served(client) -> None:  # type: ignore[no-untyped-def]
    for name, kind in (
        ("swagger-ui-bundle.js", "javascript"),
        ("swagger-ui.css", "text/css"),
        ("portal-docs.js", "javascript"),
    ):
        answer = client.get(f"/docs/assets/{name}")
        assert answer.status_code == 200 and kind in answer.headers["content-type"]
        assert answer.headers["content-security-policy"] == DOCS_CSP
    for name in ("index.html", "..%2F..%2F__init__.py", "swagger-initializer.js"):
        assert client.get(f"/docs/assets/{name}").status_code == 404
    # The rest of the site keeps its own, stricter policy.
    assert "connect-src" not in client.get("/").headers["content-security-policy"]
