"""Viewing the portal as a customer from the console (``portal.sessions.view_as``): read-only on every write route
of the portal and the customer-portal API (walked from the app's route table), bannered, audited, bound to the
seller's console session, and never in place of the customer session the browser already had."""

from __future__ import annotations

import re

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from portal.sessions.view_as import cookie_name as view_cookie_name
from portal.settings import Settings
from tests.browser_helpers import table_fingerprint
from tests.console_helpers import audit_actions, console_cookie, make_team, plant_session, sql
from tests.signin_helpers import csrf, sign_in_browser

pytestmark = pytest.mark.seeded


def _customer(settings: Settings, email: str) -> str:
    return str(
        sql(
            settings,
            "SELECT c.id FROM customers c JOIN organizations o ON o.id = c.organization_id "
            "WHERE o.slug = 'acme' AND c.email = ?",
            (email,),
        )[0][0]
    )


def _start_viewing(client: TestClient[Litestar], settings: Settings, customer_id: str) -> None:
    answer = client.post(
        f"/console/acme/customers/{customer_id}/view-as", data={"_csrf_token": csrf(client)}, follow_redirects=False
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/acme/portal"
    assert view_cookie_name(settings, "acme") in answer.headers["set-cookie"]


def _write_routes(app: Litestar) -> list[tuple[str, str]]:
    """(method, concrete path) of every non-GET route of the portal pages and the customer-portal API, plus the
    GETs that change something (downloads)."""
    found = []
    for route in app.routes:
        path = route.path
        if not (path.startswith("/{slug:str}/portal") or path.startswith("/v1/customer-portal")):
            continue
        for handler in route.route_handlers:  # type: ignore[attr-defined]
            for method in handler.http_methods:
                writes = method not in ("GET", "HEAD", "OPTIONS") or "/downloads/" in path or "downloadables/{" in path
                if writes:
                    concrete = re.sub(r"\{(\w+):\w+\}", lambda m: "acme" if m.group(1) == "slug" else "x1", path)
                    found.append((method, concrete))
    return sorted(set(found))


def test_viewing_is_read_only_on_every_write_route_bannered_and_leaves_the_own_session(
    app: Litestar, client: TestClient[Litestar], settings: Settings
) -> None:
    team = make_team(settings)
    alex, jordan = _customer(settings, "alex@example.com"), _customer(settings, "jordan@example.com")
    # This browser is also signed in to acme's portal as Alex (a seller testing with their own account).
    sign_in_browser(client, settings, "acme", team.acme_id, alex)
    console_cookie(client, settings, plant_session(settings, team.support))
    _start_viewing(client, settings, jordan)
    assert audit_actions(settings, team.acme_id)[-1][:4] == (
        "customer.view_as",
        "support@acme.example",
        "support",
        jordan,
    )

    for path in ("/acme/portal", "/acme/portal/orders", "/acme/portal/subscriptions", "/acme/portal/benefits"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert "jordan@example.com" in page.text and "alex@example.com" not in page.text, path
        assert "Viewing as jordan@example.com — read only." in page.text, path
        assert f'href="/console/acme/customers/{jordan}"' in page.text, path

    before = table_fingerprint(settings)
    routes = _write_routes(app)
    assert len(routes) >= 15, routes  # the portal's forms and the API's writes are all there
    token = csrf(client)
    for method, path in routes:
        answer = client.request(method, path, data={"_csrf_token": token}, follow_redirects=False)
        assert answer.status_code == 403, (method, path, answer.status_code)
        assert "Read only" in answer.text, (method, path)
    link = client.get("/acme/portal", params={"customer_session_token": "polar_cst_x"}, follow_redirects=False)
    assert link.status_code == 403  # a pre-authenticated link would open a session
    assert table_fingerprint(settings) == before

    # Stop viewing: Alex's own session is back, untouched.
    stop = client.post(
        f"/console/acme/customers/{jordan}/view-as/end", data={"_csrf_token": csrf(client)}, follow_redirects=False
    )
    assert stop.status_code == 303
    back = client.get("/acme/portal")
    assert "alex@example.com" in back.text and "Viewing as" not in back.text
    signed_out = client.post("/acme/portal/logout", data={"_csrf_token": csrf(client)}, follow_redirects=False)
    assert signed_out.status_code == 303
    assert [a[0] for a in audit_actions(settings, team.acme_id)][-2:] == ["customer.view_as", "customer.view_as_end"]


def test_a_view_ends_with_the_console_session_and_its_token_is_no_customer_session(
    client: TestClient[Litestar], settings: Settings
) -> None:
    team = make_team(settings)
    jordan = _customer(settings, "jordan@example.com")
    console_cookie(client, settings, plant_session(settings, team.owner))
    _start_viewing(client, settings, jordan)
    token = client.cookies.get(view_cookie_name(settings, "acme"))
    assert token
    assert "Viewing as jordan@example.com" in client.get("/acme/portal").text
    # Another organization's portal in the same browser is not viewed, nor refused.
    lumen = client.get("/lumen/portal")
    assert "Viewing as" not in lumen.text and "jordan@example.com" not in lumen.text
    asked = client.post("/lumen/portal/request", data={"email": "x@example.com", "_csrf_token": csrf(client)})
    assert asked.status_code != 403
    # In the seller's language (German), the banner too.
    german = client.get("/acme/portal/orders", params={"locale": "de"}).text
    assert "Ansicht als jordan@example.com – nur lesen." in german and "Zurück zur Konsole" in german
    # The view token as the customer's own session cookie: refused (it would not be read-only there).
    client.cookies.delete(view_cookie_name(settings, "acme"))
    client.cookies.set("portal_session_acme", token, domain=client.base_url.host, path="/")
    assert client.get("/acme/portal/orders", follow_redirects=False).status_code == 303
    client.cookies.delete("portal_session_acme")
    # Signing out of the console ends the view.
    client.cookies.set(view_cookie_name(settings, "acme"), token, domain=client.base_url.host, path="/")
    client.post("/console/logout", data={"_csrf_token": csrf(client)}, follow_redirects=False)
    after = client.get("/acme/portal", follow_redirects=False)
    assert "Viewing as" not in after.text and "jordan@example.com" not in after.text
    signed_out = client.post("/acme/portal/logout", data={"_csrf_token": csrf(client)}, follow_redirects=False)
    assert signed_out.status_code != 403  # no live view: not refused
