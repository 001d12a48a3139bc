"""Security headers and cookie flags (DESIGN §5), walked over every HTML route the app registers.

The walker enumerates ``app.routes`` (GET routes outside ``/v1``, ``/docs`` and ``/static``), fills the path
parameters with real demo ids (and valid signatures where a route needs one), and requests each one signed out
and signed in. Every answer must carry a CSP without inline script and with ``frame-ancestors 'none'``,
``nosniff``, a Referrer-Policy, and ``no-store`` whenever a customer is signed in; HTML must not contain inline
scripts or event-handler attributes (the CSP would block them). A new route without ids below fails the walk.

Cookies set along the whole sign-in flow (CSRF, challenge, session, logout, locale, pre-authenticated link) are
HttpOnly and SameSite=Lax; with an https ``base_url`` also Secure, ``__Host-``-prefixed, ``Path=/`` and
host-only; over plain http not Secure (a browser would drop them).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from bs4 import BeautifulSoup
from litestar import Litestar
from litestar.testing import TestClient

from portal.clock import Clock
from portal.customer_portal.links import document_url
from portal.db import connect_sync
from portal.settings import Settings
from tests.apps import app_for
from tests.browser_helpers import copy_seeded, customer_id, new_session, one, org_id
from tests.signin_helpers import insert_session

OWNER = "alex@example.com"
SKIPPED_PREFIXES = ("/v1", "/docs", "/static")
# Pages that need no customer: they answer the same signed in or out.
PUBLIC_PATHS = {"/", "/healthz", "/readyz"}


@dataclass
class Site:
    client: TestClient[Litestar]
    settings: Settings
    app: Litestar


def _site(seeded: Path, tmp_path: Path, base_url: str) -> Iterator[Site]:
    settings = Settings(
        data_dir=copy_seeded(seeded, tmp_path / urlsplit(base_url).scheme),
        base_url=base_url,
        secret_key="headers-secret-key-not-for-production",
        argon2_profile="test",
    )
    app = app_for(settings)
    with TestClient(app, base_url=base_url) as client:
        client.follow_redirects = False
        yield Site(client, settings, app)


@pytest.fixture
def https_site(seeded: Path, tmp_path: Path) -> Iterator[Site]:
    yield from _site(seeded, tmp_path, "https://portal.example.com")


@pytest.fixture
def http_site(seeded: Path, tmp_path: Path) -> Iterator[Site]:
    yield from _site(seeded, tmp_path, "http://portal.example.com")


def html_get_routes(app: Litestar) -> list[str]:
    """Every GET route path outside the JSON API, the docs and the static files."""
    paths = []
    for route in app.routes:
        if route.path.startswith(SKIPPED_PREFIXES) or "GET" not in getattr(route, "methods", ()):
            continue
        paths.append(route.path)
    return sorted(set(paths))


def _ids(site: Site) -> dict[str, str]:
    """Real values for every path parameter, the owner's objects in acme; an invoice is issued first."""
    settings = site.settings
    acme = org_id(settings, "acme")
    owner = customer_id(settings, "acme", OWNER)
    order = one(
        settings,
        "SELECT id FROM orders WHERE customer_id = ? AND receipt_number IS NOT NULL ORDER BY created_at LIMIT 1",
        (owner,),
    )["id"]
    token = insert_session(settings, acme, owner, kind="api")
    bearer = {"Authorization": f"Bearer {token}"}
    current = site.client.get(f"/v1/customer-portal/orders/{order}", headers=bearer).json()["billing_address"]
    address = current or {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}
    patched = site.client.patch(
        f"/v1/customer-portal/orders/{order}",
        json={"billing_name": "Alex Example", "billing_address": address},
        headers=bearer,
    )
    assert patched.status_code == 200, patched.text
    issued = site.client.post(f"/v1/customer-portal/orders/{order}/invoice", headers=bearer)
    assert issued.status_code == 202, issued.text
    return {
        "slug": "acme",
        "order_id": order,
        "subscription_id": one(settings, "SELECT id FROM subscriptions WHERE external_id = 'acme-sub-alex-pro'")["id"],
        "invoice_id": one(settings, "SELECT id FROM invoices WHERE order_id = ?", (order,))["id"],
        "product_id": one(settings, "SELECT id FROM products WHERE external_id = 'acme-pro-yearly'")["id"],
        "organization_id": acme,
        "customer_id": owner,
        "download": _download_url(site),
        **_activation_ids(site.settings, owner),
        # The console's branding preview (answers signed-out customers with the 303 to /console; its same-origin
        # framing for signed-in sellers is tested in tests/test_console_access.py).
        "kind": "signin",
        "endpoint_id": "an-endpoint",  # a console webhook endpoint's page (signed out: the same 303)
        # The console catalog's pages (signed out: the same 303).
        "benefit_type": "custom",
        "benefit_id": "a-benefit",
        "file_id": "a-file",
        "name": "0123456789abcdef.png",  # an organization logo (none stored: the 404 page's headers)
    }


