"""The console's outgoing webhooks, ``/console/<slug>/webhooks``: the endpoints (create, edit url/name/events/
enabled, delete; the signing secret shown once, at creation and at rotation), each endpoint's per-attempt delivery
log (time, HTTP status or error, duration) and redelivery of an event.

Endpoints are written through ``portal.webhooks.service``, the admin API's own rules (the same URL checks: an
absolute http(s) URL without credentials or spaces, at most 2048 characters; known event types only); the log is
``portal.webhooks.queries.list_deliveries`` (bounded per endpoint, ``DELIVERIES_KEPT``). Support sellers see the
pages; changes are for owners (they talk to the seller's own systems). Every change writes its audit entry in the
same transaction.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, QueryParameter
from litestar.response import Template

from portal import i18n
from portal.console import access, audit, layout
from portal.console.access import OrgAccess
from portal.errors import NotFound
from portal.fields import single_line_problem
from portal.web import portal_state
from portal.webhooks import queries as webhook_queries
from portal.webhooks import service as webhook_service
from portal.webhooks.events import EVENT_TYPES
from portal.webhooks.queries import EndpointRecord

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
LOG_PAGE_SIZE = 50


def _notice(done: str | None) -> str | None:
    _ = i18n.gettext
    return layout.done_notice(
        done,
        {
            "redelivered": _("The webhook is queued to be delivered again."),
            "sending": _("That event is being delivered right now: nothing was queued."),
            "saved": _("Endpoint saved."),
            "deleted": _("Endpoint deleted. Its queued events and delivery log were deleted with it."),
        },
    )


class EndpointForm(msgspec.Struct, kw_only=True):
    """The endpoint form as typed (kept when refused)."""

    url: str = ""
    name: str = ""
    events: list[str] = []
    enabled: bool = True


async def _read_form(request: Request[Any, Any, Any]) -> EndpointForm:
    form = await request.form()
    return EndpointForm(
        url=str(form.get("url") or "").strip()[:2100],
        name=str(form.get("name") or "").strip()[:200],
        events=[str(value) for value in form.getall("events")] if "events" in form else [],
        enabled=form.get("enabled") == "on",
    )


def _problems(form: EndpointForm, private_allowed: bool) -> dict[str, str]:
    """The form's refused fields, each named with a translated sentence (the service's rules, checked first)."""
    _ = i18n.gettext
    errors: dict[str, str] = {}
    if webhook_service.url_problem(form.url, private_allowed=True) is not None:
        errors["url"] = _(
            "Enter an absolute http:// or https:// address without spaces or credentials, at most 2048 characters."
        )
    elif webhook_service.url_problem(form.url, private_allowed=private_allowed) is not None:
        errors["url"] = _(
            "This address is on this server or a private network. Use a public address, or ask whoever runs "
            "Portal to set PORTAL_WEBHOOK_PRIVATE_ADDRESSES=true."
        )
    if len(form.name) > 100 or (form.name and single_line_problem(form.name) is not None):
        errors["name"] = _("Give the endpoint a name of at most 100 characters on one line, or none.")
    if not form.events or any(event not in EVENT_TYPES for event in form.events):
        errors["events"] = _("Choose at least one of the events listed.")
    return errors


async def _own_endpoint(request: Request[Any, Any, Any], access_: OrgAccess, endpoint_id: str) -> EndpointRecord:
    record = await webhook_queries.get_endpoint(portal_state(request.app.state).db, endpoint_id)
    if record is None or record.organization_id != access_.organization.id or not _ID.match(endpoint_id):
        raise NotFoundException(i18n.gettext("Not found"))
    return record


# --- the list ---------------------------------------------------------------------------------------------


async def _webhooks_page(
    request: Request[Any, Any, Any], access_: OrgAccess, status_code: int = 200, **context: Any
) -> Template:
    db = portal_state(request.app.state).db
    endpoints = await webhook_queries.list_endpoints(db, organization_id=access_.organization.id, page=1, limit=100)
    events = await webhook_queries.recent_events(db, access_.organization.id, limit=100)
    names = {endpoint.id: endpoint.name or endpoint.url for endpoint in endpoints.records}
    return layout.page(
        access_,
        "webhooks",
        "webhooks",
        {
            "endpoints": endpoints.records,
            "endpoint_names": names,
            "events": events,
            "event_types": EVENT_TYPES,
            "form": EndpointForm(),
            "errors": {},
            "created": None,
            **context,
        },
        status_code=status_code,
    )


@get("/console/{slug:str}/webhooks", name="console.webhooks", include_in_schema=False)
async def webhooks(request: Request[Any, Any, Any], slug: FromPath[str], done: layout.Done = None) -> Response[Any]:
    """Endpoints, the form to add one (owners), and the latest events of every endpoint with redeliver."""
    access_ = await access.require_org(request, slug)
    return await _webhooks_page(request, access_, notice=_notice(done))


@post("/console/{slug:str}/webhooks/endpoints", name="console.webhook_create", include_in_schema=False)
async def webhook_create(request: Request[Any, Any, Any], slug: FromPath[str]) -> Response[Any]:
    """Add an endpoint; the page shows its signing secret this once."""
    access_ = await access.require_org(request, slug, manage=True)
    form = await _read_form(request)
    if errors := _problems(form, portal_state(request.app.state).settings.webhook_private_addresses):
        return await _webhooks_page(request, access_, 400, form=form, errors=errors)
    state = portal_state(request.app.state)
    now = state.clock.now()
    async with state.db.write() as tx:
        endpoint_id = await webhook_service.create_endpoint(
            tx,
            access_.organization.id,
            url=form.url,
            events=form.events,
            name=form.name or None,
            enabled=form.enabled,
            private_allowed=state.settings.webhook_private_addresses,
            now=now,
        )
        record = await webhook_service.get_endpoint(tx, endpoint_id, organization_id=access_.organization.id)
        await audit.record(
            tx,
            access_.actor,
            organization_id=access_.organization.id,
            action="webhook.endpoint_create",
            target=endpoint_id,
            details={"url": record.url, "events": form.events, "enabled": form.enabled},
            now=now,
        )
    return await _webhooks_page(request, access_, created=record)


# --- one endpoint -----------------------------------------------------------------------------------------


async def _endpoint_page(
    request: Request[Any, Any, Any],
    access_: OrgAccess,
    record: EndpointRecord,
    *,
    page: int = 1,
    status_code: int = 200,
    **context: Any,
) -> Template:
    db = portal_state(request.app.state).db
    log = await webhook_queries.list_deliveries(
        db, organization_id=access_.organization.id, endpoint_id=record.id, page=page, limit=LOG_PAGE_SIZE
    )
    events = await webhook_queries.get_events(db, list({delivery.event_id for delivery in log.records}))
    form = EndpointForm(
        url=record.url, name=record.name or "", events=msgspec.json.decode(record.events), enabled=record.enabled
    )
    return layout.page(
        access_,
        "webhook_endpoint",
        "webhooks",
        {
            "endpoint": record,
            "deliveries": log.records,
            "delivery_events": events,
            "total": log.total,
            "page": page,
            "pages": max(1, -(-log.total // LOG_PAGE_SIZE)),
            "kept": webhook_queries.DELIVERIES_KEPT,
            "event_types": EVENT_TYPES,
            "form": form,
            "errors": {},
            "secret": None,
            **context,
        },
        status_code=status_code,
    )


@get(
    "/console/{slug:str}/webhooks/endpoints/{endpoint_id:str}", name="console.webhook_endpoint", include_in_schema=False
)
async def webhook_endpoint(
    request: Request[Any, Any, Any],
    slug: FromPath[str],
    endpoint_id: FromPath[str],
    page: Annotated[int, QueryParameter(name="page", ge=1, le=10_000)] = 1,
    done: layout.Done = None,
) -> Response[Any]:
    """An endpoint: its settings (owners edit them) and its delivery log, one row per attempt, newest first."""
    access_ = await access.require_org(request, slug)
    record = await _own_endpoint(request, access_, endpoint_id)
    return await _endpoint_page(request, access_, record, page=page, notice=_notice(done))


@post(
    "/console/{slug:str}/webhooks/endpoints/{endpoint_id:str}",
    name="console.webhook_update",
    include_in_schema=False,
    status_code=303,
)
async def webhook_update(
    request: Request[Any, Any, Any], slug: FromPath[str], endpoint_id: FromPath[str]
) -> Response[Any]:
    """Change the url, name, events and enabled switch; a refused field is named inline and nothing is written."""
    access_ = await access.require_org(request, slug, manage=True)
    record = await _own_endpoint(request, access_, endpoint_id)
    form = await _read_form(request)
    if errors := _problems(form, portal_state(request.app.state).settings.webhook_private_addresses):
        return await _endpoint_page(request, access_, record, status_code=400, form=form, errors=errors)
    state = portal_state(request.app.state)
    now = state.clock.now()
    async with state.db.write() as tx:
        current = await webhook_service.get_endpoint(tx, endpoint_id, organization_id=access_.organization.id)
        await webhook_service.update_endpoint(
            tx,
            current,
            url=form.url,
            name=form.name or None,
            events=form.events,
            enabled=form.enabled,
            private_allowed=state.settings.webhook_private_addresses,
            now=now,
        )
        before = {
            "url": current.url,
            "name": current.name,
            "events": msgspec.json.decode(current.events),
            "enabled": current.enabled,
        }
        after = {"url": form.url, "name": form.name or None, "events": form.events, "enabled": form.enabled}
        await audit.record(
            tx,
            access_.actor,
            organization_id=access_.organization.id,
            action="webhook.endpoint_update",
            target=endpoint_id,
            details={key: value for key, value in after.items() if before[key] != value},
            now=now,
        )
    return layout.back(access_, f"/webhooks/endpoints/{endpoint_id}", "saved")


@post(
    "/console/{slug:str}/webhooks/endpoints/{endpoint_id:str}/secret",
    name="console.webhook_secret",
    include_in_schema=False,
)
async def webhook_secret(
    request: Request[Any, Any, Any], slug: FromPath[str], endpoint_id: FromPath[str]
) -> Response[Any]:
    """A new signing secret; the page shows it this once (the old one stops signing at once)."""
    access_ = await access.require_org(request, slug, manage=True)
    await _own_endpoint(request, access_, endpoint_id)
    state = portal_state(request.app.state)
    now = state.clock.now()
    async with state.db.write() as tx:
        current = await webhook_service.get_endpoint(tx, endpoint_id, organization_id=access_.organization.id)
        await webhook_service.rotate_secret(tx, current, now=now)
        record = await webhook_service.get_endpoint(tx, endpoint_id, organization_id=access_.organization.id)
        await audit.record(
            tx,
            access_.actor,
            organization_id=access_.organization.id,
            action="webhook.endpoint_secret",
            target=endpoint_id,
            now=now,
        )
    return await _endpoint_page(request, access_, record, secret=record.secret)


@post(
    "/console/{slug:str}/webhooks/endpoints/{endpoint_id:str}/delete",
    name="console.webhook_delete",
    include_in_schema=False,
    status_code=303,
)
async def webhook_delete(
    request: Request[Any, Any, Any], slug: FromPath[str], endpoint_id: FromPath[str]
) -> Response[Any]:
    """Delete the endpoint (its queued events and log go with it)."""
    access_ = await access.require_org(request, slug, manage=True)
    await _own_endpoint(request, access_, endpoint_id)
    state = portal_state(request.app.state)
    now = state.clock.now()
    async with state.db.write() as tx:
        try:
            record = await webhook_service.get_endpoint(tx, endpoint_id, organization_id=access_.organization.id)
        except NotFound:
            raise NotFoundException(i18n.gettext("Not found")) from None
        await webhook_queries.delete_endpoint(tx, endpoint_id)
        await audit.record(
            tx,
            access_.actor,
            organization_id=access_.organization.id,
            action="webhook.endpoint_delete",
            target=endpoint_id,
            details={"url": record.url},
            now=now,
        )
    return layout.back(access_, "/webhooks", "deleted")


@post(
    "/console/{slug:str}/webhooks/events/{event_id:str}/redeliver",
    name="console.webhook_redeliver",
    include_in_schema=False,
    status_code=303,
)
async def webhook_redeliver(
    request: Request[Any, Any, Any], slug: FromPath[str], event_id: FromPath[str]
) -> Response[Any]:
    """Queue an event again (owners: it talks to the seller's own systems); back to the page it was asked from."""
    access_ = await access.require_org(request, slug, manage=True)
    state = portal_state(request.app.state)
    now = state.clock.now()
    async with state.db.write() as tx:
        event = await webhook_queries.get_event(tx, event_id)
        if event is None or event.organization_id != access_.organization.id:
            raise NotFoundException(i18n.gettext("Not found"))
        requeued = await webhook_queries.requeue_event(tx, event_id, now=now)
        if requeued:  # else it is being sent right now: nothing was queued, nothing to record
            await audit.record(
                tx,
                access_.actor,
                organization_id=access_.organization.id,
                action="webhook.redeliver",
                target=event_id,
                details={"type": event.type},
                now=now,
            )
    form = await request.form()
    done = "redelivered" if requeued else "sending"
    if form.get("back") == "endpoint":
        return layout.back(access_, f"/webhooks/endpoints/{event.endpoint_id}", done)
    return layout.back(access_, "/webhooks", done)


ROUTES = [webhooks, webhook_create, webhook_endpoint, webhook_update, webhook_secret, webhook_delete, webhook_redeliver]
