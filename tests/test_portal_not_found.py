"""Issue 22: an unknown address under a portal (``/acme/portal/no-such-page``) answers the organization's branded
404 with a link back to its portal (inside its layout when signed in); under an unknown slug it is the same 404 as
``/<slug>/portal``, so it tells nobody more than that page does. Known routes are not shadowed."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from litestar import Litestar
from litestar.testing import TestClient

from portal.settings import Settings
from tests.signin_helpers import Shop, sign_in_browser

pytest_plugins = ["tests.signin_fixtures"]


def _links(html: str) -> list[str]:
    return [str(a.get("href")) for a in BeautifulSoup(html, "html.parser").select("main a")]


@pytest.mark.parametrize("path", ["/acme/portal/no-such-page", "/acme/portal/orders/x/y/z", "/acme/portal/a%20b"])
def test_signed_out_unknown_page_is_the_organizations_404(browser: TestClient[Litestar], shop: Shop, path: str) -> None:
    response = browser.get(path)
    assert response.status_code == 404
    assert "Acme &amp; Co" in response.text  # the brand in the header
    assert "/acme/portal" in _links(response.text)
    assert "We couldn" in response.text
    assert 'href="/"' not in response.text.split("<main", 1)[1]
    assert browser.post(path).status_code == 404  # any method: still a 404, not a 405 nor a CSRF 403


def test_unknown_slug_tells_no_more_than_its_portal_page(browser: TestClient[Litestar], shop: Shop) -> None:
    # /no-such-org/portal already says 404; a deeper address there is the plain 404 of any unknown address.
    assert browser.get("/no-such-org/portal").status_code == 404
    deeper = browser.get("/no-such-org/portal/no-such-page")
    anywhere = browser.get("/no-such-org/portal/no-such-page".replace("no-such-org/portal", "zz/yy"))
    assert deeper.status_code == anywhere.status_code == 404
    normalized = deeper.text.replace("/no-such-org/portal/no-such-page", "/zz/yy/no-such-page")
    assert normalized == anywhere.text
    assert _links(deeper.text) == ["/"]


def test_signed_in_unknown_page_keeps_the_layout(browser: TestClient[Litestar], settings: Settings, shop: Shop) -> None:
    sign_in_browser(browser, settings, "acme", shop.acme_id, shop.ada_acme)
    response = browser.get("/acme/portal/no-such-page")
    assert response.status_code == 404
    assert "ada@example.com" in response.text  # the account box of the signed-in layout
    assert "Billing details" in response.text  # its navigation


def test_known_routes_are_not_shadowed(browser: TestClient[Litestar], settings: Settings, shop: Shop) -> None:
    assert browser.get("/acme/portal").status_code == 200
    assert browser.get("/acme/portal/authenticate", follow_redirects=False).status_code in (200, 303)
    assert browser.get("/acme/portal/orders", follow_redirects=False).status_code == 303  # sign-in first
    sign_in_browser(browser, settings, "acme", shop.acme_id, shop.ada_acme)
    assert browser.get("/acme/portal/orders").status_code == 200
    assert browser.get("/acme/portal/settings").status_code == 200
    assert browser.get("/v1/customer-portal/customers/me").status_code == 401
