"""``/v1/connectors/``: the admin-API face of the connectors. An organization token manages its own
organization's connections; an admin token names ``organization_id`` (query). Secrets go in, never out.

* ``GET /v1/connectors/`` — the organization's connections;
* ``PUT /v1/connectors/{processor}`` — connect (the key is checked against the processor first) or replace;
* ``PATCH /v1/connectors/{processor}`` — change the connection's settings.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get, patch, put
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter

from portal.admin import responses
from portal.admin.auth import Principal
from portal.clock import Clock
from portal.connectors import connect as connect_service
from portal.connectors import store
from portal.connectors.base import Processor, ProcessorError, get_processor
from portal.connectors.store import Connection, ConnectorSettings, Secrets
from portal.db import Database
from portal.errors import InvalidInput, NotFound
from portal.settings import Settings

OrganizationParam = Annotated[str | None, QueryParameter(max_length=64)]
CALLS_PROCESSOR = {
    **responses.WRITE,
    502: ResponseSpec(responses.ApiError, description="The processor could not be reached.", generate_examples=False),
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
