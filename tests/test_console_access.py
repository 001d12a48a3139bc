"""The route × role matrix of every console route (walked from the app's route table: a new route without a case
fails), the audit entry of every action, and CSRF refusal on every POST."""

from __future__ import annotations

import time
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from portal.settings import Settings
from tests.console_helpers import (
    Team,
    audit_actions,
    console_cookie,
    make_team,
    plant_session,
    reset_commerce,
    reset_targets,
    sql,
)
from tests.signin_helpers import csrf

# Route name -> (needs the owner role, form body, audit action written when it succeeds).
CASES: dict[str, tuple[bool, dict[str, str], str | None]] = {
    "console.home": (False, {}, None),
    "console.team": (False, {}, None),
    "console.team_invite": (True, {"email": "new@acme.example", "role": "support"}, "team.invite"),
    "console.team_role": (True, {"role": "owner"}, "team.role"),
    "console.team_remove": (True, {}, "team.remove"),
    "console.audit": (False, {}, None),
    "console.tokens": (True, {}, None),
    "console.token_create": (True, {"name": "deploy"}, "token.create"),
    "console.token_revoke": (True, {}, "token.revoke"),
    "console.emails": (False, {}, None),
    "console.email_retry": (False, {}, "email.retry"),
    "console.webhooks": (False, {}, None),
    "console.webhook_redeliver": (True, {}, "webhook.redeliver"),
    "console.webhook_create": (
        True,
        {"url": "https://hooks.acme.example/new", "events": "order.paid", "enabled": "on"},
        "webhook.endpoint_create",
    ),
    "console.webhook_endpoint": (False, {}, None),
    "console.webhook_update": (
        True,
        {"url": "https://hooks.acme.example/changed", "events": "order.refunded", "enabled": "on"},
        "webhook.endpoint_update",
    ),
    "console.webhook_secret": (True, {}, "webhook.endpoint_secret"),
    "console.webhook_delete": (True, {}, "webhook.endpoint_delete"),
    "console.processors": (False, {}, None),
    # An empty key is refused before the processor is called (the checked path is in test_console_processors.py).
    "console.processor_connect": (True, {"api_key": "", "webhook_secret": ""}, None),
    "console.processor_map": (True, {"price_id": "price_console"}, "processor.map_price"),
    "console.processor_replay": (True, {}, "processor.replay"),
    "console.order": (False, {}, None),
    "console.order_resend_receipt": (False, {}, "order.resend_receipt"),
    "console.order_refund": (False, {"amount": "1.00", "reason": "requested_by_customer"}, "order.refund"),
    "console.settings": (True, {}, None),
    "console.settings_preview": (True, {}, None),
    "console.settings_preview_form": (True, {"name": "Acme Preview", "accent_color": "#0b5e3a"}, None),
    "console.settings_logo": (True, {"remove": "on"}, "settings.logo"),
    "console.settings_save": (
        True,
        {"name": "Acme Tools", "accent_color": "#1d4ed8", "support_email": "help@acme.example"},
        "settings.update",
    ),
    # A customer's subscription, license key and grants (commerce_pages): support acts on them too.
    "console.subscription": (False, {}, None),
    "console.subscription_cancel": (False, {"when": "period_end"}, "subscription.cancel"),
    "console.subscription_uncancel": (False, {}, "subscription.uncancel"),
    "console.license_key": (False, {}, None),
    "console.license_key_disable": (False, {}, "license_key.disabled"),
    "console.license_key_enable": (False, {}, "license_key.enabled"),
    "console.license_key_reveal": (False, {}, "license_key.reveal"),
    "console.license_key_rotate": (False, {}, "license_key.rotated"),
    "console.license_key_limit": (False, {"limit_activations": "5"}, "license_key.limit_changed"),
    "console.license_key_expiry": (False, {"expires_at": "2031-01-01"}, "license_key.expiry_changed"),
    "console.license_key_deactivate": (False, {}, "license_key.deactivated"),
    # The customer page itself (/console/acme/customers/{id}) is another section's: its links are not checked here.
    "console.customer_benefits": (False, {}, None),
    "console.customer_benefit_grant": (False, {}, "benefit.grant"),
    "console.customer_benefit_revoke": (False, {}, "benefit.revoke"),
    # The Customers section (portal/console/customer_pages.py): support and owners alike.
    "console.customers": (False, {}, None),
    "console.customer": (False, {}, None),
    "console.customer_sign_in_link": (False, {}, "customer.sign_in_link"),
    "console.customer_email_link": (False, {}, "customer.email_sign_in_link"),
    "console.customer_revoke_sessions": (False, {}, "customer.revoke_sessions"),
    "console.customer_email": (False, {"email": "ada.new@acme.example"}, "customer.change_email"),
    "console.customer_view_as": (False, {}, "customer.view_as"),
    "console.customer_view_as_end": (False, {}, "customer.view_as_end"),
    "console.catalog": (False, {}, None),
    "console.product_new": (True, {}, None),
    "console.product_create": (
        True,
        {"name": "Matrix", "billing": "once", "price-0-currency": "usd", "price-0-amount": "9"},
        "product.create",
    ),
    "console.product": (False, {}, None),
    "console.product_update": (
        True,
        {"name": "Console Pro", "billing": "month", "price-0-currency": "usd", "price-0-amount": "9"},
        "product.update",
    ),
    "console.product_archive": (True, {"archived": "true"}, "product.archive"),
    "console.product_benefits": (True, {"benefit": "__benefit__"}, "product.benefits"),
    "console.benefit_new": (True, {}, None),
    "console.benefit_create": (True, {"description": "Matrix note", "note": "Hi"}, "benefit.create"),
    "console.benefit": (False, {}, None),
    "console.benefit_update": (True, {"description": "Console files"}, "benefit.update"),
    "console.benefit_delete": (True, {}, "benefit.delete"),
    "console.benefit_file_upload": (True, {"version": "2"}, "benefit.file_upload"),
    "console.benefit_file_replace": (True, {"version": "2"}, "benefit.file_replace"),
    "console.benefit_file_archive": (True, {"archived": "true"}, "benefit.file_hide"),
}
# The catalog's upload routes take a file with the form.
UPLOADS = {"console.benefit_file_upload", "console.benefit_file_replace"}
# Actions that answer with the page itself (200): a new token or webhook secret shown once, an unsaved preview.
SHOWN_ONCE = {
    "console.token_create",
    "console.settings_preview_form",
    "console.webhook_create",
    "console.webhook_secret",
    "console.customer_sign_in_link",
    "console.license_key_reveal",
    "console.license_key_rotate",
}
# Instance-level routes (sign-in: test_console_signin.py; public logos: the logo test below).
INSTANCE_ROUTES = {
    "console.logo",
    "console.index",
    "console.request_code",
    "console.authenticate_form",
    "console.authenticate",
    "console.logout",
}


