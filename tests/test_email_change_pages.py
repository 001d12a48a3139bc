"""Issue 22: changing the email address in the portal where the seller allows it (the Billing page's form, the
verification mail to the new address, the link's confirm page), with the API's throttles and its identical answer
for an address that is already a customer's; and a mail sent from a signed-in request carries the organization's
sender name and Reply-To."""

from __future__ import annotations

import re
import time
from email.headerregistry import Address
from email.message import EmailMessage

import pytest
from bs4 import BeautifulSoup
from litestar import Litestar
from litestar.testing import TestClient

from portal.db import connect_sync
from portal.sessions import rate_limit
from portal.settings import Settings
from tests.conftest import SMTPInbox
from tests.signin_helpers import BASE, Shop, csrf_token, html_part, sign_in_browser, text_part

pytest_plugins = ["tests.signin_fixtures"]

SETTINGS_PAGE = "/acme/portal/settings"


def _execute(settings: Settings, sql: str, *params: object) -> None:
    conn = connect_sync(settings.db_path)
    try:
        conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


@pytest.fixture
def allowed(smtp_settings: Settings, shop: Shop) -> Shop:
    _execute(
        smtp_settings,
        "UPDATE organizations SET allow_email_change = 1, email_sender_name = 'Acme Support', "
        "email_reply_to = 'help@acme.example' WHERE id = ?",
        shop.acme_id,
    )
    return shop


def _ask(browser: TestClient[Litestar], email: str, locale: str | None = None) -> object:
    token = csrf_token(browser, SETTINGS_PAGE + (f"?locale={locale}" if locale else ""))
    return browser.post(
        SETTINGS_PAGE + "/email",
        data={"email": email, "_csrf_token": token},
        follow_redirects=False,
    )


def _link(message: EmailMessage) -> str:
    match = re.search(r"(http\S+/acme/portal/email-change\?token=[A-Z0-9]{12})", text_part(message))
    assert match, text_part(message)
    return match.group(1)


def _confirm(browser: TestClient[Litestar], link: str) -> object:
    page = browser.get(link.replace(BASE, ""))
    assert page.status_code == 200, page.text
    form = BeautifulSoup(page.text, "html.parser").find("form", attrs={"action": "/acme/portal/email-change"})
    assert form is not None
    fields = {str(i["name"]): str(i["value"]) for i in form.find_all("input")}
    return browser.post("/acme/portal/email-change", data=fields, follow_redirects=False)


def test_the_form_is_absent_and_refused_when_the_seller_does_not_allow_it(
    smtp_settings: Settings, shop: Shop, browser: TestClient[Litestar], inbox: SMTPInbox
) -> None:
    sign_in_browser(browser, smtp_settings, "acme", shop.acme_id, shop.ada_acme)
    page = browser.get(SETTINGS_PAGE)
    assert page.status_code == 200 and 'data-form="email-change"' not in page.text
    token = csrf_token(browser, SETTINGS_PAGE)
    refused = browser.post(SETTINGS_PAGE + "/email", data={"email": "ada.new@example.com", "_csrf_token": token})
    assert refused.status_code == 404
    time.sleep(0.3)
    assert inbox.messages == []


def test_change_email_end_to_end_in_the_same_browser(
    smtp_settings: Settings, allowed: Shop, browser: TestClient[Litestar], inbox: SMTPInbox
) -> None:
    sign_in_browser(browser, smtp_settings, "acme", allowed.acme_id, allowed.ada_acme)
    page = browser.get(SETTINGS_PAGE)
    assert 'data-form="email-change"' in page.text and "ada@example.com" in page.text
    answer = _ask(browser, "ada.new@example.com")
    assert answer.status_code == 303  # type: ignore[attr-defined]
    notice = browser.get(answer.headers["location"])  # type: ignore[attr-defined]
    assert "We sent a confirmation link to the new address" in notice.text
    [message] = inbox.wait_for(1)
    assert message["To"] == "ada.new@example.com"
    # Sent from a signed-in request: the organization's From name and Reply-To (the session lookup loads them).
    sender = message["From"].addresses[0]
    assert isinstance(sender, Address) and sender.display_name == "Acme Support"
    assert message["Reply-To"] == "help@acme.example"
    assert "Confirm your new email address for Acme & Co" in message["Subject"]
    assert "Confirm new email address" in html_part(message)
    done = _confirm(browser, _link(message))
    assert done.status_code == 303  # type: ignore[attr-defined]
    assert done.headers["location"] == "/acme/portal/settings?done=email_changed"  # type: ignore[attr-defined]
    settings_page = browser.get(done.headers["location"])  # type: ignore[attr-defined]
    assert "Your email address was changed" in settings_page.text
    assert "ada.new@example.com" in settings_page.text
    # One-time: the same link again is a clear page, not a 500.
    again = browser.get(_link(message).replace(BASE, ""))
    assert again.status_code == 400 and "expired or was already used" in again.text


