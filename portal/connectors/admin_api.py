"""``/v1/connectors/``: the admin-API face of the connectors. An organization token manages its own
organization's connections; an admin token names ``organization_id`` (query). Secrets go in, never out.

* ``GET /v1/connectors/`` — the organization's connections;
* ``PUT /v1/connectors/{processor}`` — connect (the key is checked against the processor first) or replace;
* ``PATCH /v1/connectors/{processor}`` — change the connection's settings;
* ``GET /v1/connectors/{processor}/health`` — last event, counts by type and status, failures, unmapped prices;
* ``GET /v1/connectors/{processor}/events`` (``status``, ``type``, ``page``, ``limit``), ``GET …/events/{id}``
  (with the payload) and ``POST …/events/{id}/replay`` (apply a stored event again);
* ``GET /v1/connectors/{processor}/prices`` and ``PUT …/prices/{price_id}`` ``{"product_id": …}`` — map a processor
  price to a Portal product; the events that waited on the price (unmapped) are applied at once.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import Controller, get, patch, post, put
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter

from portal.admin import responses
from portal.admin.auth import Principal
from portal.clock import Clock
from portal.connectors import connect as connect_service
from portal.connectors import events, health, links, store
from portal.connectors.base import Processor, ProcessorError, get_processor
from portal.connectors.store import Connection, ConnectorSettings, Secrets
from portal.db import Database
from portal.errors import InvalidInput, NotFound
from portal.pagination import LimitParam, ListResource, PageParam, list_resource
from portal.polar.models import ApiError
from portal.references import UnknownReference, owner_of, require_owned
from portal.settings import Settings

OrganizationParam = Annotated[str | None, QueryParameter(max_length=64)]
READ_OR_INVALID = responses.errors(404, 422)
EventStatus = Literal["applied", "ignored", "unmapped", "failed"]
CALLS_PROCESSOR = {
    **responses.WRITE,
    502: ResponseSpec(ApiError, description="The processor could not be reached.", generate_examples=False),
}


class ConnectionIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    api_key: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
    webhook_secret: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
    settings: ConnectorSettings | None = None


class ConnectionOut(msgspec.Struct, kw_only=True):
    """A connection as the API shows it: never its secrets."""

    id: str
    organization_id: str
    processor: str
    livemode: bool
    settings: ConnectorSettings
    webhook_url: str
    webhook_events: list[str]
    created_at: str
    modified_at: str | None


class PriceMappingIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    product_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class PriceMappingOut(msgspec.Struct, kw_only=True):
    price_id: str
    product_id: str
    created_at: str


class Applied(msgspec.Struct, kw_only=True):
    """What applying a stored event did (``status``: applied, ignored, unmapped, failed)."""

    event_id: str
    status: str
    reason: str | None


class PriceMappedOut(PriceMappingOut, kw_only=True):
    applied: list[Applied]


def applied_out(result: events.Received) -> Applied:
    return Applied(event_id=result.event_id, status=result.status, reason=result.reason)


def connection_out(connection: Connection, processor: Processor, settings: Settings) -> ConnectionOut:
    steps = connect_service.instructions(processor, settings, connection.organization_slug)
    return ConnectionOut(
        id=connection.id,
        organization_id=connection.organization_id,
        processor=connection.processor,
        livemode=connection.livemode,
        settings=connection.settings,
        webhook_url=steps.webhook_url,
        webhook_events=list(steps.events),
        created_at=connection.created_at,
        modified_at=connection.modified_at,
    )


def processor_or_404(name: str) -> Processor:
    processor = get_processor(name)
    if processor is None:
        raise NotFound(f"no processor named {name!r}")
    return processor


async def scoped_organization(db: Database, principal: Principal, requested: str | None) -> str:
    async with db.write() as tx:  # the checks read; target_organization takes a transaction
        return await principal.target_organization(tx, requested)


def processor_refusal(exc: ProcessorError, field: str) -> Exception:
    """A processor that is down: 502; one that refused: 422 on ``field``."""
    if exc.unavailable:
        return HTTPException(status_code=502, detail=exc.message)
    return InvalidInput(exc.message, field)


class ConnectorController(Controller):
    path = "/connectors"
    tags = ["connectors"]

    @get("/", summary="List the organization's processor connections", responses=responses.LIST)
    async def list_connections(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        principal: NamedDependency[Principal],
        organization_id: OrganizationParam = None,
    ) -> list[ConnectionOut]:
        scope = principal.list_filter(organization_id)
        result = []
        for connection in await store.list_connections(db, scope):
            processor = get_processor(connection.processor)
            if processor is not None:
                result.append(connection_out(connection, processor, settings))
        return result

    @put("/{processor:str}", summary="Connect a processor (the key is checked first)", responses=CALLS_PROCESSOR)
    async def connect(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        principal: NamedDependency[Principal],
        processor: FromPath[str],
        data: JSONBody[ConnectionIn],
        organization_id: OrganizationParam = None,
    ) -> ConnectionOut:
        found = processor_or_404(processor)
        target = await scoped_organization(db, principal, organization_id)
        try:
            connection = await connect_service.connect(
                db,
                settings,
                found,
                organization_id=target,
                secrets=Secrets(api_key=data.api_key, webhook_secret=data.webhook_secret),
                connector_settings=data.settings,
                now=clock.now(),
            )
        except ProcessorError as exc:
            raise processor_refusal(exc, "api_key") from None
        return connection_out(connection, found, settings)

    @patch("/{processor:str}", summary="Change a connection's settings", responses=responses.WRITE)
    async def update_settings(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        principal: NamedDependency[Principal],
        processor: FromPath[str],
        data: JSONBody[ConnectorSettings],
        organization_id: OrganizationParam = None,
    ) -> ConnectionOut:
        found = processor_or_404(processor)
        target = await scoped_organization(db, principal, organization_id)
        connection = await store.require_connection(db, target, found.name)
        async with db.write() as tx:
            await store.update_settings(tx, connection.id, data, now=clock.now())
        return connection_out(await store.require_connection(db, target, found.name), found, settings)

    @get(
        "/{processor:str}/health",
        summary="A connection's inbound events: last, counts, failures, unmapped prices",
        responses=READ_OR_INVALID,
    )
    async def connection_health(
        self,
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
        processor: FromPath[str],
        organization_id: OrganizationParam = None,
    ) -> health.Health:
        connection = await _connection(db, principal, processor, organization_id)
        return await health.health(db, connection)

    @get("/{processor:str}/events", summary="A connection's inbound events, newest first", responses=READ_OR_INVALID)
    async def list_events(
        self,
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
        processor: FromPath[str],
        organization_id: OrganizationParam = None,
        status: Annotated[EventStatus | None, QueryParameter()] = None,
        event_type: Annotated[str | None, QueryParameter(name="type", max_length=128)] = None,
        page: PageParam = 1,
        limit: LimitParam = 10,
    ) -> ListResource[health.EventSummary]:
        connection = await _connection(db, principal, processor, organization_id)
        items, total = await health.list_events(
            db, connection, status=status, event_type=event_type, limit=limit, offset=(page - 1) * limit
        )
        return list_resource(items, total, limit)

    @get(
        "/{processor:str}/events/{event_id:str}",
        summary="One inbound event, with its payload",
        responses=READ_OR_INVALID,
    )
    async def get_event(
        self,
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
        processor: FromPath[str],
        event_id: FromPath[str],
        organization_id: OrganizationParam = None,
    ) -> health.EventDetail:
        connection = await _connection(db, principal, processor, organization_id)
        found = await health.get_event(db, connection, event_id)
        if found is None:
            raise NotFound("no such event for this connection")
        return found

    @post(
        "/{processor:str}/events/{event_id:str}/replay",
        summary="Apply a stored inbound event again",
        status_code=200,
        responses=CALLS_PROCESSOR,
    )
    async def replay_event(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        principal: NamedDependency[Principal],
        processor: FromPath[str],
        event_id: FromPath[str],
        organization_id: OrganizationParam = None,
    ) -> Applied:
        connection = await _connection(db, principal, processor, organization_id)
        found = processor_or_404(processor)
        result = await events.replay(db, settings, found, connection, event_id, now=clock.now())
        if result.unavailable:
            raise HTTPException(status_code=502, detail=result.reason or "the processor could not be reached")
        return applied_out(result)

    @get("/{processor:str}/prices", summary="The connection's price mappings", responses=READ_OR_INVALID)
    async def list_prices(
        self,
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
        processor: FromPath[str],
        organization_id: OrganizationParam = None,
    ) -> list[PriceMappingOut]:
        connection = await _connection(db, principal, processor, organization_id)
        rows = await links.list_price_mappings(db, connection.id)
        return [
            PriceMappingOut(price_id=r["processor_price_id"], product_id=r["product_id"], created_at=r["created_at"])
            for r in rows
        ]

    @put(
        "/{processor:str}/prices/{price_id:str}",
        summary="Map a processor price to a Portal product (waiting events are applied)",
        responses=CALLS_PROCESSOR,
    )
    async def map_price(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        principal: NamedDependency[Principal],
        processor: FromPath[str],
        price_id: FromPath[str],
        data: JSONBody[PriceMappingIn],
        organization_id: OrganizationParam = None,
    ) -> PriceMappedOut:
        found = processor_or_404(processor)
        if principal.is_admin and organization_id is None:
            # The product names the organization (as an order's customer does): an admin token may map any one's.
            owner = await owner_of(db, "product", data.product_id)
            if owner is None:
                raise UnknownReference("product", "product_id")
            target = owner
        else:
            target = await scoped_organization(db, principal, organization_id)
            await require_owned(db, "product", data.product_id, target, "product_id")
        connection = await store.require_connection(db, target, found.name)
        if not price_id.strip() or len(price_id) > 255:
            raise InvalidInput("expected a processor price id", "price_id")
        now = clock.now()
        results = await events.map_price(db, settings, found, connection, price_id, data.product_id, now=now)
        mapping = next(
            r for r in await links.list_price_mappings(db, connection.id) if r["processor_price_id"] == price_id
        )
        return PriceMappedOut(
            price_id=price_id,
            product_id=mapping["product_id"],
            created_at=mapping["created_at"],
            applied=[applied_out(result) for result in results],
        )


async def _connection(
    db: Database, principal: Principal, processor: str, organization_id: str | None
) -> store.Connection:
    found = processor_or_404(processor)
    target = await scoped_organization(db, principal, organization_id)
    return await store.require_connection(db, target, found.name)
