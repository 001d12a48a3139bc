"""Customer sign-in through the HTML portal: the whole flow with codes read from a real SMTP server, and the
session rules of DESIGN §5 (rotation, timeouts, logout, one org per session, cookie flags, CSRF, headers)."""

from __future__ import annotations

import logging
import re

from bs4 import BeautifulSoup
from litestar.testing import TestClient

from portal.clock import Clock
from portal.db import connect_sync
from portal.sessions.auth import cookie_name
from portal.settings import Settings
from tests.apps import app_for
from tests.conftest import SMTPInbox
from tests.signin_helpers import (
    BASE,
    Browser,
    Shop,
    csrf,
    csrf_from,
    dump_database,
    html_part,
    insert_session,
    next_code,
    request_code,
    root_logs_into,
    set_cookie,
    sign_in_browser,
    submit_code,
    text_part,
    with_settings,
)

pytest_plugins = ["tests.signin_fixtures"]


def soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def is_sign_in_page(response, slug: str) -> bool:  # type: ignore[no-untyped-def]
    form = soup(response.text).find("form", attrs={"action": f"/{slug}/portal/request"})
    return response.status_code == 200 and form is not None and form.find("input", attrs={"name": "email"}) is not None


def sign_in(client: TestClient, inbox: SMTPInbox, slug: str, email: str) -> str:  # type: ignore[type-arg]
    """The whole HTML login; returns the session cookie value."""
    before = len(inbox.messages)
    assert request_code(client, slug, email).status_code == 303
    response = submit_code(client, slug, next_code(inbox, before + 1))
    assert response.status_code == 303, response.text
    return str(response.cookies[cookie_name(Settings(base_url=BASE), slug)])


def test_full_login_with_code_from_real_smtp(browser, inbox: SMTPInbox, smtp_settings: Settings) -> None:  # type: ignore[no-untyped-def]
    page = browser.get("/acme/portal?email=ada@example.com")
    assert is_sign_in_page(page, "acme")
    html = soup(page.text)
    assert "Acme & Co" in html.h1.get_text()
    assert html.find("img", attrs={"src": "https://img.example/acme.png"}) is not None
    assert html.find("input", attrs={"name": "email"})["value"] == "ada@example.com"
    assert html.find("input", attrs={"name": "_csrf_token"}) is not None

    answer = request_code(browser, "acme", "ada@example.com")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/acme/portal/authenticate"
    challenge = answer.cookies.get("portal_challenge_acme")
    assert challenge

    code_page = browser.get("/acme/portal/authenticate")
    assert code_page.status_code == 200
    field = soup(code_page.text).find("input", attrs={"name": "code"})
    assert field is not None and field["autocomplete"] == "one-time-code"
    resend = soup(code_page.text).find("form", attrs={"action": "/acme/portal/request"})
    assert resend is not None and resend.find("input", attrs={"name": "email"})["value"] == "ada@example.com"

    (message,) = inbox.wait_for(1)
    assert message["To"] == "ada@example.com"
    assert "Acme & Co" in message["Subject"]
    assert message["From"] == smtp_settings.mail_from
    text = text_part(message)
    code = next_code(inbox, 1)
    # Six symbols as Polar's, none of them a look-alike (0/O, 1/I/L).
    assert re.fullmatch(r"[ABCDEFGHJKMNPQRSTUVWXYZ23456789]{6}", code)
    assert "Acme & Co" in text and "15 minutes" in text
    assert "http://testserver.local/acme/portal/authenticate" in text
    assert text.rstrip().splitlines()[-1] == f"@testserver.local #{code}"
    html_body = soup(html_part(message))
    assert any(code == tag.get_text(strip=True) for tag in html_body.find_all("p"))
    assert "Acme &amp; Co" in html_part(message)

    done = submit_code(browser, "acme", code.lower())  # case does not matter
    assert done.status_code == 303
    assert done.headers["location"] == "/acme/portal"
    assert done.cookies.get("portal_session_acme")
    overview = browser.get("/acme/portal")
    assert overview.status_code == 200
    assert not is_sign_in_page(overview, "acme")
    assert "no-store" in overview.headers["cache-control"]
    conn = connect_sync(smtp_settings.db_path)
    assert (
        conn.execute(
            "SELECT email_verified FROM customers WHERE email = 'ada@example.com' AND "
            "organization_id = (SELECT id FROM organizations WHERE slug = 'acme')"
        ).fetchone()[0]
        == 1
    )
    conn.close()


