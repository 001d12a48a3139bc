"""End to end, served (issue 19): the production ``portal serve`` on loopback, mail through aiosmtpd, Stripe's API
faked on loopback. A signed ``checkout.session.completed`` for a product with a license key and a download → the
customer signs in with the emailed code, sees the key, downloads the file; exactly one receipt email, even when
Stripe delivers the event twice."""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

import httpx
from bs4 import BeautifulSoup

from tests import stripe_events as se
from tests.conftest import SMTPInbox, free_port
from tests.serving import portal_env, run_portal, start_portal, stop, wait_until_up
from tests.signin_helpers import code_from
from tests.stripe_fake import fake_stripe

WEBHOOK_SECRET = "whsec_served_test"


def test_signed_checkout_delivers_key_download_and_one_receipt(
    tmp_path: Path, smtp_server: tuple[SMTPInbox, int]
) -> None:
    inbox, smtp_port = smtp_server
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with fake_stripe() as fake:
        env = portal_env(
            tmp_path / "data",
            PORTAL_BASE_URL=base,
            PORTAL_SECRET_KEY=secrets.token_urlsafe(32),
            PORTAL_MAIL_BACKEND="smtp",
            PORTAL_SMTP_HOST="127.0.0.1",
            PORTAL_SMTP_PORT=str(smtp_port),
            PORTAL_SMTP_SECURITY="none",
            PORTAL_STRIPE_API_BASE=fake.base_url,
        )
        made = run_portal(["token", "create", "--admin", "--name", "served"], env)
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip().splitlines()[-1]
        server = start_portal(["serve", "--port", str(port)], env, tmp_path / "serve.log")
        try:
            wait_until_up(base, server)
            auth = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=base, headers=auth, timeout=10) as admin:
                org = admin.post("/v1/organizations/", json={"name": "Acme", "slug": "acme"}).json()
                scope = {"organization_id": org["id"]}
                uploaded = admin.post(
                    "/v1/files/", data=scope, files={"file": ("manual.pdf", b"%PDF-1.4 the manual", "application/pdf")}
                )
                assert uploaded.status_code == 201, uploaded.text
                key = admin.post(
                    "/v1/benefits/",
                    json={**scope, "type": "license_keys", "description": "Key", "properties": {"prefix": "ACME"}},
                )
                files = admin.post(
                    "/v1/benefits/",
                    json={
                        **scope,
                        "type": "downloadables",
                        "description": "Manual",
                        "properties": {"files": [uploaded.json()["id"]]},
                    },
                )
                assert key.status_code == 201 and files.status_code == 201, key.text + files.text
                product = admin.post(
                    "/v1/products/",
                    json={
                        **scope,
                        "name": "Toolkit",
                        "prices": [{"amount_type": "fixed", "price_amount": 4900, "price_currency": "usd"}],
                        "benefits": [key.json()["id"], files.json()["id"]],
                    },
                ).json()
                connected = admin.put(
                    f"/v1/connectors/stripe?organization_id={org['id']}",
                    json={"api_key": fake.api_key, "webhook_secret": WEBHOOK_SECRET},
                )
                assert connected.status_code == 200, connected.text

            price = se.price(
                "price_toolkit", 4900, product="prod_toolkit", metadata={"portal_product_id": product["id"]}
            )
            now = int(time.time())
            session = se.checkout_session(
                "cs_live_toolkit",
                created=now,
                email="ada@example.com",
                name="Ada Lovelace",
                amount=4900,
                payment_intent="pi_toolkit",
                payment_link="plink_toolkit",
            )
            fake.add("checkout/sessions", session)
            fake.line_items[session["id"]] = [se.line_item("li_toolkit", price, "Toolkit")]
            body = se.body_of(se.event("evt_toolkit_paid", "checkout.session.completed", session, now))
            hook = f"{base}/v1/integrations/stripe/acme/webhook"
            for expected in ("applied", "duplicate"):
                answer = httpx.post(
                    hook, content=body, headers={"Stripe-Signature": se.signature(body, WEBHOOK_SECRET)}
                )
                assert answer.status_code == 200 and answer.json()["status"] == expected, answer.text

            (receipt,) = inbox.wait_for(1)
            assert receipt["To"] == "ada@example.com" and "receipt" in str(receipt["Subject"]).lower()

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
                assert re.search(r"ACME-[A-Z0-9-]+", benefits.text), benefits.text[:2000]
                link = BeautifulSoup(benefits.text, "html.parser").find("a", attrs={"download": True})
                assert link is not None, "no download link"
                download = browser.get(str(link["href"]))
                assert download.status_code == 200 and download.content == b"%PDF-1.4 the manual"

            time.sleep(1.5)  # the outbox worker has had every chance to send a second receipt
            receipts = [m for m in inbox.messages if "receipt" in str(m["Subject"]).lower()]
            assert len(receipts) == 1
        finally:
            stop(server)
