"""The console's Customers section, ``/console/<slug>/customers``: search (``customer_search``), one customer's
page (profile and billing, orders, subscriptions, benefit grants, license keys with activations, live sessions,
emails, a timeline), and the actions on a customer: a pre-authenticated sign-in link shown once, the same sent by
email, viewing the portal as the customer, revoking every session, changing the email address.

Viewing the portal as the customer (read-only) is ``portal.sessions.view_as``. Support sellers and owners may do
all of it. Every handler starts with ``access.require_org``; every POST is
CSRF-checked by the app's middleware and writes its audit entry (target: the customer's id) in its own transaction.
The order, subscription, license-key and benefits pages this page links to belong to their own page modules.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, QueryParameter
from litestar.response import Redirect, Template

from portal import i18n
from portal.benefits import reads as benefit_reads
from portal.console import access, audit, commerce_pages, customer_search, layout, org_pages
from portal.console import store as console_store
from portal.console.access import OrgAccess
from portal.customers import reads as customer_reads
from portal.customers import service as customer_service
from portal.customers.reads import CustomerRecord
from portal.db import Database
from portal.errors import Conflict, DomainError
from portal.notifications import emails as notification_emails
from portal.notifications import outbox
from portal.orders import reads as order_reads
from portal.scope import Scope
from portal.sessions import email_links, view_as
from portal.sessions import store as session_store
from portal.sessions.auth import expired_cookie
from portal.sessions.store import create_session, customer_portal_url
from portal.subscriptions import reads as subscription_reads
from portal.web import portal_state

PAGE_SIZE = 25
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

Query = Annotated[str | None, QueryParameter(name="q", max_length=customer_search.MAX_QUERY)]
PageNumber = Annotated[int, QueryParameter(name="page", ge=1, le=10_000)]


def _notice(done: str | None) -> str | None:
    _ = i18n.gettext
    return layout.done_notice(
        done,
        {
            "link_emailed": _("The sign-in link is queued to be emailed to the customer."),
            "sessions_revoked": _("Every session of this customer is signed out."),
            "email_changed": _("Email address changed. The customer's sessions were signed out."),
            "view_ended": _("You stopped viewing the portal as this customer."),
        },
    )


# --- search ------------------------------------------------------------------------------------------------


@get("/console/{slug:str}/customers", name="console.customers", include_in_schema=False)
async def customers(
    request: Request[Any, Any, Any], slug: FromPath[str], q: Query = None, page: PageNumber = 1
) -> Response[Any]:
    """Search the organization's customers, or list the newest ones page by page."""
    access_ = await access.require_org(request, slug)
    db = portal_state(request.app.state).db
    query = " ".join((q or "").split())
    context: dict[str, Any] = {"q": query, "kind_labels": customer_search.kind_labels(), "page": page}
    if query:
        context["hits"] = await customer_search.search(db, access_.organization.id, query)
    else:
        recent, more = await customer_reads.recent_customers(
            db, Scope.of_organization(access_.organization.id), page=page, limit=PAGE_SIZE
        )
        context |= {"recent": recent, "has_next": more}
    return layout.page(access_, "customers", "customers", context)


# --- one customer ------------------------------------------------------------------------------------------


class TimelineEntry(msgspec.Struct, frozen=True, kw_only=True):
    at: str
    kind: str  # order | refund | subscription | grant | sign_in | email | event | audit
    text: str
    href: str | None = None


async def _customer(request: Request[Any, Any, Any], access_: OrgAccess, customer_id: str) -> CustomerRecord:
    if not _ID.match(customer_id):
        raise NotFoundException(i18n.gettext("Not found"))
    record = await customer_reads.get_customer_record(
        portal_state(request.app.state).db, Scope.of_organization(access_.organization.id), customer_id
    )
    if record is None:
        raise NotFoundException(i18n.gettext("Not found"))
    return record