def test_unknown_org_is_a_404_page(browser) -> None:  # type: ignore[no-untyped-def]
    for response in (browser.get("/nope/portal"), browser.get("/nope/portal/authenticate")):
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
    posted = browser.post("/nope/portal/request", data={"email": "a@b.c", "_csrf_token": csrf(browser)})
    assert posted.status_code == 404


def test_code_page_without_challenge_goes_back_to_sign_in(browser) -> None:  # type: ignore[no-untyped-def]
    # The email's link opened on another device: the sign-in form, saying why (issue 22), not a silent restart.
    response = browser.get("/acme/portal/authenticate", follow_redirects=False)
    assert response.status_code == 200 and is_sign_in_page(response, "acme")
    assert "only works in the browser where it was asked for" in response.text


def test_invalid_email_is_refused_without_a_code(browser, inbox: SMTPInbox) -> None:  # type: ignore[no-untyped-def]
    response = request_code(browser, "acme", "not-an-email")
    assert response.status_code == 400
    assert soup(response.text).find(attrs={"role": "alert"}) is not None


def test_known_and_unknown_emails_get_identical_answers(browser, inbox: SMTPInbox) -> None:  # type: ignore[no-untyped-def]
    answers = {}
    for email in ("ada@example.com", "nobody@example.com"):
        with Browser(browser).active() as client:
            posted = request_code(client, "acme", email)
            page = client.get("/acme/portal/authenticate")
            token = csrf(client)
            answers[email] = (
                posted.status_code,
                posted.headers["location"],
                posted.content,
                sorted(posted.headers.keys()),
                page.status_code,
                page.text.replace(email, "EMAIL").replace(token, "CSRF"),
            )
    assert answers["ada@example.com"] == answers["nobody@example.com"]
    inbox.wait_for(1)
    assert [m["To"] for m in inbox.messages] == ["ada@example.com"]


def test_no_plaintext_code_or_token_in_database_or_logs(  # type: ignore[no-untyped-def]
    browser, inbox: SMTPInbox, smtp_settings: Settings, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    with root_logs_into(caplog):
        assert request_code(browser, "acme", "ada@example.com").status_code == 303
        challenge = browser.cookies.get("portal_challenge_acme")
        code = next_code(inbox, 1)
        token = str(submit_code(browser, "acme", code).cookies["portal_session_acme"])
        assert not is_sign_in_page(browser.get("/acme/portal"), "acme")
    dump = dump_database(smtp_settings)
    assert "login_codes" not in dump  # sanity: the dump holds values, not the schema
    # Every log line of ours and of the libraries we drive; aiosmtpd's own logger (the test *server*) is left out
    # because it logs the DATA it receives, i.e. the email the customer is meant to read.
    logged = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records if not r.name.startswith("mail.log"))
    assert "login_codes" in logged  # the SQL debug log of the sign-in was captured
    for secret in (code, token, challenge):
        assert secret not in dump
        assert secret not in logged
    assert "ada@example.com" in dump  # the dump does see the rows


def test_login_never_adopts_a_planted_cookie(browser, inbox: SMTPInbox, smtp_settings: Settings, shop: Shop) -> None:  # type: ignore[no-untyped-def]
    set_cookie(browser, "portal_session_acme", "attacker-chosen-session-id")
    assert is_sign_in_page(browser.get("/acme/portal"), "acme")  # unknown ids are ignored
    token = sign_in(browser, inbox, "acme", "ada@example.com")
    assert token != "attacker-chosen-session-id"

    # A *valid* session the browser already had is replaced too (new id at every login) and stops working.
    old = sign_in_browser(browser, smtp_settings, "acme", shop.acme_id, shop.ada_acme)
    new = sign_in(browser, inbox, "acme", "ada@example.com")
    assert new not in (old, token)
    set_cookie(browser, "portal_session_acme", old)
    assert is_sign_in_page(browser.get("/acme/portal"), "acme")


def test_idle_timeout(browser, clock: Clock, smtp_settings: Settings, shop: Shop) -> None:  # type: ignore[no-untyped-def]
    sign_in_browser(browser, smtp_settings, "acme", shop.acme_id, shop.ada_acme)
    assert not is_sign_in_page(browser.get("/acme/portal"), "acme")
    clock.advance(smtp_settings.session_idle_timeout - 30)
    assert not is_sign_in_page(browser.get("/acme/portal"), "acme")  # activity refreshes last_seen
    clock.advance(smtp_settings.session_idle_timeout + 1)
    assert is_sign_in_page(browser.get("/acme/portal"), "acme")


