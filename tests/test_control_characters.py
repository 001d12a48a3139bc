"""Issue 17.8: text that becomes an email header or subject, a file name or a log line.

* every single-line field of the admin API, the seed format and the customer API (``fields.SingleLine``) refuses
  line breaks (CR, LF, NEL U+0085, U+2028, U+2029) and other control characters with a 422 naming the field;
* an upload's name: refused when given, cleaned when it only comes from the multipart header;
* a name stored before these rules cannot break or add headers to sign-in mail (the mail builder folds it);
* the text request log escapes a decoded CR/LF in a URL path, so a request cannot forge a log line.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from portal.clock import Clock
from portal.db import connect_sync
from portal.logging_setup import JsonFormatter, TextFormatter
from portal.mail import MailMessage, build_email
from portal.settings import Settings
from tests.admin_support import api, bearer, mint_token
from tests.apps import app_for
from tests.conftest import SMTPInbox
from tests.signin_helpers import insert_customer, insert_org, request_code, root_logs_into

BREAKS = ["\r\n", "\n", "\r", "\u2028", "\u2029", "\x85", "\x00", "\x1b[31m", "\x7f", "\t"]


@pytest.fixture
def admin(settings: Settings) -> str:
    return mint_token(settings)


@pytest.fixture
def shop(client: TestClient[Litestar], admin: str) -> dict[str, Any]:
    org = api(client, admin, "POST", "/v1/organizations/", 201, json={"name": "Acme", "slug": "acme"})
    customer = api(
        client, admin, "POST", "/v1/customers/", 201, json={"email": "ada@example.com", "organization_id": org["id"]}
    )
    price = [{"amount_type": "fixed", "price_amount": 100, "price_currency": "usd"}]
    product = api(
        client,
        admin,
        "POST",
        "/v1/products/",
        201,
        json={"organization_id": org["id"], "name": "Plan", "prices": price},
    )
    benefit = api(
        client,
        admin,
        "POST",
        "/v1/benefits/",
        201,
        json={"organization_id": org["id"], "type": "custom", "description": "Support", "properties": {}},
    )
    return {"org": org, "customer": customer, "product": product, "benefit": benefit}


def _writes(shop: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], list[Any]]]:
    """(method, path, body with the bad value at ``{bad}``, the 422's loc) for every single-line field class."""
    org, customer, product, benefit = shop["org"], shop["customer"], shop["product"], shop["benefit"]
    org_id = org["id"]
    price = [{"amount_type": "fixed", "price_amount": 100, "price_currency": "usd"}]
    return [
        ("POST", "/v1/organizations/", {"name": "{bad}", "slug": "other"}, ["body", "name"]),
        ("PATCH", f"/v1/organizations/{org_id}", {"name": "{bad}"}, ["body", "name"]),
        ("PATCH", f"/v1/organizations/{org_id}", {"email_sender_name": "{bad}"}, ["body", "email_sender_name"]),
        ("PATCH", f"/v1/organizations/{org_id}", {"email": "a{bad}@example.com"}, ["body", "email"]),
        ("PATCH", f"/v1/organizations/{org_id}", {"email_reply_to": "a{bad}@x.io"}, ["body", "email_reply_to"]),
        (
            "POST",
            "/v1/products/",
            {"organization_id": org_id, "name": "{bad}", "prices": price},
            ["body", "name"],
        ),
        ("PATCH", f"/v1/products/{product['id']}", {"name": "{bad}"}, ["body", "name"]),
        ("PATCH", f"/v1/benefits/{benefit['id']}", {"description": "{bad}"}, ["body", "description"]),
        (
            "POST",
            "/v1/customers/",
            {"organization_id": org_id, "email": "b{bad}@example.com"},
            ["body", "email"],
        ),
        ("PATCH", f"/v1/customers/{customer['id']}", {"name": "{bad}"}, ["body", "name"]),
        ("PATCH", f"/v1/customers/{customer['id']}", {"billing_name": "{bad}"}, ["body", "billing_name"]),
        (
            "PATCH",
            f"/v1/customers/{customer['id']}",
            {"billing_address": {"line1": "{bad}", "country": "FR"}},
            ["body", "billing_address", "line1"],
        ),
        (
            "POST",
            "/v1/customer-sessions/",
            {"customer_id": customer["id"], "return_url": "https://acme.example/{bad}"},
            ["body", "return_url"],
        ),
        (
            "POST",
            "/v1/orders/",
            {"customer_id": customer["id"], "items": [{"label": "{bad}", "unit_amount": 100}]},
            ["body", "items", 0, "label"],
        ),
    ]


@pytest.mark.parametrize("bad", BREAKS, ids=[repr(b) for b in BREAKS])
def test_single_line_fields_refuse_line_breaks_and_control_characters(
    client: TestClient[Litestar], admin: str, shop: dict[str, Any], bad: str
) -> None:
    for method, path, body, loc in _writes(shop):
        sent = json.loads(json.dumps(body).replace("{bad}", json.dumps(f"x{bad}y")[1:-1]))
        response = client.request(method, path, json=sent, headers=bearer(admin))
        assert response.status_code == 422, (method, path, body, response.text)
        problem = response.json()["detail"][0]
        assert problem["loc"] == loc, (path, problem)
        assert "line breaks or control characters" in problem["msg"]
    # Nothing was written: the organization, product and customer keep their names.
    assert api(client, admin, "GET", f"/v1/organizations/{shop['org']['id']}")["name"] == "Acme"
    assert api(client, admin, "GET", f"/v1/products/{shop['product']['id']}")["name"] == "Plan"


def test_ordinary_text_is_still_accepted(client: TestClient[Litestar], admin: str, shop: dict[str, Any]) -> None:
    path = f"/v1/organizations/{shop['org']['id']}"
    for name in ("Ăcme — Ünïcode 日本 🚀", 'R&D <Tools> "quoted" \\ back'):
        assert api(client, admin, "PATCH", path, 200, json={"name": name})["name"] == name


def test_seed_refuses_control_characters_naming_the_path(client: TestClient[Litestar], admin: str) -> None:
    document = {"organizations": [{"slug": "seeded", "name": "Evil\r\nBcc: x@evil.example"}]}
    response = client.post("/v1/admin/seed", json=document, headers=bearer(admin))
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", "organizations", 0, "name"] and "line breaks" in problem["msg"]


def test_upload_names(client: TestClient[Litestar], admin: str, shop: dict[str, Any]) -> None:
    org_id = shop["org"]["id"]
    refused = client.post(
        "/v1/files/",
        files={"file": ("a.txt", b"hello", "text/plain")},
        data={"organization_id": org_id, "name": "report\r\nX-Evil: 1.pdf"},
        headers=bearer(admin),
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"][0]["loc"] == ["body", "name"]
    # Only in the multipart header (a browser's file name): cleaned, not refused.
    cleaned = client.post(
        "/v1/files/",
        files={"file": ("notes\u2028\u2029v2.txt", b"hello", "text/plain")},
        data={"organization_id": org_id},
        headers=bearer(admin),
    )
    assert cleaned.status_code == 201, cleaned.text
    assert cleaned.json()["name"] == "notes v2.txt"


def test_a_stored_legacy_name_does_not_break_sign_in_mail(
    smtp_settings: Settings, smtp_server: tuple[SMTPInbox, int], clock: Clock
) -> None:
    """A name written before the rules (here straight into the database) still lets customers sign in: the
    code email is sent, on one Subject line, with no injected header."""
    inbox, _ = smtp_server
    org_id = insert_org(smtp_settings, "legacy", name="Evil\r\nBcc: victim@evil.example\u2028X")
    insert_customer(smtp_settings, org_id, "ada@example.com")
    conn = connect_sync(smtp_settings.db_path)
    conn.execute("UPDATE organizations SET email_sender_name = ? WHERE id = ?", ("Sup\nport", org_id))
    conn.commit()
    conn.close()
    with TestClient(app_for(smtp_settings, clock=clock)) as client:
        assert request_code(client, "legacy", "ada@example.com").status_code == 303
        [message] = inbox.wait_for(1)
    assert message["Subject"] == "Your sign-in code for Evil Bcc: victim@evil.example X"
    assert message["Bcc"] is None
    assert message["From"].startswith("Sup port <")
    assert message["To"] == "ada@example.com"


def test_mail_builder_folds_every_header() -> None:
    message = MailMessage(
        to="ada@example.com",
        subject="Hi\nBcc: y@evil.example",
        text="body",
        sender_name="A\x85B",
        reply_to="r@example.com\u2028Cc: z@evil.example",
    )
    built = build_email(message, "Portal <portal@example.com>")
    head = built.as_string().split("\n\n", 1)[0]
    assert built["Subject"] == "Hi Bcc: y@evil.example"
    assert built["From"] == "A B <portal@example.com>"
    # An address header holds one address or is left out: folding alone would still list two.
    assert built["Reply-To"] is None and built["Cc"] is None and built["Bcc"] is None
    assert all(not line.startswith(("Bcc", "Cc")) for line in head.splitlines())


@pytest.mark.parametrize("to", ["ada@example.com\r\nBcc: x@evil.example", "ada@example.com, x@evil.example", "nobody"])
def test_mail_goes_to_exactly_one_address_or_nowhere(to: str) -> None:
    with pytest.raises(ValueError, match="exactly one address"):
        build_email(MailMessage(to=to, subject="Hi", text="body"), "portal@example.com")


@pytest.mark.parametrize(
    "email", ["ada@example.com\x00", "ada\x01@example.com", "ada@example.com\n", "ada@exa\u2028mple.com"]
)
def test_sign_in_and_email_change_addresses_refuse_control_characters(
    client: TestClient[Litestar], admin: str, shop: dict[str, Any], email: str
) -> None:
    response = client.post(
        "/v1/customer-portal/customer-session/request",
        json={"email": email, "organization_id": shop["org"]["id"]},
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "email"]


def test_request_log_escapes_decoded_line_breaks(
    client: TestClient[Litestar], caplog: pytest.LogCaptureFixture
) -> None:
    forged = "%0d%0a2026-01-01T00:00:00.000Z%20INFO%20portal.request%20GET%20/admin%20200%20fake%E2%80%A8more"
    with root_logs_into(caplog), caplog.at_level(logging.INFO, logger="portal.request"):
        client.get(f"/nowhere{forged}")
    [record] = [r for r in caplog.records if r.name == "portal.request" and "nowhere" in r.getMessage()]
    text = TextFormatter().format(record)
    assert text.splitlines() == [text]
    assert "/nowhere\\r\\n2026-01-01T00:00:00.000Z INFO portal.request GET /admin 200 fake\\u2028more" in text
    as_json = JsonFormatter().format(record)
    assert as_json.splitlines() == [as_json]
    assert json.loads(as_json)["path"].startswith("/nowhere\r\n2026")