def _activation_ids(settings: Settings, owner: str) -> dict[str, str]:
    """A key of the owner with an activation the customer may remove, its benefit letting them rotate the key
    (so the confirmation pages of both answer 200)."""
    row = one(
        settings,
        "SELECT a.id AS activation_id, k.id AS license_key_id, k.benefit_id FROM license_key_activations a "
        "JOIN license_keys k ON k.id = a.license_key_id JOIN benefits b ON b.id = k.benefit_id "
        "WHERE k.customer_id = ? AND json_extract(b.properties, '$.activations.enable_customer_admin') "
        "ORDER BY a.id LIMIT 1",
        (owner,),
    )
    conn = connect_sync(settings.db_path)
    try:
        conn.execute(
            "UPDATE benefits SET properties = json_set(properties, '$.allow_customer_rotation', json('true')) "
            "WHERE id = ?",
            (row["benefit_id"],),
        )
        conn.commit()
    finally:
        conn.close()
    return {"license_key_id": row["license_key_id"], "activation_id": row["activation_id"]}


def _download_url(site: Site) -> str:
    """A signed download link, as the Benefits page renders it for the owner."""
    name, token = new_session(site.settings, "acme", OWNER)
    saved = dict(site.client.cookies)
    site.client.cookies.set(name, token)
    page = site.client.get("/acme/portal/benefits")
    site.client.cookies.clear()
    site.client.cookies.update(saved)
    assert page.status_code == 200
    link = BeautifulSoup(page.text, "html.parser").find("a", href=re.compile(r"^/acme/portal/downloads/"))
    assert link is not None, "no download link on the Benefits page"
    return str(link["href"])


def _fill(site: Site, template: str, ids: dict[str, str]) -> str:
    """A concrete URL for a route template (query strings where the route needs one)."""
    if template == "/{slug:str}/portal/downloads/{grant_id:str}/{file_id:str}":
        return ids["download"]
    path = re.sub(r"\{(\w+):\w+\}", lambda m: ids[m.group(1)], template)
    now = Clock().now()
    owner = {"organization_id": ids["organization_id"], "customer_id": ids["customer_id"]}
    if template.startswith("/r/receipts/"):
        return document_url(site.settings, "receipt", document_id=ids["order_id"], now=now, **owner)
    if template.startswith("/r/invoices/"):
        return document_url(site.settings, "invoice", document_id=ids["invoice_id"], now=now, **owner)
    if template.endswith("/change-plan/confirm"):
        return f"{path}?product_id={ids['product_id']}"
    if template.endswith(("/portal/link", "/portal/email-change")):
        return f"{path}?token=not-a-real-token"
    return path


def _directives(csp: str) -> dict[str, str]:
    parts = (part.strip().split(None, 1) for part in csp.split(";") if part.strip())
    return {part[0].lower(): (part[1] if len(part) > 1 else "") for part in parts}


