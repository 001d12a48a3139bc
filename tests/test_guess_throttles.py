"""Every path that takes a guessable secret is bounded per code, per client network, per organization and over the
instance, whatever addresses the guesser rotates through (``X-Forwarded-For`` behind a trusted proxy), with IPv6
clients counted by /64; and a refused or throttled guess is answered without SQLite's writer (a held write lock
does not delay it)."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from portal import limits
from portal.clock import Clock
from portal.sessions import rate_limit
from portal.settings import Settings
from tests.apps import app_for
from tests.conftest import SMTPInbox
from tests.signin_helpers import BASE, Shop, next_code, with_settings

pytest_plugins = ["tests.signin_fixtures"]

REQUEST = "/v1/customer-portal/customer-session/request"
AUTHENTICATE = "/v1/customer-portal/customer-session/authenticate"
VERIFY_EMAIL = "/v1/customer-portal/customers/me/email-update/verify"
VALIDATE_KEY = "/v1/customer-portal/license-keys/validate"


@pytest.fixture
def proxied(smtp_settings: Settings, clock: Clock, shop: Shop) -> Iterator[TestClient[Litestar]]:
    """The app behind a trusted proxy: each request says which client address it comes from."""
    settings = with_settings(smtp_settings, trusted_proxies="testclient")
    with TestClient(app_for(settings, clock=clock), base_url=BASE) as client:
        yield client


def ask(client: TestClient[Litestar], org_id: str, email: str, ip: str) -> int:
    response = client.post(REQUEST, json={"email": email, "organization_id": org_id}, headers={"X-Forwarded-For": ip})
    return response.status_code


def guess(client: TestClient[Litestar], code: str, ip: str, **binding: str) -> int:
    response = client.post(AUTHENTICATE, json={"code": code, **binding}, headers={"X-Forwarded-For": ip})
    return response.status_code


def wrong(code: str) -> str:
    return "ZZZZZZ" if code != "ZZZZZZ" else "YYYYYY"


def test_network_key_groups_ipv6_by_64() -> None:
    assert rate_limit.network_key("203.0.113.7") == "203.0.113.7"
    assert rate_limit.network_key("2001:db8:1:2::1") == rate_limit.network_key("2001:db8:1:2:ffff:0:0:9")
    assert rate_limit.network_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert rate_limit.network_key("2001:db8:1:3::1") != rate_limit.network_key("2001:db8:1:2::1")
    assert rate_limit.network_key("::ffff:203.0.113.7") == "203.0.113.7"
    assert rate_limit.network_key("testclient") == "testclient"


def test_an_email_less_guess_only_meets_codes_asked_for_from_its_network(
    proxied: TestClient[Litestar], inbox: SMTPInbox, shop: Shop
) -> None:
    assert ask(proxied, shop.acme_id, "ada@example.com", "198.51.100.1") == 202
    code = next_code(inbox, 1)
    # The right code, sent without an email from any other address, is compared with nothing: rotating addresses
    # therefore buys an attacker no chance at other people's codes.
    for i in range(1, 6):
        assert guess(proxied, code, f"203.0.113.{i}") == 401
    # From the network that asked (another address of the same IPv4 host is another network; same address works).
    assert guess(proxied, code, "198.51.100.1") == 200
    # A client whose address changed in between sends the email (and organization), as Portal allows.
    assert ask(proxied, shop.acme_id, "ada@example.com", "198.51.100.1") == 202
    code = next_code(inbox, 2)
    binding = {"email": "ada@example.com", "organization_id": shop.acme_id}
    assert guess(proxied, code, "192.0.2.77", **binding) == 200


def test_email_less_wrong_guesses_cost_the_code_its_tries(
    proxied: TestClient[Litestar], inbox: SMTPInbox, shop: Shop
) -> None:
    assert ask(proxied, shop.acme_id, "ada@example.com", "198.51.100.2") == 202
    code = next_code(inbox, 1)
    for _ in range(5):
        assert guess(proxied, wrong(code), "198.51.100.2") == 401
    assert guess(proxied, code, "198.51.100.2") == 401  # five wrong tries burnt it, through the email-less path too


def test_a_code_allows_five_wrong_tries_across_rotating_addresses(
    proxied: TestClient[Litestar], inbox: SMTPInbox, shop: Shop
) -> None:
    assert ask(proxied, shop.acme_id, "ada@example.com", "198.51.100.3") == 202
    code = next_code(inbox, 1)
    binding = {"email": "ada@example.com", "organization_id": shop.acme_id}
    for i in range(5):
        assert guess(proxied, wrong(code), f"203.0.113.{10 + i}", **binding) == 401
    assert guess(proxied, code, "203.0.113.99", **binding) == 401


def test_wrong_codes_are_bounded_per_organization_and_globally(
    proxied: TestClient[Litestar], inbox: SMTPInbox, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each attacker address asks for a code (unknown emails get one too: same answers) and guesses it wrong;
    after the organization's budget of wrong comparisons, every guess there is refused, the right code included,
    while another organization still signs in until the instance's budget is spent too."""
    monkeypatch.setattr(rate_limit, "AUTH_FAILURE_PER_ORG", rate_limit.Limit("login-failure:org", 6, 3600))
    monkeypatch.setattr(rate_limit, "AUTH_FAILURE_GLOBAL", rate_limit.Limit("login-failure:all", 9, 3600))
    assert ask(proxied, shop.acme_id, "ada@example.com", "198.51.100.4") == 202
    ada_code = next_code(inbox, 1)
    for i in range(6):
        ip = f"203.0.113.{20 + i}"
        assert ask(proxied, shop.acme_id, f"nobody{i}@example.com", ip) == 202
        assert guess(proxied, "ZZZZZZ", ip) == 401
    assert guess(proxied, ada_code, "198.51.100.4") == 429  # acme is locked: nothing more is compared there
    assert ask(proxied, shop.globex_id, "ada@example.com", "198.51.100.5") == 202
    globex_code = next_code(inbox, 2)
    for i in range(3):
        ip = f"2001:db8:{i}::1"
        assert ask(proxied, shop.globex_id, f"nobody{i}@example.com", ip) == 202
        assert guess(proxied, "ZZZZZZ", ip) == 401
    assert guess(proxied, globex_code, "198.51.100.5") == 429  # 9 wrong comparisons over the instance


