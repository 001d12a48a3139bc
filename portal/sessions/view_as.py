"""A seller viewing the portal as one of their customers (the console's "View the portal as this customer"):
read-only, bannered, audited, and never in place of a real customer's session.

* **The session.** A ``browser`` session of the customer with ``origin='view_as'`` and ``viewer_session_id`` = the
  seller's console session (``seller_sessions.id``); it lives ``VIEW_TTL`` (15 minutes) at most and ends as soon as
  that console session does (sign-out or expiry), when the seller stops viewing, or when the customer's sessions
  are revoked. The console writes the audit entry when it starts one.
* **Its own cookie.** ``portal_viewas_<slug>`` (``__Host-`` over https; HttpOnly, SameSite=Lax, path /), never the
  customer's ``portal_session_<slug>``: a customer signed in in that browser stays signed in, untouched, and is
  back when the view ends. While a live view cookie is there, the portal pages of that organization show the view
  (``auth.browser_session`` reads it first). A view token is refused in the customer's own cookie (it would not be
  read-only there).
* **Read-only, enforced before routing** (``ViewAsGuard``, raw ASGI around the app): while the request carries a
  live view cookie, every non-GET request to ``/<slug>/portal/…`` and ``/v1/customer-portal/…`` (forms, the JSON
  API's writes, license-key activation and validation, sign-out, sign-in) answers 403, as do the GETs that change
  something: downloads (counted as the customer's) and pre-authenticated links (they would open a session).
* **The banner.** Every HTML page of that organization's portal gets "Viewing as <email> — read only" with a link
  back to the customer's page in the console, inserted right after ``<body>`` (the layout shell stays untouched).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from litestar.datastructures import Cookie
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from markupsafe import escape

from portal import i18n
from portal.db import Database, Transaction
from portal.sessions import store
from portal.sessions.store import CustomerSession, SessionContext
from portal.settings import Settings

VIEW_TTL = timedelta(minutes=15)
COOKIE_PREFIX = "portal_viewas_"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_PORTAL_PATH = re.compile(r"^/([^/]+)/portal(?:/|$)")
_AFTER_SKIP_LINK = re.compile(rb'(<body[^>]*>\s*(?:<a class="skip-link"[^>]*>.*?</a>)?)', re.S)


def cookie_name(settings: Settings, slug: str) -> str:
    return f"{'__Host-' if settings.is_https else ''}{COOKIE_PREFIX}{slug}"


def view_cookie(settings: Settings, slug: str, token: str) -> Cookie:
    return Cookie(
        key=cookie_name(settings, slug),
        value=token,
        path="/",
        httponly=True,
        secure=settings.is_https,
        samesite="lax",
        max_age=int(VIEW_TTL.total_seconds()),
    )


async def start(
    tx: Transaction,
    settings: Settings,
    *,
    organization_id: str,
    customer_id: str,
    viewer_session_id: str,
    now: datetime,
) -> tuple[str, CustomerSession]:
    """A new view-only session of the customer bound to the seller's console session: ``(token, session)``."""
    return await store.create_session(
        tx,
        secret=settings.secret_key,
        kind="browser",
        organization_id=organization_id,
        customer_id=customer_id,
        now=now,
        ttl_seconds=int(VIEW_TTL.total_seconds()),
        origin="view_as",
        viewer_session_id=viewer_session_id,
    )


async def live_view(db: Database, settings: Settings, token: str, now: datetime) -> SessionContext | None:
    """The live view-only session of ``token`` (its seller's console session still live), or None."""
    context = await store.lookup(db, secret=settings.secret_key, token=token, now=now, kind="browser")
    if context is None or context.session.origin != "view_as":
        return None
    if not await store.viewer_is_live(db, context.session.id, now):
        return None
    return context


async def end(db: Database, settings: Settings, token: str, organization_id: str, now: datetime) -> str | None:
    """Revoke the view session of ``token`` if it is one of this organization's; its customer's id, or None."""
    context = await store.lookup(db, secret=settings.secret_key, token=token, now=now, kind="browser")
    if context is None or context.session.origin != "view_as" or context.organization.id != organization_id:
        return None
    async with db.write() as tx:
        await store.revoke(tx, context.session.id, now)
    return context.customer.id