def assert_security_headers(response: httpx.Response, *, signed_in: bool, where: str) -> None:
    headers = response.headers
    csp = headers.get("content-security-policy", "")
    directives = _directives(csp)
    script_src = directives.get("script-src", directives.get("default-src", ""))
    assert script_src, f"{where}: CSP has no script-src/default-src: {csp!r}"
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src, f"{where}: {csp!r}"
    assert directives.get("frame-ancestors") == "'none'", f"{where}: {csp!r}"
    assert directives.get("object-src") == "'none'", f"{where}: {csp!r}"
    assert headers.get("x-content-type-options") == "nosniff", where
    assert headers.get("referrer-policy") in {"no-referrer", "same-origin", "strict-origin-when-cross-origin"}, where
    if signed_in:
        assert "no-store" in headers.get("cache-control", ""), f"{where}: {headers.get('cache-control')!r}"


def assert_no_inline_script(response: httpx.Response, where: str) -> None:
    if not response.headers.get("content-type", "").startswith("text/html"):
        return
    soup = BeautifulSoup(response.text, "html.parser")
    for script in soup.find_all("script"):
        assert script.get("src"), f"{where}: inline <script> (blocked by the CSP): {str(script)[:120]}"
    for tag in soup.find_all(True):
        handlers = [name for name in tag.attrs if name.lower().startswith("on")]
        assert not handlers, f"{where}: inline event handler {handlers} on <{tag.name}>"
    for link in soup.find_all(href=True):
        assert not str(link["href"]).strip().lower().startswith("javascript:"), f"{where}: javascript: URL"