def _timeline(base: str, data: dict[str, Any]) -> list[TimelineEntry]:
    """Everything that happened to the customer, newest first (each source is already its newest 50-100)."""
    _ = i18n.gettext
    entries: list[TimelineEntry] = []
    for order in data["orders"]:
        entries.append(
            TimelineEntry(
                at=order.created_at,
                kind="order",
                text=_("Order %(product)s (%(status)s)")
                % {"product": order.product_name or order.id[:8], "status": order.status},
                href=f"{base}/orders/{order.id}",
            )
        )
    for refund in data["refunds"]:
        entries.append(
            TimelineEntry(
                at=refund.created_at,
                kind="refund",
                text=_("Refund of %(amount)s %(currency)s")
                % {"amount": f"{refund.amount / 100:.2f}", "currency": refund.currency.upper()},
                href=f"{base}/orders/{refund.order_id}",
            )
        )
    for sub in data["subscriptions"]:
        entries.append(
            TimelineEntry(
                at=sub.created_at,
                kind="subscription",
                text=_("Subscription to %(product)s started") % {"product": sub.product_name},
                href=f"{base}/subscriptions/{sub.id}",
            )
        )
    for grant in data["grants"]:
        entries.append(
            TimelineEntry(
                at=grant["granted_at"] or grant["created_at"],
                kind="grant",
                text=_("Benefit granted: %(benefit)s") % {"benefit": grant["benefit_description"]},
                href=f"{base}/customers/{data['customer'].id}/benefits",
            )
        )
        if grant["revoked_at"]:
            entries.append(
                TimelineEntry(
                    at=grant["revoked_at"],
                    kind="grant",
                    text=_("Benefit revoked: %(benefit)s") % {"benefit": grant["benefit_description"]},
                    href=f"{base}/customers/{data['customer'].id}/benefits",
                )
            )
    origins = _origin_labels()
    for session in data["sign_ins"]:
        entries.append(
            TimelineEntry(
                at=session.created_at,
                kind="sign_in",
                text=_("Signed in (%(how)s)") % {"how": origins.get(session.origin or "", session.origin or "?")},
            )
        )
    for message in data["emails"]:
        entries.append(
            TimelineEntry(
                at=message.created_at,
                kind="email",
                text=_("Email %(kind)s to %(to)s (%(status)s)")
                % {"kind": message.kind, "to": message.to_address, "status": message.status},
            )
        )
    for event in data["events"]:
        entries.append(TimelineEntry(at=event.created_at, kind="event", text=event.name))
    for entry in data["audit"]:
        entries.append(
            TimelineEntry(
                at=entry.created_at,
                kind="audit",
                text=_("%(who)s: %(action)s") % {"who": entry.seller_email, "action": entry.action},
            )
        )
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[:150]


def _timeline_labels() -> dict[str, str]:
    _ = i18n.gettext
    return {
        "order": _("Order"),
        "refund": _("Refund"),
        "subscription": _("Subscription"),
        "grant": _("Benefit"),
        "sign_in": _("Sign-in"),
        "email": _("Email"),
        "event": _("Event"),
        "audit": _("Seller"),
    }


def _origin_labels() -> dict[str, str]:
    _ = i18n.gettext
    return {
        "code": _("sign-in code"),
        "link": _("seller's sign-in link"),
        "email_link": _("email link"),
        "seller": _("seller's sign-in link"),
        "email_change": _("email change"),
        "direct": _("direct"),
        "view_as": _("seller viewing"),
    }


async def page_data(db: Database, slug: str, customer: CustomerRecord, now: datetime) -> dict[str, Any]:
    """Everything the customer's page shows (each part one indexed read; ``bench/console_search.py`` times it)."""
    org_id = customer.organization_id
    scope = Scope.of_customer(org_id, customer.id)
    orders, order_count = await order_reads.list_order_summaries(db, scope, page=1, limit=50)
    keys = await benefit_reads.customer_license_key_rows(db, scope)
    data: dict[str, Any] = {
        "customer": customer,
        "billing_address": msgspec.json.decode(customer.billing_address) if customer.billing_address else None,
        "orders": orders,
        "order_count": order_count,
        "refunds": await order_reads.customer_refunds(db, scope),
        "subscriptions": await subscription_reads.list_subscriptions(db, scope),
        "grants": await benefit_reads.customer_grant_rows(db, scope),
        "license_keys": keys,
        "activations": await benefit_reads.activation_rows_of_keys(db, [str(k["id"]) for k in keys]),
        "sessions": await session_store.live_sessions_of_customer(db, org_id, customer.id, now),
        "sign_ins": await session_store.sign_ins_of_customer(db, org_id, customer.id),
        "emails": await outbox.messages_to_customer(db, org_id, customer.id),
        "events": await customer_reads.customer_events(db, scope),
        "audit": await audit.entries_about(db, org_id, customer.id),
    }
    data["timeline"] = _timeline(f"/console/{slug}", data)
    return data


async def _customer_page(
    request: Request[Any, Any, Any],
    access_: OrgAccess,
    customer: CustomerRecord,
    status_code: int = 200,
    **extra: Any,
) -> Template:
    state = portal_state(request.app.state)
    data = await page_data(state.db, access_.organization.slug, customer, state.clock.now())
    context = {
        "errors": {},
        "email_form": customer.email,
        "sign_in_link": None,
        "link_minutes": state.settings.customer_session_ttl // 60,
        "viewing": bool(request.cookies.get(view_as.cookie_name(state.settings, access_.organization.slug))),
        "origin_labels": _origin_labels(),
        "email_status_labels": org_pages.outbox_status_labels(),
        "key_status_labels": commerce_pages.license_key_status_labels(),
        "subscription_status_label": commerce_pages.subscription_status_label,
        "timeline_labels": _timeline_labels(),
        **data,
        **extra,
    }
    return layout.page(access_, "customer", "customers", context, status_code=status_code)


