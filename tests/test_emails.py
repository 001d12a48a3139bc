"""Transactional emails through a real SMTP server (aiosmtpd on loopback): the receipt with its license key,
retries while SMTP is down (across an app restart), the single-use sign-in links they carry, per-organization
switches, subscription emails, renewal reminders, and silence while seeding."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from litestar.testing import TestClient

from portal.clock import Clock, iso
from portal.db import Database
from portal.resources import demo_seed_path
from portal.seeding.loader import load_seed_file
from portal.settings import Settings
from tests.admin_support import api
from tests.apps import app_for
from tests.conftest import SMTPInbox, free_port
from tests.notification_support import fast, link_in, make_shop, pay, rows, subscribe, wait_until
from tests.signin_helpers import csrf, html_part, request_code, sign_in_browser, text_part

BASE = "http://testserver.local"


def _license_key(settings: Settings, order_id: str) -> str:
    found = rows(
        settings,
        "SELECT k.key FROM license_keys k JOIN benefit_grants g ON g.id = k.grant_id WHERE g.order_id = ?",
        (order_id,),
    )
    assert len(found) == 1
    return str(found[0]["key"])


def _outbox(settings: Settings) -> list[dict]:  # type: ignore[type-arg]
    return rows(settings, "SELECT * FROM email_outbox ORDER BY created_at")


def test_paying_an_order_sends_one_receipt_with_the_license_key(
    smtp_settings: Settings, smtp_server: tuple[SMTPInbox, int], clock: Clock
) -> None:
    inbox, _ = smtp_server
    settings = fast(smtp_settings)
    with TestClient(app_for(settings, clock=clock), base_url=BASE) as client:
        shop = make_shop(client, settings)
        order = pay(client, shop)
        [message] = inbox.wait_for(1)
        key = _license_key(settings, order["id"])
        assert message["To"] == "ada@example.com"
        assert message["Subject"] == f"Your receipt from Acme ({order['receipt_number']})"
        text = text_part(message)
        assert key in text and key in html_part(message)
        assert "$49.00" in text and order["receipt_number"] in text
        assert "/acme/portal/link?token=" in text
        wait_until(lambda: _outbox(settings)[0]["status"] == "sent")
        time.sleep(0.3)  # several more worker passes: still exactly one email
    assert len(inbox.messages) == 1
    [row] = _outbox(settings)
    assert row["kind"] == "receipt" and row["attempts"] == 1 and row["last_error"] is None
    # The outbox keeps a snapshot, never a usable sign-in link: links are minted (hashed) at send time.
    assert "token=" not in row["context"]


def test_smtp_down_is_retried_and_delivered_once_it_is_back(
    settings: Settings, smtp_server: tuple[SMTPInbox, int], clock: Clock
) -> None:
    inbox, port = smtp_server
    down = fast(
        settings,
        mail_backend="smtp",
        smtp_host="127.0.0.1",
        smtp_port=free_port(),  # nothing listens there
        smtp_security="none",
        smtp_timeout=2,
    )
    with TestClient(app_for(down, clock=clock), base_url=BASE) as client:
        shop = make_shop(client, down)
        order = pay(client, shop)
        failed = wait_until(lambda: [r for r in _outbox(down) if r["attempts"] >= 2 and r["status"] == "pending"])
    assert "ConnectionRefusedError" in failed[0]["last_error"]
    assert inbox.messages == []
    # Restart on the same data directory, SMTP reachable again.
    up = msgspec.structs.replace(down, smtp_port=port)
    with TestClient(app_for(up, clock=clock), base_url=BASE) as client:
        [message] = inbox.wait_for(1)
        wait_until(lambda: _outbox(up)[0]["status"] == "sent")
        time.sleep(0.3)
    assert len(inbox.messages) == 1
    assert _license_key(up, order["id"]) in text_part(message)
    [row] = _outbox(up)
    assert row["status"] == "sent" and row["attempts"] >= 3


def test_retries_back_off_exponentially(settings: Settings, clock: Clock) -> None:
    down = fast(
        settings,
        mail_backend="smtp",
        smtp_host="127.0.0.1",
        smtp_port=free_port(),
        smtp_security="none",
        retry_backoff_base=60,
        retry_max_attempts=3,
    )
    with TestClient(app_for(down, clock=clock), base_url=BASE) as client:
        shop = make_shop(client, down)
        pay(client, shop)
        first = wait_until(lambda: [r for r in _outbox(down) if r["attempts"] == 1 and r["status"] == "pending"])[0]
        waited = datetime.fromisoformat(first["next_attempt_at"]) - datetime.fromisoformat(first["modified_at"])
        assert timedelta(seconds=59) < waited <= timedelta(seconds=61)
        time.sleep(0.2)
        assert _outbox(down)[0]["attempts"] == 1  # not due yet
        clock.advance(61)
        second = wait_until(lambda: [r for r in _outbox(down) if r["attempts"] == 2 and r["status"] == "pending"])[0]
        waited = datetime.fromisoformat(second["next_attempt_at"]) - datetime.fromisoformat(second["modified_at"])
        assert timedelta(seconds=119) < waited <= timedelta(seconds=121)
        clock.advance(121)
        wait_until(lambda: _outbox(down)[0]["status"] == "failed")
    assert _outbox(down)[0]["attempts"] == 3


@pytest.fixture
def mail_client(smtp_settings: Settings, clock: Clock):  # type: ignore[no-untyped-def]
    settings = fast(smtp_settings)
    with TestClient(app_for(settings, clock=clock), base_url=BASE) as client:
        yield client, settings


def test_email_link_is_prefetch_safe_single_use_and_signs_in(mail_client, smtp_server: tuple[SMTPInbox, int]) -> None:  # type: ignore[no-untyped-def]
    client, settings = mail_client
    inbox, _ = smtp_server
    shop = make_shop(client, settings)
    order = pay(client, shop)
    link = link_in(inbox.wait_for(1)[0])
    # A mail scanner (or the customer) opens it: a Continue page, nobody signed in, nothing spent.
    for _ in range(2):
        page = client.get(link)
        assert page.status_code == 200 and "Continue" in page.text
        assert page.headers["referrer-policy"] == "no-referrer" and "no-store" in page.headers["cache-control"]
    assert not any(name.startswith("portal_session_") for name in client.cookies)
    assert 'action="/acme/portal/request"' in client.get("/acme/portal").text  # still the sign-in form
    token = link.split("token=")[1]
    # Without the page's CSRF token the POST is refused.
    assert client.post("/acme/portal/link", data={"token": token}, follow_redirects=False).status_code == 403
    answer = client.post(
        "/acme/portal/link", data={"token": token, "_csrf_token": csrf(client)}, follow_redirects=False
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/acme/portal/orders/{order['id']}/receipt"
    assert client.cookies.get("portal_session_acme")
    receipt = client.get(answer.headers["location"])
    assert receipt.status_code == 200 and order["receipt_number"] in receipt.text
    # Spent: a second POST (same or another browser) fails, and the GET no longer offers Continue.
    # In the browser it signed in, a spent link just leads to its page (issue 22: no dead end), opening nothing new.
    sessions = len(rows(settings, "SELECT id FROM customer_sessions"))
    again = client.post("/acme/portal/link", data={"token": token, "_csrf_token": csrf(client)}, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == answer.headers["location"]
    assert len(rows(settings, "SELECT id FROM customer_sessions")) == sessions
    client.cookies.delete("portal_session_acme")
    again = client.post("/acme/portal/link", data={"token": token, "_csrf_token": csrf(client)}, follow_redirects=False)
    assert again.status_code == 400 and "expired or was already used" in again.text
    assert client.get(link).status_code == 400
    used = rows(settings, "SELECT used_at FROM email_links WHERE target_path LIKE '%/receipt'")
    assert len(used) == 1 and used[0]["used_at"] is not None


def test_email_link_expires_after_24_hours(mail_client, smtp_server, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    client, settings = mail_client
    inbox, _ = smtp_server
    shop = make_shop(client, settings)
    pay(client, shop)
    link = link_in(inbox.wait_for(1)[0])
    token = link.split("token=")[1]
    clock.advance(23 * 3600)
    assert client.get(link).status_code == 200
    clock.advance(3601)
    expired = client.get(link)
    assert expired.status_code == 400 and "expired" in expired.text
    answer = client.post(
        "/acme/portal/link", data={"token": token, "_csrf_token": csrf(client)}, follow_redirects=False
    )
    assert answer.status_code == 400
    assert not client.cookies.get("portal_session_acme")
    # Another organization's portal does not accept it either (and a made-up token is just expired).
    assert client.get("/acme/portal/link?token=made-up").status_code == 400


def test_switches_per_organization(mail_client, smtp_server) -> None:  # type: ignore[no-untyped-def]
    client, settings = mail_client
    inbox, _ = smtp_server
    shop = make_shop(client, settings)
    org_path = f"/v1/organizations/{shop.org['id']}"
    bad = api(client, shop.token, "PATCH", org_path, 422, json={"settings": {"emails": {"order_reciept": False}}})
    assert bad["detail"][0]["loc"] == ["body", "settings", "emails", "order_reciept"]
    bad = api(client, shop.token, "PATCH", org_path, 422, json={"settings": {"emails": {"renewal_reminder_days": 0}}})
    assert bad["detail"][0]["loc"][:3] == ["body", "settings", "emails"]
    updated = api(client, shop.token, "PATCH", org_path, 200, json={"settings": {"emails": {"order_receipt": False}}})
    assert updated["settings"]["emails"] == {"order_receipt": False}
    assert updated["customer_email_settings"]["order_confirmation"] is False  # Polar's name for the same switch
    assert updated["customer_email_settings"]["subscription_cancellation"] is True
    order = pay(client, shop)
    assert _outbox(settings) == []
    # Refund emails are still on.
    api(client, shop.token, "PATCH", f"/v1/orders/{order['id']}", 200, json={"status": "refunded"})
    [message] = inbox.wait_for(1)
    assert message["Subject"] == f"Refund for your order {order['receipt_number']} from Acme"
    assert "$49.00" in text_part(message) and "fully refunded" in text_part(message)


def test_subscription_emails_from_the_portal(mail_client, smtp_server, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    client, app_settings = mail_client
    inbox, _ = smtp_server
    shop = make_shop(client, app_settings)
    sub = subscribe(client, shop, period_start=iso(datetime.now(UTC) - timedelta(days=3)))
    sign_in_browser(client, app_settings, "acme", shop.org["id"], shop.customer["id"])
    base = f"/acme/portal/subscriptions/{sub['id']}"
    form = {"_csrf_token": csrf(client)}
    assert client.post(f"{base}/cancel", data=form, follow_redirects=False).status_code == 303
    [canceled] = inbox.wait_for(1)
    assert canceled["Subject"] == "Your Basic plan subscription is canceled"
    assert "You keep access until" in text_part(canceled)
    assert client.post(f"{base}/uncancel", data=form, follow_redirects=False).status_code == 303
    resumed = inbox.wait_for(2)[1]
    assert resumed["Subject"] == "Your Basic plan subscription will continue"
    changed = client.post(
        f"{base}/change-plan", data={**form, "product_id": shop.bigger_plan["id"]}, follow_redirects=False
    )
    assert changed.status_code == 303
    plan = inbox.wait_for(3)[2]
    assert plan["Subject"] == "Your plan changed to Pro plan"
    assert "from Basic plan to Pro plan" in text_part(plan) and "$19.00" in text_part(plan)
    # Each email's link leads to the subscription page.
    assert link_in(plan)
    kinds = [row["kind"] for row in _outbox(app_settings)]
    assert kinds == ["subscription_canceled", "subscription_uncanceled", "subscription_updated"]


def test_renewal_reminder_once_per_period(smtp_settings: Settings, smtp_server, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    inbox, _ = smtp_server
    settings = fast(smtp_settings, renewal_scan_interval=0.05)
    with TestClient(app_for(settings, clock=clock), base_url=BASE) as client:
        shop = make_shop(client, settings)
        now = clock.now()
        # Renews in 2 days (month periods: started a month minus 2 days ago) -> due with the default 3 days.
        soon = subscribe(client, shop, period_start=iso(now - timedelta(days=28)))
        # Renews in about 10 days: not due until the organization asks for 14 days' notice.
        later = subscribe(client, shop, period_start=iso(now - timedelta(days=20)))
        [reminder] = inbox.wait_for(1)
        assert reminder["Subject"] == "Your Basic plan subscription renews soon"
        assert "$9.00" in text_part(reminder)
        time.sleep(0.3)  # many scans later: still one
        assert len(inbox.messages) == 1
        api(
            client,
            shop.token,
            "PATCH",
            f"/v1/organizations/{shop.org['id']}",
            200,
            json={"settings": {"emails": {"renewal_reminder_days": 14}}},
        )
        inbox.wait_for(2)
        time.sleep(0.3)
        assert len(inbox.messages) == 2
    keys = sorted(row["dedupe_key"] for row in _outbox(settings))
    assert keys == sorted(
        f"renewal:{sub['id']}:{end}"
        for sub in (soon, later)
        for end in [
            rows(settings, "SELECT current_period_end FROM subscriptions WHERE id = ?", (sub["id"],))[0][
                "current_period_end"
            ]
        ]
    )


def test_seeding_sends_nothing(settings: Settings) -> None:
    async def seed() -> None:
        db = await Database(settings.db_path, readers=1).open()
        try:
            await load_seed_file(db, demo_seed_path(), files_dir=settings.files_dir, now=Clock().now())
        finally:
            await db.close()

    asyncio.run(seed())
    assert rows(settings, "SELECT COUNT(*) AS n FROM orders WHERE status != 'pending'")[0]["n"] > 0
    assert rows(settings, "SELECT COUNT(*) AS n FROM subscriptions WHERE cancel_at_period_end = 1")[0]["n"] > 0
    assert rows(settings, "SELECT COUNT(*) AS n FROM email_outbox")[0]["n"] == 0
    assert rows(settings, "SELECT COUNT(*) AS n FROM webhook_events")[0]["n"] == 0


def test_sender_name_and_reply_to_per_organization(mail_client, smtp_server) -> None:  # type: ignore[no-untyped-def]
    """Issue 22: an organization's emails carry its sender name on the From line (the address stays
    PORTAL_MAIL_FROM's) and Reply-To its reply-to address, else its support email; bad values answer 422."""
    client, settings = mail_client
    inbox, _ = smtp_server
    shop = make_shop(client, settings)
    org_path = f"/v1/organizations/{shop.org['id']}"
    bad = api(client, shop.token, "PATCH", org_path, 422, json={"email_sender_name": "Acme\r\nBcc: x@evil.example"})
    assert bad["detail"][0]["loc"] == ["body", "email_sender_name"]
    bad = api(client, shop.token, "PATCH", org_path, 422, json={"email_reply_to": "not-an-address"})
    assert bad["detail"][0]["loc"] == ["body", "email_reply_to"]
    # Default: the PORTAL_MAIL_FROM line, replies to the support email.
    pay(client, shop)
    [first] = inbox.wait_for(1)
    assert first["From"] == settings.mail_from
    assert first["Reply-To"] == "support@acme.example"
    inbox.clear()
    updated = api(
        client,
        shop.token,
        "PATCH",
        org_path,
        200,
        json={"email_sender_name": "Acme Support Team", "email_reply_to": "help@acme.example"},
    )
    assert updated["email_sender_name"] == "Acme Support Team" and updated["email_reply_to"] == "help@acme.example"
    assert api(client, shop.token, "GET", org_path)["email_reply_to"] == "help@acme.example"
    pay(client, shop)
    [second] = inbox.wait_for(1)
    address = settings.mail_from.rpartition("<")[2].rstrip(">")
    assert second["From"] == f"Acme Support Team <{address}>"
    assert second["Reply-To"] == "help@acme.example"
    assert second["Bcc"] is None
    inbox.clear()
    # The sign-in code email too.
    assert request_code(client, "acme", "ada@example.com").status_code == 303
    [code_email] = inbox.wait_for(1)
    assert code_email["From"] == f"Acme Support Team <{address}>"
    assert code_email["Reply-To"] == "help@acme.example"