def test_the_link_works_in_another_browser_and_says_so(
    smtp_settings: Settings, allowed: Shop, mail_app: Litestar, inbox: SMTPInbox
) -> None:
    with TestClient(mail_app, base_url=BASE) as browser:
        sign_in_browser(browser, smtp_settings, "acme", allowed.acme_id, allowed.ada_acme)
        assert _ask(browser, "ada.other@example.com").status_code == 303  # type: ignore[attr-defined]
    [message] = inbox.wait_for(1)
    with TestClient(mail_app, base_url=BASE) as elsewhere:
        done = _confirm(elsewhere, _link(message))
        assert done.status_code == 200  # type: ignore[attr-defined]
        assert "Email address changed" in done.text and "ada.other@example.com" in done.text  # type: ignore[attr-defined]
        # Not signed in by the link.
        assert elsewhere.get("/acme/portal/settings", follow_redirects=False).status_code in (302, 303)


def test_the_verification_mail_is_translated(
    smtp_settings: Settings, allowed: Shop, browser: TestClient[Litestar], inbox: SMTPInbox
) -> None:
    _execute(smtp_settings, "UPDATE customers SET locale = 'de' WHERE id = ?", allowed.ada_acme)
    sign_in_browser(browser, smtp_settings, "acme", allowed.acme_id, allowed.ada_acme)
    assert _ask(browser, "ada.neu@example.com").status_code == 303  # type: ignore[attr-defined]
    [message] = inbox.wait_for(1)
    assert "Bestätige" in message["Subject"] or "Bestätigen" in message["Subject"]
    assert "Your verification code" not in text_part(message)


def test_bad_addresses_and_address_in_use(
    smtp_settings: Settings, allowed: Shop, browser: TestClient[Litestar], inbox: SMTPInbox
) -> None:
    sign_in_browser(browser, smtp_settings, "acme", allowed.acme_id, allowed.ada_acme)
    for bad, text in (
        ("not-an-address", "Enter a valid email address"),
        ("", "Enter an email address"),
        ("ADA@example.com", "This is already your email address"),
        ("a\r\nBcc: x@example.com", "Enter a valid email address"),
    ):
        answer = _ask(browser, bad)
        assert answer.status_code == 400, bad  # type: ignore[attr-defined]
        assert text in answer.text and 'aria-invalid="true"' in answer.text  # type: ignore[attr-defined]
    # Bob's address: the same answer as a free one, and no mail goes out.
    in_use = _ask(browser, "bob@example.com")
    free = _ask(browser, "ada.free@example.com")
    assert in_use.status_code == free.status_code == 303  # type: ignore[attr-defined]
    assert in_use.headers["location"] == free.headers["location"]  # type: ignore[attr-defined]
    inbox.wait_for(1)
    time.sleep(0.5)
    assert [m["To"] for m in inbox.messages] == ["ada.free@example.com"]


