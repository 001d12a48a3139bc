"""The pages of one organization in the console, ``/console/<slug>/…``: home (what needs attention), team,
audit log, settings, API tokens, email outbox, webhook deliveries and processor connections.

Every handler starts with ``access.require_org`` (303 to sign-in, 404 without a role, 403 for a support seller on
an owner-only action); every POST is CSRF-checked by the app's middleware, writes through the area's own service or
query module, and records its audit entry in the same transaction.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.enums import MediaType, RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, QueryParameter
from litestar.response import Template

from portal import i18n
from portal.admin import tokens
from portal.clock import iso
from portal.connectors import base as connector_base
from portal.connectors import connect as connector_connect
from portal.connectors import events as connector_events
from portal.connectors import health as connector_health
from portal.connectors import links as connector_links
from portal.connectors import store as connector_store
from portal.console import access, audit, dashboard, layout, logos, mail, store
from portal.console.access import OrgAccess
from portal.customers.tax_ids import InvalidTaxID, validate_tax_id
from portal.errors import DomainError
from portal.fields import EMAIL_ADDRESS_PATTERN, single_line_problem
from portal.notifications import outbox
from portal.notifications.org_settings import SETTINGS_KEY, email_settings
from portal.organizations import service as org_service
from portal.organizations.queries import INVOICE_SETTINGS_KEY, Organization
from portal.products import reads as product_reads
from portal.scope import Scope
from portal.sessions.emails import login_code_email
from portal.templating.accent import LIGHT_SURFACE, MIN_CONTRAST, contrast
from portal.web import CSP, portal_state
from portal.webhooks import queries as webhook_queries

_EMAIL = re.compile(EMAIL_ADDRESS_PATTERN)
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _notice(done: str | None) -> str | None:
    """What the page says after one of this module's actions (``?done=…``)."""
    _ = i18n.gettext
    return layout.done_notice(
        done,
        {
            "invited": _("Invitation sent."),
            "role": _("Role changed."),
            "removed": _("Removed from the team."),
            "revoked": _("Token revoked."),
            "retried": _("The email is queued to be sent again."),
            "redelivered": _("The webhook is queued to be delivered again."),
            "saved": _("Settings saved."),
            "connected": _("Connected. Point the processor's webhook at the address shown."),
            "mapped": _("Price mapped; the events that waited on it were applied."),
            "replayed": _("The event was applied again; its status is in the list."),
        },
    )


# --- home ---------------------------------------------------------------------------------------------------


@get("/console/{slug:str}", name="console.home", include_in_schema=False)
async def home(request: Request[Any, Any, Any], slug: FromPath[str]) -> Response[Any]:
    """The organization at a glance: what needs attention."""
    access_ = await access.require_org(request, slug)
    db = portal_state(request.app.state).db
    org_id = access_.organization.id
    failed_emails = await outbox.list_messages(db, status="failed", organization_id=org_id, limit=20)
    failed_webhooks = await webhook_queries.failed_events(db, org_id, limit=20)
    connector_problems = []
    for connection in await connector_store.list_connections(db, org_id):
        report = await connector_health.health(db, connection)
        if report.failures or report.unmapped_prices:
            connector_problems.append(report)
    state = portal_state(request.app.state)
    board = await dashboard.build(
        db, org_id, access_.organization.default_currency, state.clock.now(), i18n.current_locale()
    )
    _ = i18n.gettext
    chart_text = {
        "revenue": (_("Revenue per month"), _("Paid orders in %(currency)s, last 12 months.")),
        "orders": (_("Orders per month"), _("Paid orders, every currency, last 12 months.")),
        "refunds": (_("Refunds per month"), _("Refunded amounts in %(currency)s, last 12 months.")),
        "customers": (_("New customers per month"), _("Customers created, last 12 months.")),
    }
    return layout.page(
        access_,
        "home",
        "home",
        {
            "board": board,
            "chart_text": {
                key: (title, desc % {"currency": board.currency.upper()}) for key, (title, desc) in chart_text.items()
            },
            "failed_emails": failed_emails,
            "failed_webhooks": failed_webhooks,
            "connector_problems": connector_problems,
        },
    )


# --- team ---------------------------------------------------------------------------------------------------


class InviteForm(msgspec.Struct, kw_only=True):
    email: str = ""
    role: str = "support"


class RoleForm(msgspec.Struct, kw_only=True):
    role: str = ""


async def _team_page(request: Request[Any, Any, Any], access_: OrgAccess, **context: Any) -> Template:
    members = await store.members(portal_state(request.app.state).db, access_.organization.id)
    status = 400 if context.get("errors") else 409 if context.get("problem") else 200
    return layout.page(
        access_,
        "team",
        "team",
        {"members": members, "errors": {}, "form": InviteForm(), **context},
        status_code=status,
    )


