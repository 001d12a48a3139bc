"""The pages of one organization in the console, ``/console/<slug>/…``: home (what needs attention), team,
audit log, settings, API tokens, email outbox, webhook deliveries and processor connections.

Every handler starts with ``access.require_org`` (303 to sign-in, 404 without a role, 403 for a support seller on
an owner-only action); every POST is CSRF-checked by the app's middleware, writes through the area's own service or
query module, and records its audit entry in the same transaction.
"""

from __future__ import annotations

import re
import secrets
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, QueryParameter
from litestar.response import Template

from portal import i18n
from portal.admin import tokens
from portal.connectors import base as connector_base
from portal.connectors import connect as connector_connect
from portal.connectors import events as connector_events
from portal.connectors import health as connector_health
from portal.connectors import links as connector_links
from portal.connectors import store as connector_store
from portal.console import access, audit, dashboard, layout, mail, store
from portal.console.access import OrgAccess
from portal.errors import DomainError
from portal.fields import EMAIL_ADDRESS_PATTERN
from portal.notifications import outbox
from portal.products import reads as product_reads
from portal.scope import Scope
from portal.web import portal_state
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


def outbox_status_labels() -> dict[str, str]:
    """An email's outbox status in the seller's words (the emails page and a customer's page)."""
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
            "status_labels": outbox_status_labels(),
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
        {
            "processors": processors_,
            "products": products.records,
            "errors": {},
            "results": None,
            "fields": {name: _fields_of(name) for name in connector_base.registry()},
            "ping_url": None,
            **context,
        },
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


class ConnectFields(msgspec.Struct, frozen=True, kw_only=True):
    """What a processor's connect form asks for, in that processor's own words (see its ``processor.py``)."""

    api_key: str
    api_key_hint: str
    webhook_secret: str
    webhook_secret_hint: str
    # Gumroad's pings carry no signature: the secret is a token in the ping URL, which Portal can pick itself.
    url_secret: bool = False


def connect_fields() -> dict[str, ConnectFields]:
    _ = i18n.gettext
    return {
        "stripe": ConnectFields(
            api_key=_("Secret API key"),
            api_key_hint=_("Stripe dashboard, Developers, API keys: the secret or restricted key (sk_… or rk_…)."),
            webhook_secret=_("Webhook signing secret"),
            webhook_secret_hint=_("Shown when you add the webhook endpoint in Stripe (whsec_…)."),
        ),
        "polar": ConnectFields(
            api_key=_("Organization access token"),
            api_key_hint=_("Polar, Settings, Developers: an organization access token (polar_oat_…)."),
            webhook_secret=_("Webhook secret"),
            webhook_secret_hint=_("The secret of the webhook endpoint you add in Polar's settings."),
        ),
        "lemonsqueezy": ConnectFields(
            api_key=_("API key"),
            api_key_hint=_("Lemon Squeezy, Settings, API: a new API key."),
            webhook_secret=_("Webhook signing secret"),
            webhook_secret_hint=_("The signing secret you type when you add the webhook in Lemon Squeezy."),
        ),
        "paddle": ConnectFields(
            api_key=_("API key"),
            api_key_hint=_("Paddle, Developer tools, Authentication: an API key (pdl_…)."),
            webhook_secret=_("Webhook secret key"),
            webhook_secret_hint=_(
                "Paddle, Notifications: the secret key of the notification destination (pdl_ntfset_…)."
            ),
        ),
        "gumroad": ConnectFields(
            api_key=_("Access token"),
            api_key_hint=_("Gumroad, Settings, Advanced, Applications: the access token of your application."),
            webhook_secret=_("Ping URL secret (optional)"),
            webhook_secret_hint=_(
                "Gumroad's pings are not signed, so a secret in the ping URL proves them. Leave it empty and Portal "
                "picks one, then shows the whole ping URL once."
            ),
            url_secret=True,
        ),
    }


def _fields_of(name: str) -> ConnectFields:
    """A processor registered at run time (tests) gets the generic wording."""
    _ = i18n.gettext
    generic = ConnectFields(
        api_key=_("Secret API key"),
        api_key_hint="",
        webhook_secret=_("Webhook signing secret"),
        webhook_secret_hint="",
    )
    return connect_fields().get(name, generic)


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
    fields = _fields_of(processor)
    state = portal_state(request.app.state)
    now = state.clock.now()
    _ = i18n.gettext
    api_key, webhook_secret = data.api_key.strip()[:500], data.webhook_secret.strip()[:500]
    if fields.url_secret and not webhook_secret:
        webhook_secret = secrets.token_urlsafe(24)
    # The form names the field in the seller's language; the connector's own (English) reason is kept after it.
    errors: dict[str, str] = {}
    if not api_key:
        errors["api_key"] = _("Enter the %(field)s.") % {"field": fields.api_key}
    if not webhook_secret:
        errors["webhook_secret"] = _("Enter the %(field)s.") % {"field": fields.webhook_secret}
    if fields.url_secret and webhook_secret and not re.fullmatch(r"[A-Za-z0-9_-]{16,200}", webhook_secret):
        errors["webhook_secret"] = _("Use 16 to 200 letters, digits, - or _ (it goes in a URL).")
    if errors:
        return await _processors_page(request, access_, 400, errors={processor: errors})
    try:
        connection = await connector_connect.connect(
            state.db,
            state.settings,
            found,
            organization_id=access_.organization.id,
            secrets=connector_store.Secrets(api_key=api_key, webhook_secret=webhook_secret),
            connector_settings=None,
            now=now,
        )
    except DomainError as exc:
        return await _processors_page(request, access_, 400, errors={processor: {exc.field or "api_key": exc.message}})
    except connector_base.ProcessorError as exc:
        refused = _("%(processor)s refused this key: %(reason)s") % {"processor": found.label, "reason": exc.message}
        return await _processors_page(request, access_, 400, errors={processor: {"api_key": refused}})
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
    if fields.url_secret:
        # The ping URL carries the secret: shown this once, like a new token (the secret is stored encrypted).
        webhook_url = connector_connect.instructions(found, state.settings, access_.organization.slug).webhook_url
        ping_url = f"{webhook_url}?{urlencode({'secret': webhook_secret})}"
        return await _processors_page(request, access_, notice=_notice("connected"), ping_url=(processor, ping_url))
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
    processors,
    processor_connect,
    processor_map,
    processor_replay,
]