@get("/console/{slug:str}/customers/{customer_id:str}", name="console.customer", include_in_schema=False)
async def customer_page(
    request: Request[Any, Any, Any], slug: FromPath[str], customer_id: FromPath[str], done: layout.Done = None
) -> Response[Any]:
    access_ = await access.require_org(request, slug)
    customer = await _customer(request, access_, customer_id)
    return await _customer_page(request, access_, customer, notice=_notice(done))


# --- actions -----------------------------------------------------------------------------------------------


@post(
    "/console/{slug:str}/customers/{customer_id:str}/sign-in-link",
    name="console.customer_sign_in_link",
    include_in_schema=False,
    status_code=200,
)
async def customer_sign_in_link(
    request: Request[Any, Any, Any], slug: FromPath[str], customer_id: FromPath[str]
) -> Response[Any]:
    """Mint a pre-authenticated portal link, exactly as ``POST /v1/customer-sessions/`` does (a seller-made
    ``api`` token, ``PORTAL_CUSTOMER_SESSION_TTL``), and show it this once (only its HMAC is stored)."""
    access_ = await access.require_org(request, slug)
    customer = await _customer(request, access_, customer_id)
    state = portal_state(request.app.state)
    now = state.clock.now()
    async with state.db.write() as tx:
        token, session = await create_session(
            tx,
            secret=state.settings.secret_key,
            kind="api",
            organization_id=access_.organization.id,
            customer_id=customer.id,
            now=now,
            ttl_seconds=state.settings.customer_session_ttl,
            origin="seller",
        )
        await audit.record(
            tx,
            access_.actor,
            organization_id=access_.organization.id,
            action="customer.sign_in_link",
            target=customer.id,
            details={"session_id": session.id, "expires_at": session.expires_at},
            now=now,
        )
    url = customer_portal_url(state.settings.public_base_url, access_.organization.slug, token, customer.email)
    return await _customer_page(request, access_, customer, sign_in_link=url, sign_in_expires=session.expires_at)


@post(
    "/console/{slug:str}/customers/{customer_id:str}/email-sign-in-link",
    name="console.customer_email_link",
    include_in_schema=False,
    status_code=303,
)
async def customer_email_link(
    request: Request[Any, Any, Any], slug: FromPath[str], customer_id: FromPath[str]
) -> Response[Any]:
    """Queue the ``sign_in_link`` email (the outbox mints its single-use 24-hour link when it sends it)."""
    access_ = await access.require_org(request, slug)
    customer = await _customer(request, access_, customer_id)
    state = portal_state(request.app.state)
    now = state.clock.now()
    async with state.db.write() as tx:
        message_id = await notification_emails.enqueue_sign_in_link(tx, customer.id, now=now)
        await audit.record(
            tx,
            access_.actor,
            organization_id=access_.organization.id,
            action="customer.email_sign_in_link",
            target=customer.id,
            details={"outbox_id": message_id, "to": customer.email},
            now=now,
        )
    return layout.back(access_, f"/customers/{customer.id}", "link_emailed")


@post(
    "/console/{slug:str}/customers/{customer_id:str}/revoke-sessions",
    name="console.customer_revoke_sessions",
    include_in_schema=False,
    status_code=303,
)
async def customer_revoke_sessions(
    request: Request[Any, Any, Any], slug: FromPath[str], customer_id: FromPath[str]
) -> Response[Any]:
    """Sign the customer out everywhere: every browser session and every customer-session token (API tokens and
    unused seller links alike)."""
    access_ = await access.require_org(request, slug)
    customer = await _customer(request, access_, customer_id)
    state = portal_state(request.app.state)
    now = state.clock.now()
    async with state.db.write() as tx:
        count = await session_store.revoke_customer_sessions(tx, access_.organization.id, customer.id, now)
        await audit.record(
            tx,
            access_.actor,
            organization_id=access_.organization.id,
            action="customer.revoke_sessions",
            target=customer.id,
            details={"revoked": count},
            now=now,
        )
    return layout.back(access_, f"/customers/{customer.id}", "sessions_revoked")


class EmailForm(msgspec.Struct, kw_only=True):
    email: str = ""


