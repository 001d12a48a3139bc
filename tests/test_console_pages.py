"""Every console page and message under the pseudo-locale: all text goes through gettext (the customer pages'
check, ``tests/test_i18n_pseudo.py``, applied to ``templates/console/``), and every console template is rendered
by some scenario here."""

from __future__ import annotations

import json
import re

from litestar import Litestar
from litestar.testing import TestClient

from portal.connectors.base import registry
from portal.resources import templates_dir
from portal.settings import Settings
from tests.console_helpers import console_cookie, insert_seller, make_team, plant_session, sql
from tests.signin_helpers import csrf
from tests.test_i18n_pseudo import assert_all_translated, client, data_strings, rendered_templates

__all__ = ["client", "rendered_templates"]  # fixtures: the pseudo-locale app of test_i18n_pseudo


def test_every_console_page_goes_through_gettext(
    client: TestClient[Litestar], settings: Settings, rendered_templates: set[str]
) -> None:
    team = make_team(settings)
    pages: dict[str, str] = {}

    def keep(where: str, response, status: int = 200) -> None:  # type: ignore[no-untyped-def]
        assert response.status_code == status, (where, response.status_code, response.text[:300])
        pages[where] = response.text

    # Signed out: the sign-in form, a refused address, the code page, a wrong code.
    keep("/console", client.get("/console"))
    keep("bad email", client.post("/console/request", data={"email": "nope", "_csrf_token": csrf(client)}), 400)
    client.post("/console/request", data={"email": "owner@acme.example", "_csrf_token": csrf(client)})
    keep("/console/authenticate", client.get("/console/authenticate"))
    keep("wrong code", client.post("/console/authenticate", data={"code": "AAAAAA", "_csrf_token": csrf(client)}), 400)

    # A seller of no organization, an instance admin, an owner.
    console_cookie(client, settings, plant_session(settings, insert_seller(settings, "lonely@example.com")))
    keep("no organizations", client.get("/console"))
    console_cookie(client, settings, plant_session(settings, team.admin))
    keep("admin index", client.get("/console"))
    console_cookie(client, settings, plant_session(settings, team.owner))
    for path in ("", "/team", "/audit", "/tokens", "/emails", "/webhooks", "/processors", "/settings"):
        keep(path or "/", client.get(f"/console/acme{path}"))
    for done in ("invited", "role", "removed", "revoked", "retried", "redelivered", "saved"):
        keep(f"done={done}", client.get(f"/console/acme/team?done={done}"))
    token = csrf(client)
    keep(
        "invite errors",
        client.post("/console/acme/team/invite", data={"email": "x", "role": "boss", "_csrf_token": token}),
        400,
    )
    keep(
        "last owner",
        client.post(f"/console/acme/team/{team.owner}/remove", data={"_csrf_token": token}),
        409,
    )
    keep("token name error", client.post("/console/acme/tokens", data={"name": "", "_csrf_token": token}), 400)
    keep("token created", client.post("/console/acme/tokens", data={"name": "deploy", "_csrf_token": token}))
    keep(
        "settings errors",
        client.post(
            "/console/acme/settings",
            data={"name": "Acme", "accent_color": "#ffff00", "support_email": "nope", "_csrf_token": token},
        ),
        400,
    )
    keep(
        "settings preview",
        client.post(
            "/console/acme/settings/preview", data={"name": "Acme", "accent_color": "#0b5e3a", "_csrf_token": token}
        ),
    )
    logo = "/console/acme/settings/logo"
    keep(
        "logo error",
        client.post(logo, data={"_csrf_token": token}, files={"logo": ("x.txt", b"hi", "text/plain")}),
        400,
    )
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    client.post(logo, data={"_csrf_token": token}, files={"logo": ("logo.png", png, "image/png")})
    keep("settings with a logo", client.get("/console/acme/settings"))
    client.post(f"/console/acme/emails/{team.message_id}/retry", data={"_csrf_token": token})
    keep("audit with entries", client.get("/console/acme/audit"))
    keep("audit filtered", client.get("/console/acme/audit?action=token.&seller=owner@acme.example"))
    keep("emails filtered", client.get("/console/acme/emails?status=failed"))
    order = f"/console/acme/orders/{team.order_id}"
    keep("order", client.get(order))
    keep("refund error", client.post(f"{order}/refund", data={"amount": "x", "reason": "y", "_csrf_token": token}), 400)
    client.post(f"{order}/refund", data={"amount": "1.00", "reason": "duplicate", "_csrf_token": token})
    for done in ("refunded", "resent", "refund_pending"):
        keep(f"order done={done}", client.get(f"{order}?done={done}"))
    # A support seller on an owner-only page: the 403 page.
    console_cookie(client, settings, plant_session(settings, team.support))
    keep("support on settings", client.get("/console/acme/settings"), 403)

    # The new token is shown once and stored only as an HMAC: data the database cannot list.
    new_token = re.search(r'id="new-token">([^<]+)<', pages["token created"])
    assert new_token is not None
    # The audit log shows each entry's details as stored (JSON): its keys are machine names, data like its values.
    detail_keys = {
        key for (details,) in sql(settings, "SELECT details FROM seller_audit_log") for key in json.loads(details)
    }
    # Processors' names are proper names (data, not text to translate).
    labels = [processor.label for processor in registry().values()]
    data = data_strings(settings, new_token.group(1), *labels, *detail_keys)
    for where, body in pages.items():
        assert_all_translated(body, data, where)
    console_templates = {
        str(path.relative_to(templates_dir())) for path in (templates_dir() / "console").rglob("*.html")
    }
    missing = console_templates - rendered_templates
    assert not missing, f"console templates no scenario renders (add one): {sorted(missing)}"