def console_routes(app: Litestar) -> list[tuple[str, str, str]]:
    """(method, path template, route name) of every console route in the app's route table."""
    found = []
    for route in app.routes:
        if not route.path.startswith(("/console", "/logos")):
            continue
        for handler in route.route_handlers:  # type: ignore[attr-defined]
            for method in handler.http_methods:
                if method in ("HEAD", "OPTIONS"):
                    continue
                found.append((method, route.path, str(handler.name)))
    return sorted(found)


def concrete(path: str, team: Team) -> str:
    return (
        path.replace("{slug:str}", "acme")
        .replace("{seller_id:str}", team.target)
        .replace("{token_id:str}", team.token_id)
        .replace("{message_id:str}", team.message_id)
        .replace("{processor:str}/events/{event_id:str}", f"stripe/events/{team.inbound_id}")
        .replace("{processor:str}", "stripe")
        .replace("{event_id:str}", team.event_id)
        .replace("{endpoint_id:str}", team.endpoint_id)
        .replace("{kind:str}", "signin")
        .replace("{product_id:str}", team.product_id)
        .replace("{benefit_id:str}", team.benefit_id)
        .replace("{file_id:str}", team.file_id)
        .replace("{benefit_type:str}", "custom")
        .replace("{subscription_id:str}", team.commerce.subscription_id)
        .replace("{license_key_id:str}", team.commerce.license_key_id)
        .replace("{activation_id:str}", team.commerce.activation_id)
        .replace("{grant_id:str}", team.commerce.grant_id)
        # A customer's benefits page acts on the commerce customer's grants; the customer page on Ada.
        .replace("{customer_id:str}/benefits", f"{team.commerce.customer_id}/benefits")
        .replace("{customer_id:str}", team.customer_id)
        .replace("{order_id:str}", team.order_id)
    )


@pytest.fixture
def team(settings: Settings, client: TestClient[Litestar]) -> Team:
    return make_team(settings)


