"""Several server processes on one data dir behave as one instance: sessions, login throttles and receipt numbers
live in SQLite. Two ``portal serve`` processes on two ports stand in for ``--workers 2`` (same code, same data
dir, but each request goes to the process we choose)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from aiosmtpd.controller import Controller

from portal.db import connect_sync
from portal.tls import https_context
from tests.admin_support import bearer
from tests.conftest import SMTPInbox, free_port
from tests.ops_support import Served, admin_token, make_customer, make_org, migrated, served
from tests.signin_helpers import code_from


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Served, str, SMTPInbox]]:
    """Two processes on one data dir, mail to a loopback SMTP server; tests use their own organizations."""
    tmp_path = tmp_path_factory.mktemp("workers")
    data_dir = tmp_path / "data"
    settings = migrated(data_dir)
    token = admin_token(settings)
    inbox = SMTPInbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    mail = {
        "PORTAL_MAIL_BACKEND": "smtp",
        "PORTAL_SMTP_HOST": "127.0.0.1",
        "PORTAL_SMTP_PORT": str(port),
        "PORTAL_SMTP_SECURITY": "none",
    }
    try:
        with (
            served(data_dir, tmp_path / "a.log", **mail) as a,
            served(data_dir, tmp_path / "b.log", **mail) as b,
        ):
            yield a, b, token, inbox
    finally:
        controller.stop()


def _csrf(client: httpx.Client, base: str) -> str:
    if "csrftoken" not in client.cookies:
        client.get(f"{base}/")  # any page sets it; both processes accept it (same instance secret)
    return str(client.cookies["csrftoken"])


def _code_for(inbox: SMTPInbox, email: str) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for message in inbox.messages:
            if message["To"] == email:
                return code_from(message)
        time.sleep(0.05)
    raise AssertionError(f"no email to {email}")


def test_sign_in_on_one_process_is_seen_by_the_other_and_so_is_logout(
    cluster: tuple[Served, Served, str, SMTPInbox],
) -> None:
    a, b, token, inbox = cluster
    org = make_org(a.base, token, "acme")
    make_customer(b.base, token, org["id"], "ada@example.com")
    # One browser (one cookie jar; cookies ignore ports) whose requests land on either process.
    with httpx.Client() as browser:
        answer = browser.post(
            f"{a.base}/acme/portal/request",
            data={"email": "ada@example.com", "_csrf_token": _csrf(browser, a.base)},
        )
        assert answer.status_code == 303
        code = _code_for(inbox, "ada@example.com")
        # The challenge cookie made by A and the code stored by A are accepted by B.
        answer = browser.post(
            f"{b.base}/acme/portal/authenticate", data={"code": code, "_csrf_token": _csrf(browser, b.base)}
        )
        assert answer.status_code == 303, answer.text
        for server in (a, b):
            page = browser.get(f"{server.base}/acme/portal/orders")
            assert page.status_code == 200, (server.base, page.status_code)
            assert "ada@example.com" in page.text or "Ada" in page.text
        assert browser.post(f"{a.base}/acme/portal/logout", data={"_csrf_token": _csrf(browser, a.base)}).is_redirect
        # Revoked in the database, so B no longer knows the session either.
        assert browser.get(f"{b.base}/acme/portal/orders").status_code == 303


def test_login_throttle_counts_requests_on_every_process(cluster: tuple[Served, Served, str, SMTPInbox]) -> None:
    a, b, token, _ = cluster
    org = make_org(a.base, token, "globex")
    make_customer(a.base, token, org["id"], "bob@example.com")
    statuses = []
    with httpx.Client() as browser:
        for index in range(6):
            server = (a, b)[index % 2]
            answer = browser.post(
                f"{server.base}/globex/portal/request",
                data={"email": "bob@example.com", "_csrf_token": _csrf(browser, server.base)},
            )
            statuses.append(answer.status_code)
    # Five codes per email and hour in total, whichever process took each request.
    assert statuses == [303, 303, 303, 303, 303, 429]


def test_receipt_numbers_stay_gap_free_when_two_processes_pay_at_once(
    cluster: tuple[Served, Served, str, SMTPInbox],
) -> None:
    a, b, token, _ = cluster
    org = make_org(a.base, token, "initech")
    customer = make_customer(a.base, token, org["id"], "ada@example.com")
    count = 40

    def pay(index: int) -> str:
        server = (a, b)[index % 2]
        response = httpx.post(
            f"{server.base}/v1/orders/",
            verify=https_context(),
            json={
                "customer_id": customer["id"],
                "currency": "usd",
                "items": [{"label": f"Thing {index}", "unit_amount": 1000 + index}],
            },
            headers=bearer(token),
            timeout=30,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["receipt_number"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        answered = list(pool.map(pay, range(count)))
    numbers = sorted(int(re.fullmatch(r"INITECH-(\d+)", n).group(1)) for n in answered)  # type: ignore[union-attr]
    assert numbers == list(range(1, count + 1))
    conn = connect_sync(a.log.parent / "data" / "portal.db")
    try:
        stored = [
            row[0]
            for row in conn.execute(
                "SELECT receipt_number FROM orders WHERE organization_id = ? ORDER BY receipt_number", (org["id"],)
            )
        ]
        next_number = conn.execute(
            "SELECT next_receipt_number FROM organizations WHERE id = ?", (org["id"],)
        ).fetchone()[0]
    finally:
        conn.close()
    assert stored == [f"INITECH-{n:04d}" for n in range(1, count + 1)]
    assert next_number == count + 1
