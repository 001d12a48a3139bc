"""Who is asking, and what they may do: the console session cookie and a seller's role in an organization.

* The cookie ``console_session`` (``__Secure-`` prefixed over https) has path ``/console``: it is never sent to the
  customer portal or the API. HttpOnly, SameSite=Lax, Secure in production; the session row stores its HMAC only.
* Roles per organization: ``owner`` (everything in the organization), ``support`` (looks at everything, acts on
  customers and emails; never settings, team, connectors, webhooks or tokens). An instance admin acts as an owner
  of every organization, in the role ``admin``.
* A seller without a role in an organization gets the 404 an unknown slug gets: the console does not say which
  organizations exist. A support seller on an owner-only action gets 403.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.exceptions import NotAuthorizedException, NotFoundException, PermissionDeniedException
from litestar.response import Redirect

from portal import i18n
from portal.console import audit, store
from portal.console.store import Seller
from portal.organizations import queries as org_queries
from portal.organizations.queries import Organization
from portal.settings import Settings
from portal.web import apply_security_headers, client_ip, portal_state

COOKIE_PATH = "/console"


def cookie_name(settings: Settings) -> str:
    return "__Secure-console_session" if settings.is_https else "console_session"


def challenge_cookie_name(settings: Settings) -> str:
    return "__Secure-console_challenge" if settings.is_https else "console_challenge"


def cookie(settings: Settings, name: str, value: str, max_age: int) -> Cookie:
    return Cookie(
        key=name,
        value=value,
        path=COOKIE_PATH,
        httponly=True,
        secure=settings.is_https,
        samesite="lax",
        max_age=max_age,
    )


def expired(settings: Settings, name: str) -> Cookie:
    return Cookie(
        key=name,
        value="",
        path=COOKIE_PATH,
        max_age=0,
        expires=0,
        httponly=True,
        secure=settings.is_https,
        samesite="lax",
    )


class ConsoleSignInRequired(NotAuthorizedException):
    """No (live) console session: the console's exception handler answers with a 303 to ``/console``."""


def sign_in_redirect(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return apply_security_headers(Redirect("/console", status_code=303))


class OrgAccess(msgspec.Struct, frozen=True, kw_only=True):
    """A signed-in seller in one organization, and the role they act in there."""

    seller: Seller
    organization: Organization
    role: str  # owner | support | admin
    client_ip: str

    @property
    def can_manage(self) -> bool:
        """Settings, team, connectors, webhooks and tokens: owners and instance admins."""
        return self.role in ("owner", "admin")

    @property
    def actor(self) -> audit.Actor:
        return audit.Actor(seller_id=self.seller.id, email=self.seller.email, role=self.role, client_ip=self.client_ip)

    def require_manage(self) -> None:
        if not self.can_manage:
            raise PermissionDeniedException(i18n.gettext("Only an owner of this organization can do this."))


async def current_seller(request: Request[Any, Any, Any]) -> Seller | None:
    state = portal_state(request.app.state)
    token = request.cookies.get(cookie_name(state.settings))
    if not token or len(token) > 200:
        return None
    return await store.seller_for_token(state.db, state.settings.secret_key, token, state.clock.now())


async def require_seller(request: Request[Any, Any, Any]) -> Seller:
    seller = await current_seller(request)
    if seller is None:
        raise ConsoleSignInRequired()
    return seller


async def require_org(request: Request[Any, Any, Any], slug: str, *, manage: bool = False) -> OrgAccess:
    """The seller's access to ``slug``: 303 to sign-in without a session, 404 without a role, 403 when ``manage``
    is asked of a support seller."""
    seller = await require_seller(request)
    state = portal_state(request.app.state)
    organization = await org_queries.get_by_slug(state.db, slug)
    if organization is None:
        raise NotFoundException(i18n.gettext("Not found"))
    role: str | None = "admin" if seller.is_admin else await store.role_in(state.db, seller.id, organization.id)
    if role is None:
        raise NotFoundException(i18n.gettext("Not found"))
    access = OrgAccess(
        seller=seller, organization=organization, role=role, client_ip=client_ip(request, state.settings)
    )
    if manage:
        access.require_manage()
    return access