def test_every_console_route_has_a_case(app: Litestar) -> None:
    names = {name for _, _, name in console_routes(app)}
    assert names - INSTANCE_ROUTES == set(CASES), "a console route without a matrix case (or a stale case)"
    assert names >= INSTANCE_ROUTES


ROLES = ("anonymous", "other_org", "support", "owner", "admin")


def _seller_of(team: Team, role: str) -> str | None:
    return {
        "anonymous": None,
        "other_org": team.stranger,
        "support": team.support,
        "owner": team.owner,
        "admin": team.admin,
    }[role]


def _expected(role: str, method: str, needs_owner: bool) -> int:
    if role == "anonymous":
        return 303
    if role == "other_org":
        return 404
    if role == "support" and needs_owner:
        return 403
    if method == "GET":
        return 200
    return 303


@pytest.mark.parametrize("role", ROLES)
def test_route_role_matrix(
    app: Litestar, client: TestClient[Litestar], settings: Settings, team: Team, role: str
) -> None:
    seller_id = _seller_of(team, role)
    token = plant_session(settings, seller_id) if seller_id else None
    failures = []
    for method, path, name in console_routes(app):
        if name in INSTANCE_ROUTES:
            continue
        needs_owner, body, action = CASES[name]
        reset_targets(settings, team)
        reset_commerce(settings, team.commerce, name)
        console_cookie(client, settings, token)
        before = audit_actions(settings, team.acme_id)
        url = concrete(path, team)
        if name == "console.processor_map":
            body = {**body, "product_id": team.product_id}
        body = {key: team.benefit_id if value == "__benefit__" else value for key, value in body.items()}
        if name == "console.customer_benefit_grant":
            body = {**body, "benefit_id": team.commerce.support_benefit_id}
        if method == "GET":
            response = client.get(url, follow_redirects=False)
        elif name in UPLOADS:
            upload = {"file": ("matrix.zip", b"PK\x03\x04", "application/zip")}
            response = client.post(
                url, data={**body, "_csrf_token": csrf(client)}, files=upload, follow_redirects=False
            )
        else:
            response = client.post(url, data={**body, "_csrf_token": csrf(client)}, follow_redirects=False)
        expected = _expected(role, method, needs_owner)
        if name in SHOWN_ONCE and expected == 303 and role != "anonymous":
            expected = 200  # the page that shows the new token (or webhook secret) once
        if name == "console.processor_connect" and expected == 303 and role != "anonymous":
            expected = 400  # allowed in, and the empty key is named
        if response.status_code != expected:
            failures.append(f"{method} {url} as {role}: {response.status_code}, expected {expected}")
            continue
        if role == "anonymous":
            assert response.headers["location"] == "/console"
        after = audit_actions(settings, team.acme_id)
        if method == "POST" and role != "anonymous" and expected in (200, 303) and action:
            new = after[len(before) :]
            assert [entry[0] for entry in new] == [action], f"{name} as {role}: audit {new}"
            assert new[0][2] == ("admin" if role == "admin" else role)
        else:
            assert after == before, f"{method} {url} as {role} wrote to the audit log"
    assert not failures, "\n".join(failures)


def test_every_post_refuses_a_missing_or_wrong_csrf_token(
    app: Litestar, client: TestClient[Litestar], settings: Settings, team: Team
) -> None:
    console_cookie(client, settings, plant_session(settings, team.owner))
    client.get("/console")  # the CSRF cookie exists: only the form field is missing or wrong
    posts = [(path, name) for method, path, name in console_routes(app) if method == "POST"]
    assert len(posts) >= 11
    before = audit_actions(settings)
    for path, name in posts:
        body = dict(CASES.get(name, (False, {}, None))[1])
        for token in (None, "forged"):
            data: dict[str, Any] = body if token is None else {**body, "_csrf_token": token}
            response = client.post(concrete(path, team), data=data, follow_redirects=False)
            assert response.status_code == 403, (path, token, response.status_code)
    assert audit_actions(settings) == before


def test_support_sees_no_owner_links_and_the_admin_sees_every_organization(
    client: TestClient[Litestar], settings: Settings, team: Team
) -> None:
    console_cookie(client, settings, plant_session(settings, team.support))
    page = client.get("/console/acme").text
    assert "/console/acme/settings" not in page and "/console/acme/tokens" not in page
    listing = client.get("/console").text
    assert "/console/acme" in listing and "/console/globex" not in listing
    console_cookie(client, settings, plant_session(settings, team.admin))
    listing = client.get("/console").text
    assert "/console/acme" in listing and "/console/globex" in listing


