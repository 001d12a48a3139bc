"""Who is asking: dependencies that turn a session cookie (portal pages) or a Bearer customer-session token
(``/v1/customer-portal/*``) into a ``SessionContext``, and the session cookie's name and flags.

Each organization's portal has its own cookie (``portal_session_<slug>``, ``__Host-`` prefixed over https), so a
session made for org A is never even sent to org B's pages, and a customer of two sellers can be signed in to both.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException
from litestar.params import FromPath

from portal import i18n
from portal.clock import Clock
from portal.db import Database
from portal.sessions import store, view_as
from portal.sessions.store import SessionContext
from portal.settings import Settings


class SignInRequired(Exception):
    """A portal page needs a signed-in customer; answered with a 303 to the org's sign-in page."""

    def __init__(self, slug: str, message: str | None = None) -> None:
        super().__init__(message or "sign in required")
        self.slug = slug
        self.message = message


def cookie_name(settings: Settings, slug: str) -> str:
    return f"{'__Host-' if settings.is_https else ''}portal_session_{slug}"


def session_cookie(settings: Settings, slug: str, token: str, *, max_age: int | None = None) -> Cookie:
    """The session cookie; ``max_age`` shorter than the default for sessions that end earlier (links)."""
    return Cookie(
        key=cookie_name(settings, slug),
        value=token,
        path="/",
        httponly=True,
        secure=settings.is_https,
        samesite="lax",
        max_age=settings.session_max_age if max_age is None else max_age,
    )


def expired_cookie(settings: Settings, name: str) -> Cookie:
    """A Set-Cookie that deletes ``name``. It carries the same flags: browsers refuse a ``__Host-`` cookie (even an
    expired one) without ``Secure``, so ``Response.delete_cookie`` would leave it in place."""
    return Cookie(
        key=name,
        value="",
        path="/",
        max_age=0,
        expires=0,
        httponly=True,
        secure=settings.is_https,
        samesite="lax",
    )


def clear_session_cookie(response: Response[Any], settings: Settings, slug: str) -> None:
    response.set_cookie(expired_cookie(settings, cookie_name(settings, slug)))


CHALLENGE_GRACE_SECONDS = 86400


def challenge_cookie_name(settings: Settings, slug: str) -> str:
    """The HttpOnly cookie holding the random challenge id a login code is bound to (HTML flow)."""
    return f"{'__Host-' if settings.is_https else ''}portal_challenge_{slug}"


def challenge_cookie(settings: Settings, slug: str, challenge: str) -> Cookie:
    return Cookie(
        key=challenge_cookie_name(settings, slug),
        value=challenge,
        path="/",
        httponly=True,
        secure=settings.is_https,
        samesite="lax",
        # Outlives the code (whose row is kept a day past expiry): the code page of an expired, used or over-tried
        # code still knows the address, says what happened and can send a new code to it.
        max_age=settings.login_code_ttl + CHALLENGE_GRACE_SECONDS,
    )


async def browser_session(
    request: Request[Any, Any, Any], db: Database, settings: Settings, clock: Clock, slug: str
) -> SessionContext | None:
    """The signed-in customer of ``slug``'s portal, or None. Unknown, expired or idle cookies are ignored.

    A live view-as cookie (a seller viewing the portal as the customer, ``portal.sessions.view_as``) comes first and
    leaves the customer's own cookie untouched; a view token in the customer's own cookie is refused."""
    now = clock.now()
    view_token = request.cookies.get(view_as.cookie_name(settings, slug))
    if view_token:
        viewing = await view_as.live_view(db, settings, view_token, now)
        if viewing is not None and viewing.organization.slug == slug:
            request.state.organization = viewing.organization
            request.state.portal_session = viewing
            request.state.viewing_as = viewing
            i18n.refine(saved=viewing.customer.locale or "", org_default=viewing.organization.default_locale)
            return viewing
    token = request.cookies.get(cookie_name(settings, slug))
    if not token:
        return None
    context = await store.lookup(
        db,
        secret=settings.secret_key,
        token=token,
        now=now,
        kind="browser",
        idle_timeout_seconds=settings.session_idle_timeout,
    )
    if context is None or context.organization.slug != slug or context.session.origin == "view_as":
        return None
    if store.needs_touch(context.session, now):
        await store.touch(db, context.session.id, now)
    request.state.organization = context.organization
    # Error pages of this request render inside the signed-in layout (``portal.web``).
    request.state.portal_session = context
    i18n.refine(saved=context.customer.locale or "", org_default=context.organization.default_locale)
    return context


# The auth dependencies take settings and clock from the app state (the same objects the ``settings``/``clock``
# dependencies provide) rather than as dependencies: with only ``db`` below them, Litestar resolves each level
# directly instead of spawning an anyio task group per request for three trivial providers (bench/README.md).
async def provide_portal_customer(
    request: Request[Any, Any, Any],
    db: NamedDependency[Database],
    slug: FromPath[str],
) -> SessionContext:
    """Dependency for signed-in portal pages: the context, or ``SignInRequired`` (→ 303 to sign-in)."""
    state = request.app.state.portal
    context = await browser_session(request, db, state.settings, state.clock, slug)
    if context is None:
        raise SignInRequired(slug)
    return context


def bearer_token(request: Request[Any, Any, Any]) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def provide_api_customer(request: Request[Any, Any, Any], db: NamedDependency[Database]) -> SessionContext:
    """Dependency for ``/v1/customer-portal/*``: a customer-session token as Bearer, else 401."""
    settings, clock = request.app.state.portal.settings, request.app.state.portal.clock
    token = bearer_token(request)
    if token is None:
        raise NotAuthorizedException("Missing customer session token (Authorization: Bearer …).")
    context = await store.lookup(db, secret=settings.secret_key, token=token, now=clock.now(), kind="api")
    if context is None:
        raise NotAuthorizedException("Invalid or expired customer session token.")
    request.state.organization = context.organization
    return context
