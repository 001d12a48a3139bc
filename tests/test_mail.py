"""Mail senders: SMTP against a real aiosmtpd server (plain, AUTH, failures), the dev outbox, background sending,
and the login email's content."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import stat
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from portal.clock import iso
from portal.mail import MailMessage, OutboxMailer, SMTPMailer, build_mailer, drain, send_in_background
from portal.organizations.queries import Organization
from portal.sessions.emails import login_code_email
from portal.settings import Settings
from tests.conftest import SMTPInbox, free_port

MESSAGE = MailMessage(
    to="ada@example.com",
    subject="Hello",
    text="Plain body\n",
    html="<p>HTML body</p>",
    console_note="note: code ABCD1234 for ada@example.com",
)


def organization(name: str = "R&D <Tools>") -> Organization:
    return Organization(
        id="org",
        slug="rnd",
        name=name,
        receipt_prefix="RND",
        default_currency="usd",
        default_locale="en",
        accent_color="#000000",
        allow_plan_change=True,
        allow_seats=False,
        show_usage=True,
        allow_email_change=False,
        created_at=iso(datetime.now(UTC)),
    )


def test_build_mailer_follows_the_backend_setting(settings: Settings, smtp_settings: Settings) -> None:
    assert isinstance(build_mailer(settings), OutboxMailer)
    assert isinstance(build_mailer(smtp_settings), SMTPMailer)


def test_smtp_sends_text_and_html(smtp_settings: Settings, smtp_server: tuple[SMTPInbox, int]) -> None:
    inbox, _ = smtp_server
    assert asyncio.run(SMTPMailer(smtp_settings).send(MESSAGE)) is True
    (received,) = inbox.wait_for(1)
    assert received["To"] == "ada@example.com"
    assert received["From"] == smtp_settings.mail_from
    assert received["Subject"] == "Hello"
    assert received["Message-ID"]
    assert received.get_content_type() == "multipart/alternative"
    assert received.get_body(("plain",)).get_content().replace("\r\n", "\n") == "Plain body\n"
    assert "<p>HTML body</p>" in received.get_body(("html",)).get_content()


def test_smtp_auth_uses_the_configured_credentials(smtp_settings: Settings) -> None:
    seen: list[tuple[str, str]] = []
    inbox = SMTPInbox()

    def authenticator(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        seen.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=auth_data.password == b"s3cret", handled=False)

    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=authenticator, auth_require_tls=False)
    controller.start()
    try:
        good = msgspec.structs.replace(smtp_settings, smtp_port=port, smtp_username="mailer", smtp_password="s3cret")
        bad = msgspec.structs.replace(good, smtp_password="wrong")
        assert asyncio.run(SMTPMailer(good).send(MESSAGE)) is True
        assert asyncio.run(SMTPMailer(bad).send(MESSAGE)) is False
    finally:
        controller.stop()
    assert seen[0] == ("mailer", "s3cret") and set(seen[1:]) == {("mailer", "wrong")}  # smtplib tries each mechanism
    assert len(inbox.messages) == 1


def test_smtp_failures_are_logged_not_raised(smtp_settings: Settings, smtp_server, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.WARNING, logger="portal.mail")
    down = msgspec.structs.replace(smtp_settings, smtp_port=free_port(), smtp_timeout=2)
    assert asyncio.run(SMTPMailer(down).send(MESSAGE)) is False
    # STARTTLS demanded from a server that does not offer it: refused, logged, not raised.
    no_tls = msgspec.structs.replace(smtp_settings, smtp_security="starttls", smtp_timeout=2)
    assert asyncio.run(SMTPMailer(no_tls).send(MESSAGE)) is False
    warnings = [r.getMessage() for r in caplog.records if r.name == "portal.mail"]
    assert len(warnings) == 2
    assert all("mail delivery via 127.0.0.1" in w for w in warnings)
    assert not any("Plain body" in w for w in warnings)


def test_outbox_prints_and_writes_private_eml_files(settings: Settings, capsys) -> None:  # type: ignore[no-untyped-def]
    assert asyncio.run(OutboxMailer(settings).send(MESSAGE)) is True
    (path,) = settings.outbox_dir.glob("*.eml")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert parsed["To"] == "ada@example.com"
    assert parsed.get_body(("plain",)).get_content() == "Plain body\n"
    printed = capsys.readouterr().out
    assert "ABCD1234" in printed and "ada@example.com" in printed and str(path) in printed


def test_background_send_survives_a_broken_message(caplog) -> None:  # type: ignore[no-untyped-def]
    class Recorder:
        sent: list[MailMessage] = []

        async def send(self, message: MailMessage) -> bool:
            self.sent.append(message)
            return True

    def broken() -> MailMessage:
        raise RuntimeError("template exploded")

    async def scenario() -> list[bool]:
        recorder = Recorder()
        first = send_in_background(recorder, broken)
        second = send_in_background(recorder, lambda: MESSAGE)
        await drain()
        return [first.result(), second.result()]

    caplog.set_level(logging.ERROR, logger="portal.mail")
    assert asyncio.run(scenario()) == [False, True]
    assert any("sending mail failed" in r.getMessage() for r in caplog.records)


def test_login_email_content(settings: Settings) -> None:
    now = datetime.now(UTC)
    message = login_code_email(
        settings,
        organization=organization(),
        to="ada@example.com",
        code="K7Q2M9XA",
        expires_at=iso(now + timedelta(seconds=900)),
        now=now,
    )
    assert message.to == "ada@example.com"
    assert "R&D <Tools>" in message.subject
    lines = message.text.rstrip().splitlines()
    assert lines[-1] == "@testserver.local #K7Q2M9XA"
    assert "R&D <Tools>" in message.text  # the text part is not HTML-escaped
    assert "15 minutes" in message.text
    assert "http://testserver.local/rnd/portal/authenticate" in message.text
    assert message.html is not None
    assert "R&amp;D &lt;Tools&gt;" in message.html and "<Tools>" not in message.html
    assert "K7Q2M9XA" in message.html and "font-size:32px" in message.html
    assert 'href="http://testserver.local/rnd/portal/authenticate"' in message.html


@pytest.mark.parametrize(
    ("base_url", "host"),
    [("https://billing.example.com", "billing.example.com"), ("http://127.0.0.1:8000/", "127.0.0.1")],
)
def test_webotp_line_uses_the_portal_host(settings: Settings, base_url: str, host: str) -> None:
    now = datetime.now(UTC)
    message = login_code_email(
        msgspec.structs.replace(settings, base_url=base_url),
        organization=organization("Acme"),
        to="a@b.c",
        code="AAAA1111",
        expires_at=iso(now + timedelta(seconds=600)),
        now=now,
    )
    assert message.text.rstrip().splitlines()[-1] == f"@{host} #AAAA1111"
    assert "10 minutes" in message.text
