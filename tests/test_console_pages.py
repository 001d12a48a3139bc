"""Every console page and message under the pseudo-locale: all text goes through gettext (the customer pages'
check, ``tests/test_i18n_pseudo.py``, applied to ``templates/console/``), and every console template is rendered
by some scenario here."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from litestar import Litestar
from litestar.testing import TestClient

from portal.connectors.base import registry
from portal.console.dashboard import last_months, month_labels
from portal.resources import templates_dir
from portal.settings import Settings
from portal.webhooks.events import EVENT_TYPES
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
    # Webhooks: a refused endpoint, a created one (its secret shown once), an endpoint's page with its log, a
    # refused edit, a rotated secret.
    keep(
        "webhook errors",
        client.post("/console/acme/webhooks/endpoints", data={"url": "ftp://x", "name": "a\nb", "_csrf_token": token}),
        400,
    )
    created = client.post(
        "/console/acme/webhooks/endpoints",
        data={"url": "https://hooks.example/in", "events": "order.paid", "enabled": "on", "_csrf_token": token},
    )
    keep("webhook created", created)
    endpoint = f"/console/acme/webhooks/endpoints/{team.endpoint_id}"
    keep("webhook endpoint", client.get(endpoint))
    keep("webhook edit errors", client.post(endpoint, data={"url": "nope", "_csrf_token": token}), 400)
    keep("webhook secret", client.post(f"{endpoint}/secret", data={"_csrf_token": token}))
    for done in ("saved", "redelivered", "sending"):
        keep(f"webhook done={done}", client.get(f"{endpoint}?done={done}"))
    keep("webhooks deleted", client.get("/console/acme/webhooks?done=deleted"))
    # Processors: an empty connect form names the field in its processor's words.
    keep(
        "connect errors",
        client.post("/console/acme/processors/paddle/connect", data={"api_key": "", "_csrf_token": token}),
        400,
    )
    client.post(f"/console/acme/emails/{team.message_id}/retry", data={"_csrf_token": token})
    keep("audit with entries", client.get("/console/acme/audit"))
    keep("audit filtered", client.get("/console/acme/audit?action=token.&seller=owner@acme.example"))
    keep("emails filtered", client.get("/console/acme/emails?status=failed"))
    # The catalog: the overview, a product's page and form (with refused fields), every benefit type's form, a
    # benefit's page with its files, a note's preview, and the notices after each action.
    keep("catalog", client.get("/console/acme/catalog"))
    keep("new product", client.get("/console/acme/catalog/products/new"))
    keep(
        "product errors",
        client.post(
            "/console/acme/catalog/products", data={"name": "", "price-0-currency": "xx", "_csrf_token": token}
        ),
        400,
    )
    keep("product", client.get(f"/console/acme/catalog/products/{team.product_id}?done=created"))
    for kind in (
        "custom",
        "license_keys",
        "downloadables",
        "discord",
        "github_repository",
        "meter_credit",
        "feature_flag",
    ):
        keep(f"new {kind}", client.get(f"/console/acme/catalog/benefits/new/{kind}"))
    keep(
        "benefit errors",
        client.post(
            "/console/acme/catalog/benefits/new/license_keys",
            data={"description": "", "prefix": "no!", "activations_limit": "99", "_csrf_token": token},
        ),
        400,
    )
    keep(
        "note preview",
        client.post(
            "/console/acme/catalog/benefits/new/custom",
            data={
                "description": "Console files",  # data (typed words are not the page's own text)
                "note": "[Console files](https://acme.example/docs)",
                "preview": "1",
                "_csrf_token": token,
            },
        ),
    )
    keep("benefit with files", client.get(f"/console/acme/catalog/benefits/{team.benefit_id}?done=uploaded"))
    keep(
        "file error",
        client.post(
            f"/console/acme/catalog/benefits/{team.benefit_id}/files",
            data={"_csrf_token": token},
            files={"file": ("a.zip", b"", "application/zip")},
        ),
        400,
    )
    for done in ("saved", "archived", "unarchived", "benefits", "benefit_created", "benefit_deleted", "replaced"):
        keep(f"catalog done={done}", client.get(f"/console/acme/catalog?done={done}"))
    # Customers: the newest list, searches, a customer's page, the sign-in link shown once, a refused email change.
    keep("customers", client.get("/console/acme/customers"))
    keep("customer search", client.get("/console/acme/customers?q=a"))
    keep("customer search, nothing", client.get("/console/acme/customers?q=zz"))
    customer = f"/console/acme/customers/{team.customer_id}"
    client.post(f"{customer}/email-sign-in-link", data={"_csrf_token": token})
    client.post(f"{customer}/revoke-sessions", data={"_csrf_token": token})
    keep("customer", client.get(customer))
    for done in ("link_emailed", "sessions_revoked", "email_changed", "view_ended"):
        keep(f"customer done={done}", client.get(f"{customer}?done={done}"))
    keep("customer link", client.post(f"{customer}/sign-in-link", data={"_csrf_token": token}))
    keep("customer email error", client.post(f"{customer}/email", data={"email": "x", "_csrf_token": token}), 400)
    # A customer's subscription, license key and benefits (commerce_pages), with their notices and refusals.
    shop = team.commerce
    subscription = f"/console/acme/subscriptions/{shop.subscription_id}"
    key = f"/console/acme/license-keys/{shop.license_key_id}"
    benefits = f"/console/acme/customers/{shop.customer_id}/benefits"
    keep("subscription", client.get(subscription))
    keep("bad when", client.post(subscription + "/cancel", data={"when": "x", "_csrf_token": token}), 400)
    client.post(subscription + "/cancel", data={"when": "period_end", "_csrf_token": token})
    keep("subscription canceling", client.get(subscription + "?done=canceled"))
    keep(
        "subscription conflict",
        client.post(subscription + "/cancel", data={"when": "period_end", "_csrf_token": token}),
        409,
    )
    keep("license key", client.get(key))
    keep("key revealed", client.post(key + "/reveal", data={"_csrf_token": token}))
    keep("key rotated", client.post(key + "/rotate", data={"_csrf_token": token}))
    keep("limit error", client.post(key + "/limit", data={"limit_activations": "0", "_csrf_token": token}), 400)
    keep("expiry error", client.post(key + "/expiry", data={"expires_at": "soon", "_csrf_token": token}), 400)
    client.post(key + "/disable", data={"_csrf_token": token})
    keep("key disabled", client.get(key + "?done=disabled"))
    keep("benefits", client.get(benefits))
    keep("grant error", client.post(benefits + "/grant", data={"benefit_id": "nope", "_csrf_token": token}), 400)
    client.post(benefits + f"/{shop.grant_id}/revoke", data={"_csrf_token": token})
    keep("benefits revoked", client.get(benefits + "?done=revoked"))
    client.post(subscription + "/cancel", data={"when": "now", "_csrf_token": token})
    keep("subscription ended", client.get(subscription + "?done=ended"))
    order = f"/console/acme/orders/{team.order_id}"
    keep("order", client.get(order))
    keep("refund error", client.post(f"{order}/refund", data={"amount": "x", "reason": "y", "_csrf_token": token}), 400)
    client.post(f"{order}/refund", data={"amount": "1.00", "reason": "duplicate", "_csrf_token": token})
    for done in ("refunded", "resent", "refund_pending"):
        keep(f"order done={done}", client.get(f"{order}?done={done}"))
    # A support seller on an owner-only page: the 403 page.
    console_cookie(client, settings, plant_session(settings, team.support))
    keep("support on settings", client.get("/console/acme/settings"), 403)
    keep("support on the catalog", client.get(f"/console/acme/catalog/benefits/{team.benefit_id}"))

    # The new token is shown once and stored only as an HMAC: data the database cannot list.
    new_token = re.search(r'id="new-token">([^<]+)<', pages["token created"])
    assert new_token is not None
    secrets = re.findall(r'id="new-secret">([^<]+)<', pages["webhook created"] + pages["webhook secret"])
    assert len(secrets) == 2
    # The audit log shows each entry's details as stored (JSON): its keys are machine names, data like its values.
    detail_keys = {
        key for (details,) in sql(settings, "SELECT details FROM seller_audit_log") for key in json.loads(details)
    }
    # Processors' names are proper names (data, not text to translate).
    labels = [processor.label for processor in registry().values()]
    # Currency codes are data (the home page's recurring revenue of the commerce customer's subscription: USD); so
    # is the failed email's error, which the outbox worker may replace (the retried email is sent again) before
    # the database is read here.
    # An activation's meta is shown as the customer's software sent it: its keys are data too; so is the key
    # revealed before it was rotated.
    meta_keys = {
        key for (meta,) in sql(settings, "SELECT meta FROM license_key_activations") for key in json.loads(meta)
    }
    # Webhook event types are Polar's names (data); a delivery's logged answer is the receiver's text. The charts'
    # month names come from CLDR through Babel (dashboard.month_labels), like dates: not gettext.
    months = [text for month in last_months(datetime.now(UTC)) for text in month_labels(month, "en")]
    sign_in_link = re.search(r'id="sign-in-link" type="text" readonly value="([^"]+)"', pages["customer link"])
    assert sign_in_link is not None
    data = data_strings(
        settings,
        new_token.group(1),
        sign_in_link.group(1).replace("&amp;", "&"),
        *secrets,
        *labels,
        *detail_keys,
        *EVENT_TYPES,
        *meta_keys,
        team.commerce.key,
        "USD",
        *months,
        "server error",  # the helper's failed webhook attempt
        "mailbox full",  # the helper's failed email, before "Send again" lets the worker overwrite its error
    )
    for where, body in pages.items():
        assert_all_translated(body, data, where)
    console_templates = {
        str(path.relative_to(templates_dir())) for path in (templates_dir() / "console").rglob("*.html")
    }
    missing = console_templates - rendered_templates
    assert not missing, f"console templates no scenario renders (add one): {sorted(missing)}"