def test_throttled_with_the_real_wait(
    smtp_settings: Settings, allowed: Shop, browser: TestClient[Litestar], inbox: SMTPInbox
) -> None:
    sign_in_browser(browser, smtp_settings, "acme", allowed.acme_id, allowed.ada_acme)
    for i in range(rate_limit.EMAIL_UPDATE_REQUEST_PER_CUSTOMER.max_hits):
        assert _ask(browser, f"n{i}@example.com").status_code == 303  # type: ignore[attr-defined]
    throttled = _ask(browser, "one.more@example.com")
    assert throttled.status_code == 429  # type: ignore[attr-defined]
    wait = int(throttled.headers["retry-after"])  # type: ignore[attr-defined]
    assert 0 < wait <= 3600
    assert re.search(r"Try again in \d+ (minutes?|seconds?|hours?)", throttled.text)  # type: ignore[attr-defined]


def test_wrong_expired_and_foreign_links_are_clear_pages(
    smtp_settings: Settings, allowed: Shop, browser: TestClient[Litestar], inbox: SMTPInbox
) -> None:
    wrong = browser.get("/acme/portal/email-change?token=WRONGTOKEN12")
    assert wrong.status_code == 400 and "expired or was already used" in wrong.text
    assert browser.get("/acme/portal/email-change").status_code == 400
    token = csrf_token(browser, "/acme/portal")
    posted = browser.post("/acme/portal/email-change", data={"token": "WRONGTOKEN12", "_csrf_token": token})
    assert posted.status_code == 400
    # A live token of acme does not work under another organization's portal.
    sign_in_browser(browser, smtp_settings, "acme", allowed.acme_id, allowed.ada_acme)
    _ask(browser, "ada.x@example.com")
    [message] = inbox.wait_for(1)
    link = _link(message).replace(BASE, "")
    assert browser.get(link.replace("/acme/", "/globex/")).status_code == 400
    # Expired: the row's time has passed.
    _execute(smtp_settings, "UPDATE customer_email_updates SET expires_at = '2000-01-01T00:00:00Z'")
    expired = browser.get(link)
    assert expired.status_code == 400 and "expired or was already used" in expired.text
    # The seller turned the change off meanwhile.
    _execute(smtp_settings, "UPDATE organizations SET allow_email_change = 0")
    assert browser.get(link).status_code == 400


def test_wrong_link_tokens_are_throttled_per_network_with_the_real_wait(
    allowed: Shop, browser: TestClient[Litestar]
) -> None:
    cap = rate_limit.EMAIL_UPDATE_FAILURE_PER_IP.max_hits
    for i in range(cap):
        assert browser.get(f"/acme/portal/email-change?token=WRONG{i:07d}").status_code == 400
    throttled = browser.get("/acme/portal/email-change?token=WRONGAGAIN12")
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) > 0
    assert re.search(r"Try again in \d+ (minutes?|seconds?)", throttled.text)
    assert "Acme &amp; Co" in throttled.text  # the organization's page, not a bare error


def test_the_api_sends_the_same_mail_in_the_customers_language(
    smtp_settings: Settings, allowed: Shop, browser: TestClient[Litestar], inbox: SMTPInbox
) -> None:
    from tests.admin_support import api, mint_token

    _execute(smtp_settings, "UPDATE customers SET locale = 'fr' WHERE id = ?", allowed.ada_acme)
    session = api(
        browser,
        mint_token(smtp_settings),
        "POST",
        "/v1/customer-sessions/",
        201,
        json={"customer_id": allowed.ada_acme},
    )
    answer = browser.post(
        "/v1/customer-portal/customers/me/email-update/request",
        json={"email": "ada.fr@example.com"},
        headers={"Authorization": f"Bearer {session['token']}"},
    )
    assert answer.status_code == 202
    [message] = inbox.wait_for(1)
    assert message["Subject"].startswith("Confirmez votre nouvelle adresse e-mail")
    assert message["Reply-To"] == "help@acme.example"
    # The code the API verifies, and the link to the portal's confirm page, in one mail.
    code = re.search(r"\b([A-Z0-9]{12})\b", text_part(message).split("?token=")[1])
    assert code is not None
    verified = browser.post("/v1/customer-portal/customers/me/email-update/verify", json={"token": code.group(1)})
    assert verified.status_code == 200 and verified.json()["token"].startswith("polar_cst_")