@post(
    "/console/{slug:str}/customers/{customer_id:str}/email",
    name="console.customer_email",
    include_in_schema=False,
    status_code=303,
)
async def customer_email(
    request: Request[Any, Any, Any],
    slug: FromPath[str],
    customer_id: FromPath[str],
    data: Annotated[EmailForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    """Change the customer's email address (validated, unique in the organization: 409 naming the field). The
    address signs the customer in, so every session and token of theirs is revoked and every unused email link
    (mailed to the old address) is voided, in the same transaction; the customer signs in again with the new one."""
    access_ = await access.require_org(request, slug)
    customer = await _customer(request, access_, customer_id)
    email = data.email.strip()
    state = portal_state(request.app.state)
    now = state.clock.now()
    if email == customer.email:  # nothing to change: no write, no audit entry, no notice
        return layout.back(access_, f"/customers/{customer.id}", "")
    try:
        async with state.db.write() as tx:
            await customer_service.update_customer(
                tx,
                customer.id,
                customer_service.CustomerUpdate(email=email),
                now=now,
                organization_id=access_.organization.id,
            )
            revoked = await session_store.revoke_customer_sessions(tx, access_.organization.id, customer.id, now)
            voided = await email_links.void_for_customer(tx, access_.organization.id, customer.id, now)
            await audit.record(
                tx,
                access_.actor,
                organization_id=access_.organization.id,
                action="customer.change_email",
                target=customer.id,
                details={"from": customer.email, "to": email, "sessions_revoked": revoked, "links_voided": voided},
                now=now,
            )
    except DomainError as exc:
        _ = i18n.gettext
        conflict = isinstance(exc, Conflict)
        message = (
            _("Another customer of this organization has this email address.")
            if conflict
            else _("Enter a valid email address.")
        )
        return await _customer_page(
            request,
            access_,
            customer,
            status_code=409 if conflict else 400,
            errors={"email": message},
            email_form=email[:320],
        )
    return layout.back(access_, f"/customers/{customer.id}", "email_changed")


# --- view the portal as this customer ---------------------------------------------------------------------


@post(
    "/console/{slug:str}/customers/{customer_id:str}/view-as",
    name="console.customer_view_as",
    include_in_schema=False,
    status_code=303,
)
async def customer_view_as(
    request: Request[Any, Any, Any], slug: FromPath[str], customer_id: FromPath[str]
) -> Response[Any]:
    """Open the portal as this customer, read-only (``portal.sessions.view_as``): a 15-minute view session bound
    to this console session, in its own cookie (a customer signed in in this browser stays signed in)."""
    access_ = await access.require_org(request, slug)
    customer = await _customer(request, access_, customer_id)
    state = portal_state(request.app.state)
    now = state.clock.now()
    console_token = request.cookies.get(access.cookie_name(state.settings), "")
    console_session = await console_store.session_id_for_token(state.db, state.settings.secret_key, console_token, now)
    if console_session is None:
        raise access.ConsoleSignInRequired()
    previous = request.cookies.get(view_as.cookie_name(state.settings, access_.organization.slug))
    if previous:  # viewing someone else already: that view ends, one view per browser
        await view_as.end(state.db, state.settings, previous, access_.organization.id, now)
    async with state.db.write() as tx:
        token, session = await view_as.start(
            tx,
            state.settings,
            organization_id=access_.organization.id,
            customer_id=customer.id,
            viewer_session_id=console_session,
            now=now,
        )
        await audit.record(
            tx,
            access_.actor,
            organization_id=access_.organization.id,
            action="customer.view_as",
            target=customer.id,
            details={"session_id": session.id, "expires_at": session.expires_at},
            now=now,
        )
    return Redirect(
        f"/{access_.organization.slug}/portal",
        status_code=303,
        cookies=[view_as.view_cookie(state.settings, access_.organization.slug, token)],
    )


@post(
    "/console/{slug:str}/customers/{customer_id:str}/view-as/end",
    name="console.customer_view_as_end",
    include_in_schema=False,
    status_code=303,
)
async def customer_view_as_end(
    request: Request[Any, Any, Any], slug: FromPath[str], customer_id: FromPath[str]
) -> Response[Any]:
    """Stop viewing: the view session is revoked and its cookie deleted (the browser's own customer session, if
    any, was never touched)."""
    access_ = await access.require_org(request, slug)
    customer = await _customer(request, access_, customer_id)
    state = portal_state(request.app.state)
    now = state.clock.now()
    name = view_as.cookie_name(state.settings, access_.organization.slug)
    token = request.cookies.get(name)
    ended = None
    if token:
        ended = await view_as.end(state.db, state.settings, token, access_.organization.id, now)
    async with state.db.write() as tx:
        await audit.record(
            tx,
            access_.actor,
            organization_id=access_.organization.id,
            action="customer.view_as_end",
            target=customer.id,
            details={"ended": ended is not None},
            now=now,
        )
    response = layout.back(access_, f"/customers/{customer.id}", "view_ended")
    response.set_cookie(expired_cookie(state.settings, name))
    return response


ROUTES = [
    customers,
    customer_page,
    customer_sign_in_link,
    customer_email_link,
    customer_revoke_sessions,
    customer_email,
    customer_view_as,
    customer_view_as_end,
]