def test_ipv6_clients_are_throttled_by_64(proxied: TestClient[Litestar], shop: Shop) -> None:
    cap = rate_limit.AUTH_FAILURE_PER_IP.max_hits
    for i in range(cap):
        assert guess(proxied, "ZZZZZZ", f"2001:db8:5:6::{i + 1:x}") == 401
    assert guess(proxied, "ZZZZZZ", "2001:db8:5:6:abcd::1") == 429  # another address of the same /64
    assert guess(proxied, "ZZZZZZ", "2001:db8:5:7::1") == 401  # the next /64 is another subscriber


@contextlib.contextmanager
def write_lock_held(settings: Settings) -> Iterator[None]:
    """Hold SQLite's write lock from another connection, as a busy other worker process would."""
    conn = sqlite3.connect(settings.db_path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def timed(call: object) -> tuple[int, float]:
    start = time.perf_counter()
    status = call()  # type: ignore[operator]
    return status, time.perf_counter() - start


def test_refused_and_throttled_guesses_do_not_wait_for_the_writer(
    proxied: TestClient[Litestar], smtp_settings: Settings, shop: Shop
) -> None:
    cap = rate_limit.AUTH_FAILURE_PER_IP.max_hits
    for _ in range(cap):
        assert guess(proxied, "ZZZZZZ", "203.0.113.50") == 401
    with write_lock_held(smtp_settings):
        # busy_timeout is 5 s: anything that asked for the write lock would take that long (and fail).
        status, seconds = timed(lambda: guess(proxied, "ZZZZZZ", "203.0.113.50"))
        assert (status, seconds < 1.0) == (429, True)
        status, seconds = timed(lambda: guess(proxied, "ZZZZZZ", "203.0.113.51"))
        assert (status, seconds < 1.0) == (401, True)  # no code to compare it with: nothing to write
        status, seconds = timed(lambda: guess(proxied, "ZZZZZZ", "203.0.113.51", email="x@example.com",
                                              organization_id=shop.acme_id))  # fmt: skip
        assert (status, seconds < 1.0) == (401, True)
        body = {"organization_id": shop.acme_id, "key": "BOGUS-0000-0000"}
        status, seconds = timed(lambda: proxied.post(VALIDATE_KEY, json=body).status_code)
        assert (status, seconds < 1.0) == (404, True)  # an unknown key writes nothing
        status, seconds = timed(lambda: proxied.post(VERIFY_EMAIL, json={"token": "ABCDEFGHJKMN"}).status_code)
        assert (status, seconds < 1.0) == (401, True)


def test_email_change_tokens_are_throttled_per_network_and_globally(
    proxied: TestClient[Litestar], monkeypatch: pytest.MonkeyPatch
) -> None:
    cap = rate_limit.EMAIL_UPDATE_FAILURE_PER_IP.max_hits
    for _ in range(cap):
        response = proxied.post(VERIFY_EMAIL, json={"token": "ABCDEFGHJKMN"}, headers={"X-Forwarded-For": "192.0.2.9"})
        assert response.status_code == 401
    limited = proxied.post(VERIFY_EMAIL, json={"token": "ABCDEFGHJKMN"}, headers={"X-Forwarded-For": "192.0.2.9"})
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    checked = proxied.get(
        "/v1/customer-portal/customers/me/email-update/check",
        params={"token": "ABCDEFGHJKMN"},
        headers={"X-Forwarded-For": "2001:db8:9:9::1"},
    )
    assert checked.status_code == 401
    monkeypatch.setattr(rate_limit, "EMAIL_UPDATE_FAILURE_GLOBAL", rate_limit.Limit("email-update-failure:t", 8, 3600))
    for i in range(8):
        proxied.post(VERIFY_EMAIL, json={"token": "ABCDEFGHJKMN"}, headers={"X-Forwarded-For": f"203.0.113.{i}"})
    rotated = proxied.post(VERIFY_EMAIL, json={"token": "ABCDEFGHJKMN"}, headers={"X-Forwarded-For": "198.51.100.77"})
    assert rotated.status_code == 429


def test_throttled_answers_are_held_without_holding_anybody_else(proxied: TestClient[Litestar], shop: Shop) -> None:
    """A 429 waits ``THROTTLED_ANSWER_HOLD_SECONDS`` before it is sent (a client ignoring Retry-After gets a few
    answers a second per connection, not hundreds); other clients' requests are answered meanwhile."""
    binding = {"email": "ada@example.com", "organization_id": shop.acme_id}
    flooder = "203.0.113.200"
    for _ in range(rate_limit.AUTH_FAILURE_PER_IP.max_hits):
        assert guess(proxied, "ZZZZZZ", flooder, **binding) == 401

    held: list[tuple[int, float, float]] = []  # status, seconds taken, when answered

    def throttled_guess() -> None:
        started = time.perf_counter()
        status = guess(proxied, "ZZZZZZ", flooder, **binding)
        held.append((status, time.perf_counter() - started, time.perf_counter()))

    threads = [threading.Thread(target=throttled_guess) for _ in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(0.05)  # the six are in, and held
    assert guess(proxied, "ZZZZZZ", "198.51.100.99", **binding) == 401  # another client, not throttled
    other_answered = time.perf_counter()
    for thread in threads:
        thread.join(timeout=10)
    assert [status for status, _, _ in held] == [429] * 6
    assert min(seconds for _, seconds, _ in held) >= limits.THROTTLED_ANSWER_HOLD_SECONDS
    # The other client started after the six and was answered before the first of them.
    assert other_answered < min(answered for _, _, answered in held)
