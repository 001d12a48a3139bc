"""Issue 17.3: the email-change verification mail (when a seller enables it) is throttled like a sign-in code (per
customer, per target address, per client network with IPv6 by /64) and answered identically whether or not the
new address already belongs to a customer (no mail goes to an address in use; the change would fail anyway)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from portal.clock import Clock
from portal.db import connect_sync
from portal.sessions import rate_limit
from portal.settings import Settings
from tests.admin_support import api, mint_token
from tests.apps import app_for
from tests.conftest import SMTPInbox
from tests.signin_helpers import BASE, Shop, with_settings

pytest_plugins = ["tests.signin_fixtures"]

REQUEST_CHANGE = "/v1/customer-portal/customers/me/email-update/request"
REQUEST_CODE = "/v1/customer-portal/customer-session/request"


@pytest.fixture
def proxied(smtp_settings: Settings, clock: Clock, shop: Shop) -> Iterator[TestClient[Litestar]]:
    """Email change enabled for acme; the app behind a trusted proxy (each request names its client address)."""
    conn = connect_sync(smtp_settings.db_path)
    conn.execute("UPDATE organizations SET allow_email_change = 1 WHERE id = ?", (shop.acme_id,))
    conn.commit()
    conn.close()
    settings = with_settings(smtp_settings, trusted_proxies="testclient")
    with TestClient(app_for(settings, clock=clock), base_url=BASE) as client:
        yield client


def customer_token(client: TestClient[Litestar], settings: Settings, customer_id: str) -> str:
    session = api(
        client, mint_token(settings), "POST", "/v1/customer-sessions/", 201, json={"customer_id": customer_id}
    )
    return str(session["token"])


def ask_change(client: TestClient[Litestar], token: str, email: str, ip: str = "192.0.2.1") -> tuple[int, bytes]:
    response = client.post(
        REQUEST_CHANGE,
        json={"email": email},
        headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": ip},
    )
    return response.status_code, response.content


def test_an_address_in_use_gets_the_same_answer_and_no_mail(
    proxied: TestClient[Litestar], smtp_settings: Settings, shop: Shop, inbox: SMTPInbox
) -> None:
    ada = customer_token(proxied, smtp_settings, shop.ada_acme)
    in_use = ask_change(proxied, ada, "bob@example.com")  # Bob is a customer of acme
    fresh = ask_change(proxied, ada, "ada.new@example.com")
    assert in_use == fresh and in_use[0] == 202
    [message] = inbox.wait_for(1)
    assert message["To"] == "ada.new@example.com"
    time.sleep(0.5)  # any mail to bob would have been sent in the background by now
    assert [m["To"] for m in inbox.messages] == ["ada.new@example.com"]


def test_a_customer_gets_at_most_five_verification_mails_an_hour(
    proxied: TestClient[Litestar], smtp_settings: Settings, shop: Shop, inbox: SMTPInbox
) -> None:
    ada = customer_token(proxied, smtp_settings, shop.ada_acme)
    cap = rate_limit.EMAIL_UPDATE_REQUEST_PER_CUSTOMER.max_hits
    assert cap == 5
    for i in range(cap):  # other addresses, other networks: only the customer's budget is shared
        assert ask_change(proxied, ada, f"new{i}@example.com", ip=f"198.51.100.{i}")[0] == 202
    response = proxied.post(
        REQUEST_CHANGE,
        json={"email": "one.more@example.com"},
        headers={"Authorization": f"Bearer {ada}", "X-Forwarded-For": "203.0.113.50"},
    )
    assert response.status_code == 429 and int(response.headers["retry-after"]) > 0
    # Bob is another customer: his budget is whole.
    bob = customer_token(proxied, smtp_settings, shop.bob_acme)
    assert ask_change(proxied, bob, "bob.new@example.com", ip="203.0.113.51")[0] == 202
    assert len(inbox.wait_for(cap + 1)) == cap + 1


def test_one_target_address_shares_sign_in_s_budget(
    proxied: TestClient[Litestar], smtp_settings: Settings, shop: Shop
) -> None:
    """Mails to one address (sign-in codes and email-change verifications, from any customer or network) are
    bounded together: 5 an hour per organization."""
    ada = customer_token(proxied, smtp_settings, shop.ada_acme)
    bob = customer_token(proxied, smtp_settings, shop.bob_acme)
    target = "victim@example.net"
    cap = rate_limit.REQUEST_PER_EMAIL.max_hits
    for i in range(cap - 2):
        assert ask_change(proxied, ada if i % 2 else bob, target, ip=f"198.51.100.{i}")[0] == 202
    for i in range(2):
        response = proxied.post(
            REQUEST_CODE,
            json={"email": target, "organization_id": shop.acme_id},
            headers={"X-Forwarded-For": f"192.0.2.{100 + i}"},
        )
        assert response.status_code == 202
    assert ask_change(proxied, ada, target, ip="203.0.113.9")[0] == 429
    assert ask_change(proxied, ada, "someone.else@example.net", ip="203.0.113.9")[0] == 202


def test_a_client_network_is_throttled_with_ipv6_by_64(
    proxied: TestClient[Litestar], smtp_settings: Settings, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rate_limit, "REQUEST_PER_IP", rate_limit.Limit("login-request:ip-test", 3, 15 * 60))
    ada = customer_token(proxied, smtp_settings, shop.ada_acme)
    bob = customer_token(proxied, smtp_settings, shop.bob_acme)
    assert ask_change(proxied, ada, "a1@example.com", ip="2001:db8:1:2::1")[0] == 202
    assert ask_change(proxied, bob, "b1@example.com", ip="2001:db8:1:2::2")[0] == 202
    assert ask_change(proxied, ada, "a2@example.com", ip="2001:db8:1:2:ffff::3")[0] == 202
    # Another address of the same /64, another customer, another target: the network's budget is spent.
    assert ask_change(proxied, bob, "b2@example.com", ip="2001:db8:1:2:abcd::9")[0] == 429
    assert ask_change(proxied, bob, "b2@example.com", ip="2001:db8:1:3::1")[0] == 202  # the next /64


def test_a_throttled_request_writes_nothing(
    proxied: TestClient[Litestar], smtp_settings: Settings, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        rate_limit, "EMAIL_UPDATE_REQUEST_PER_CUSTOMER", rate_limit.Limit("email-update-request:t", 1, 3600)
    )
    ada = customer_token(proxied, smtp_settings, shop.ada_acme)
    assert ask_change(proxied, ada, "first@example.com")[0] == 202
    assert ask_change(proxied, ada, "second@example.com")[0] == 429
    conn = connect_sync(smtp_settings.db_path)
    rows = conn.execute(
        "SELECT email, used_at FROM customer_email_updates WHERE customer_id = ?", (shop.ada_acme,)
    ).fetchall()
    conn.close()
    assert [(row[0], row[1]) for row in rows] == [("first@example.com", None)]
