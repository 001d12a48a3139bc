"""Changing the email address in the portal, where the seller allows it (``organizations.allow_email_change``):
the "Change email" form of the Billing page (``POST /<slug>/portal/settings/email``, signed in) and the page of the
link in the verification email (``/<slug>/portal/email-change?token=…``, any browser, signed in or not).

The rules, throttles and rows are ``portal.customers.email_change``'s (shared with the customer API). Opening the
link shows a Confirm button and changes nothing (scanners that prefetch links spend nothing); the CSRF-checked POST
spends it. The form's answer is the same whether or not the new address is already a customer's."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, QueryParameter
from litestar.response import Template

from portal import i18n
from portal.clock import Clock
from portal.customers import email_change
from portal.customers.billing import BillingForm, countries, stored_problems
from portal.db import Database
from portal.errors import InvalidInput
from portal.organizations import queries as org_queries
from portal.organizations.queries import Organization
from portal.portal_pages.layout import base_path, not_found, page_context, see_other
from portal.sessions.auth import browser_session
from portal.sessions.emails import send_email_change
from portal.sessions.pages import wait_text
from portal.sessions.rate_limit import RateLimited
from portal.sessions.store import SessionContext
from portal.settings import Settings
from portal.web import client_ip

# The token is in the URL: keep it out of Referer headers, caches and search engines.
_TOKEN_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store", "X-Robots-Tag": "noindex"}

_ = i18n.lazy_gettext
EXPIRED = _("This link has expired or was already used. Ask for a new one on your Billing details page.")
IN_USE = _("This address already belongs to another account with this seller. Your email address was not changed.")
THROTTLED = _("Too many requests to change the email address. Try again in %(wait)s.")
# The service's English problems with an email address, as the form shows them.
PROBLEMS = {
    "enter an email address": _("Enter an email address."),
    "enter a valid email address, like name@example.com": _("Enter a valid email address, like name@example.com."),
    "this is already your email address": _("This is already your email address."),
}


class EmailChangeForm(msgspec.Struct, kw_only=True):
    email: str = ""


class TokenForm(msgspec.Struct, kw_only=True):
    token: str = ""


def billing_page(
    request: Request[Any, Any, Any],
    ctx: SessionContext,
    *,
    form: BillingForm | None = None,
    errors: dict[str, str] | None = None,
    form_action: str | None = None,
    email_value: str = "",
    email_error: str | None = None,
    status_code: int = 200,
) -> Template:
    """The Billing details page (its form and, where allowed, the email change form)."""
    customer = ctx.customer
    form = form or BillingForm.from_customer(customer.billing_name, customer.billing_address_dict, customer.tax_id)
    return Template(
        template_name="portal/billing.html",
        context=page_context(
            request,
            ctx,
            active="billing",
            form=form,
            errors=stored_problems(customer) if errors is None else errors,
            countries=countries(i18n.current_locale()),
            form_action=form_action,
            email_value=email_value,
            email_error=email_error,
        ),
        status_code=status_code,
    )


def _message_page(
    organization: Organization, *, status: int, title: str, detail: str, headers: dict[str, str] | None = None
) -> Template:
    return Template(
        template_name="portal/email_change_done.html",
        context={"organization": organization, "status": status, "title": title, "detail": detail, "email": None},
        status_code=status,
        headers={**_TOKEN_HEADERS, **(headers or {})},
    )


def _throttled(organization: Organization, exc: RateLimited) -> Template:
    return _message_page(
        organization,
        status=429,
        title=i18n.gettext("Too many attempts"),
        detail=str(THROTTLED) % {"wait": wait_text(exc.retry_after)},
        headers={"Retry-After": str(exc.retry_after)},
    )


def _expired(organization: Organization) -> Template:
    return _message_page(organization, status=400, title=i18n.gettext("Link expired"), detail=str(EXPIRED))


@post("/{slug:str}/portal/settings/email", name="portal.email_change.request", include_in_schema=False)
async def request_email_change(
    request: Request[Any, Any, Any],
    db: NamedDependency[Database],
    settings: NamedDependency[Settings],
    clock: NamedDependency[Clock],
    portal_customer: NamedDependency[SessionContext],
    data: Annotated[EmailChangeForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    """Send the verification link to the new address; 303 back to Billing with a notice (the same notice whether
    or not the address is already a customer's), the form again with the problem, or the wait when throttled."""
    ctx = portal_customer
    if not ctx.organization.allow_email_change:
        raise not_found()
    email = data.email.strip()[:400]
    try:
        requested = await email_change.request_change(
            db, settings, ctx, email, ip=client_ip(request, settings), now=clock.now()
        )
    except InvalidInput as exc:
        message = PROBLEMS.get(exc.message, PROBLEMS["enter a valid email address, like name@example.com"])
        return billing_page(request, ctx, email_value=email, email_error=str(message), status_code=400)
    except RateLimited as exc:
        page = billing_page(
            request,
            ctx,
            email_value=email,
            email_error=str(THROTTLED) % {"wait": wait_text(exc.retry_after)},
            status_code=429,
        )
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    if requested.token is not None:
        send_email_change(
            request.app.state.portal.mailer,
            settings,
            ctx.organization,
            to=requested.email,
            token=requested.token,
            minutes=requested.minutes,
            locale=i18n.current_locale(),
        )
    return see_other(f"{base_path(ctx.organization)}/settings?done=email_change_sent")


async def _organization(request: Request[Any, Any, Any], db: Database, slug: str) -> Organization:
    organization = await org_queries.get_by_slug(db, slug)
    if organization is None:
        raise NotFoundException(i18n.gettext("No portal at this address."))
    request.state.organization = organization
    i18n.refine(org_default=organization.default_locale)
    return organization


@get("/{slug:str}/portal/email-change", name="portal.email_change.link", include_in_schema=False)
async def email_change_link(
    request: Request[Any, Any, Any],
    db: NamedDependency[Database],
    settings: NamedDependency[Settings],
    clock: NamedDependency[Clock],
    slug: FromPath[str],
    token: Annotated[str, QueryParameter(name="token", max_length=200)] = "",
) -> Response[Any]:
    """The Confirm button of a live link; never spends it."""
    organization = await _organization(request, db, slug)
    if not organization.allow_email_change:
        return _expired(organization)
    try:
        change = await email_change.check_token(
            db, settings, token, ip=client_ip(request, settings), now=clock.now(), organization_id=organization.id
        )
    except RateLimited as exc:
        return _throttled(organization, exc)
    except email_change.InvalidEmailChangeToken:
        return _expired(organization)
    return Template(
        template_name="portal/email_change_confirm.html",
        context={"organization": organization, "token": token, "email": change.email},
        headers=_TOKEN_HEADERS,
    )


@post("/{slug:str}/portal/email-change", name="portal.email_change.confirm", include_in_schema=False)
async def confirm_email_change(
    request: Request[Any, Any, Any],
    db: NamedDependency[Database],
    settings: NamedDependency[Settings],
    clock: NamedDependency[Clock],
    slug: FromPath[str],
    data: Annotated[TokenForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    """Spend the link and change the address. A browser signed in as that customer goes back to Billing with a
    notice; any other browser gets a page saying so (it is not signed in by the link)."""
    organization = await _organization(request, db, slug)
    if not organization.allow_email_change:
        return _expired(organization)
    try:
        changed = await email_change.verify(
            db,
            settings,
            data.token[:200],
            ip=client_ip(request, settings),
            now=clock.now(),
            organization_id=organization.id,
            then=email_change.nothing_more,
        )
    except RateLimited as exc:
        return _throttled(organization, exc)
    except email_change.InvalidEmailChangeToken:
        return _expired(organization)
    except InvalidInput:
        return _message_page(organization, status=409, title=i18n.gettext("Address already in use"), detail=str(IN_USE))
    current = await browser_session(request, db, settings, clock, slug)
    if current is not None and current.customer.id == changed.customer_id:
        response = see_other(f"{base_path(organization)}/settings?done=email_changed")
        response.headers.update(_TOKEN_HEADERS)
        return response
    return Template(
        template_name="portal/email_change_done.html",
        context={
            "organization": organization,
            "status": 200,
            "title": i18n.gettext("Email address changed"),
            "detail": None,
            "email": changed.email,
        },
        headers=_TOKEN_HEADERS,
    )