@get("/console/{slug:str}/team", name="console.team", include_in_schema=False)
async def team(request: Request[Any, Any, Any], slug: FromPath[str], done: layout.Done = None) -> Response[Any]:
    access_ = await access.require_org(request, slug)
    return await _team_page(request, access_, notice=_notice(done))


@post("/console/{slug:str}/team/invite", name="console.team_invite", include_in_schema=False, status_code=303)
async def team_invite(
    request: Request[Any, Any, Any],
    slug: FromPath[str],
    data: Annotated[InviteForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    """Invite an address (a new or existing seller account) with a role; emails the invitation."""
    access_ = await access.require_org(request, slug, manage=True)
    _ = i18n.gettext
    email = data.email.strip()
    errors: dict[str, str] = {}
    if len(email) > 320 or not _EMAIL.match(email):
        errors["email"] = _("Enter a valid email address.")
    if data.role not in store.ROLES:
        errors["role"] = _("Choose owner or support.")
    if errors:
        return await _team_page(request, access_, errors=errors, form=InviteForm(email=email[:320], role="support"))
    state = portal_state(request.app.state)
    now = state.clock.now()
    async with state.db.write() as tx:
        seller = await store.ensure_seller(tx, email, now)
        if seller.id == access_.seller.id:
            errors["email"] = _("That is you.")
        else:
            created = await store.set_membership(
                tx,
                seller.id,
                access_.organization.id,
                data.role,
                now,
                invited_by=access_.seller.id,
            )
            await audit.record(
                tx,
                access_.actor,
                organization_id=access_.organization.id,
                action="team.invite",
                target=seller.email,
                details={"role": data.role, "new_member": created},
                now=now,
            )
    if errors:
        return await _team_page(request, access_, errors=errors, form=InviteForm(email=email, role=data.role))
    mail.send(
        state.mailer,
        mail.invitation_email(
            state.settings,
            to=seller.email,
            organization_name=access_.organization.name,
            role=data.role,
            invited_by=access_.seller.email,
            locale=i18n.current_locale(),
        ),
    )
    return layout.back(access_, "/team", "invited")


async def _member_change(request: Request[Any, Any, Any], slug: str, seller_id: str, role: str | None) -> Response[Any]:
    """Change a member's role (``role``) or remove them (None); an organization always keeps one owner."""
    access_ = await access.require_org(request, slug, manage=True)
    _ = i18n.gettext
    if role is not None and role not in store.ROLES:
        return await _team_page(request, access_, errors={"role": _("Choose owner or support.")})
    state = portal_state(request.app.state)
    now = state.clock.now()
    problem = None
    async with state.db.write() as tx:
        current = await store.role_in(tx, seller_id, access_.organization.id) if _ID.match(seller_id) else None
        if current is None:
            raise NotFoundException(_("Not found"))
        if current == "owner" and role != "owner" and await store.count_owners(tx, access_.organization.id) == 1:
            problem = _("An organization needs at least one owner: make someone else owner first.")
        else:
            email = await tx.fetchval("SELECT email FROM seller_accounts WHERE id = ?", (seller_id,))
            if role is None:
                await store.remove_membership(tx, seller_id, access_.organization.id)
            else:
                await store.set_membership(tx, seller_id, access_.organization.id, role, now, invited_by=None)
            await audit.record(
                tx,
                access_.actor,
                organization_id=access_.organization.id,
                action="team.remove" if role is None else "team.role",
                target=str(email),
                details={"from": current} | ({} if role is None else {"to": role}),
                now=now,
            )
    if problem:
        return await _team_page(request, access_, problem=problem)
    return layout.back(access_, "/team", "removed" if role is None else "role")


@post(
    "/console/{slug:str}/team/{seller_id:str}/role", name="console.team_role", include_in_schema=False, status_code=303
)
async def team_role(
    request: Request[Any, Any, Any],
    slug: FromPath[str],
    seller_id: FromPath[str],
    data: Annotated[RoleForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    return await _member_change(request, slug, seller_id, data.role)


@post(
    "/console/{slug:str}/team/{seller_id:str}/remove",
    name="console.team_remove",
    include_in_schema=False,
    status_code=303,
)
async def team_remove(request: Request[Any, Any, Any], slug: FromPath[str], seller_id: FromPath[str]) -> Response[Any]:
    return await _member_change(request, slug, seller_id, None)


# --- audit log ----------------------------------------------------------------------------------------------


@get("/console/{slug:str}/audit", name="console.audit", include_in_schema=False)
async def audit_log(
    request: Request[Any, Any, Any],
    slug: FromPath[str],
    action: Annotated[str | None, QueryParameter(name="action", max_length=64)] = None,
    seller: Annotated[str | None, QueryParameter(name="seller", max_length=320)] = None,
) -> Response[Any]:
    access_ = await access.require_org(request, slug)
    db = portal_state(request.app.state).db
    org_id = access_.organization.id
    entries = await audit.entries(db, org_id, action=action or None, seller_email=seller or None, limit=200)
    return layout.page(
        access_,
        "audit",
        "audit",
        {
            "entries": entries,
            "actions": await audit.actions_of(db, org_id),
            "filter_action": action or "",
            "filter_seller": seller or "",
        },
    )


# --- API tokens (owners) ------------------------------------------------------------------------------------


class TokenForm(msgspec.Struct, kw_only=True):
    name: str = ""


async def _tokens_page(
    request: Request[Any, Any, Any], access_: OrgAccess, status_code: int = 200, **context: Any
) -> Template:
    every = await tokens.list_tokens(portal_state(request.app.state).db)
    mine = [token for token in every if token.organization_id == access_.organization.id]
    return layout.page(
        access_,
        "tokens",
        "tokens",
        {"tokens": mine, "errors": {}, "created": None, "name": "", **context},
        status_code=status_code,
    )


@get("/console/{slug:str}/tokens", name="console.tokens", include_in_schema=False)
async def tokens_page(request: Request[Any, Any, Any], slug: FromPath[str], done: layout.Done = None) -> Response[Any]:
    access_ = await access.require_org(request, slug, manage=True)
    return await _tokens_page(request, access_, notice=_notice(done))


@post("/console/{slug:str}/tokens", name="console.token_create", include_in_schema=False, status_code=200)
async def token_create(
    request: Request[Any, Any, Any],
    slug: FromPath[str],
    data: Annotated[TokenForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    """Create an organization token; the page shows it this once (never stored in clear)."""
    access_ = await access.require_org(request, slug, manage=True)
    name = data.name.strip()
    if not name or len(name) > 100 or any(not ch.isprintable() for ch in name):
        error = i18n.gettext("Give the token a name of 1 to 100 characters.")
        return await _tokens_page(request, access_, status_code=400, errors={"name": error}, name=name[:100])
    state = portal_state(request.app.state)
    now = state.clock.now()
    async with state.db.write() as tx:
        plaintext, record = await tokens.create_token(
            tx, secret=state.settings.secret_key, name=name, organization_id=access_.organization.id, now=now
        )
        await audit.record(
            tx,
            access_.actor,
            organization_id=access_.organization.id,
            action="token.create",
            target=record.id,
            details={"name": name},
            now=now,
        )
    return await _tokens_page(request, access_, created=plaintext, created_name=name)


@post(
    "/console/{slug:str}/tokens/{token_id:str}/revoke",
    name="console.token_revoke",
    include_in_schema=False,
    status_code=303,
)
async def token_revoke(request: Request[Any, Any, Any], slug: FromPath[str], token_id: FromPath[str]) -> Response[Any]:
    access_ = await access.require_org(request, slug, manage=True)
    state = portal_state(request.app.state)
    now = state.clock.now()
    async with state.db.write() as tx:
        owner = await tx.fetchval("SELECT organization_id FROM api_tokens WHERE id = ?", (token_id,))
        if owner != access_.organization.id or not await tokens.revoke_token(tx, token_id, now=now):
            raise NotFoundException(i18n.gettext("Not found"))
        await audit.record(
            tx, access_.actor, organization_id=access_.organization.id, action="token.revoke", target=token_id, now=now
        )
    return layout.back(access_, "/tokens", "revoked")


# --- email outbox -------------------------------------------------------------------------------------------

_OUTBOX_STATUSES = ("pending", "sending", "sent", "failed", "canceled")


def _status_labels() -> dict[str, str]:
    _ = i18n.gettext
    return {
        "pending": _("Waiting"),
        "sending": _("Sending"),
        "sent": _("Sent"),
        "failed": _("Failed"),
        "canceled": _("Canceled"),
    }


@get("/console/{slug:str}/emails", name="console.emails", include_in_schema=False)
async def emails(
    request: Request[Any, Any, Any],
    slug: FromPath[str],
    status: Annotated[str | None, QueryParameter(name="status", max_length=16)] = None,
    done: layout.Done = None,
) -> Response[Any]:
    access_ = await access.require_org(request, slug)
    chosen = status if status in _OUTBOX_STATUSES else None
    messages = await outbox.list_messages(
        portal_state(request.app.state).db, status=chosen, organization_id=access_.organization.id, limit=100
    )
    return layout.page(
        access_,
        "emails",
        "emails",
        {
            "messages": messages,
            "status": chosen or "",
            "statuses": _OUTBOX_STATUSES,
            "status_labels": _status_labels(),
            "notice": _notice(done),
        },
    )


@post(
    "/console/{slug:str}/emails/{message_id:str}/retry",
    name="console.email_retry",
    include_in_schema=False,
    status_code=303,
)
async def email_retry(request: Request[Any, Any, Any], slug: FromPath[str], message_id: FromPath[str]) -> Response[Any]:
    """Send a failed (or canceled) email again: support may, it is about a customer, not a setting."""
    access_ = await access.require_org(request, slug)
    state = portal_state(request.app.state)
    now = state.clock.now()
    async with state.db.write() as tx:
        owner = await tx.fetchval("SELECT organization_id FROM email_outbox WHERE id = ?", (message_id,))
        if owner != access_.organization.id or not await outbox.requeue(tx, message_id, now=now):
            raise NotFoundException(i18n.gettext("Not found"))
        await audit.record(
            tx, access_.actor, organization_id=access_.organization.id, action="email.retry", target=message_id, now=now
        )
    return layout.back(access_, "/emails", "retried")


# --- webhooks -----------------------------------------------------------------------------------------------


@get("/console/{slug:str}/webhooks", name="console.webhooks", include_in_schema=False)
async def webhooks(request: Request[Any, Any, Any], slug: FromPath[str], done: layout.Done = None) -> Response[Any]:
    """Endpoints and their latest events (delivery state, last HTTP code, error); redeliver a failed one."""
    access_ = await access.require_org(request, slug)
    db = portal_state(request.app.state).db
    endpoints = await webhook_queries.list_endpoints(db, organization_id=access_.organization.id, page=1, limit=100)
    events = await webhook_queries.recent_events(db, access_.organization.id, limit=100)
    return layout.page(
        access_,
        "webhooks",
        "webhooks",
        {"endpoints": endpoints.records, "events": events, "notice": _notice(done)},
    )


@post(
    "/console/{slug:str}/webhooks/events/{event_id:str}/redeliver",
    name="console.webhook_redeliver",
    include_in_schema=False,
    status_code=303,
)
async def webhook_redeliver(
    request: Request[Any, Any, Any], slug: FromPath[str], event_id: FromPath[str]
) -> Response[Any]:
    """Queue an event again (owners: it talks to the seller's own systems)."""
    access_ = await access.require_org(request, slug, manage=True)
    state = portal_state(request.app.state)
    now = state.clock.now()
    async with state.db.write() as tx:
        event = await webhook_queries.get_event(tx, event_id)
        if event is None or event.organization_id != access_.organization.id:
            raise NotFoundException(i18n.gettext("Not found"))
        await webhook_queries.requeue_event(tx, event_id, now=now)
        await audit.record(
            tx,
            access_.actor,
            organization_id=access_.organization.id,
            action="webhook.redeliver",
            target=event_id,
            details={"type": event.type},
            now=now,
        )
    return layout.back(access_, "/webhooks", "redelivered")


# --- processors ---------------------------------------------------------------------------------------------


async def _processors_page(
    request: Request[Any, Any, Any], access_: OrgAccess, status_code: int = 200, **context: Any
) -> Template:
    """Each processor (connected or not): health (last event, counts, failures, unmapped prices), the price
    mappings, the latest events with replay, and the connect/replace-key form (owners)."""
    state = portal_state(request.app.state)
    db = state.db
    org_id = access_.organization.id
    connections = {c.processor: c for c in await connector_store.list_connections(db, org_id)}
    processors_: list[dict[str, Any]] = []
    for name in sorted(connector_base.registry()):
        connection = connections.get(name)
        label = connector_base.registry()[name].label
        if connection is None:
            processors_.append({"name": name, "label": label, "connection": None})
            continue
        events_, total = await connector_health.list_events(db, connection, status=None, event_type=None, limit=50)
        processors_.append(
            {
                "name": name,
                "label": label,
                "connection": connection,
                "health": await connector_health.health(db, connection),
                "mappings": await connector_links.list_price_mappings(db, connection.id),
                "events": events_,
                "total": total,
                "webhook_url": connector_connect.instructions(
                    connector_base.registry()[name], state.settings, access_.organization.slug
                ).webhook_url,
            }
        )
    products = await product_reads.list_product_records(
        db, Scope.of_organization(org_id), is_archived=False, is_recurring=None, page=1, limit=100
    )
    return layout.page(
        access_,
        "processors",
        "processors",
        {"processors": processors_, "products": products.records, "errors": {}, "results": None, **context},
        status_code=status_code,
    )


@get("/console/{slug:str}/processors", name="console.processors", include_in_schema=False)
async def processors(request: Request[Any, Any, Any], slug: FromPath[str], done: layout.Done = None) -> Response[Any]:
    access_ = await access.require_org(request, slug)
    return await _processors_page(request, access_, notice=_notice(done))


def _processor(name: str) -> connector_base.Processor:
    found = connector_base.get_processor(name)
    if found is None:
        raise NotFoundException(i18n.gettext("Not found"))
    return found


class ConnectForm(msgspec.Struct, kw_only=True):
    api_key: str = ""
    webhook_secret: str = ""


@post(
    "/console/{slug:str}/processors/{processor:str}/connect",
    name="console.processor_connect",
    include_in_schema=False,
    status_code=303,
)
async def processor_connect(
    request: Request[Any, Any, Any],
    slug: FromPath[str],
    processor: FromPath[str],
    data: Annotated[ConnectForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    """Connect, or replace the key of, a processor: the same checks as ``portal connect`` (the key is tried against
    the processor's API before anything is stored; both secrets are stored encrypted, never shown again)."""
    access_ = await access.require_org(request, slug, manage=True)
    found = _processor(processor)
    state = portal_state(request.app.state)
    now = state.clock.now()
    try:
        connection = await connector_connect.connect(
            state.db,
            state.settings,
            found,
            organization_id=access_.organization.id,
            secrets=connector_store.Secrets(api_key=data.api_key[:500], webhook_secret=data.webhook_secret[:500]),
            connector_settings=None,
            now=now,
        )
    except DomainError as exc:
        return await _processors_page(request, access_, 400, errors={exc.field or "api_key": exc.message})
    except connector_base.ProcessorError as exc:
        return await _processors_page(request, access_, 400, errors={"api_key": exc.message})
    async with state.db.write() as tx:
        # After the connection's own transaction (the key is checked against the processor in between).
        await audit.record(
            tx,
            access_.actor,
            organization_id=access_.organization.id,
            action="processor.connect",
            target=processor,
            details={"account_id": connection.account_id, "livemode": connection.livemode},
            now=now,
        )
    return layout.back(access_, "/processors", "connected")


class MapForm(msgspec.Struct, kw_only=True):
    price_id: str = ""
    product_id: str = ""


async def _connection_of(request: Request[Any, Any, Any], access_: OrgAccess, name: str) -> Any:
    connection = await connector_store.get_connection(portal_state(request.app.state).db, access_.organization.id, name)
    if connection is None:
        raise NotFoundException(i18n.gettext("Not found"))
    return connection


@post(
    "/console/{slug:str}/processors/{processor:str}/map",
    name="console.processor_map",
    include_in_schema=False,
    status_code=303,
)
async def processor_map(
    request: Request[Any, Any, Any],
    slug: FromPath[str],
    processor: FromPath[str],
    data: Annotated[MapForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    """Map a processor price to one of the organization's products; the events that waited on it are applied."""
    access_ = await access.require_org(request, slug, manage=True)
    found = _processor(processor)
    connection = await _connection_of(request, access_, processor)
    state = portal_state(request.app.state)
    _ = i18n.gettext
    price_id, product_id = data.price_id.strip(), data.product_id.strip()
    errors = {}
    if not re.fullmatch(r"[A-Za-z0-9_]{1,100}", price_id):
        errors["price_id"] = _("Enter the processor's price id (letters, digits and underscores).")
    if (
        await product_reads.get_product_record(state.db, Scope.of_organization(access_.organization.id), product_id)
        is None
    ):
        errors["product_id"] = _("Choose one of this organization's products.")
    if errors:
        return await _processors_page(request, access_, 400, errors=errors)
    now = state.clock.now()
    results = await connector_events.map_price(
        state.db, state.settings, found, connection, price_id, product_id, now=now
    )
    async with state.db.write() as tx:
        await audit.record(
            tx,
            access_.actor,
            organization_id=access_.organization.id,
            action="processor.map_price",
            target=price_id,
            details={"product_id": product_id, "applied": len(results)},
            now=now,
        )
    return layout.back(access_, "/processors", "mapped")


@post(
    "/console/{slug:str}/processors/{processor:str}/events/{event_id:str}/replay",
    name="console.processor_replay",
    include_in_schema=False,
    status_code=303,
)
async def processor_replay(
    request: Request[Any, Any, Any], slug: FromPath[str], processor: FromPath[str], event_id: FromPath[str]
) -> Response[Any]:
    """Apply a stored inbound event again (owners: it changes orders and subscriptions)."""
    access_ = await access.require_org(request, slug, manage=True)
    found = _processor(processor)
    connection = await _connection_of(request, access_, processor)
    state = portal_state(request.app.state)
    now = state.clock.now()
    result = await connector_events.replay(state.db, state.settings, found, connection, event_id, now=now)
    async with state.db.write() as tx:
        await audit.record(
            tx,
            access_.actor,
            organization_id=access_.organization.id,
            action="processor.replay",
            target=result.event_id,
            details={"status": result.status, "reason": result.reason},
            now=now,
        )
    return layout.back(access_, "/processors", "replayed")


# --- settings (owners) --------------------------------------------------------------------------------------

_PREVIEWS = ("signin", "email")
_ACCENT = re.compile(r"#[0-9a-f]{6}")
_EMAIL_SWITCHES = (
    "order_receipt",
    "order_refund",
    "subscription_canceled",
    "subscription_uncanceled",
    "subscription_updated",
    "renewal_reminder",
    "subscription_payment_failed",
)


def _invoice_settings(org: Organization) -> dict[str, str]:
    value = msgspec.json.decode(org.settings or "{}")
    invoice = value.get(INVOICE_SETTINGS_KEY) if isinstance(value, dict) else None
    return {k: str(v) for k, v in invoice.items()} if isinstance(invoice, dict) else {}


def _preview_urls(access_: OrgAccess, name: str, accent: str) -> dict[str, str]:
    """The preview frames' addresses for these (possibly unsaved) branding values."""
    query = urlencode({"name": name, "accent_color": accent})
    base = f"/console/{access_.organization.slug}/settings/preview"
    return {kind: f"{base}/{kind}?{query}" for kind in _PREVIEWS}


def _settings_context(access_: OrgAccess) -> dict[str, Any]:
    org = access_.organization
    switches = email_settings(org.settings)
    return {
        "previews": _preview_urls(access_, org.name, org.accent_color),
        "values": {
            "name": org.name,
            "support_email": org.support_email or "",
            "email_sender_name": org.email_sender_name or "",
            "email_reply_to": org.email_reply_to or "",
            "accent_color": org.accent_color,
            "address": org.address or "",
            "tax_country": _invoice_settings(org).get("country", ""),
            "tax_id": _invoice_settings(org).get("tax_id", ""),
            "allow_plan_change": org.allow_plan_change,
            "allow_email_change": org.allow_email_change,
            "emails": {key: getattr(switches, key) for key in _EMAIL_SWITCHES},
        },
        "switch_labels": _switch_labels(),
        "errors": {},
    }


def _switch_labels() -> dict[str, str]:
    _ = i18n.gettext
    return {
        "order_receipt": _("Receipt when an order is paid"),
        "order_refund": _("Refund receipt"),
        "subscription_canceled": _("Subscription canceled"),
        "subscription_uncanceled": _("Subscription resumed"),
        "subscription_updated": _("Plan changed"),
        "renewal_reminder": _("Renewal reminder"),
        "subscription_payment_failed": _("Renewal payment failed"),
    }


@get("/console/{slug:str}/settings", name="console.settings", include_in_schema=False)
async def settings_page(
    request: Request[Any, Any, Any], slug: FromPath[str], done: layout.Done = None
) -> Response[Any]:
    access_ = await access.require_org(request, slug, manage=True)
    return layout.page(access_, "settings", "settings", _settings_context(access_) | {"notice": _notice(done)})


def _preview_org(access_: OrgAccess, name: str | None, accent: str | None) -> Organization:
    """The organization with unsaved branding values, each kept only if valid (a preview never shows a refused
    value as if it were fine)."""
    org = access_.organization
    changes: dict[str, str] = {}
    if name and name.strip() and len(name) <= 100 and single_line_problem(name) is None:
        changes["name"] = name.strip()
    if accent and _ACCENT.fullmatch(accent.lower()) and contrast(accent.lower(), LIGHT_SURFACE) >= MIN_CONTRAST:
        changes["accent_color"] = accent.lower()
    return msgspec.structs.replace(org, **changes)


# Preview pages are shown in frames of the settings page (same origin only), never anywhere else.
_PREVIEW_HEADERS = {
    "Content-Security-Policy": CSP.replace("frame-ancestors 'none'", "frame-ancestors 'self'"),
    "X-Frame-Options": "SAMEORIGIN",
}


@get("/console/{slug:str}/settings/preview/{kind:str}", name="console.settings_preview", include_in_schema=False)
async def settings_preview(
    request: Request[Any, Any, Any],
    slug: FromPath[str],
    kind: FromPath[str],
    name: Annotated[str | None, QueryParameter(name="name", max_length=200)] = None,
    accent_color: Annotated[str | None, QueryParameter(name="accent_color", max_length=16)] = None,
) -> Response[Any]:
    """The customer sign-in page or the sign-in email as they would look with these branding values."""
    access_ = await access.require_org(request, slug, manage=True)
    if kind not in _PREVIEWS:
        raise NotFoundException(i18n.gettext("Not found"))
    org = _preview_org(access_, name, accent_color)
    if kind == "signin":
        return Template(
            template_name="portal/sign_in.html",
            context={"organization": org, "email": "", "message": None},
            headers=_PREVIEW_HEADERS,
            media_type=MediaType.HTML,
        )
    state = portal_state(request.app.state)
    now = state.clock.now()
    message = login_code_email(
        state.settings,
        organization=org,
        to=access_.seller.email,
        code="ABC234",
        expires_at=iso(now + timedelta(minutes=15)),
        now=now,
        locale=i18n.current_locale(),
    )
    return Response(message.html or "", media_type=MediaType.HTML, headers=_PREVIEW_HEADERS)


@post("/console/{slug:str}/settings/preview", name="console.settings_preview_form", include_in_schema=False)
async def settings_preview_form(request: Request[Any, Any, Any], slug: FromPath[str]) -> Response[Any]:
    """The settings page again, with the values as typed (nothing saved) and the previews showing them."""
    access_ = await access.require_org(request, slug, manage=True)
    form = await _settings_form(request)
    context = _settings_context(access_)
    context["values"] |= {key: form.get(key, "") for key in context["values"] if key not in ("emails",)}
    context["values"]["allow_plan_change"] = form.get("allow_plan_change") == "on"
    context["values"]["allow_email_change"] = form.get("allow_email_change") == "on"
    context["values"]["emails"] = {key: form.get(f"emails_{key}") == "on" for key in _EMAIL_SWITCHES}
    context["previews"] = _preview_urls(access_, form.get("name", ""), form.get("accent_color", ""))
    context["previewing"] = True
    return layout.page(access_, "settings", "settings", context)


@post("/console/{slug:str}/settings/logo", name="console.settings_logo", include_in_schema=False, status_code=303)
async def settings_logo(request: Request[Any, Any, Any], slug: FromPath[str]) -> Response[Any]:
    """Upload the organization's logo (PNG or JPEG, at most 48 KiB), or remove it (``remove``)."""
    access_ = await access.require_org(request, slug, manage=True)
    _ = i18n.gettext
    state = portal_state(request.app.state)
    form = await request.form()
    org = access_.organization
    avatar_url: str | None = None
    if form.get("remove") != "on":
        upload = form.get("logo")
        content = await upload.read(logos.MAX_LOGO_BYTES + 1) if isinstance(upload, UploadFile) else b""
        extension = logos.kind_of(content)
        problem = None
        if not content:
            problem = _("Choose a PNG or JPEG file.")
        elif len(content) > logos.MAX_LOGO_BYTES:
            problem = _("The logo is too large: at most 48 KB.")
        elif extension is None:
            problem = _("The logo must be a PNG or JPEG image.")
        if problem is not None or extension is None:
            context = _settings_context(access_) | {"errors": {"logo": problem}}
            return layout.page(access_, "settings", "settings", context, status_code=400)
        relative = logos.relative_path(org.id, content, extension)
        await logos.store(state.settings.files_dir, relative, content)
        avatar_url = f"{state.settings.public_base_url}/{relative}"
    now = state.clock.now()
    async with state.db.write() as tx:
        await org_service.update_organization(
            tx, org.id, org_service.OrganizationUpdate(avatar_url=avatar_url), now=now
        )
        await audit.record(
            tx,
            access_.actor,
            organization_id=org.id,
            action="settings.logo",
            target=org.slug,
            details={"avatar_url": avatar_url},
            now=now,
        )
    return layout.back(access_, "/settings", "saved")


async def _settings_form(request: Request[Any, Any, Any]) -> dict[str, str]:
    form = await request.form()
    return {key: str(form.get(key) or "") for key in form}


def _optional(value: str) -> str | None:
    value = value.strip()
    return value or None


@post("/console/{slug:str}/settings", name="console.settings_save", include_in_schema=False, status_code=303)
async def settings_save(request: Request[Any, Any, Any], slug: FromPath[str]) -> Response[Any]:
    """Save branding, email and customer-action settings through the organizations service; a refused field is
    named inline (400) and nothing is written."""
    access_ = await access.require_org(request, slug, manage=True)
    _ = i18n.gettext
    form = await _settings_form(request)
    org = access_.organization
    accent = form.get("accent_color", "").strip().lower()
    errors: dict[str, str] = {}
    if _ACCENT.fullmatch(accent) and contrast(accent, LIGHT_SURFACE) < MIN_CONTRAST:
        errors["accent_color"] = _(
            "This colour is too light for text on a white page (contrast %(ratio).1f:1, at least 4.5:1 needed)."
        ) % {"ratio": contrast(accent, LIGHT_SURFACE)}
    current_settings = msgspec.json.decode(org.settings) if org.settings else {}
    if not isinstance(current_settings, dict):
        current_settings = {}
    emails_now = msgspec.structs.asdict(email_settings(org.settings))
    emails_new = emails_now | {key: form.get(f"emails_{key}") == "on" for key in _EMAIL_SWITCHES}
    tax_country = form.get("tax_country", "").strip().upper()
    tax_number = form.get("tax_id", "").strip()
    invoice: dict[str, str] | None = None
    if tax_number:
        if not re.fullmatch(r"[A-Z]{2}", tax_country):
            errors["tax_country"] = _("Enter the two-letter country code the tax ID belongs to (e.g. DE, FR, US).")
        else:
            try:
                compact, tax_format = validate_tax_id(tax_number[:64], tax_country)
            except InvalidTaxID:
                errors["tax_id"] = _("This is not a valid tax ID for %(country)s.") % {"country": tax_country}
            else:
                invoice = {"tax_id": compact, "tax_id_format": tax_format, "country": tax_country}
    new_settings = {k: v for k, v in current_settings.items() if k != INVOICE_SETTINGS_KEY}
    if invoice is not None:
        new_settings[INVOICE_SETTINGS_KEY] = invoice
    changes = org_service.OrganizationUpdate(
        name=form.get("name", "").strip(),
        support_email=_optional(form.get("support_email", "")),
        email_sender_name=_optional(form.get("email_sender_name", "")),
        email_reply_to=_optional(form.get("email_reply_to", "")),
        accent_color=accent,
        address=_optional(form.get("address", "")),
        allow_plan_change=form.get("allow_plan_change") == "on",
        allow_email_change=form.get("allow_email_change") == "on",
        settings=new_settings | {SETTINGS_KEY: emails_new},
    )
    state = portal_state(request.app.state)
    now = state.clock.now()
    if not errors:
        try:
            async with state.db.write() as tx:
                await org_service.update_organization(tx, org.id, changes, now=now)
                changed = {
                    field: getattr(changes, field)
                    for field in (
                        "name",
                        "support_email",
                        "email_sender_name",
                        "email_reply_to",
                        "accent_color",
                        "address",
                        "allow_plan_change",
                        "allow_email_change",
                    )
                    if getattr(changes, field) != getattr(org, field)
                }
                if emails_new != emails_now:
                    changed["emails"] = {k: v for k, v in emails_new.items() if emails_now.get(k) != v}
                if invoice != (current_settings.get(INVOICE_SETTINGS_KEY) or None):
                    changed["tax_id"] = None if invoice is None else invoice["tax_id"]
                await audit.record(
                    tx,
                    access_.actor,
                    organization_id=org.id,
                    action="settings.update",
                    target=org.slug,
                    details=changed,
                    now=now,
                )
        except DomainError as exc:
            errors[(exc.field or "name").split(".")[0]] = exc.message
    if errors:
        context = _settings_context(access_)
        context["values"] |= {key: form.get(key, "") for key in context["values"] if key != "emails"}
        context["values"]["allow_plan_change"] = changes.allow_plan_change
        context["values"]["allow_email_change"] = changes.allow_email_change
        context["values"]["emails"] = {key: emails_new[key] for key in _EMAIL_SWITCHES}
        context["errors"] = errors
        return layout.page(access_, "settings", "settings", context, status_code=400)
    return layout.back(access_, "/settings", "saved")


ROUTES = [
    home,
    team,
    team_invite,
    team_role,
    team_remove,
    audit_log,
    tokens_page,
    token_create,
    token_revoke,
    emails,
    email_retry,
    webhooks,
    webhook_redeliver,
    processors,
    processor_connect,
    processor_map,
    processor_replay,
    settings_page,
    settings_save,
    settings_preview,
    settings_preview_form,
    settings_logo,
    logos.logo,
]
