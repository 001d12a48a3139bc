"""End to end, served (issue 20): the production ``portal serve`` on loopback, mail through aiosmtpd, Lemon
Squeezy's API faked on loopback. A signed ``order_created`` then ``license_key_created`` for a product with a
license-keys benefit → one receipt email showing the key Lemon Squeezy shipped (fetched with the order), even when
Lemon Squeezy delivers twice; the customer signs in with the emailed code and sees that key, which validates
through Portal."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import httpx
from bs4 import BeautifulSoup

from tests import lemonsqueezy_fake as ls
from tests.conftest import SMTPInbox, free_port
from tests.serving import portal_env, run_portal, start_portal, stop, wait_until_up
from tests.signin_helpers import code_from

WEBHOOK_SECRET = "ls-served-signing-secret"
KEY = "5A1E0C2B-9D3F-4E6A-8B7C-1D2E3F4A5B6C"


def test_signed_order_and_key_reach_the_signed_in_customer(tmp_path: Path, smtp_server: tuple[SMTPInbox, int]) -> None:
    inbox, smtp_port = smtp_server
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with ls.fake_lemonsqueezy() as fake:
        env = portal_env(
            tmp_path / "data",
            PORTAL_BASE_URL=base,
            PORTAL_SECRET_KEY=secrets.token_urlsafe(32),
            PORTAL_MAIL_BACKEND="smtp",
            PORTAL_SMTP_HOST="127.0.0.1",
            PORTAL_SMTP_PORT=str(smtp_port),
            PORTAL_SMTP_SECURITY="none",
            PORTAL_LEMONSQUEEZY_API_BASE=fake.base_url,
        )
        made = run_portal(["token", "create", "--admin", "--name", "served"], env)
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip().splitlines()[-1]
        server = start_portal(["serve", "--port", str(port)], env, tmp_path / "serve.log")
        try:
            wait_until_up(base, server)
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as admin:
                org = admin.post("/v1/organizations/", json={"name": "Acme", "slug": "acme"}).json()
                scope = {"organization_id": org["id"]}
                key = admin.post(
                    "/v1/benefits/",
                    json={**scope, "type": "license_keys", "description": "Key", "properties": {"prefix": "ACME"}},
                )
                assert key.status_code == 201, key.text
                product = admin.post(
                    "/v1/products/",
                    json={
                        **scope,
                        "name": "Toolkit",
                        "prices": [{"amount_type": "fixed", "price_amount": 4900, "price_currency": "usd"}],
                        "benefits": [key.json()["id"]],
                    },
                ).json()
                connected = admin.put(
                    f"/v1/connectors/lemonsqueezy?organization_id={org['id']}",
                    json={"api_key": fake.api_key, "webhook_secret": WEBHOOK_SECRET},
                )
                assert connected.status_code == 200, connected.text
                mapped = admin.put(
                    f"/v1/connectors/lemonsqueezy/prices/11?organization_id={org['id']}",
                    json={"product_id": product["id"]},
                )
                assert mapped.status_code == 200, mapped.text

            now = int(time.time())
            order = ls.order(1001, variant=11, email="ada@example.com", name="Ada Lovelace", total=4900, created=now)
            shipped = ls.license_key(2001, order_id=1001, key=KEY, created=now, limit=3)
            fake.add(shipped)  # Lemon Squeezy made the key with the order: Portal's receipt shows that one
            hook = f"{base}/v1/integrations/lemonsqueezy/acme/webhook"
            for event, resource in (("order_created", order), ("license_key_created", shipped)):
                body = ls.webhook(event, resource)
                for expected in ("applied", "duplicate"):
                    answer = httpx.post(hook, content=body, headers={"X-Signature": ls.signature(body, WEBHOOK_SECRET)})
                    assert answer.status_code == 200 and answer.json()["status"] == expected, answer.text

            (receipt,) = inbox.wait_for(1)
            assert receipt["To"] == "ada@example.com" and "receipt" in str(receipt["Subject"]).lower()
            assert KEY in receipt.get_body(("plain",)).get_content()

            with httpx.Client(base_url=base, follow_redirects=True, timeout=10) as browser:
                page = browser.get("/acme/portal")
                form = BeautifulSoup(page.text, "html.parser").find("input", attrs={"name": "_csrf_token"})
                csrf = str(form["value"]) if form is not None else str(browser.cookies.get("csrftoken"))
                asked = browser.post("/acme/portal/request", data={"email": "ada@example.com", "_csrf_token": csrf})
                assert asked.status_code == 200, asked.text
                code = code_from(inbox.wait_for(2)[1])
                signed_in = browser.post("/acme/portal/authenticate", data={"code": code, "_csrf_token": csrf})
                assert signed_in.status_code == 200 and "Toolkit" in signed_in.text
                benefits = browser.get("/acme/portal/benefits")
                assert KEY in benefits.text, benefits.text[:2000]

            valid = httpx.post(
                f"{base}/v1/customer-portal/license-keys/validate", json={"key": KEY, "organization_id": org["id"]}
            )
            assert valid.status_code == 200, valid.text
            time.sleep(1.5)  # the outbox worker has had every chance to send a second receipt
            receipts = [m for m in inbox.messages if "receipt" in str(m["Subject"]).lower()]
            assert len(receipts) == 1
        finally:
            stop(server)
