"""The login-code rules of DESIGN §5, each shown so that the test fails if the rule breaks: expiry, single use under
concurrent submits, binding to challenge + email + org, cancel-on-resend, the 5-try cap, the per-email send cap,
the per-IP throttle (429 + Retry-After, persisted in SQLite, behind trusted proxies), and mail failures."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from aiosmtpd.controller import Controller
from litestar.testing import TestClient

from portal.clock import Clock
from portal.db import Database, connect_sync
from portal.mail import MailMessage
from portal.organizations import queries as org_queries
from portal.sessions import codes, rate_limit, service
from portal.settings import Settings
from tests.apps import app_for
from tests.conftest import SMTPInbox, free_port
from tests.signin_helpers import (
    BASE,
    Browser,
    Shop,
    next_code,
    request_code,
    root_logs_into,
    submit_code,
    with_settings,
)

pytest_plugins = ["tests.signin_fixtures"]

# Every refusal of a code is a 400 with an alert saying what happened (wrong, expired, used, over-tried, replaced).
INVALID = 'role="alert"'


def signed_in(response) -> bool:  # type: ignore[no-untyped-def]
    return response.status_code == 303 and response.headers.get("location", "").endswith("/portal")


def refused(response) -> bool:  # type: ignore[no-untyped-def]
    return response.status_code == 400 and INVALID in response.text


def test_code_expires(browser, inbox: SMTPInbox, clock: Clock, smtp_settings: Settings) -> None:  # type: ignore[no-untyped-def]
    request_code(browser, "acme", "ada@example.com")
    code = next_code(inbox, 1)
    clock.advance(smtp_settings.login_code_ttl + 1)
    assert refused(submit_code(browser, "acme", code))
    # Just inside the lifetime it works: the refusal above was the expiry, nothing else.
    request_code(browser, "acme", "ada@example.com")
    code = next_code(inbox, 2)
    clock.advance(smtp_settings.login_code_ttl - 5)
    assert signed_in(submit_code(browser, "acme", code))


def test_code_is_single_use(browser, inbox: SMTPInbox) -> None:  # type: ignore[no-untyped-def]
    request_code(browser, "acme", "ada@example.com")
    code = next_code(inbox, 1)
    assert signed_in(submit_code(browser, "acme", code))
    assert refused(submit_code(browser, "acme", code))


def test_single_use_under_20_concurrent_submits(smtp_settings: Settings, shop: Shop) -> None:
    """20 submits of the right code at once, through 4 independent writer connections (as 4 worker processes
    would have): exactly one session is created."""
    settings = smtp_settings

    async def scenario() -> tuple[list[object], int]:
        databases = [Database(settings.db_path) for _ in range(4)]
        for db in databases:
            await db.open()
        try:
            now = Clock().now()
            organization = await org_queries.get_by_slug(databases[0], "acme")
            assert organization is not None
            challenge = "challenge-id"
            issued = await service.request_code(
                databases[0],
                settings,
                now,
                organization=organization,
                email="ada@example.com",
                challenge_hash=codes.challenge_digest(settings.secret_key, challenge),
                ip="10.0.0.1",
            )
            assert issued is not None
            results = await asyncio.gather(
                *(
                    service.authenticate_browser(
                        databases[i % 4],
                        settings,
                        now,
                        organization=organization,
                        challenge=challenge,
                        code=issued.code,
                        ip="10.0.0.1",
                    )
                    for i in range(20)
                ),
                return_exceptions=True,
            )
            sessions = await databases[0].fetchval("SELECT COUNT(*) FROM customer_sessions")
            return list(results), int(sessions)
        finally:
            for db in databases:
                await db.close()

    results, sessions = asyncio.run(scenario())
    wins = [r for r in results if isinstance(r, service.SignedIn)]
    losses = [r for r in results if isinstance(r, service.InvalidCode)]
    assert len(wins) == 1 and len(losses) == 19
    assert sessions == 1


def test_code_is_bound_to_its_challenge_and_email(browser, inbox: SMTPInbox) -> None:  # type: ignore[no-untyped-def]
    alice, mallory = Browser(browser), Browser(browser)
    with alice.active() as client:
        request_code(client, "acme", "ada@example.com")
    code_ada = next_code(inbox, 1)
    with mallory.active() as client:
        request_code(client, "acme", "bob@example.com")  # a challenge of its own, for another email
        next_code(inbox, 2)
        assert refused(submit_code(client, "acme", code_ada))
    with Browser(browser).active() as client:  # no challenge cookie at all
        assert refused(submit_code(client, "acme", code_ada))
    with alice.active() as client:  # still good in the browser that asked: the refusals were the binding
        assert signed_in(submit_code(client, "acme", code_ada))


def test_code_is_bound_to_its_organization(browser, inbox: SMTPInbox) -> None:  # type: ignore[no-untyped-def]
    # ada@example.com is a customer of both organizations.
    request_code(browser, "acme", "ada@example.com")
    code_acme = next_code(inbox, 1)
    request_code(browser, "globex", "ada@example.com")
    code_globex = next_code(inbox, 2)
    assert refused(submit_code(browser, "globex", code_acme))
    assert refused(submit_code(browser, "acme", code_globex))
    assert signed_in(submit_code(browser, "globex", code_globex))
    assert signed_in(submit_code(browser, "acme", code_acme))


def test_a_new_code_cancels_older_ones(browser, inbox: SMTPInbox) -> None:  # type: ignore[no-untyped-def]
    laptop, phone = Browser(browser), Browser(browser)
    with laptop.active() as client:
        request_code(client, "acme", "ada@example.com")
    first = next_code(inbox, 1)
    with phone.active() as client:
        request_code(client, "acme", "ada@example.com")
    second = next_code(inbox, 2)
    assert first != second
    with laptop.active() as client:
        assert refused(submit_code(client, "acme", first))  # right browser, right code, but superseded
    with phone.active() as client:
        assert signed_in(submit_code(client, "acme", second))


def test_five_wrong_tries_burn_the_code(browser, inbox: SMTPInbox) -> None:  # type: ignore[no-untyped-def]
    request_code(browser, "acme", "ada@example.com")
    code = next_code(inbox, 1)
    wrong = "ZZZZZZ" if code != "ZZZZZZ" else "YYYYYY"
    for _ in range(5):
        assert refused(submit_code(browser, "acme", wrong))
    assert refused(submit_code(browser, "acme", code))
    # Four wrong tries leave the code usable: the cap is five, not fewer.
    request_code(browser, "acme", "ada@example.com")
    code = next_code(inbox, 2)
    for _ in range(4):
        assert refused(submit_code(browser, "acme", wrong))
    assert signed_in(submit_code(browser, "acme", code))


def test_per_email_send_cap(browser, inbox: SMTPInbox) -> None:  # type: ignore[no-untyped-def]
    cap = rate_limit.REQUEST_PER_EMAIL.max_hits
    for _ in range(cap):
        assert request_code(browser, "acme", "ada@example.com").status_code == 303
    inbox.wait_for(cap)
    for email in ("ada@example.com", "ADA@example.com", "nobody@example.com"):
        if email == "nobody@example.com":
            for _ in range(cap):
                request_code(browser, "acme", email)
        response = request_code(browser, "acme", email)
        assert response.status_code == 429, email
        assert int(response.headers["retry-after"]) > 0
        assert "content-security-policy" in response.headers
    time.sleep(0.3)
    assert len(inbox.messages) == cap
    # The cap is per address: another customer still gets a code.
    assert request_code(browser, "acme", "bob@example.com").status_code == 303
    assert inbox.wait_for(cap + 1)[-1]["To"] == "bob@example.com"


def test_per_ip_throttle_is_persisted_and_honours_trusted_proxies(  # type: ignore[no-untyped-def]
    smtp_settings: Settings, clock: Clock, shop: Shop, inbox: SMTPInbox
) -> None:
    settings = with_settings(smtp_settings, trusted_proxies="testclient")
    cap = rate_limit.REQUEST_PER_IP.max_hits
    client_a = {"X-Forwarded-For": "203.0.113.7"}
    with TestClient(app_for(settings, clock=clock), base_url=BASE) as client:
        for i in range(cap):
            assert request_code(client, "acme", f"user{i}@example.com", **client_a).status_code == 303
        response = request_code(client, "acme", "ada@example.com", **client_a)
        assert response.status_code == 429
        assert 0 < int(response.headers["retry-after"]) <= rate_limit.REQUEST_PER_IP.window_seconds
        # Another client behind the same proxy is not affected.
        assert request_code(client, "acme", "ada@example.com", **{"X-Forwarded-For": "198.51.100.9"}).status_code == 303
    # A restart (new app, same data directory) keeps the counter: it lives in SQLite.
    with TestClient(app_for(settings, clock=clock), base_url=BASE) as client:
        assert request_code(client, "acme", "bob@example.com", **client_a).status_code == 429
        clock.advance(rate_limit.REQUEST_PER_IP.window_seconds)
        assert request_code(client, "acme", "bob@example.com", **client_a).status_code == 303
    conn = connect_sync(settings.db_path)
    keys = [row[0] for row in conn.execute("SELECT key FROM rate_limits")]
    conn.close()
    assert any("203.0.113.7" in key for key in keys)
    assert not any("@" in key for key in keys)  # addresses are stored as HMACs


def test_untrusted_forwarded_for_is_ignored(browser) -> None:  # type: ignore[no-untyped-def]
    cap = rate_limit.REQUEST_PER_IP.max_hits
    for i in range(cap):
        spoofed = {"X-Forwarded-For": f"192.0.2.{i}"}
        assert request_code(browser, "acme", f"user{i}@example.com", **spoofed).status_code == 303
    assert request_code(browser, "acme", "ada@example.com", **{"X-Forwarded-For": "192.0.2.250"}).status_code == 429


def test_wrong_codes_are_throttled_per_ip(browser) -> None:  # type: ignore[no-untyped-def]
    cap = rate_limit.AUTH_FAILURE_PER_IP.max_hits
    for _ in range(cap):
        assert refused(submit_code(browser, "acme", "ZZZZZZ"))
    response = submit_code(browser, "acme", "ZZZZZZ")
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0


def test_request_answers_at_once_while_the_mail_is_slow(settings: Settings, clock: Clock, shop: Shop) -> None:
    class SlowMailer:
        def __init__(self) -> None:
            self.sent: list[MailMessage] = []

        async def send(self, message: MailMessage) -> bool:
            await asyncio.sleep(2)
            self.sent.append(message)
            return True

    mailer = SlowMailer()
    with TestClient(app_for(settings, clock=clock, mailer=mailer), base_url=BASE) as client:
        timings = {}
        for email in ("ada@example.com", "nobody@example.com"):
            request_code(client, "acme", "warmup@example.com")
            started = time.perf_counter()
            assert request_code(client, "acme", email).status_code == 303
            timings[email] = time.perf_counter() - started
        assert max(timings.values()) < 1.0, timings
        deadline = time.monotonic() + 5
        while not mailer.sent and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [m.to for m in mailer.sent] == ["ada@example.com"]


class RefusingHandler:
    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        return "554 5.7.1 Message rejected"


def _wait_for_log(caplog: pytest.LogCaptureFixture, text: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(text in record.getMessage() for record in caplog.records if record.name.startswith("portal")):
            return
        time.sleep(0.05)
    raise AssertionError(f"no log line containing {text!r}")


@pytest.mark.parametrize("server", ["down", "refusing"])
def test_smtp_failure_is_logged_and_harmless(  # type: ignore[no-untyped-def]
    server: str, settings: Settings, clock: Clock, shop: Shop, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="portal")
    port = free_port()
    controller = None
    if server == "refusing":
        controller = Controller(RefusingHandler(), hostname="127.0.0.1", port=port)
        controller.start()
    smtp = with_settings(
        settings, mail_backend="smtp", smtp_host="127.0.0.1", smtp_port=port, smtp_security="none", smtp_timeout=3
    )
    try:
        with TestClient(app_for(smtp, clock=clock), base_url=BASE) as client, root_logs_into(caplog):
            known = request_code(client, "acme", "ada@example.com")
            assert known.status_code == 303 and known.headers["location"] == "/acme/portal/authenticate"
            _wait_for_log(caplog, "mail delivery via 127.0.0.1")
            assert client.get("/acme/portal/authenticate").status_code == 200
            assert client.get("/healthz").status_code == 200
    finally:
        if controller is not None:
            controller.stop()
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("portal")]
    assert any(("Connection refused" in m or "ConnectionRefused" in m) for m in messages) == (server == "down")


def test_codes_are_six_symbols_without_look_alikes() -> None:
    drawn = {codes.new_code() for _ in range(2000)}
    assert all(len(code) == 6 for code in drawn)
    symbols = set("".join(drawn))
    assert symbols <= set("ABCDEFGHJKMNPQRSTUVWXYZ23456789") and not symbols & set("0O1IL")
    assert len(symbols) == 31  # the whole alphabet is used: 31**6 codes


def test_typed_codes_tolerate_case_spaces_and_dashes(browser, inbox: SMTPInbox) -> None:  # type: ignore[no-untyped-def]
    request_code(browser, "acme", "ada@example.com")
    code = next_code(inbox, 1)
    # A look-alike is not silently dropped to make a valid-looking code: it is a wrong try.
    assert refused(submit_code(browser, "acme", code[:3] + "O" + code[3:]))
    typed = f" {code[:3].lower()}-{code[3:].lower()} "
    assert signed_in(submit_code(browser, "acme", typed))