def test_the_last_owner_cannot_be_demoted_or_removed(
    client: TestClient[Litestar], settings: Settings, team: Team
) -> None:
    console_cookie(client, settings, plant_session(settings, team.admin))
    for action, data in (("role", {"role": "support"}), ("remove", {})):
        response = client.post(f"/console/acme/team/{team.owner}/{action}", data={**data, "_csrf_token": csrf(client)})
        assert response.status_code == 409
        assert "at least one owner" in response.text
    page = client.get("/console/acme/team").text
    assert "owner@acme.example" in page
    assert [a for a in audit_actions(settings, team.acme_id) if a[0].startswith("team.")] == []


def test_invite_validates_fields_and_emails_the_invitation(
    client: TestClient[Litestar], settings: Settings, team: Team
) -> None:
    console_cookie(client, settings, plant_session(settings, team.owner))
    bad = client.post(
        "/console/acme/team/invite", data={"email": "not an email", "role": "boss", "_csrf_token": csrf(client)}
    )
    assert bad.status_code == 400
    assert 'id="invite-email-error"' in bad.text and 'id="invite-role-error"' in bad.text
    good = client.post(
        "/console/acme/team/invite", data={"email": "New@Acme.example", "role": "owner", "_csrf_token": csrf(client)}
    )
    assert good.status_code == 200 and "Invitation sent." in good.text
    assert "New@Acme.example" in good.text
    # The invitation is sent in the background (the answer never waits on the mail server): wait for it.
    deadline = time.monotonic() + 10
    while not any("New@Acme.example" in p.read_text() for p in (settings.data_dir / "outbox").glob("*.eml")):
        assert time.monotonic() < deadline, "no invitation email"
        time.sleep(0.05)
    assert audit_actions(settings, team.acme_id)[-1] == (
        "team.invite",
        "owner@acme.example",
        "owner",
        "New@Acme.example",
    )


def test_audit_log_page_filters(client: TestClient[Litestar], settings: Settings, team: Team) -> None:
    console_cookie(client, settings, plant_session(settings, team.owner))
    client.post("/console/acme/tokens", data={"name": "deploy", "_csrf_token": csrf(client)})
    client.post(f"/console/acme/emails/{team.message_id}/retry", data={"_csrf_token": csrf(client)})
    everything = client.get("/console/acme/audit").text
    assert "token.create" in everything and "email.retry" in everything
    tokens_only = client.get("/console/acme/audit", params={"action": "token."}).text
    assert "<code>token.create</code>" in tokens_only and "<code>email.retry</code>" not in tokens_only
    nobody = client.get("/console/acme/audit", params={"seller": "support@acme.example"}).text
    assert "No entries match." in nobody
    # Another organization's owner sees none of it.
    console_cookie(client, settings, plant_session(settings, team.stranger))
    assert client.get("/console/globex/audit").text.count("<code>") == 0


