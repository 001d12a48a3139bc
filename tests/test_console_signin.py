"""Seller sign-in end to end: a code mailed over SMTP (aiosmtpd on loopback), redeemed for a console session whose
cookie is scoped to /console; one answer for unknown addresses; codes bound to the browser; five tries per code;
the throttles; sign-out; and ``portal seller invite``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from portal.cli import main
from portal.clock import Clock
from portal.settings import Settings
from tests.apps import app_for
from tests.conftest import SMTPInbox
from tests.console_helpers import add_member, audit_actions, insert_seller, sql
from tests.signin_helpers import Browser, csrf, insert_org, text_part, with_settings


@pytest.fixture
def mail_client(smtp_settings: Settings, clock: Clock) -> Iterator[TestClient[Litestar]]:
    with TestClient(app_for(smtp_settings, clock=clock), base_url="http://testserver.local") as test_client:
        yield test_client


def request(client: TestClient[Litestar], email: str) -> object:
    return client.post("/console/request", data={"email": email, "_csrf_token": csrf(client)}, follow_redirects=False)


def submit(client: TestClient[Litestar], code: str) -> object:
    return client.post(
        "/console/authenticate", data={"code": code, "_csrf_token": csrf(client)}, follow_redirects=False
    )


def code_of(message: EmailMessage) -> str:
    found = re.search(r"is: ([A-Z0-9]{6})", text_part(message))
    assert found, text_part(message)
    return found.group(1)


def test_sign_in_with_an_emailed_code_opens_a_console_session(
    mail_client: TestClient[Litestar], smtp_settings: Settings, smtp_server: tuple[SMTPInbox, int]
) -> None:
    inbox, _ = smtp_server
    acme = insert_org(smtp_settings, "acme", "Acme")
    seller = insert_seller(smtp_settings, "owner@acme.example")
    add_member(smtp_settings, seller, acme, "owner")
    assert "Sign in to the seller console" in mail_client.get("/console").text
    response = request(mail_client, "Owner@Acme.example")
    assert response.status_code == 303 and response.headers["location"] == "/console/authenticate"  # type: ignore[attr-defined]
    message = inbox.wait_for(1)[0]
    assert message["To"] == "owner@acme.example" and "seller console" in message["Subject"]
    assert "Owner@Acme.example" in mail_client.get("/console/authenticate").text  # as typed
    answer = submit(mail_client, code_of(message).lower())
    assert answer.status_code == 303 and answer.headers["location"] == "/console"  # type: ignore[attr-defined]
    cookie = next(
        value
        for value in answer.headers.get_list("set-cookie")
        if value.startswith("console_session=")  # type: ignore[attr-defined]
    )
    assert "Path=/console" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    listing = mail_client.get("/console").text
    assert 'href="/console/acme"' in listing
    assert mail_client.get("/console/acme").status_code == 200
    # The customer portal never receives the console cookie (path), and the code cannot be used twice.
    assert submit(mail_client, code_of(message)).status_code == 400  # type: ignore[attr-defined]
    assert ("session.sign_in", "owner@acme.example", "seller", None) in audit_actions(smtp_settings)
    # Signing out revokes the session server-side.
    token = mail_client.cookies.get("console_session")
    mail_client.post("/console/logout", data={"_csrf_token": csrf(mail_client)})
    mail_client.cookies.set("console_session", str(token), domain="testserver.local", path="/console")
    assert mail_client.get("/console/acme", follow_redirects=False).status_code == 303
    assert audit_actions(smtp_settings)[-1][0] == "session.sign_out"
    stored = sql(smtp_settings, "SELECT token_hash FROM seller_sessions")
    assert all(str(token) not in row[0] for row in stored)


def test_unknown_address_gets_the_same_answer_and_no_mail(
    mail_client: TestClient[Litestar], smtp_settings: Settings, smtp_server: tuple[SMTPInbox, int]
) -> None:
    inbox, _ = smtp_server
    response = request(mail_client, "nobody@example.com")
    assert response.status_code == 303 and response.headers["location"] == "/console/authenticate"  # type: ignore[attr-defined]
    assert "nobody@example.com" in mail_client.get("/console/authenticate").text
    assert submit(mail_client, "ABCDEF").status_code == 400  # type: ignore[attr-defined]
    with pytest.raises(AssertionError):
        inbox.wait_for(1, timeout=0.5)


def test_a_code_works_only_in_the_browser_that_asked_and_burns_after_five_tries(
    mail_client: TestClient[Litestar], smtp_settings: Settings, smtp_server: tuple[SMTPInbox, int]
) -> None:
    inbox, _ = smtp_server
    insert_seller(smtp_settings, "owner@acme.example")
    request(mail_client, "owner@acme.example")
    code = code_of(inbox.wait_for(1)[0])
    other = Browser(mail_client)
    with other.active() as client:
        assert submit(client, code).status_code == 400  # type: ignore[attr-defined]  # no challenge cookie
    for _ in range(5):
        assert submit(mail_client, "WRONG2").status_code == 400  # type: ignore[attr-defined]
    assert submit(mail_client, code).status_code == 400  # type: ignore[attr-defined]  # burnt by the wrong tries


def test_code_requests_and_wrong_codes_are_throttled(client: TestClient[Litestar], settings: Settings) -> None:
    insert_seller(settings, "owner@acme.example")
    for _ in range(5):
        assert request(client, "owner@acme.example").status_code == 303  # type: ignore[attr-defined]
    refused = request(client, "owner@acme.example")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0  # type: ignore[attr-defined]
    assert request(client, "other@acme.example").status_code == 303  # type: ignore[attr-defined]
    statuses = [submit(client, "WRONG2").status_code for _ in range(40)]  # type: ignore[attr-defined]
    assert statuses[:30] == [400] * 30 and set(statuses[30:]) == {429}


def test_cookies_are_secure_and_prefixed_over_https(settings: Settings, clock: Clock) -> None:
    https = with_settings(settings, base_url="https://portal.example")
    insert_seller(https, "owner@acme.example")
    with TestClient(app_for(https, clock=clock), base_url="https://portal.example") as client:
        response = client.post(
            "/console/request",
            data={"email": "owner@acme.example", "_csrf_token": csrf(client)},
            follow_redirects=False,
        )
        cookie = next(v for v in response.headers.get_list("set-cookie") if "console_challenge" in v)
        assert cookie.startswith("__Secure-console_challenge=") and "Secure" in cookie and "Path=/console" in cookie


def test_seller_invite_cli(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PORTAL_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("PORTAL_SECRET_KEY", settings.secret_key)
    insert_org(settings, "acme", "Acme")
    assert main(["seller", "invite", "--org", "acme", "--role", "support", "help@acme.example"]) == 0
    assert "help@acme.example is support of acme" in capsys.readouterr().out
    assert main(["seller", "invite", "--admin", "root@example.com"]) == 0
    assert "instance admin" in capsys.readouterr().out
    assert main(["seller", "invite", "--org", "nope", "x@example.com"]) == 1
    assert main(["seller", "invite", "--org", "acme", "not-an-email"]) == 2
    rows = sql(
        settings,
        "SELECT a.email, a.is_admin, m.role FROM seller_accounts a "
        "LEFT JOIN seller_memberships m ON m.seller_id = a.id "
        "ORDER BY a.email",
    )
    assert [tuple(row) for row in rows] == [("help@acme.example", 0, "support"), ("root@example.com", 1, None)]
    assert [a[0] for a in audit_actions(settings)] == ["team.invite", "team.invite"]
    invitations = list(Path(settings.data_dir, "outbox").glob("*.eml"))
    assert len(invitations) == 2
