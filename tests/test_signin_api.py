"""JSON sign-in, as Polar's ``/v1/customer-portal/customer-session/*``: request (202, same answer for everyone),
authenticate (``{code}`` → ``{token}``, 401 ``CustomerSessionCodeInvalidOrExpired``), introspect/user with the token
as Bearer — also through the official ``polar-sdk`` against a served Portal."""

from __future__ import annotations

import time

from polar.v2026_10 import outputs
from polar.v2026_10.client import Polar

from portal.clock import Clock
from portal.db import connect_sync
from portal.sessions import rate_limit
from portal.settings import Settings
from tests.admin_support import serve
from tests.apps import app_for
from tests.conftest import SMTPInbox
from tests.signin_helpers import Shop, next_code, request_code, with_settings

pytest_plugins = ["tests.signin_fixtures"]

REQUEST = "/v1/customer-portal/customer-session/request"
AUTHENTICATE = "/v1/customer-portal/customer-session/authenticate"
INTROSPECT = "/v1/customer-portal/customer-session/introspect"
USER = "/v1/customer-portal/customer-session/user"
INVALID = {
    "error": "CustomerSessionCodeInvalidOrExpired",
    "detail": "This customer session code is invalid or has expired.",
}


def ask(client, org_id: str, email: str):  # type: ignore[no-untyped-def]
    return client.post(REQUEST, json={"email": email, "organization_id": org_id})


def redeem(client, code: str, **binding: str):  # type: ignore[no-untyped-def]
    return client.post(AUTHENTICATE, json={"code": code, **binding})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_json_login_introspect_and_user(browser, inbox: SMTPInbox, shop: Shop, smtp_settings: Settings) -> None:  # type: ignore[no-untyped-def]
    answer = ask(browser, shop.acme_id, "ada@example.com")
    assert answer.status_code == 202 and answer.json() is None  # FastAPI (Polar) answers `null` too
    code = next_code(inbox, 1)
    assert "/acme/portal/authenticate" in inbox.messages[0].get_body(("plain",)).get_content()
    response = redeem(browser, code)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token"} and len(body["token"]) >= 43
    assert body["token"].startswith("polar_cst_")  # Polar's customer-session token prefix (issue 23.8)
    token = body["token"]
    introspect = browser.get(INTROSPECT, headers=bearer(token))
    assert introspect.status_code == 200
    assert introspect.json()["return_url"] is None
    assert set(introspect.json()) == {"expires_at", "return_url"}
    user = browser.get(USER, headers=bearer(token)).json()
    assert user == {
        "type": "customer",
        "name": "Ada",
        "email": "ada@example.com",
        "customer_id": shop.ada_acme,
        "member_id": None,
        "role": None,
    }
    conn = connect_sync(smtp_settings.db_path)
    kinds = [row[0] for row in conn.execute("SELECT kind FROM customer_sessions")]
    conn.close()
    assert kinds == ["api"]
    # Single use.
    again = redeem(browser, code)
    assert again.status_code == 401 and again.json() == INVALID


def test_request_answers_the_same_for_unknown_emails_and_orgs(browser, inbox: SMTPInbox, shop: Shop) -> None:  # type: ignore[no-untyped-def]
    known = ask(browser, shop.acme_id, "ada@example.com")
    unknown_email = ask(browser, shop.acme_id, "nobody@example.com")
    unknown_org = ask(browser, "0d3c1d2e-0000-4000-8000-000000000000", "ada@example.com")
    for response in (unknown_email, unknown_org):
        assert response.status_code == known.status_code == 202
        assert response.content == known.content
        assert sorted(k for k in response.headers if k != "date") == sorted(k for k in known.headers if k != "date")
    inbox.wait_for(1)
    time.sleep(0.2)
    assert [m["To"] for m in inbox.messages] == ["ada@example.com"]


def test_request_validation_is_polar_shaped(browser, shop: Shop) -> None:  # type: ignore[no-untyped-def]
    bad_email = ask(browser, shop.acme_id, "not-an-email")
    assert bad_email.status_code == 422
    assert bad_email.json()["detail"][0]["loc"][0] == "body"
    assert ask(browser, "not-a-uuid", "ada@example.com").status_code == 422
    assert browser.post(AUTHENTICATE, json={}).status_code == 422


