"""The landing page of the sign-in links in transactional emails: ``GET /<slug>/portal/link?token=…`` shows a
"Continue" button (and nothing else happens: scanners that prefetch links spend nothing), ``POST
/<slug>/portal/link`` (CSRF-checked) spends the link, opens a fresh browser session and answers 303 to the page
the email pointed at. An expired or used link gets the sign-in form with a short explanation."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, QueryParameter
from litestar.response import Redirect, Template

from portal import i18n
from portal.clock import Clock
from portal.db import Database
from portal.organizations import queries as org_queries
from portal.organizations.queries import Organization
from portal.sessions import email_links
from portal.sessions.auth import browser_session, cookie_name, session_cookie
from portal.sessions.next_path import safe_next
from portal.settings import Settings

EXPIRED_LINK_MESSAGE = i18n.lazy_gettext(
    "This link has expired or was already used. Enter your email to get a sign-in code: "
    "you will land on the page the email pointed to."
)

# The token is in the URL: keep it out of Referer headers, caches and search engines.
_TOKEN_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store", "X-Robots-Tag": "noindex"}


class LinkForm(msgspec.Struct, kw_only=True):
    token: str = ""


async def _organization(request: Request[Any, Any, Any], db: Database, slug: str) -> Organization:
    organization = await org_queries.get_by_slug(db, slug)
    if organization is None:
        raise NotFoundException(i18n.gettext("No portal at this address."))
    request.state.organization = organization
    i18n.refine(org_default=organization.default_locale)
    return organization


async def _expired(
    request: Request[Any, Any, Any],
    db: Database,
    settings: Settings,
    clock: Clock,
    organization: Organization,
    token: str,
) -> Response[Any]:
    """A used or expired link: straight to its page when this browser is already signed in as the link's customer,
    else the sign-in form explaining why, which lands on that page after signing in."""
    known = (
        await email_links.known_target(db, settings, organization_id=organization.id, token=token)
        if token and len(token) <= 200
        else None
    )
    target = safe_next(organization.slug, known[1]) if known else None
    if known is not None:
        current = await browser_session(request, db, settings, clock, organization.slug)
        if current is not None and current.customer.id == known[0]:
            return Redirect(target or f"/{organization.slug}/portal", status_code=303, headers=_TOKEN_HEADERS)
    return Template(
        template_name="portal/sign_in.html",
        context={"organization": organization, "email": "", "message": EXPIRED_LINK_MESSAGE, "next": target},
        status_code=400,
        headers=_TOKEN_HEADERS,
    )


@get("/{slug:str}/portal/link", name="portal.email_link", include_in_schema=False)
async def email_link_page(
    request: Request[Any, Any, Any],
    db: NamedDependency[Database],
    settings: NamedDependency[Settings],
    clock: NamedDependency[Clock],
    slug: FromPath[str],
    token: Annotated[str, QueryParameter(name="token", max_length=200)] = "",
) -> Response[Any]:
    """Show the Continue button for a live link; never spends it."""
    organization = await _organization(request, db, slug)
    link = (
        await email_links.peek(db, settings, organization_id=organization.id, token=token, now=clock.now())
        if token
        else None
    )
    if link is None:
        return await _expired(request, db, settings, clock, organization, token)
    return Template(
        template_name="portal/email_link.html",
        context={"organization": organization, "token": token},
        headers=_TOKEN_HEADERS,
    )


@post("/{slug:str}/portal/link", name="portal.email_link.continue", include_in_schema=False, status_code=303)
async def email_link_continue(
    request: Request[Any, Any, Any],
    db: NamedDependency[Database],
    settings: NamedDependency[Settings],
    clock: NamedDependency[Clock],
    slug: FromPath[str],
    data: Annotated[LinkForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    """Spend the link (once) and sign in with a NEW session; 303 to the page the email linked to."""
    organization = await _organization(request, db, slug)
    redeemed = (
        await email_links.redeem(
            db,
            settings,
            organization_id=organization.id,
            token=data.token,
            now=clock.now(),
            previous_token=request.cookies.get(cookie_name(settings, slug)),
        )
        if data.token and len(data.token) <= 200
        else None
    )
    if redeemed is None:
        return await _expired(request, db, settings, clock, organization, data.token)
    signed_in, target = redeemed
    if not target.startswith(f"/{slug}/portal"):  # pragma: no cover - targets are made by Portal itself
        target = f"/{slug}/portal"
    return Redirect(
        target,
        status_code=303,
        cookies=[session_cookie(settings, slug, signed_in.token)],
        headers=_TOKEN_HEADERS,
    )


ROUTES = [email_link_page, email_link_continue]