def view_tokens(scope: Scope) -> dict[str, str]:
    """``{slug: token}`` of the view cookies a request carries."""
    found: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        if name != b"cookie":
            continue
        for pair in value.decode("latin-1").split(";"):
            key, _, morsel = pair.strip().partition("=")
            bare = key.removeprefix("__Host-")
            if bare.startswith(COOKIE_PREFIX) and morsel and len(morsel) <= 200:
                found[bare[len(COOKIE_PREFIX) :]] = morsel.strip('"')
    return found


def banner_html(context: SessionContext) -> str:
    _ = i18n.gettext
    back = f"/console/{context.organization.slug}/customers/{context.customer.id}"
    text = _("Viewing as %(email)s — read only.") % {"email": str(escape(context.customer.email))}
    # Each string is its own gettext call outside the f-strings (the extractor does not look inside them).
    region = escape(_("Viewing as a customer"))
    back_label = escape(_("Back to the console"))
    return (
        f'<div class="view-as-banner" role="region" aria-label="{region}">'
        f'<p><strong>{text}</strong> <a href="{escape(back)}">{back_label}</a></p></div>'
    )


def _refusal(context: SessionContext, api: bool) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    _ = i18n.gettext
    message = _("Read only: you are viewing the portal as a customer.")
    if api:
        body = b'{"error":"NotPermitted","detail":"' + message.encode().replace(b'"', b"'") + b'"}'
        return 403, [(b"content-type", b"application/json")], body
    from portal.web import CSP  # here: portal.web imports the sessions package

    page = (
        f'<!doctype html><html lang="{i18n.current_locale()}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>403</title><link rel="stylesheet" href="/static/portal.css"></head><body>{banner_html(context)}'
        f'<main id="main" class="wrap"><h1>{escape(message)}</h1></main></body></html>'
    )
    headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-security-policy", CSP.encode()),
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
    ]
    return 403, headers, page.encode()


def _writes(method: str, path: str, query: bytes) -> bool:
    return (
        method not in SAFE_METHODS
        or "/portal/downloads/" in path
        or path.startswith("/v1/customer-portal/downloadables/")
        or b"customer_session_token=" in query
    )


class ViewAsGuard:
    """Raw ASGI around the whole app: refuses the writes of a viewing browser and bannered its portal pages."""

    def __init__(self, app: ASGIApp, litestar_app: Any) -> None:
        self.app = app
        self.litestar_app = litestar_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        portal = _PORTAL_PATH.match(path)
        api = path.startswith("/v1/customer-portal/")
        tokens = view_tokens(scope) if (portal or api) else {}
        if not tokens:
            await self.app(scope, receive, send)
            return
        state = self.litestar_app.state.portal
        now = state.clock.now()
        viewing: SessionContext | None = None
        for slug, token in tokens.items():
            if portal and slug != portal.group(1):
                continue
            context = await live_view(state.db, state.settings, token, now)
            if context is not None and context.organization.slug == slug:
                viewing = context
                break
        if viewing is None:
            await self.app(scope, receive, send)
            return
        if _writes(str(scope.get("method", "GET")), path, bytes(scope.get("query_string", b""))):
            with i18n.use_locale(viewing.customer.locale or viewing.organization.default_locale):
                status, headers, body = _refusal(viewing, api)
            headers.append((b"content-length", str(len(body)).encode()))
            headers.append((b"cache-control", b"no-store"))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})
            return
        if not portal:
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _bannering(send, viewing))


def _bannering(send: Send, viewing: SessionContext) -> Send:
    """``send`` that inserts the banner after ``<body>`` of an HTML answer (buffered; Content-Length fixed)."""
    start: Any = None  # the held http.response.start message
    chunks: list[bytes] = []

    async def wrapped(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            kinds = [bytes(v) for k, v in message.get("headers", []) if bytes(k).lower() == b"content-type"]
            if kinds and kinds[0].startswith(b"text/html"):
                start = message
                return
            await send(message)
            return
        if start is None or message["type"] != "http.response.body":
            await send(message)
            return
        chunks.append(bytes(message.get("body", b"")))
        if message.get("more_body", False):
            return
        body = b"".join(chunks)
        banner = banner_html(viewing).encode()
        # After the skip link, which stays the first thing a keyboard reaches.
        body = _AFTER_SKIP_LINK.sub(lambda m: m.group(1) + banner, body, count=1)
        kept = [(k, v) for k, v in start.get("headers", []) if bytes(k).lower() != b"content-length"]
        kept.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": start["status"], "headers": kept})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return wrapped