def test_previews_show_unsaved_branding_in_same_origin_frames_only(
    client: TestClient[Litestar], settings: Settings, team: Team
) -> None:
    console_cookie(client, settings, plant_session(settings, team.owner))
    page = client.post(
        "/console/acme/settings/preview",
        data={"name": "Acme Preview", "accent_color": "#0b5e3a", "_csrf_token": csrf(client)},
    )
    assert page.status_code == 200 and 'value="Acme Preview"' in page.text
    assert "/console/acme/settings/preview/signin?name=Acme+Preview&amp;accent_color=%230b5e3a" in page.text
    signin = client.get(
        "/console/acme/settings/preview/signin", params={"name": "Acme Preview", "accent_color": "#0b5e3a"}
    )
    assert "Sign in to Acme Preview" in signin.text and "#0b5e3a" in signin.text
    assert signin.headers["x-frame-options"] == "SAMEORIGIN"
    assert "frame-ancestors 'self'" in signin.headers["content-security-policy"]
    email = client.get(
        "/console/acme/settings/preview/email", params={"name": "Acme Preview", "accent_color": "#0b5e3a"}
    )
    assert "Acme Preview" in email.text and "ABC234" in email.text
    # A portal page, a receipt and the receipt email: the real templates, the unsaved branding, sample data only.
    for kind, sample in (
        ("portal", "Sample subscription, monthly"),
        ("receipt", "Sample product"),
        ("receipt_email", "SAMPLE-0000-0000-0000"),
    ):
        preview = client.get(
            f"/console/acme/settings/preview/{kind}", params={"name": "Acme Preview", "accent_color": "#0b5e3a"}
        )
        assert preview.status_code == 200, (kind, preview.text[:300])
        assert "Acme Preview" in preview.text and "#0b5e3a" in preview.text, kind
        assert sample in preview.text, kind
        if kind != "receipt_email":
            assert "sample.customer@example.net" in preview.text, kind
        assert preview.headers["x-frame-options"] == "SAMEORIGIN", kind
    assert 'class="orders"' in client.get("/console/acme/settings/preview/portal").text  # the orders list's table
    assert client.get("/console/acme/settings/preview/nope").status_code == 404
    frames = client.get("/console/acme/settings").text
    for kind in ("signin", "portal", "receipt", "email", "receipt_email"):
        assert f"/console/acme/settings/preview/{kind}?name=Acme" in frames
    # A refused colour is not previewed as if it were fine; nothing was saved.
    light = client.get("/console/acme/settings/preview/signin", params={"accent_color": "#ffff00"})
    assert "#ffff00" not in light.text
    assert sql(settings, "SELECT name FROM organizations WHERE slug = 'acme'")[0][0] == "Acme"
    # Every other page still refuses to be framed.
    assert client.get("/console/acme/settings").headers["x-frame-options"] == "DENY"


def test_seller_tax_id_is_validated_and_saved_with_the_settings(
    client: TestClient[Litestar], settings: Settings, team: Team
) -> None:
    console_cookie(client, settings, plant_session(settings, team.owner))
    base = {"name": "Acme", "accent_color": "#1d4ed8", "_csrf_token": csrf(client)}
    refused = client.post("/console/acme/settings", data={**base, "tax_country": "DE", "tax_id": "DE123"})
    assert refused.status_code == 400 and 'id="f-tax_id-error"' in refused.text
    assert 'value="DE123"' in refused.text  # kept as typed
    no_country = client.post("/console/acme/settings", data={**base, "tax_country": "", "tax_id": "DE136695976"})
    assert no_country.status_code == 400 and 'id="f-tax_country-error"' in no_country.text
    saved = client.post(
        "/console/acme/settings", data={**base, "tax_country": "de", "tax_id": "DE 136 695 976"}, follow_redirects=False
    )
    assert saved.status_code == 303
    (stored,) = sql(settings, "SELECT settings FROM organizations WHERE slug = 'acme'")
    assert '"invoice":{"tax_id":"DE136695976","tax_id_format":"eu_vat","country":"DE"}' in stored[0]
    assert 'value="DE136695976"' in client.get("/console/acme/settings").text
    entry = audit_actions(settings, team.acme_id)[-1]
    assert entry[0] == "settings.update"


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64


def test_logo_upload_is_checked_stored_served_and_shown(
    client: TestClient[Litestar], settings: Settings, team: Team
) -> None:
    console_cookie(client, settings, plant_session(settings, team.owner))

    def upload(name: str, content: bytes, kind: str) -> Any:
        return client.post(
            "/console/acme/settings/logo",
            data={"_csrf_token": csrf(client)},
            files={"logo": (name, content, kind)},
            follow_redirects=False,
        )

    svg = upload("logo.svg", b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "image/png")
    assert svg.status_code == 400 and 'id="f-logo-error"' in svg.text
    big = upload("logo.png", PNG + b"\x00" * 49 * 1024, "image/png")
    assert big.status_code in (400, 413)
    assert upload("logo.png", PNG, "image/png").status_code == 303
    (avatar_url,) = sql(settings, "SELECT avatar_url FROM organizations WHERE slug = 'acme'")[0]
    assert avatar_url.startswith("http://testserver.local/logos/") and avatar_url.endswith(".png")
    served = client.get(avatar_url.removeprefix("http://testserver.local"))
    assert served.status_code == 200 and served.content == PNG
    assert served.headers["content-type"] == "image/png" and served.headers["x-content-type-options"] == "nosniff"
    assert avatar_url in client.get("/acme/portal").text  # the customers' sign-in page shows it
    assert client.get("/logos/../etc/passwd").status_code == 404
    assert client.get("/logos/x/0123456789abcdef.png").status_code == 404
    assert [a[0] for a in audit_actions(settings, team.acme_id)] == ["settings.logo"]
