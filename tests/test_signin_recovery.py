"""Sign-in that recovers (issue 22): the code page keeps the address and says exactly what became of the code
(expired, used, replaced, out of tries); the email's link opened in another browser is explained; deep links
survive sign-in through a validated same-portal ``next`` (hostile values dropped); throttle pages name the real
wait; "Welcome back" only for returning customers; a signed-out confirmation; ``/<slug>`` leads to the portal."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import pytest
from bs4 import BeautifulSoup

from portal.clock import Clock
from portal.db import Database
from portal.sessions import email_links
from portal.sessions.next_path import safe_next
from portal.sessions.pages import wait_text
from portal.settings import Settings
from tests.conftest import SMTPInbox
from tests.signin_helpers import Shop, csrf, next_code, request_code, set_cookie, sign_in_browser, submit_code

pytest_plugins = ["tests.signin_fixtures"]


def soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def alert(response) -> str:  # type: ignore[no-untyped-def]
    found = soup(response.text).find(attrs={"role": "alert"})
    return found.get_text(" ", strip=True) if found else ""


def hidden(response, name: str, form_action: str) -> str | None:  # type: ignore[no-untyped-def]
    form = soup(response.text).find("form", attrs={"action": form_action})
    assert form is not None, response.text[:500]
    field = form.find("input", attrs={"name": name})
    return None if field is None else str(field["value"])


def test_expired_code_page_keeps_the_address_and_resends_to_it(browser, inbox: SMTPInbox, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    request_code(browser, "acme", "ada@example.com")
    code = next_code(inbox, 1)
    page = browser.get("/acme/portal/authenticate")
    assert "valid for 15 more minutes" in page.text
    clock.advance(15 * 60 + 1)

    page = browser.get("/acme/portal/authenticate")
    assert page.status_code == 200
    assert "ada@example.com" in soup(page.text).find("section").get_text()
    assert "has expired" in alert(page)
    assert hidden(page, "email", "/acme/portal/request") == "ada@example.com"

    refused = submit_code(browser, "acme", code)
    assert refused.status_code == 400 and "has expired" in alert(refused)
    assert hidden(refused, "email", "/acme/portal/request") == "ada@example.com"

    # "Send a new code" posts the kept address: a new code arrives and signs in.
    resend = browser.post(
        "/acme/portal/request",
        data={"email": hidden(refused, "email", "/acme/portal/request"), "_csrf_token": csrf(browser)},
        follow_redirects=False,
    )
    assert resend.status_code == 303
    assert submit_code(browser, "acme", next_code(inbox, 2)).status_code == 303


def test_used_replaced_and_over_tried_codes_each_say_so(browser, inbox: SMTPInbox) -> None:  # type: ignore[no-untyped-def]
    # Used: the same code sent twice (a second tab, a double submit) from the browser that asked for it.
    request_code(browser, "acme", "ada@example.com")
    code = next_code(inbox, 1)
    challenge = browser.cookies.get("portal_challenge_acme")
    assert submit_code(browser, "acme", code).status_code == 303
    set_cookie(browser, "portal_challenge_acme", challenge)
    again = submit_code(browser, "acme", code)
    assert again.status_code == 400 and "already used" in alert(again)

    # Replaced: a newer code was asked for the same address (another browser).
    request_code(browser, "acme", "bob@example.com")
    code = next_code(inbox, 2)
    first_challenge = browser.cookies.get("portal_challenge_acme")
    request_code(browser, "acme", "bob@example.com")
    set_cookie(browser, "portal_challenge_acme", first_challenge)
    replaced = submit_code(browser, "acme", code)
    assert replaced.status_code == 400 and "newer code was sent" in alert(replaced)

    # Out of tries: five wrong codes burn it; the page then says so (and no longer offers the code field).
    request_code(browser, "acme", "ada@example.com")
    next_code(inbox, 4)
    wrong = submit_code(browser, "acme", "ZZZZZZ")
    assert wrong.status_code == 400 and "not right" in alert(wrong)
    for _ in range(4):
        wrong = submit_code(browser, "acme", "ZZZZZZ")
    assert "too many times" in alert(wrong)
    assert soup(wrong.text).find("input", attrs={"name": "code"}) is None
    assert hidden(wrong, "email", "/acme/portal/request") == "ada@example.com"


def test_code_link_opened_in_another_browser_is_explained(browser, inbox: SMTPInbox) -> None:  # type: ignore[no-untyped-def]
    request_code(browser, "acme", "ada@example.com")
    browser.cookies.clear()  # the other device: no challenge cookie
    page = browser.get("/acme/portal/authenticate")
    assert page.status_code == 200
    assert "only works in the browser where it was asked for" in alert(page)
    assert soup(page.text).find("input", attrs={"name": "email"}) is not None


def test_deep_link_survives_sign_in(browser, inbox: SMTPInbox, shop: Shop) -> None:  # type: ignore[no-untyped-def]
    target = "/acme/portal/orders/some-order?page=2"
    first = browser.get(target, follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == f"/acme/portal?next={quote(target, safe='/')}"
    sign_in_page = browser.get(first.headers["location"])
    assert hidden(sign_in_page, "next", "/acme/portal/request") == target
    asked = browser.post(
        "/acme/portal/request",
        data={"email": "ada@example.com", "next": target, "_csrf_token": csrf(browser)},
        follow_redirects=False,
    )
    assert asked.headers["location"] == f"/acme/portal/authenticate?next={quote(target, safe='/')}"
    code_page = browser.get(asked.headers["location"])
    assert hidden(code_page, "next", "/acme/portal/authenticate") == target
    assert hidden(code_page, "next", "/acme/portal/request") == target
    done = browser.post(
        "/acme/portal/authenticate",
        data={"code": next_code(inbox, 1), "next": target, "_csrf_token": csrf(browser)},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == target
    # Already signed in: the sign-in page with a ``next`` goes straight there.
    again = browser.get(f"/acme/portal?next={quote('/acme/portal/benefits', safe='/')}", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == "/acme/portal/benefits"


HOSTILE = [
    "//evil.example/acme/portal",
    "https://evil.example/acme/portal/orders",
    "/globex/portal/orders",
    "/acme/portalx/orders",
    "/acme/portal/../../evil",
    "/acme/portal/%2e%2e/%2e%2e/evil",
    "/acme/portal//evil.example",
    "/acme/portal/%2F%2Fevil.example",
    "/acme/portal\\evil",
    "/acme/portal/\t/evil",
    "javascript:alert(1)",
    "acme/portal/orders",
    "/acme/portal/logout",
    "http:/acme/portal/orders",
    "/acme/portal/orders" + "x" * 2000,
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_next_values_are_dropped(value: str) -> None:
    assert safe_next("acme", value) is None


def test_hostile_next_values_never_redirect_out(browser, inbox: SMTPInbox, shop: Shop, smtp_settings: Settings) -> None:  # type: ignore[no-untyped-def]
    for count, value in enumerate(HOSTILE[:8], start=1):
        email = ("ada@example.com", "bob@example.com")[count % 2]  # five codes an hour per address
        browser.cookies.clear()
        page = browser.get("/acme/portal", params={"next": value})
        assert page.status_code == 200 and hidden(page, "next", "/acme/portal/request") is None, value
        asked = browser.post(
            "/acme/portal/request",
            data={"email": email, "next": value, "_csrf_token": csrf(browser)},
            follow_redirects=False,
        )
        assert asked.headers["location"] == "/acme/portal/authenticate", value
        done = browser.post(
            "/acme/portal/authenticate",
            data={"code": next_code(inbox, count), "next": value, "_csrf_token": csrf(browser)},
            follow_redirects=False,
        )
        assert done.status_code == 303 and done.headers["location"] == "/acme/portal", value
        signed_in = browser.get("/acme/portal", params={"next": value}, follow_redirects=False)
        assert signed_in.status_code == 200, value


def _mint(settings: Settings, org_id: str, customer_id: str, target: str, now) -> str:  # type: ignore[no-untyped-def]
    async def work() -> str:
        db = Database(settings.db_path)
        await db.open()
        try:
            async with db.write() as tx:
                return await email_links.mint(
                    tx, settings, organization_id=org_id, customer_id=customer_id, target_path=target, now=now
                )
        finally:
            await db.close()

    return asyncio.run(work())


def test_used_or_expired_email_link_lands_on_its_page_after_sign_in(  # type: ignore[no-untyped-def]
    browser, inbox: SMTPInbox, shop: Shop, smtp_settings: Settings, clock: Clock
) -> None:
    target = "/acme/portal/orders/o-123"
    token = _mint(smtp_settings, shop.acme_id, shop.ada_acme, target, clock.now())
    clock.advance(25 * 3600)  # past the link's 24 hours
    page = browser.get("/acme/portal/link", params={"token": token})
    assert page.status_code == 400 and "expired or was already used" in alert(page)
    assert hidden(page, "next", "/acme/portal/request") == target
    request_code(browser, "acme", "ada@example.com")
    code_page = browser.get("/acme/portal/authenticate?next=" + quote(target, safe="/"))
    done = browser.post(
        "/acme/portal/authenticate",
        data={"code": next_code(inbox, 1), "next": hidden(code_page, "next", "/acme/portal/authenticate")},
        headers={"x-csrftoken": csrf(browser)},
        follow_redirects=False,
    )
    assert done.headers["location"] == target
    # Signed in as the link's customer: a used link goes straight to its page.
    used = _mint(smtp_settings, shop.acme_id, shop.ada_acme, "/acme/portal/benefits", clock.now())
    assert browser.post("/acme/portal/link", data={"token": used, "_csrf_token": csrf(browser)}).status_code == 200
    again = browser.get("/acme/portal/link", params={"token": used}, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == "/acme/portal/benefits"


def test_throttle_page_states_the_real_wait(browser, inbox: SMTPInbox) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        assert request_code(browser, "acme", "nobody@example.com").status_code == 303
    throttled = request_code(browser, "acme", "nobody@example.com")
    assert throttled.status_code == 429
    wait = int(throttled.headers["retry-after"])
    text = soup(throttled.text).find("main").get_text(" ", strip=True)
    assert "a few minutes" not in text
    assert wait_text(wait) in text and "minute" in wait_text(wait)
    assert "Too many codes were asked for this address" in text


def test_wait_text_rounds_up_and_is_localized() -> None:
    from portal import i18n

    assert wait_text(45) == "45 seconds"
    assert wait_text(61) == "2 minutes"
    assert wait_text(3600) == "1 hour"
    with i18n.use_locale("de"):
        assert wait_text(14 * 60) == "14 Minuten"


def test_welcome_back_only_for_returning_customers(browser, inbox: SMTPInbox) -> None:  # type: ignore[no-untyped-def]
    request_code(browser, "acme", "ada@example.com")
    submit_code(browser, "acme", next_code(inbox, 1))
    first = soup(browser.get("/acme/portal").text).h1.get_text()
    assert first.startswith("Welcome") and "back" not in first
    browser.post("/acme/portal/logout", data={"_csrf_token": csrf(browser)})
    request_code(browser, "acme", "ada@example.com")
    submit_code(browser, "acme", next_code(inbox, 2))
    assert "Welcome back" in soup(browser.get("/acme/portal").text).h1.get_text()


def test_sign_out_confirms_and_short_address_redirects(browser, smtp_settings: Settings, shop: Shop) -> None:  # type: ignore[no-untyped-def]
    sign_in_browser(browser, smtp_settings, "acme", shop.acme_id, shop.ada_acme)
    out = browser.post("/acme/portal/logout", data={"_csrf_token": csrf(browser)})
    assert out.status_code == 200 and str(out.url).endswith("/acme/portal?done=signed_out")
    status = soup(out.text).find(attrs={"role": "status"})
    assert status is not None and "You are signed out" in status.get_text()
    assert soup(out.text).find("input", attrs={"name": "email"}) is not None

    short = browser.get("/acme", follow_redirects=False)
    assert short.status_code == 302 and short.headers["location"] == "/acme/portal"
    assert browser.get("/no-such-shop", follow_redirects=False).status_code == 404
