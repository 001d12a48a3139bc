"""End to end, served (issue 20): two production ``portal serve`` processes on loopback. The first plays Polar: its
admin API answers Polar's shapes and its outgoing webhooks are Polar's events, Standard Webhooks signed. The
second is connected to it (``portal connect polar``, ``PORTAL_POLAR_API_BASE`` pointing at the first): an order
made on the first reaches the second by webhook (customer, order, the same license key); the customer signs in on
the second with an emailed code and sees the key; ``portal import polar`` backfills the sales made before the
connection, and a key sold then validates through the second's ``/v1/customer-portal/license-keys/validate``."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from bs4 import BeautifulSoup

from tests.conftest import SMTPInbox, free_port
from tests.polar_support import seller_catalog
from tests.serving import portal_env, run_portal, start_portal, stop, wait_until_up
from tests.signin_helpers import code_from


def _wait(what: str, check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _token(env: dict[str, str], *args: str) -> str:
    made = run_portal(["token", "create", "--name", "served", *args], env)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip().splitlines()[-1]


def test_polar_order_flows_to_a_second_portal_and_import_backfills(
    tmp_path: Path, smtp_server: tuple[SMTPInbox, int]
) -> None:
    inbox, smtp_port = smtp_server
    polar_port, portal_port = free_port(), free_port()
    polar_base, portal_base = f"http://127.0.0.1:{polar_port}", f"http://127.0.0.1:{portal_port}"
    polar_env = portal_env(
        tmp_path / "polar",
        PORTAL_BASE_URL=polar_base,
        PORTAL_SECRET_KEY=secrets.token_urlsafe(32),
        PORTAL_WORKER_POLL_INTERVAL="0.2",
    )
    portal_env_ = portal_env(
        tmp_path / "portal",
        PORTAL_BASE_URL=portal_base,
        PORTAL_SECRET_KEY=secrets.token_urlsafe(32),
        PORTAL_MAIL_BACKEND="smtp",
        PORTAL_SMTP_HOST="127.0.0.1",
        PORTAL_SMTP_PORT=str(smtp_port),
        PORTAL_SMTP_SECURITY="none",
        PORTAL_POLAR_API_BASE=polar_base,
        PORTAL_WORKER_POLL_INTERVAL="0.2",
    )
    polar_admin = _token(polar_env, "--admin")
    portal_admin = _token(portal_env_, "--admin")
    servers = [
        start_portal(["serve", "--port", str(polar_port)], polar_env, tmp_path / "polar.log"),
        start_portal(["serve", "--port", str(portal_port)], portal_env_, tmp_path / "portal.log"),
    ]
    try:
        wait_until_up(polar_base, servers[0])
        wait_until_up(portal_base, servers[1])
        polar = httpx.Client(base_url=polar_base, headers={"Authorization": f"Bearer {polar_admin}"}, timeout=10)
        portal = httpx.Client(base_url=portal_base, headers={"Authorization": f"Bearer {portal_admin}"}, timeout=10)

        def on(client: httpx.Client) -> Callable[..., Any]:
            def call(method: str, path: str, expect: int, **kwargs: Any) -> Any:
                answer = client.request(method, path, **kwargs)
                assert answer.status_code == expect, f"{method} {path}: {answer.status_code} {answer.text}"
                return answer.json()

            return call

        # The seller on "Polar", with a sale made before Portal was connected.
        seller = on(polar)("POST", "/v1/organizations/", 201, json={"name": "Seller", "slug": "seller"})
        polar_products = seller_catalog(on(polar), seller["id"], "POLAR")
        early = on(polar)(
            "POST", "/v1/customers/", 201, json={"email": "early@example.com", "organization_id": seller["id"]}
        )
        early_order = on(polar)(
            "POST", "/v1/orders/", 201, json={"customer_id": early["id"], "product_id": polar_products["Guide"]["id"]}
        )
        (early_grant,) = on(polar)("GET", "/v1/benefit-grants/", 200, params={"order_id": early_order["id"]})["items"]
        early_key = on(polar)("GET", f"/v1/license-keys/{early_grant['properties']['license_key_id']}", 200)["key"]

        # The seller's Portal: the same catalog, connected to "Polar" with an organization token.
        acme = on(portal)("POST", "/v1/organizations/", 201, json={"name": "Acme", "slug": "acme"})
        products = seller_catalog(on(portal), acme["id"], "ACME")
        endpoint = on(polar)(
            "POST",
            "/v1/webhooks/endpoints",
            201,
            json={
                "organization_id": seller["id"],
                "url": f"{portal_base}/v1/integrations/polar/acme/webhook",
                "events": ["order.paid", "order.refunded", "benefit_grant.created", "customer.updated"],
            },
        )
        (tmp_path / "key").write_text(_token(polar_env, "--org", "seller"))
        (tmp_path / "whsec").write_text(endpoint["secret"])
        connected = run_portal(
            [
                "connect",
                "polar",
                "--org",
                "acme",
                "--api-key-file",
                str(tmp_path / "key"),
                "--webhook-secret-file",
                str(tmp_path / "whsec"),
            ],
            portal_env_,
        )
        assert connected.returncode == 0, connected.stderr
        assert f"{portal_base}/v1/integrations/polar/acme/webhook" in connected.stdout
        for name, product in polar_products.items():
            mapped = run_portal(
                ["connect", "map", "--processor", "polar", "--org", "acme", product["id"], products[name]["id"]],
                portal_env_,
            )
            assert mapped.returncode == 0, mapped.stderr

        # A live sale on "Polar" -> its webhooks -> the customer, order and key on Portal.
        ada = on(polar)(
            "POST",
            "/v1/customers/",
            201,
            json={"email": "ada@example.com", "name": "Ada", "organization_id": seller["id"]},
        )
        order = on(polar)(
            "POST", "/v1/orders/", 201, json={"customer_id": ada["id"], "product_id": polar_products["Guide"]["id"]}
        )
        (grant,) = on(polar)("GET", "/v1/benefit-grants/", 200, params={"order_id": order["id"]})["items"]
        key = on(polar)("GET", f"/v1/license-keys/{grant['properties']['license_key_id']}", 200)["key"]

        def delivered() -> Any:
            keys = on(portal)("GET", "/v1/license-keys/", 200, params={"organization_id": acme["id"]})["items"]
            return [k for k in keys if k["key"] == key]

        (portal_key,) = _wait("the key on Portal", delivered)
        assert portal_key["customer"]["email"] == "ada@example.com"
        orders = on(portal)("GET", "/v1/orders/", 200, params={"organization_id": acme["id"]})["items"]
        assert [(o["customer"]["email"], o["total_amount"], o["status"]) for o in orders] == [
            ("ada@example.com", 2900, "paid")
        ]

        # The customer signs in on Portal with an emailed code and sees the key Polar issued.
        with httpx.Client(base_url=portal_base, follow_redirects=True, timeout=10) as browser:
            page = browser.get("/acme/portal")
            field = BeautifulSoup(page.text, "html.parser").find("input", attrs={"name": "_csrf_token"})
            csrf = str(field["value"]) if field is not None else str(browser.cookies.get("csrftoken"))
            asked = browser.post("/acme/portal/request", data={"email": "ada@example.com", "_csrf_token": csrf})
            assert asked.status_code == 200, asked.text
            message = _wait(
                "the sign-in code", lambda: [m for m in inbox.messages if "code" in str(m["Subject"]).lower()]
            )
            signed_in = browser.post(
                "/acme/portal/authenticate", data={"code": code_from(message[-1]), "_csrf_token": csrf}
            )
            assert signed_in.status_code == 200 and "Guide" in signed_in.text
            benefits = browser.get("/acme/portal/benefits")
            assert key in benefits.text, benefits.text[:2000]

        # The sale made before the connection comes with `portal import polar`; its key validates through Portal.
        # Downloads added on "Polar" later: a file in a downloadables benefit on Guide, held by a new buyer there.
        upload = {"file": ("handbook.pdf", b"%PDF-1.4 handbook" * 100, "application/pdf")}
        file = on(polar)("POST", "/v1/files/", 201, files=upload, data={"organization_id": seller["id"]})
        downloads = on(polar)(
            "POST",
            "/v1/benefits/",
            201,
            json={
                "organization_id": seller["id"],
                "type": "downloadables",
                "description": "Handbook",
                "properties": {"files": [file["id"]]},
            },
        )
        guide_benefits = [b["id"] for b in polar_products["Guide"]["benefits"]]
        on(polar)(
            "POST",
            f"/v1/products/{polar_products['Guide']['id']}/benefits",
            200,
            json={"benefits": [*guide_benefits, downloads["id"]]},
        )
        late = on(polar)(
            "POST", "/v1/customers/", 201, json={"email": "late@example.com", "organization_id": seller["id"]}
        )
        on(polar)(
            "POST", "/v1/orders/", 201, json={"customer_id": late["id"], "product_id": polar_products["Guide"]["id"]}
        )
        before = httpx.post(
            f"{portal_base}/v1/customer-portal/license-keys/validate",
            json={"key": early_key, "organization_id": acme["id"]},
        )
        assert before.status_code == 404
        imported = run_portal(["import", "polar", "--org", "acme"], portal_env_)
        assert imported.returncode == 0, imported.stderr
        assert "license-keys" in imported.stdout, imported.stdout
        valid = httpx.post(
            f"{portal_base}/v1/customer-portal/license-keys/validate",
            json={"key": early_key, "organization_id": acme["id"]},
        )
        assert valid.status_code == 200 and valid.json()["status"] == "granted", valid.text
        orders = on(portal)("GET", "/v1/orders/", 200, params={"organization_id": acme["id"]})["items"]
        assert {o["customer"]["email"] for o in orders} >= {"ada@example.com", "early@example.com"}
        # The customer of the imported order has the handbook, with its bytes, from Portal.
        early_customer = next(o["customer"] for o in orders if o["customer"]["email"] == "early@example.com")
        session = on(portal)("POST", "/v1/customer-sessions/", 201, json={"customer_id": early_customer["id"]})
        listed = httpx.get(
            f"{portal_base}/v1/customer-portal/downloadables/",
            headers={"Authorization": f"Bearer {session['token']}"},
        )
        assert listed.status_code == 200, listed.text
        (item,) = listed.json()["items"]
        assert item["file"]["name"] == "handbook.pdf"
        fetched = httpx.get(item["file"]["download"]["url"], follow_redirects=True)
        assert fetched.status_code == 200 and fetched.content == upload["file"][1]
        polar.close()
        portal.close()
    finally:
        for server in servers:
            stop(server)
