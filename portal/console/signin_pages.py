"""``/console``: the sign-in form (signed out) or the organizations this seller may open (signed in);
``/console/request`` (email a code), ``/console/authenticate`` (enter it), ``/console/logout``.

Same flow and answers as the customers' sign-in (``portal.sessions.pages``): the same page whether or not the
address is a seller's, the code bound to this browser by an HttpOnly challenge cookie, 429 with ``Retry-After``
when throttled.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.enums import MediaType, RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template

from portal import i18n
from portal.console import access, audit, mail, signin, store
from portal.console.store import Seller
from portal.fields import EMAIL_ADDRESS_PATTERN
from portal.i18n import lazy_gettext as _l
from portal.organizations import queries as org_queries
from portal.organizations.queries import Organization
from portal.security import new_token
from portal.sessions import codes
from portal.sessions.rate_limit import RateLimited
from portal.web import client_ip, portal_state

INVALID_CODE_MESSAGE = _l("That code is wrong or has expired. Check the latest email we sent, or ask for a new code.")
RATE_LIMITED_MESSAGE = _l("Too many sign-in attempts. Please wait a few minutes and try again.")
INVALID_EMAIL_MESSAGE = _l("Enter a valid email address.")
_EMAIL = re.compile(EMAIL_ADDRESS_PATTERN)


class EmailForm(msgspec.Struct, kw_only=True):
    email: str = ""


class CodeForm(msgspec.Struct, kw_only=True):
    code: str = ""


def _page(name: str, context: dict[str, Any], status_code: int = 200, **kwargs: Any) -> Template:
    return Template(
        template_name=f"console/{name}.html",
        context={"console": True, **context},
        status_code=status_code,
        media_type=MediaType.HTML,
        **kwargs,
    )


def role_labels() -> dict[str, str]:
    """Roles as shown, in the request's language."""
    _ = i18n.gettext
    return {"owner": _("Owner"), "support": _("Support"), "admin": _("Instance admin")}


def _too_many(exc: RateLimited) -> Template:
    return Template(
        template_name="errors/error.html",
        context={"status": 429, "title": i18n.gettext("Too many attempts"), "detail": RATE_LIMITED_MESSAGE},
        status_code=429,
        headers={"Retry-After": str(exc.retry_after)},
    )


async def organizations_of(request: Request[Any, Any, Any], seller: Seller) -> list[tuple[Organization, str]]:
    """The organizations ``seller`` may open, with their role there (``admin`` for every one of an admin)."""
    db = portal_state(request.app.state).db
    every = await org_queries.list_public(db)
    if seller.is_admin:
        return [(org, "admin") for org in every]
    roles = await store.organization_ids_of(db, seller.id)
    return [(org, roles[org.id]) for org in every if org.id in roles]


@get("/console", name="console.index", include_in_schema=False)
async def index(request: Request[Any, Any, Any]) -> Response[Any]:
    """Signed out: the sign-in form. Signed in: the organizations this seller may open."""
    seller = await access.current_seller(request)
    if seller is None:
        return _page("sign_in", {"email": "", "message": None})
    return _page(
        "index",
        {"seller": seller, "organizations": await organizations_of(request, seller), "role_labels": role_labels()},
    )


@post("/console/request", name="console.request_code", include_in_schema=False, status_code=303)
async def request_code(
    request: Request[Any, Any, Any], data: Annotated[EmailForm, Body(media_type=RequestEncodingType.URL_ENCODED)]
) -> Response[Any]:
    state = portal_state(request.app.state)
    settings = state.settings
    email = data.email.strip()
    if len(email) > 320 or not _EMAIL.match(email):
        return _page("sign_in", {"email": email[:320], "message": INVALID_EMAIL_MESSAGE}, status_code=400)
    challenge = new_token(32)
    now = state.clock.now()
    try:
        issued = await signin.request_code(
            state.db,
            settings,
            now,
            email=email,
            challenge_hash=codes.challenge_digest(settings.secret_key, challenge),
            ip=client_ip(request, settings),
        )
    except RateLimited as exc:
        return _too_many(exc)
    if issued is not None:
        mail.send(state.mailer, mail.code_email(settings, issued, now, locale=i18n.current_locale()))
    return Redirect(
        f"/console/authenticate{i18n.locale_param()}",
        status_code=303,
        cookies=[access.cookie(settings, access.challenge_cookie_name(settings), challenge, settings.login_code_ttl)],
    )


@get("/console/authenticate", name="console.authenticate_form", include_in_schema=False)
async def authenticate_form(request: Request[Any, Any, Any]) -> Response[Any]:
    state = portal_state(request.app.state)
    challenge = request.cookies.get(access.challenge_cookie_name(state.settings))
    email = (
        await store.email_for_challenge(state.db, codes.challenge_digest(state.settings.secret_key, challenge))
        if challenge
        else None
    )
    if email is None:
        return Redirect(f"/console{i18n.locale_param()}", status_code=303)
    return _page("authenticate", {"email": email, "message": None})


@post("/console/authenticate", name="console.authenticate", include_in_schema=False, status_code=303)
async def authenticate(
    request: Request[Any, Any, Any], data: Annotated[CodeForm, Body(media_type=RequestEncodingType.URL_ENCODED)]
) -> Response[Any]:
    state = portal_state(request.app.state)
    settings = state.settings
    challenge = request.cookies.get(access.challenge_cookie_name(settings))
    try:
        signed_in = await signin.authenticate(
            state.db,
            settings,
            state.clock.now(),
            challenge=challenge,
            code=data.code,
            ip=client_ip(request, settings),
        )
    except RateLimited as exc:
        return _too_many(exc)
    except signin.InvalidCode:
        email = (
            await store.email_for_challenge(state.db, codes.challenge_digest(settings.secret_key, challenge))
            if challenge
            else None
        )
        return _page("authenticate", {"email": email or "", "message": INVALID_CODE_MESSAGE}, status_code=400)
    return Redirect(
        "/console",
        status_code=303,
        cookies=[
            access.cookie(settings, access.cookie_name(settings), signed_in.token, settings.session_max_age),
            access.expired(settings, access.challenge_cookie_name(settings)),
        ],
    )


@post("/console/logout", name="console.logout", include_in_schema=False, status_code=303)
async def logout(request: Request[Any, Any, Any]) -> Response[Any]:
    state = portal_state(request.app.state)
    settings = state.settings
    token = request.cookies.get(access.cookie_name(settings))
    seller = await access.current_seller(request)
    if token and seller is not None:
        now = state.clock.now()
        actor = audit.Actor(
            seller_id=seller.id,
            email=seller.email,
            role="admin" if seller.is_admin else "seller",
            client_ip=client_ip(request, settings),
        )
        async with state.db.write() as tx:
            await store.revoke_session(tx, settings.secret_key, token, now)
            await audit.record(tx, actor, organization_id=None, action="session.sign_out", now=now)
    return Redirect("/console", status_code=303, cookies=[access.expired(settings, access.cookie_name(settings))])


ROUTES = [index, request_code, authenticate_form, authenticate, logout]