def _set_cookies(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


def assert_cookie_flags(raw: str, *, https: bool) -> None:
    jar: SimpleCookie = SimpleCookie()
    jar.load(raw)
    assert len(jar) == 1, raw
    name, morsel = next(iter(jar.items()))
    lowered = raw.lower()
    assert "httponly" in lowered, f"not HttpOnly: {raw}"
    assert morsel["samesite"].lower() == "lax", f"not SameSite=Lax: {raw}"
    assert not morsel["domain"], f"not host-only: {raw}"
    if https:
        assert morsel["secure"], f"not Secure over https: {raw}"
        assert name.startswith("__Host-"), f"no __Host- prefix over https: {raw}"
        assert morsel["path"] == "/", f"__Host- cookie needs Path=/: {raw}"
    else:
        assert not morsel["secure"], f"Secure over http would be dropped by browsers: {raw}"
        assert not name.startswith("__Host-"), raw


def walk(site: Site, *, signed_in: bool) -> list[str]:
    """GET every HTML route; returns the URLs walked."""
    ids = _ids(site)
    site.client.cookies.clear()
    if signed_in:
        name, token = new_session(site.settings, "acme", OWNER)
        site.client.cookies.set(name, token)
    walked = []
    for template in html_get_routes(site.app):
        url = _fill(site, template, ids)
        response = site.client.get(url)
        where = f"{'signed in' if signed_in else 'signed out'} GET {url} -> {response.status_code}"
        assert response.status_code < 500, where
        # The pages of links in emails work in any browser, signed in or not.
        email_link = template.endswith(("/link", "/email-change"))
        authenticated = signed_in and template.startswith("/{slug:str}/portal") and not email_link
        assert_security_headers(response, signed_in=authenticated or template.startswith("/r/"), where=where)
        assert_no_inline_script(response, where)
        if signed_in and authenticated:
            assert response.status_code in (200, 303), where  # 303: the invoice page, or signed in already
        walked.append(url)
    return walked


def test_route_walker_covers_every_html_route(https_site: Site) -> None:
    templates = html_get_routes(https_site.app)
    assert len(templates) >= 20, templates
    assert {"/{slug:str}/portal", "/{slug:str}/portal/orders", "/r/receipts/{order_id:str}"} <= set(templates)
    assert all(not t.startswith(SKIPPED_PREFIXES) for t in templates)


@pytest.mark.parametrize("signed_in", [False, True], ids=["signed-out", "signed-in"])
def test_every_html_route_sends_the_security_headers(https_site: Site, signed_in: bool) -> None:
    walked = walk(https_site, signed_in=signed_in)
    assert len(walked) == len(html_get_routes(https_site.app))


def test_signed_in_pages_answer_200_with_no_store(https_site: Site) -> None:
    name, token = new_session(https_site.settings, "acme", OWNER)
    https_site.client.cookies.set(name, token)
    for path in ("/acme/portal", "/acme/portal/orders", "/acme/portal/benefits", "/acme/portal/settings"):
        response = https_site.client.get(path)
        assert response.status_code == 200, path
        assert response.headers["cache-control"] == "no-store", path
        assert response.headers["content-type"].startswith("text/html"), path


def test_pre_authenticated_link_headers(https_site: Site) -> None:
    """The token is in the URL: never leaked through Referer, never cached."""
    settings = https_site.settings
    token = insert_session(settings, org_id(settings, "acme"), customer_id(settings, "acme", OWNER), kind="api")
    for value in (token, "forged-token"):
        response = https_site.client.get(f"/acme/portal?customer_session_token={value}")
        assert response.headers["referrer-policy"] == "no-referrer", value
        assert "no-store" in response.headers["cache-control"], value
        assert_security_headers(response, signed_in=True, where=f"pre-authenticated link {value[:6]}")


def _cookie_flow(site: Site) -> list[str]:
    """Every Set-Cookie of a whole browser journey: CSRF, code request, wrong code, link exchange, locale,
    logout, and a real code sign-in."""
    client, settings = site.client, site.settings
    raw: list[str] = []

    def keep(response: httpx.Response) -> httpx.Response:
        raw.extend(_set_cookies(response))
        return response

    client.cookies.clear()
    keep(client.get("/acme/portal"))
    csrf = next(value for key, value in client.cookies.items() if key.endswith("csrftoken"))
    keep(client.post("/acme/portal/request", data={"email": OWNER, "_csrf_token": csrf}))
    keep(client.post("/acme/portal/authenticate", data={"code": "WRONG1", "_csrf_token": csrf}))
    token = insert_session(settings, org_id(settings, "acme"), customer_id(settings, "acme", OWNER), kind="api")
    keep(client.get(f"/acme/portal?customer_session_token={token}"))
    keep(client.post("/acme/portal/locale", data={"locale": "de", "next": "/acme/portal", "_csrf_token": csrf}))
    keep(client.post("/acme/portal/logout", data={"_csrf_token": csrf}))
    return raw


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_cookie_flags(https_site: Site, http_site: Site, scheme: str) -> None:
    site = https_site if scheme == "https" else http_site
    raw = _cookie_flow(site)
    names = {next(iter(SimpleCookie(r).keys())) for r in raw}
    prefix = "__Host-" if scheme == "https" else ""
    # CSRF, login challenge and session cookies were all set (and the session one cleared on logout).
    assert {f"{prefix}csrftoken", f"{prefix}portal_challenge_acme", f"{prefix}portal_session_acme"} <= names, names
    for cookie in raw:
        assert_cookie_flags(cookie, https=scheme == "https")
    logout = [r for r in raw if r.startswith(f"{prefix}portal_session_acme=") and "max-age=0" in r.lower()]
    assert logout, "logout did not clear the session cookie"


def test_error_pages_carry_the_headers(https_site: Site) -> None:
    """404s, 405s and 500-class pages come from the error handler, not the after_request hook."""
    client = https_site.client
    for method, path in (("GET", "/no-such-org/portal"), ("GET", "/nothing/here/at/all"), ("PUT", "/acme/portal")):
        response = client.request(method, path)
        assert response.status_code in (404, 405), (method, path, response.status_code)
        assert_security_headers(response, signed_in=False, where=f"{method} {path}")
        assert_no_inline_script(response, f"{method} {path}")