def test_api_code_binding_and_html_codes_stay_in_their_browser(browser, inbox: SMTPInbox, shop: Shop) -> None:  # type: ignore[no-untyped-def]
    # A code asked for in a browser cannot be redeemed through the API (it is bound to that browser's cookie).
    request_code(browser, "acme", "ada@example.com")
    html_code = next_code(inbox, 1)
    assert redeem(browser, html_code).json() == INVALID
    assert redeem(browser, html_code, email="ada@example.com", organization_id=shop.acme_id).json() == INVALID
    # An API code with an explicit binding must name its own email and organization.
    ask(browser, shop.acme_id, "bob@example.com")
    api_code = next_code(inbox, 2)
    assert redeem(browser, api_code, email="ada@example.com", organization_id=shop.acme_id).status_code == 401
    assert redeem(browser, api_code, email="bob@example.com", organization_id=shop.globex_id).status_code == 401
    assert redeem(browser, api_code, email="BOB@example.com", organization_id=shop.acme_id).status_code == 200


def test_api_new_code_cancels_the_old_one(browser, inbox: SMTPInbox, shop: Shop) -> None:  # type: ignore[no-untyped-def]
    ask(browser, shop.acme_id, "ada@example.com")
    first = next_code(inbox, 1)
    ask(browser, shop.acme_id, "ada@example.com")
    second = next_code(inbox, 2)
    assert redeem(browser, first).status_code == 401
    assert redeem(browser, second).status_code == 200


def test_api_code_expires(browser, inbox: SMTPInbox, shop: Shop, clock: Clock, smtp_settings: Settings) -> None:  # type: ignore[no-untyped-def]
    ask(browser, shop.acme_id, "ada@example.com")
    code = next_code(inbox, 1)
    clock.advance(smtp_settings.login_code_ttl + 1)
    assert redeem(browser, code).status_code == 401


def test_api_five_wrong_tries_burn_a_bound_code(browser, inbox: SMTPInbox, shop: Shop) -> None:  # type: ignore[no-untyped-def]
    ask(browser, shop.acme_id, "ada@example.com")
    code = next_code(inbox, 1)
    binding = {"email": "ada@example.com", "organization_id": shop.acme_id}
    for _ in range(5):
        assert redeem(browser, "ZZZZZZ" if code != "ZZZZZZ" else "YYYYYY", **binding).status_code == 401
    assert redeem(browser, code, **binding).status_code == 401
    assert redeem(browser, code).status_code == 401


def test_api_rate_limits_answer_429_with_retry_after(browser, shop: Shop) -> None:  # type: ignore[no-untyped-def]
    for _ in range(rate_limit.REQUEST_PER_EMAIL.max_hits):
        assert ask(browser, shop.acme_id, "nobody@example.com").status_code == 202
    limited = ask(browser, shop.acme_id, "nobody@example.com")
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    assert set(limited.json()) == {"error", "detail"}
    for _ in range(rate_limit.AUTH_FAILURE_PER_IP.max_hits):
        assert redeem(browser, "ZZZZZZ").status_code == 401
    assert redeem(browser, "ZZZZZZ").status_code == 429


def test_introspect_needs_a_live_token(browser, shop: Shop, smtp_settings: Settings, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    missing = browser.get(INTROSPECT)
    assert missing.status_code == 401 and set(missing.json()) == {"error", "detail"}
    assert browser.get(INTROSPECT, headers=bearer("garbage")).status_code == 401


def test_polar_sdk_introspects_a_code_login(smtp_settings: Settings, shop: Shop, inbox: SMTPInbox) -> None:
    from tests.admin_support import free_port

    port = free_port()
    live = with_settings(smtp_settings, base_url=f"http://127.0.0.1:{port}")
    with serve(app_for(live), port=port) as base_url:
        import httpx

        assert (
            httpx.post(
                base_url + REQUEST, json={"email": "ada@example.com", "organization_id": shop.acme_id}
            ).status_code
            == 202
        )
        code = next_code(inbox, 1)
        token = httpx.post(base_url + AUTHENTICATE, json={"code": code}).json()["token"]
        with Polar(access_token=token, base_url=base_url) as polar:
            session = polar.customer_portal.customer_session.introspect()
            user = polar.customer_portal.customer_session.get_authenticated_user()
    assert isinstance(session, outputs.CustomerCustomerSession) and session.return_url is None
    assert isinstance(user, outputs.PortalAuthenticatedUser) and user.email == "ada@example.com"