def test_absolute_timeout(  # type: ignore[no-untyped-def]
    smtp_settings: Settings, clock: Clock, shop: Shop, inbox: SMTPInbox
) -> None:
    settings = with_settings(smtp_settings, session_idle_timeout=600, session_max_age=1800)
    with TestClient(app_for(settings, clock=clock), base_url=BASE) as client:
        sign_in(client, inbox, "acme", "ada@example.com")
        for _ in range(3):  # 1500 s of steady activity: never idle, still inside the absolute lifetime
            clock.advance(500)
            assert not is_sign_in_page(client.get("/acme/portal"), "acme")
        clock.advance(500)  # 2000 s > 1800 s
        assert is_sign_in_page(client.get("/acme/portal"), "acme")


def test_logout_revokes_and_clears_cookie(browser, inbox: SMTPInbox, smtp_settings: Settings) -> None:  # type: ignore[no-untyped-def]
    token = sign_in(browser, inbox, "acme", "ada@example.com")
    assert browser.post("/acme/portal/logout", follow_redirects=False).status_code == 403  # no CSRF token
    response = browser.post("/acme/portal/logout", data={"_csrf_token": csrf(browser)}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/acme/portal?done=signed_out"
    cleared = response.headers["set-cookie"]
    assert "portal_session_acme=" in cleared and "Max-Age=0" in cleared
    assert is_sign_in_page(browser.get("/acme/portal"), "acme")
    set_cookie(browser, "portal_session_acme", token)  # replaying the old cookie does not help
    assert is_sign_in_page(browser.get("/acme/portal"), "acme")
    conn = connect_sync(smtp_settings.db_path)
    assert conn.execute("SELECT COUNT(*) FROM customer_sessions WHERE revoked_at IS NOT NULL").fetchone()[0] == 1
    conn.close()


def test_a_session_of_org_a_never_opens_org_b(browser, smtp_settings: Settings, shop: Shop) -> None:  # type: ignore[no-untyped-def]
    token = sign_in_browser(browser, smtp_settings, "acme", shop.acme_id, shop.ada_acme)
    assert not is_sign_in_page(browser.get("/acme/portal"), "acme")
    assert is_sign_in_page(browser.get("/globex/portal"), "globex")
    set_cookie(browser, "portal_session_globex", token)  # even under org B's cookie name
    assert is_sign_in_page(browser.get("/globex/portal"), "globex")
    # An API token of org A as a pre-authenticated link on org B's portal is refused.
    api_token = insert_session(smtp_settings, shop.acme_id, shop.ada_acme, kind="api")
    refused = browser.get(f"/globex/portal?customer_session_token={api_token}", follow_redirects=False)
    assert refused.status_code == 200 and "invalid or has expired" in refused.text


def test_csrf_is_required_on_every_sign_in_form(browser) -> None:  # type: ignore[no-untyped-def]
    browser.get("/acme/portal")  # has a CSRF cookie, but the forms below omit the field
    for path, data in (
        ("/acme/portal/request", {"email": "ada@example.com"}),
        ("/acme/portal/authenticate", {"code": "ABCDEFGH"}),
        ("/acme/portal/logout", {}),
    ):
        response = browser.post(path, data=data, follow_redirects=False)
        assert response.status_code == 403, path
        assert response.headers["content-type"].startswith("text/html")
    wrong = browser.post("/acme/portal/request", data={"email": "ada@example.com", "_csrf_token": "forged"})
    assert wrong.status_code == 403
    # Every form on the sign-in pages carries the token.
    page = browser.get("/acme/portal")
    assert csrf_from(page.text)


def test_cookie_flags_over_http(browser, inbox: SMTPInbox) -> None:  # type: ignore[no-untyped-def]
    challenge_header = request_code(browser, "acme", "ada@example.com").headers["set-cookie"]
    assert "httponly" in challenge_header.lower() and "samesite=lax" in challenge_header.lower()
    response = submit_code(browser, "acme", next_code(inbox, 1))
    headers = response.headers.get_list("set-cookie")
    session = next(h for h in headers if h.startswith("portal_session_acme="))
    lowered = session.lower()
    assert "httponly" in lowered and "samesite=lax" in lowered and "path=/" in lowered
    assert "secure" not in lowered
    cleared = next(h for h in headers if h.startswith("portal_challenge_acme="))
    assert "max-age=0" in cleared.lower()


def test_cookie_flags_over_https(smtp_settings: Settings, clock: Clock, shop: Shop, inbox: SMTPInbox) -> None:
    settings = with_settings(smtp_settings, base_url="https://portal.example")
    with TestClient(app_for(settings, clock=clock), base_url="https://portal.example") as client:
        assert request_code(client, "acme", "ada@example.com").status_code == 303
        code = next_code(inbox, 1)
        assert text_part(inbox.messages[0]).rstrip().splitlines()[-1] == f"@portal.example #{code}"
        response = submit_code(client, "acme", code)
        assert response.status_code == 303, response.text
        headers = response.headers.get_list("set-cookie")
        session = next(h for h in headers if h.startswith("__Host-portal_session_acme="))
        lowered = session.lower()
        assert "secure" in lowered and "httponly" in lowered and "samesite=lax" in lowered and "path=/" in lowered
        assert "domain=" not in lowered
        assert not is_sign_in_page(client.get("/acme/portal"), "acme")
        logout = client.post("/acme/portal/logout", data={"_csrf_token": csrf(client)}, follow_redirects=False)
        cleared = logout.headers["set-cookie"].lower()
        assert cleared.startswith("__host-portal_session_acme=") and "secure" in cleared and "max-age=0" in cleared


def test_security_headers_on_sign_in_pages(browser, inbox: SMTPInbox) -> None:  # type: ignore[no-untyped-def]
    request_code(browser, "acme", "ada@example.com")
    for path in ("/acme/portal", "/acme/portal/authenticate"):
        headers = browser.get(path).headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"]
        assert "no-store" in headers["cache-control"]


def test_pre_authenticated_link(browser, smtp_settings: Settings, shop: Shop, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    token = insert_session(
        smtp_settings,
        shop.acme_id,
        shop.ada_acme,
        kind="api",
        ttl_seconds=smtp_settings.customer_session_ttl,
        return_url="https://acme.example/account",
    )
    set_cookie(browser, "portal_session_acme", "planted")
    response = browser.get(f"/acme/portal?customer_session_token={token}", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/acme/portal"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "no-store" in response.headers["cache-control"]
    session = str(response.cookies["portal_session_acme"])
    assert session not in (token, "planted")
    page = browser.get("/acme/portal")
    assert not is_sign_in_page(page, "acme")
    back = soup(page.text).find("a", attrs={"href": "https://acme.example/account"})
    assert back is not None and "Back to Acme & Co" in back.get_text()
    # The link stays a Bearer token until it expires (Polar compatibility) ...
    assert (
        browser.get(
            "/v1/customer-portal/customer-session/introspect", headers={"Authorization": f"Bearer {token}"}
        ).json()["return_url"]
        == "https://acme.example/account"
    )
    # ... and once expired, the link shows the sign-in form with a clear message.
    clock.advance(smtp_settings.customer_session_ttl + 1)
    with Browser(browser).active() as other:
        expired = other.get(f"/acme/portal?customer_session_token={token}", follow_redirects=False)
        assert expired.status_code == 200
        assert is_sign_in_page(expired, "acme")
        assert "invalid or has expired" in soup(expired.text).find(attrs={"role": "alert"}).get_text()
        assert expired.headers["referrer-policy"] == "no-referrer"
        garbage = other.get("/acme/portal?customer_session_token=garbage", follow_redirects=False)
        assert garbage.status_code == 200 and is_sign_in_page(garbage, "acme")


def test_browser_session_is_not_a_bearer_token(browser, smtp_settings: Settings, shop: Shop) -> None:  # type: ignore[no-untyped-def]
    token = sign_in_browser(browser, smtp_settings, "acme", shop.acme_id, shop.ada_acme)
    response = browser.get(
        "/v1/customer-portal/customer-session/introspect", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401


def test_security_headers_on_error_pages(browser) -> None:  # type: ignore[no-untyped-def]
    not_found = browser.get("/nope/portal")
    forged = browser.post("/acme/portal/request", data={"email": "ada@example.com"})
    for response in (not_found, forged):
        assert "frame-ancestors 'none'" in response.headers.get("content-security-policy", "")
        assert response.headers.get("x-content-type-options") == "nosniff"
