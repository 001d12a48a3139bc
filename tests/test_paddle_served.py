"""End to end, served (issue 20): the production ``portal serve`` on loopback, mail through aiosmtpd, Paddle's
API faked on loopback. A signed ``transaction.completed`` (delivered twice) for a product with a license-keys
benefit → the customer (fetched from Paddle's API: the event names only ``customer_id``) gets exactly one receipt
with the key Portal issued (Paddle has none), signs in with the emailed code, sees that key, and it validates."""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

import httpx
from bs4 import BeautifulSoup

from tests import paddle_fake as pf
from tests.conftest import SMTPInbox, free_port
from tests.serving import portal_env, run_portal, start_portal, stop, wait_until_up
from tests.signin_helpers import code_from

WEBHOOK_SECRET = "pdl_ntfset_served_secret"


def test_signed_transaction_issues_a_portal_key_the_customer_sees(
    tmp_path: Path, smtp_server: tuple[SMTPInbox, int]
) -> None:
    inbox, smtp_port = smtp_server
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with pf.fake_paddle() as fake:
        env = portal_env(
            tmp_path / "data",
            PORTAL_BASE_URL=base,
            PORTAL_SECRET_KEY=secrets.token_urlsafe(32),
            PORTAL_MAIL_BACKEND="smtp",
            PORTAL_SMTP_HOST="127.0.0.1",
            PORTAL_SMTP_PORT=str(smtp_port),
            PORTAL_SMTP_SECURITY="none",
            PORTAL_PADDLE_API_BASE=fake.base_url,
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
                    f"/v1/connectors/paddle?organization_id={org['id']}",
                    json={"api_key": fake.api_key, "webhook_secret": WEBHOOK_SECRET},
                )
                assert connected.status_code == 200, connected.text
                mapped = admin.put(
                    f"/v1/connectors/paddle/prices/pri_toolkit?organization_id={org['id']}",
                    json={"product_id": product["id"]},
                )
                assert mapped.status_code == 200, mapped.text

            now = int(time.time())
            fake.add("customers", pf.customer("ctm_ada", email="ada@example.com", name="Ada Lovelace", updated=now))
            txn = pf.transaction(
                "txn_toolkit", customer_id="ctm_ada", item=pf.price("pri_toolkit", 4900), total=4900, created=now
            )
            body = pf.event("evt_toolkit", "transaction.completed", txn, now)
            hook = f"{base}/v1/integrations/paddle/acme/webhook"
            for expected in ("applied", "duplicate"):
                answer = httpx.post(
                    hook, content=body, headers={"Paddle-Signature": pf.signature(body, WEBHOOK_SECRET)}
                )
                assert answer.status_code == 200 and answer.json()["status"] == expected, answer.text

            (receipt,) = inbox.wait_for(1)
            assert receipt["To"] == "ada@example.com" and "receipt" in str(receipt["Subject"]).lower()
            issued = re.search(r"ACME-[0-9A-F-]{35}", receipt.get_body(("plain",)).get_content())
            assert issued is not None, "no license key in the receipt"

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
                assert issued.group(0) in benefits.text, benefits.text[:2000]

            valid = httpx.post(
                f"{base}/v1/customer-portal/license-keys/validate",
                json={"key": issued.group(0), "organization_id": org["id"]},
            )
            assert valid.status_code == 200, valid.text
            time.sleep(1.5)  # the outbox worker has had every chance to send a second receipt
            receipts = [m for m in inbox.messages if "receipt" in str(m["Subject"]).lower()]
            assert len(receipts) == 1
        finally:
            stop(server)
