"""End to end, served (issue 20): the production ``portal serve`` on loopback, Gumroad's API faked on loopback, mail
through aiosmtpd. ``portal connect gumroad`` and ``portal connect map``; a Gumroad ping for a sale with a license key
(to the URL with its secret) -> Portal fetches the sale -> the customer signs in with the emailed code and sees
the very key Gumroad sold, which validates through Portal."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
from bs4 import BeautifulSoup

from tests.conftest import SMTPInbox, free_port
from tests.gumroad_fake import ACCESS_TOKEN, fake_gumroad
from tests.polar_support import seller_catalog
from tests.serving import portal_env, run_portal, start_portal, stop, wait_until_up
from tests.signin_helpers import code_from

KEY = "C0FFEE12-34567890-ABCDEF12-34567890"


def test_gumroad_ping_to_sign_in_and_the_same_key(tmp_path: Path, smtp_server: tuple[SMTPInbox, int]) -> None:
    inbox, smtp_port = smtp_server
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    url_secret = secrets.token_urlsafe(24)
    with fake_gumroad() as gumroad:
        env = portal_env(
            tmp_path / "data",
            PORTAL_BASE_URL=base,
            PORTAL_SECRET_KEY=secrets.token_urlsafe(32),
            PORTAL_MAIL_BACKEND="smtp",
            PORTAL_SMTP_HOST="127.0.0.1",
            PORTAL_SMTP_PORT=str(smtp_port),
            PORTAL_SMTP_SECURITY="none",
            PORTAL_GUMROAD_API_BASE=gumroad.base_url,
            PORTAL_WORKER_POLL_INTERVAL="0.2",
        )
        made = run_portal(["token", "create", "--admin", "--name", "served"], env)
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip().splitlines()[-1]
        server = start_portal(["serve", "--port", str(port)], env, tmp_path / "serve.log")
        try:
            wait_until_up(base, server)
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as admin:

                def call(method: str, path: str, expect: int, **kwargs: object) -> dict[str, object]:
                    answer = admin.request(method, path, **kwargs)  # type: ignore[arg-type]
                    assert answer.status_code == expect, answer.text
                    return answer.json()  # type: ignore[no-any-return]

                org = call("POST", "/v1/organizations/", 201, json={"name": "Acme", "slug": "acme"})
                products = seller_catalog(call, str(org["id"]), "ACME")
            connected = run_portal(
                ["connect", "gumroad", "--org", "acme"],
                {**env, "GUMROAD_API_KEY": ACCESS_TOKEN, "GUMROAD_WEBHOOK_SECRET": url_secret},
            )
            assert connected.returncode == 0, connected.stderr
            assert f"{base}/v1/integrations/gumroad/acme/webhook" in connected.stdout
            mapped = run_portal(
                ["connect", "map", "--processor", "gumroad", "--org", "acme", "gum_guide", products["Guide"]["id"]],
                env,
            )
            assert mapped.returncode == 0, mapped.stderr

            sale = gumroad.sale("sale_served==", "ada@example.com", "gum_guide", 2900, license_key=KEY)
            ping = {"sale_id": sale["id"], "email": sale["email"], "product_id": "gum_guide", "price": "2900"}
            hook = f"{base}/v1/integrations/gumroad/acme/webhook?secret={url_secret}"
            form = {"Content-Type": "application/x-www-form-urlencoded"}
            for expected in ("applied", "duplicate"):
                answer = httpx.post(hook, content=urlencode(ping), headers=form)
                assert answer.status_code == 200 and answer.json()["status"] == expected, answer.text

            with httpx.Client(base_url=base, follow_redirects=True, timeout=10) as browser:
                page = browser.get("/acme/portal")
                field = BeautifulSoup(page.text, "html.parser").find("input", attrs={"name": "_csrf_token"})
                csrf = str(field["value"]) if field is not None else str(browser.cookies.get("csrftoken"))
                asked = browser.post("/acme/portal/request", data={"email": "ada@example.com", "_csrf_token": csrf})
                assert asked.status_code == 200, asked.text
                deadline = time.monotonic() + 30
                while not [m for m in inbox.messages if "code" in str(m["Subject"]).lower()]:
                    assert time.monotonic() < deadline, "no sign-in code"
                    time.sleep(0.2)
                message = [m for m in inbox.messages if "code" in str(m["Subject"]).lower()][-1]
                signed_in = browser.post(
                    "/acme/portal/authenticate", data={"code": code_from(message), "_csrf_token": csrf}
                )
                assert signed_in.status_code == 200 and "Guide" in signed_in.text
                benefits = browser.get("/acme/portal/benefits")
                assert KEY in benefits.text, benefits.text[:2000]
            valid = httpx.post(
                f"{base}/v1/customer-portal/license-keys/validate", json={"key": KEY, "organization_id": org["id"]}
            )
            assert valid.status_code == 200 and valid.json()["status"] == "granted", valid.text
        finally:
            stop(server)
