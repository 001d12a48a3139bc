"""Portal sign-in pages per organization: ``/<slug>/portal`` (sign-in form, or the overview once signed in),
``/request`` (email a code), ``/authenticate`` (enter it), ``/logout``, and pre-authenticated links
(``/<slug>/portal?customer_session_token=…``).

The signed-in branch of ``/<slug>/portal`` calls ``portal.portal_pages.overview.render_overview(request, context)``
when that module exists (the portal pages own the overview); until then a minimal signed-in page is shown.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from babel.dates import format_timedelta
from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.enums import MediaType, RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, QueryParameter
from litestar.response import Redirect, Template

from portal import i18n
from portal.clock import Clock, parse_iso
from portal.db import Database
from portal.fields import EMAIL_ADDRESS_PATTERN
from portal.i18n import lazy_gettext as _l
from portal.organizations import queries as org_queries
from portal.organizations.queries import Organization
from portal.security import new_token
from portal.sessions import codes, rate_limit, service
from portal.sessions.auth import (
    browser_session,
    challenge_cookie,
    challenge_cookie_name,
    cookie_name,
    expired_cookie,
    session_cookie,
)
from portal.sessions.emails import send_login_code
from portal.sessions.next_path import safe_next
from portal.sessions.rate_limit import RateLimited
from portal.sessions.store import SessionContext
from portal.settings import Settings
from portal.web import client_ip

# Translated when the page is rendered, in the request's language.
INVALID_LINK_MESSAGE = _l("This sign-in link is invalid or has expired. Enter your email to get a sign-in code.")
INVALID_EMAIL_MESSAGE = _l("Enter a valid email address.")
# Why a code did not work: the code page of the browser that asked for it says exactly what happened.
CODE_STATE_MESSAGES = {
    "expired": _l("That code has expired. Send a new code to the same address below."),
    "used": _l("That code was already used to sign in. Each code works once: send a new code if you need one."),
    "replaced": _l("A newer code was sent to this address. Use the code from the latest email, or send a new one."),
    "too_many": _l("That code was entered wrong too many times and no longer works. Send a new code below."),
}
WRONG_CODE_MESSAGE = _l("That code is not right. Check the latest email we sent and try again.")
OTHER_BROWSER_MESSAGE = _l(
    "A sign-in code only works in the browser where it was asked for, and this browser did not ask for one "
    "(or it was long ago). Enter your email to get a new code here."
)
SIGNED_OUT_MESSAGE = _l("You are signed out. Sign in again whenever you like.")
NEXT_HINT = _l("Sign in to see the page you opened; you will land on it right after.")
# The throttle pages name the limit that was hit and the real wait (the limiter's window).
RATE_LIMITED_MESSAGES = {
    rate_limit.REQUEST_PER_EMAIL.name: _l("Too many codes were asked for this address. Please wait %(wait)s."),
    rate_limit.REQUEST_PER_IP.name: _l("Too many sign-in codes were asked from your network. Please wait %(wait)s."),
}
RATE_LIMITED_MESSAGE = _l("Too many wrong codes were entered. Please wait %(wait)s before trying again.")
_EMAIL = re.compile(EMAIL_ADDRESS_PATTERN)

# Tokens travel in this URL: keep them out of Referer headers, caches and history-restored pages.
_TOKEN_URL_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


class EmailForm(msgspec.Struct, kw_only=True):
    email: str = ""
    next: str = ""


class CodeForm(msgspec.Struct, kw_only=True):
    code: str = ""
    next: str = ""


def _query(**params: str | None) -> str:
    """``?a=b&…`` of the given non-empty parameters, the locale picked in the URL first (kept until sign-in)."""
    values = {"locale": i18n.explicit_locale(), **params}
    kept = {key: value for key, value in values.items() if value}
    return "?" + urlencode(kept, safe="/") if kept else ""


def wait_text(seconds: int) -> str:
    """A wait for people, in the page's language: "45 seconds", "14 minutes", "1 hour" (rounded up)."""
    if seconds >= 60:
        seconds = -(-seconds // 60) * 60
    return format_timedelta(timedelta(seconds=seconds), threshold=1, locale=i18n.current_locale())


def safe_return_url(url: str | None) -> str | None:
    """The session's ``return_url`` if it is an http(s) URL (never ``javascript:``); for "Back to <org>" links."""
    if url and re.match(r"^https?://[^\s]+$", url, flags=re.IGNORECASE):
        return url
    return None


async def _organization(request: Request[Any, Any, Any], db: Database, slug: str) -> Organization:
    organization = await org_queries.get_by_slug(db, slug)
    if organization is None:
        raise NotFoundException(i18n.gettext("No portal at this address."))
    request.state.organization = organization
    i18n.refine(org_default=organization.default_locale)
    return organization


def _sign_in_page(
    organization: Organization,
    *,
    email: str = "",
    message: object | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    next_path: str | None = None,
    notice: object | None = None,
) -> Template:
    return Template(
        template_name="portal/sign_in.html",
        context={
            "organization": organization,
            "email": email,
            "message": message,
            "next": next_path,
            "notice": notice,
            "next_hint": NEXT_HINT if next_path and message is None and notice is None else None,
        },
        status_code=status_code,
        headers=headers,
        media_type=MediaType.HTML,
    )


def _code_page(
    organization: Organization,
    *,
    state: codes.ChallengeState,
    now: datetime,
    message: object | None = None,
    status_code: int = 200,
    next_path: str | None = None,
) -> Template:
    left = (parse_iso(state.expires_at) - now).total_seconds()
    return Template(
        template_name="portal/authenticate.html",
        context={
            "organization": organization,
            "email": state.email,
            "message": message,
            "live": state.state == "live",
            "minutes": max(1, -(-int(left) // 60)),
            "next": next_path,
            "restart_url": f"/{organization.slug}/portal{_query(next=next_path)}",
        },
        status_code=status_code,
        media_type=MediaType.HTML,
    )


def _overview_renderer() -> Callable[..., Any] | None:
    try:
        module = importlib.import_module("portal.portal_pages.overview")
    except ModuleNotFoundError as exc:
        if exc.name in ("portal.portal_pages", "portal.portal_pages.overview"):
            return None
        raise
    return getattr(module, "render_overview", None)


async def _signed_in_page(request: Request[Any, Any, Any], context: SessionContext) -> Response[Any]:
    renderer = _overview_renderer()
    if renderer is not None:
        result = renderer(request, context)
        return await result if inspect.isawaitable(result) else result
    return Template(
        template_name="portal/signed_in.html",
        context={
            "organization": context.organization,
            "customer": context.customer,
            "return_url": safe_return_url(context.session.return_url),
        },
    )


def _too_many(organization: Organization, exc: RateLimited) -> Template:
    # Returned, not raised: answers of the exception handler skip the after_request security headers.
    message = RATE_LIMITED_MESSAGES.get(exc.limit.name, RATE_LIMITED_MESSAGE)
    return Template(
        template_name="errors/error.html",
        context={
            "status": 429,
            "title": i18n.gettext("Too many attempts"),
            "detail": str(message) % {"wait": wait_text(exc.retry_after)},
            "organization": organization,
        },
        status_code=429,
        headers={"Retry-After": str(exc.retry_after)},
    )


@get("/{slug:str}/portal", name="portal.home", include_in_schema=False)
async def portal_home(
    request: Request[Any, Any, Any],
    db: NamedDependency[Database],
    slug: FromPath[str],
    email: Annotated[str | None, QueryParameter(name="email", max_length=320)] = None,
    customer_session_token: Annotated[str | None, QueryParameter(name="customer_session_token", max_length=200)] = None,
    next_param: Annotated[str | None, QueryParameter(name="next", max_length=2000)] = None,
    done: Annotated[str | None, QueryParameter(name="done", max_length=40)] = None,
) -> Response[Any]:
    """Sign-in form when signed out; the overview when signed in; exchanges a pre-authenticated link.

    The busiest page: ``settings`` and ``clock`` come from the app state, not as dependencies, so that Litestar
    resolves the one ``db`` dependency directly instead of in an anyio task group (bench/README.md)."""
    settings, clock = request.app.state.portal.settings, request.app.state.portal.clock
    if customer_session_token is None:
        # Signed in: the session lookup already joins the organization, so the slug query is not needed.
        context = await browser_session(request, db, settings, clock, slug)
        if context is not None:
            if (target := safe_next(slug, next_param)) is not None:
                return Redirect(target, status_code=303)
            return await _signed_in_page(request, context)
    organization = await _organization(request, db, slug)
    if customer_session_token is not None:
        return await _open_link(request, db, settings, clock.now(), organization, customer_session_token)
    return _sign_in_page(
        organization,
        email=(email or "").strip(),
        next_path=safe_next(slug, next_param),
        notice=SIGNED_OUT_MESSAGE if done == "signed_out" else None,
    )


@get("/{slug:str}", name="portal.short", include_in_schema=False, status_code=302)
async def portal_short(request: Request[Any, Any, Any], db: NamedDependency[Database], slug: FromPath[str]) -> Redirect:
    """``/<slug>`` is the address people type: it leads to the portal (404 for no organization)."""
    await _organization(request, db, slug)
    # Not permanent: a browser must not remember it should the address ever mean something else.
    return Redirect(f"/{slug}/portal", status_code=302)


log = logging.getLogger("portal.sessions.pages")

# The first segment of a path that may be an organization's (not the API, the docs or the static files).
_ORG_PATH = re.compile(r"^/(?!v1/|docs(?:/|$)|static/)([^/]+)/")
NOT_FOUND_PAGE = i18n.noop("We couldn't find that page. It may have moved, or belong to another account.")


async def brand_not_found(exc: Exception, scope: Any) -> None:
    """An ``after_exception`` hook (it runs before the error handler, which cannot await): a 404 under a known
    organization's slug (``/acme/portal/no-such-page``, issue 22) gets the organization, so the error page is its
    branded 404 with a way back to its portal (inside its layout when signed in). An unknown slug stays the plain
    404, which says no more than ``/<slug>/portal`` does."""
    if not isinstance(exc, NotFoundException) or scope.get("type") != "http":
        return
    request: Request[Any, Any, Any] = Request(scope)
    match = _ORG_PATH.match(request.url.path)
    if match is None or getattr(request.state, "organization", None) is not None:
        return
    slug = match.group(1)
    if len(slug) > 200:
        return
    state = request.app.state.portal
    try:
        if await browser_session(request, state.db, state.settings, state.clock, slug) is None:
            organization = await org_queries.get_by_slug(state.db, slug)
            if organization is None:
                return
            request.state.organization = organization
    except Exception:  # a failing lookup must not turn a 404 into a 500: the plain 404 stays
        log.warning("could not brand the 404 of %s", request.url.path, exc_info=True)
        return
    if not exc.detail or exc.detail == "Not Found":
        exc.detail = NOT_FOUND_PAGE


class LinkSwitchForm(msgspec.Struct, kw_only=True):
    customer_session_token: str = ""


def _link_cookie(settings: Settings, slug: str, signed_in: service.SignedIn, now: datetime) -> Cookie:
    """The session cookie of a link's session: it lasts no longer than the session (capped by the link's token)."""
    left = int((parse_iso(signed_in.session.expires_at) - now).total_seconds())
    return session_cookie(settings, slug, signed_in.token, max_age=max(1, min(left, settings.session_max_age)))


async def _switch(
    request: Request[Any, Any, Any],
    db: Database,
    settings: Settings,
    now: datetime,
    organization: Organization,
    token: str,
) -> Response[Any]:
    """Open a NEW browser session from the link (the earlier one of this browser is revoked); 303 to the portal."""
    slug = organization.slug
    signed_in = await service.exchange_customer_session_token(
        db,
        settings,
        now,
        organization=organization,
        customer_session_token=token,
        previous_token=request.cookies.get(cookie_name(settings, slug)),
    )
    if signed_in is None:
        return _sign_in_page(organization, message=INVALID_LINK_MESSAGE, headers=_TOKEN_URL_HEADERS)
    return Redirect(
        f"/{slug}/portal",
        status_code=303,
        cookies=[_link_cookie(settings, slug, signed_in, now)],
        headers=_TOKEN_URL_HEADERS,
    )


async def _open_link(
    request: Request[Any, Any, Any],
    db: Database,
    settings: Settings,
    now: datetime,
    organization: Organization,
    token: str,
) -> Response[Any]:
    """A pre-authenticated link (issue 17.1). Signed out: sign in as the link's customer. Signed in as that same
    customer: keep the session. Signed in as ANOTHER customer: never replace them silently; ask (a CSRF-checked
    POST switches, a link keeps the current session)."""
    slug = organization.slug
    link = await service.link_token(db, settings, now, organization=organization, customer_session_token=token)
    if link is None:
        return _sign_in_page(organization, message=INVALID_LINK_MESSAGE, headers=_TOKEN_URL_HEADERS)
    current = await browser_session(request, db, settings, request.app.state.portal.clock, slug)
    if current is None:
        return await _switch(request, db, settings, now, organization, token)
    if current.customer.id == link.customer.id:
        return Redirect(f"/{slug}/portal", status_code=303, headers=_TOKEN_URL_HEADERS)
    return Template(
        template_name="portal/switch_account.html",
        context={
            "organization": organization,
            "current_email": current.customer.email,
            "link_email": link.customer.email,
            "token": token,
        },
        headers=_TOKEN_URL_HEADERS,
        media_type=MediaType.HTML,
    )


@post("/{slug:str}/portal/switch", name="portal.switch_account", include_in_schema=False, status_code=303)
async def switch_account(
    request: Request[Any, Any, Any],
    db: NamedDependency[Database],
    settings: NamedDependency[Settings],
    clock: NamedDependency[Clock],
    slug: FromPath[str],
    data: Annotated[LinkSwitchForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    """The "Continue as …" button of the switch page: the customer agreed to replace their session by the link's."""
    organization = await _organization(request, db, slug)
    token = data.customer_session_token
    if not token or len(token) > 200:
        return _sign_in_page(organization, message=INVALID_LINK_MESSAGE, headers=_TOKEN_URL_HEADERS)
    return await _switch(request, db, settings, clock.now(), organization, token)


@post("/{slug:str}/portal/request", name="portal.request_code", include_in_schema=False, status_code=303)
async def request_code(
    request: Request[Any, Any, Any],
    db: NamedDependency[Database],
    settings: NamedDependency[Settings],
    clock: NamedDependency[Clock],
    slug: FromPath[str],
    data: Annotated[EmailForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    """Email a code if the address is a customer's; the answer is the same either way (303 to the code page)."""
    organization = await _organization(request, db, slug)
    email = data.email.strip()
    next_path = safe_next(slug, data.next)
    if len(email) > 320 or not _EMAIL.match(email):
        return _sign_in_page(
            organization, email=email[:320], message=INVALID_EMAIL_MESSAGE, status_code=400, next_path=next_path
        )
    challenge = new_token(32)
    now = clock.now()
    try:
        issued = await service.request_code(
            db,
            settings,
            now,
            organization=organization,
            email=email,
            challenge_hash=codes.challenge_digest(settings.secret_key, challenge),
            ip=client_ip(request, settings),
        )
    except RateLimited as exc:
        return _too_many(organization, exc)
    if issued is not None:
        locale = i18n.current_locale()
        send_login_code(request.app.state.portal.mailer, settings, organization, issued, now, locale=locale)
    return Redirect(
        f"/{slug}/portal/authenticate{_query(next=next_path)}",
        status_code=303,
        cookies=[challenge_cookie(settings, slug, challenge)],
    )


@get("/{slug:str}/portal/authenticate", name="portal.authenticate_form", include_in_schema=False)
async def authenticate_form(
    request: Request[Any, Any, Any],
    db: NamedDependency[Database],
    settings: NamedDependency[Settings],
    clock: NamedDependency[Clock],
    slug: FromPath[str],
    next_param: Annotated[str | None, QueryParameter(name="next", max_length=2000)] = None,
) -> Response[Any]:
    """ "Check your email" + the code field. A browser that asked for no code (the email's link opened on another
    device) gets the sign-in form saying why; a code that no longer works is explained at once."""
    organization = await _organization(request, db, slug)
    next_path = safe_next(slug, next_param)
    now = clock.now()
    state = await _challenge_state(request, db, settings, organization, now)
    if state is None:
        return _sign_in_page(organization, message=OTHER_BROWSER_MESSAGE, next_path=next_path)
    message = CODE_STATE_MESSAGES.get(state.state)
    return _code_page(organization, state=state, now=now, message=message, next_path=next_path)


async def _challenge_state(
    request: Request[Any, Any, Any], db: Database, settings: Settings, organization: Organization, now: datetime
) -> codes.ChallengeState | None:
    challenge = request.cookies.get(challenge_cookie_name(settings, organization.slug))
    if not challenge or len(challenge) > 200:
        return None
    return await codes.challenge_state(db, organization.id, codes.challenge_digest(settings.secret_key, challenge), now)


@post("/{slug:str}/portal/authenticate", name="portal.authenticate", include_in_schema=False, status_code=303)
async def authenticate(
    request: Request[Any, Any, Any],
    db: NamedDependency[Database],
    settings: NamedDependency[Settings],
    clock: NamedDependency[Clock],
    slug: FromPath[str],
    data: Annotated[CodeForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    """Redeem the code for a NEW browser session (any session cookie sent along is revoked, never adopted); 303 to
    the page the customer came for (a validated ``next``) or the overview."""
    organization = await _organization(request, db, slug)
    next_path = safe_next(slug, data.next)
    challenge = request.cookies.get(challenge_cookie_name(settings, slug))
    try:
        signed_in = await service.authenticate_browser(
            db,
            settings,
            clock.now(),
            organization=organization,
            challenge=challenge,
            code=data.code,
            ip=client_ip(request, settings),
            previous_token=request.cookies.get(cookie_name(settings, slug)),
        )
    except RateLimited as exc:
        return _too_many(organization, exc)
    except service.InvalidCode:
        now = clock.now()
        state = await _challenge_state(request, db, settings, organization, now)
        if state is None:
            return _sign_in_page(organization, message=OTHER_BROWSER_MESSAGE, status_code=400, next_path=next_path)
        message = CODE_STATE_MESSAGES.get(state.state, WRONG_CODE_MESSAGE)
        return _code_page(organization, state=state, now=now, message=message, status_code=400, next_path=next_path)
    if (chosen := i18n.explicit_locale()) is not None:
        # The language picked on the sign-in pages becomes the customer's saved choice.
        await i18n.save_customer_locale(db, organization.id, signed_in.session.customer_id, chosen, now=clock.now())
    return Redirect(
        next_path or f"/{slug}/portal",
        status_code=303,
        cookies=[
            session_cookie(settings, slug, signed_in.token),
            expired_cookie(settings, challenge_cookie_name(settings, slug)),
        ],
    )


@post("/{slug:str}/portal/logout", name="portal.logout", include_in_schema=False, status_code=303)
async def logout(
    request: Request[Any, Any, Any],
    db: NamedDependency[Database],
    settings: NamedDependency[Settings],
    clock: NamedDependency[Clock],
    slug: FromPath[str],
) -> Response[Any]:
    """Revoke the session server-side and clear the cookie."""
    await _organization(request, db, slug)
    await service.sign_out(db, settings, clock.now(), token=request.cookies.get(cookie_name(settings, slug)))
    return Redirect(
        f"/{slug}/portal?done=signed_out",
        status_code=303,
        cookies=[expired_cookie(settings, cookie_name(settings, slug))],
    )


ROUTES = [
    portal_home,
    portal_short,
    switch_account,
    request_code,
    authenticate_form,
    authenticate,
    logout,
]
