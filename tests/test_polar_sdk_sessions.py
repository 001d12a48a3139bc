"""``POST /v1/customer-sessions/`` with the official SDKs against a served Portal (uvicorn on loopback):
``polar-sdk`` from PyPI and ``@polar-sh/sdk`` from npm (the TypeScript snippet of Polar's customer-portal docs).
Only the base URL changes. The minted link then opens the customer's portal."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from polar.v2026_10 import outputs
from polar.v2026_10.client import Polar
from polar.v2026_10.errors import HTTPValidationError

from portal.clock import parse_iso
from portal.settings import Settings
from tests.admin_support import api, create_org, mint_token, serve
from tests.apps import app_for

JS_DIR = Path(__file__).resolve().parent / "js"


@pytest.fixture
def served(settings: Settings) -> Any:
    """A served app whose PORTAL_BASE_URL is its real address, with an org, a customer and an org token."""
    from litestar.testing import TestClient

    admin = mint_token(settings)
    with TestClient(app_for(settings), base_url="http://testserver.local") as client:
        org = create_org(client, admin, "acme")
        token = mint_token(settings, org["id"])
        customer = api(
            client, token, "POST", "/v1/customers/", 201, json={"email": "ada@example.com", "external_id": "user-42"}
        )
    import msgspec

    from tests.admin_support import free_port

    port = free_port()
    live = msgspec.structs.replace(settings, base_url=f"http://127.0.0.1:{port}")
    with serve(app_for(live), port=port) as base_url:
        yield {"base_url": base_url, "token": token, "admin": admin, "customer": customer, "org": org}


def test_python_sdk_creates_sessions_by_id_and_external_id(served: dict[str, Any]) -> None:
    # polar-sdk 1.x sends paths that start with /v1 and uses base_url as given: pass the bare origin.
    with Polar(access_token=served["token"], base_url=served["base_url"]) as polar:
        by_id = polar.customer_sessions.create(customer_id=served["customer"]["id"])
        by_external = polar.customer_sessions.create(
            external_customer_id="user-42", return_url="https://acme.example/app"
        )
        with pytest.raises(HTTPValidationError) as problem:
            polar.customer_sessions.create(customer_id="00000000-0000-0000-0000-000000000000")
    for session in (by_id, by_external):
        assert isinstance(session, outputs.CustomerSession)
        assert session.customer_id == served["customer"]["id"]
        assert isinstance(session.customer, outputs.CustomerIndividual)
        assert session.customer.email == "ada@example.com"
        # Polar's shapes (issue 23.8): the polar_cst_ prefix, and the email URL-encoded in the link.
        assert session.token.startswith("polar_cst_")
        assert session.customer_portal_url == (
            f"{served['base_url']}/acme/portal?customer_session_token={session.token}&email=ada%40example.com"
        )
        lifetime = parse_iso(session.expires_at) - parse_iso(session.created_at)
        assert 3590 <= lifetime.total_seconds() <= 3610
    assert by_id.token != by_external.token
    assert by_external.return_url == "https://acme.example/app"
    assert problem.value.status_code == 422
    assert problem.value.error.detail[0].loc == ["body", "customer_id"]
    # The link signs the customer in: a 303 to the same page without the token.
    with httpx.Client(follow_redirects=False) as browser:
        opened = browser.get(by_id.customer_portal_url)
    assert opened.status_code == 303, opened.text
    assert "customer_session_token" not in opened.headers["location"]


def test_python_sdk_reads_admin_resources(served: dict[str, Any]) -> None:
    with Polar(access_token=served["token"], base_url=served["base_url"]) as polar:
        customer = polar.customers.get(id=served["customer"]["id"])
        page = polar.customers.list()
        organization = polar.organizations.get(id=served["org"]["id"])
    assert customer.email == "ada@example.com"
    assert page.pagination.total_count == 1 and page.items[0].id == customer.id
    assert organization.slug == "acme"


def test_python_sdk_rejects_bad_token(served: dict[str, Any]) -> None:
    from polar import PolarClientError

    with (
        Polar(access_token="portal_oat_wrong", base_url=served["base_url"]) as polar,
        pytest.raises(PolarClientError) as problem,
    ):
        polar.customer_sessions.create(customer_id=served["customer"]["id"])
    assert problem.value.status_code == 401


# @polar-sh/sdk 1.x: one client per API version (``@polar-sh/sdk/<version>``), snake_case fields as on the wire.
JS_SNIPPET = """
import { createPolar } from "@polar-sh/sdk/__VERSION__";

const baseUrl = process.env["POLAR_SERVER_URL"];
const polar = createPolar({ accessToken: process.env["POLAR_ACCESS_TOKEN"] ?? "", baseUrl });

async function run() {
  const byId = await polar.customerSessions.create({ customer_id: process.env["CUSTOMER_ID"] });
  const byExternal = await polar.customerSessions.create({
    external_customer_id: process.env["EXTERNAL_CUSTOMER_ID"],
  });
  const me = await createPolar({ accessToken: byId.token, baseUrl }).customerPortal.customers.get();
  console.log(JSON.stringify({
    portalUrl: byId.customer_portal_url,
    token: byId.token,
    customerId: byId.customer_id,
    email: byId.customer.email,
    expiresAt: String(byId.expires_at),
    externalCustomerId: byExternal.customer_id,
    me: me.email,
  }));
}

run().catch((error) => {
  console.error(error);
  process.exit(1);
});
"""


@pytest.mark.parametrize("version", ["2026-10", "2027-01"])
def test_typescript_sdk_snippet_creates_a_session(served: dict[str, Any], tmp_path: Path, version: str) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    if not (JS_DIR / "node_modules" / "@polar-sh" / "sdk").is_dir():
        pytest.skip("@polar-sh/sdk is not installed: run `npm install --prefix tests/js`")
    # Inside tests/js so node resolves its node_modules; named uniquely, as every test process shares that folder
    # (tmp_path's own name repeats across xdist workers: two parameters at once removed each other's script).
    script = JS_DIR / f"snippet-{uuid.uuid4().hex}.mjs"
    script.write_text(JS_SNIPPET.replace("__VERSION__", version))
    try:
        result = subprocess.run(
            [node, str(script)],
            env={
                "PATH": "/usr/bin:/bin",
                "POLAR_ACCESS_TOKEN": served["token"],
                "POLAR_SERVER_URL": served["base_url"],
                "CUSTOMER_ID": served["customer"]["id"],
                "EXTERNAL_CUSTOMER_ID": "user-42",
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        script.unlink(missing_ok=True)
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout.strip().splitlines()[-1])
    assert output["customerId"] == served["customer"]["id"]
    assert output["externalCustomerId"] == served["customer"]["id"]
    assert output["email"] == "ada@example.com" and output["me"] == "ada@example.com"
    assert output["portalUrl"] == (
        f"{served['base_url']}/acme/portal?customer_session_token={output['token']}&email=ada%40example.com"
    )
