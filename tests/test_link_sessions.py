"""Pre-authenticated portal links (issue 17.1) and customer-session token shapes (issue 23.8): only seller-minted
tokens open the portal, a link never silently replaces another signed-in customer, the session a link opens ends
with its token, and signing out ends the token too."""

from __future__ import annotations

from portal.settings import Settings
from tests.signin_helpers import csrf as _csrf
from tests.signin_helpers import insert_session, set_cookie

pytest_plugins = ["tests.signin_fixtures"]


def is_sign_in_page(response, slug: str) -> bool:  # type: ignore[no-untyped-def]
    return response.status_code == 200 and f'action="/{slug}/portal/request' in response.text


def test_customer_minted_tokens_are_not_links(browser, smtp_settings: Settings, shop) -> None:  # type: ignore[no-untyped-def]
    for origin in ("code", "email_change"):
        token = insert_session(smtp_settings, shop.acme_id, shop.ada_acme, kind="api", origin=origin)
        response = browser.get(f"/acme/portal?customer_session_token={token}", follow_redirects=False)
        assert response.status_code == 200 and is_sign_in_page(response, "acme"), origin
        assert "portal_session_acme" not in response.cookies
        # Still a Bearer token for the JSON API.
        me = browser.get("/v1/customer-portal/customers/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200


def test_link_never_silently_replaces_another_customer(browser, smtp_settings: Settings, shop) -> None:  # type: ignore[no-untyped-def]
    mine = insert_session(smtp_settings, shop.acme_id, shop.ada_acme, kind="browser", ttl_seconds=86400)
    set_cookie(browser, "portal_session_acme", mine)
    other = insert_session(smtp_settings, shop.acme_id, shop.bob_acme, kind="api")
    asked = browser.get(f"/acme/portal?customer_session_token={other}", follow_redirects=False)
    assert asked.status_code == 200
    assert "Switch account?" in asked.text and "ada@example.com" in asked.text
    assert "portal_session_acme" not in asked.cookies
    # Still signed in as the first customer.
    assert not is_sign_in_page(browser.get("/acme/portal"), "acme")
    assert browser.cookies.get("portal_session_acme") == mine
    # Without the CSRF token the switch is refused; with it, the session is replaced.
    browser.get("/acme/portal")  # a page that sets the CSRF cookie
    refused = browser.post("/acme/portal/switch", data={"customer_session_token": other}, follow_redirects=False)
    assert refused.status_code == 403
    switched = browser.post(
        "/acme/portal/switch",
        data={"customer_session_token": other, "_csrf_token": _csrf(browser)},
        follow_redirects=False,
    )
    assert switched.status_code == 303
    assert switched.cookies["portal_session_acme"] not in (mine, other)


def test_same_customer_link_keeps_the_session(browser, smtp_settings: Settings, shop) -> None:  # type: ignore[no-untyped-def]
    mine = insert_session(smtp_settings, shop.acme_id, shop.ada_acme, kind="browser", ttl_seconds=86400)
    set_cookie(browser, "portal_session_acme", mine)
    link = insert_session(smtp_settings, shop.acme_id, shop.ada_acme, kind="api")
    response = browser.get(f"/acme/portal?customer_session_token={link}", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/acme/portal"
    assert "portal_session_acme" not in response.cookies


def test_link_session_ends_with_its_token_and_sign_out_ends_the_token(  # type: ignore[no-untyped-def]
    browser, smtp_settings: Settings, shop, clock
) -> None:
    link = insert_session(smtp_settings, shop.acme_id, shop.ada_acme, kind="api", ttl_seconds=600, now=clock.now())
    opened = browser.get(f"/acme/portal?customer_session_token={link}", follow_redirects=False)
    assert opened.status_code == 303
    assert int(opened.headers["set-cookie"].lower().split("max-age=")[1].split(";")[0]) <= 600
    assert not is_sign_in_page(browser.get("/acme/portal"), "acme")
    clock.advance(601)
    assert is_sign_in_page(browser.get("/acme/portal"), "acme")
    # A fresh link, then sign out: the link's token is revoked as well.
    link = insert_session(smtp_settings, shop.acme_id, shop.ada_acme, kind="api", ttl_seconds=600, now=clock.now())
    browser.get(f"/acme/portal?customer_session_token={link}", follow_redirects=False)
    browser.post("/acme/portal/logout", data={"_csrf_token": _csrf(browser)}, follow_redirects=False)
    bearer = browser.get("/v1/customer-portal/customers/me", headers={"Authorization": f"Bearer {link}"})
    assert bearer.status_code == 401
    again = browser.get(f"/acme/portal?customer_session_token={link}", follow_redirects=False)
    assert is_sign_in_page(again, "acme")
