"""Admin API for webhooks (``/v1/webhooks/…``, Polar's paths): endpoint CRUD and secret rotation, the delivery
log (``/v1/webhooks/deliveries?endpoint_id=`` as in Polar, and ``/v1/webhooks/endpoints/{id}/deliveries``), and
redelivery of an event. Organization tokens see only their organization's endpoints."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from portal.admin import responses
from portal.admin.auth import Principal
from portal.clock import Clock
from portal.db import Database
from portal.errors import Conflict
from portal.pagination import LimitParam, ListResource, PageParam, list_resource
from portal.settings import Settings
from portal.webhooks import queries, service
from portal.webhooks.models import (
    WebhookDeliveryOut,
    WebhookEndpointCreate,
    WebhookEndpointOut,
    WebhookEndpointUpdate,
    WebhookEventOut,
    delivery_out,
    endpoint_out,
    event_out,
)


async def _endpoint(db: Database, principal: Principal, endpoint_id: str) -> queries.EndpointRecord:
    return principal.check(await queries.get_endpoint(db, endpoint_id), "webhook endpoint")


async def _deliveries(
    db: Database, *, organization_id: str | None, endpoint_id: str | None, page: int, limit: int
) -> ListResource[WebhookDeliveryOut]:
    result = await queries.list_deliveries(
        db, organization_id=organization_id, endpoint_id=endpoint_id, page=page, limit=limit
    )
    events = await queries.get_events(db, sorted({record.event_id for record in result.records}))
    items = [delivery_out(record, events[record.event_id]) for record in result.records if record.event_id in events]
    return list_resource(items, result.total, limit)


class WebhookController(Controller):
    path = "/webhooks"
    tags = ["webhooks"]

    @get("/endpoints", summary="List webhook endpoints", responses=responses.LIST)
    async def list_endpoints(
        self,
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
        organization_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
        page: PageParam = 1,
        limit: LimitParam = 10,
    ) -> ListResource[WebhookEndpointOut]:
        result = await queries.list_endpoints(
            db, organization_id=principal.list_filter(organization_id), page=page, limit=limit
        )
        return list_resource([endpoint_out(record) for record in result.records], result.total, limit)

    @post("/endpoints", summary="Create a webhook endpoint (secret generated)", responses=responses.WRITE)
    async def create_endpoint(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        data: JSONBody[WebhookEndpointCreate],
    ) -> WebhookEndpointOut:
        async with db.write() as tx:
            organization_id = await principal.target_organization(tx, data.organization_id)
            endpoint_id = await service.create_endpoint(
                tx,
                organization_id,
                url=data.url,
                events=list(data.events),
                name=data.name,
                enabled=data.enabled,
                private_allowed=settings.webhook_private_addresses,
                now=clock.now(),
            )
        return endpoint_out(await _endpoint(db, principal, endpoint_id))

    @get("/endpoints/{id:str}", summary="Get a webhook endpoint", responses=responses.READ)
    async def get_endpoint(
        self, db: NamedDependency[Database], principal: NamedDependency[Principal], id: FromPath[str]
    ) -> WebhookEndpointOut:
        return endpoint_out(await _endpoint(db, principal, id))

    @patch("/endpoints/{id:str}", summary="Update a webhook endpoint", responses=responses.WRITE)
    async def update_endpoint(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        principal: NamedDependency[Principal],
        id: FromPath[str],
        settings: NamedDependency[Settings],
        data: JSONBody[WebhookEndpointUpdate],
    ) -> WebhookEndpointOut:
        await _endpoint(db, principal, id)
        async with db.write() as tx:
            record = await service.get_endpoint(tx, id, organization_id=None)
            await service.update_endpoint(
                tx,
                record,
                url=data.url,
                name=data.name,
                events=None if data.events is None else list(data.events),
                enabled=data.enabled,
                private_allowed=settings.webhook_private_addresses,
                now=clock.now(),
            )
        return endpoint_out(await _endpoint(db, principal, id))

    @patch("/endpoints/{id:str}/secret", summary="Reset a webhook endpoint's secret", responses=responses.WRITE)
    async def reset_secret(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        principal: NamedDependency[Principal],
        id: FromPath[str],
    ) -> WebhookEndpointOut:
        await _endpoint(db, principal, id)
        async with db.write() as tx:
            await service.rotate_secret(tx, await service.get_endpoint(tx, id, organization_id=None), now=clock.now())
        return endpoint_out(await _endpoint(db, principal, id))

    @delete("/endpoints/{id:str}", summary="Delete a webhook endpoint", responses=responses.errors(404))
    async def delete_endpoint(
        self, db: NamedDependency[Database], principal: NamedDependency[Principal], id: FromPath[str]
    ) -> None:
        await _endpoint(db, principal, id)
        async with db.write() as tx:
            await queries.delete_endpoint(tx, id)

    @get("/endpoints/{id:str}/deliveries", summary="Delivery log of an endpoint", responses=responses.errors(404, 422))
    async def endpoint_deliveries(
        self,
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
        id: FromPath[str],
        page: PageParam = 1,
        limit: LimitParam = 10,
    ) -> ListResource[WebhookDeliveryOut]:
        await _endpoint(db, principal, id)
        return await _deliveries(db, organization_id=None, endpoint_id=id, page=page, limit=limit)

    @get("/deliveries", summary="List webhook deliveries", responses=responses.LIST)
    async def list_deliveries(
        self,
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
        endpoint_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
        page: PageParam = 1,
        limit: LimitParam = 10,
    ) -> ListResource[WebhookDeliveryOut]:
        return await _deliveries(
            db, organization_id=principal.list_filter(None), endpoint_id=endpoint_id, page=page, limit=limit
        )

    @get("/events/{id:str}", summary="Get a webhook event (Portal)", responses=responses.READ)
    async def get_event(
        self, db: NamedDependency[Database], principal: NamedDependency[Principal], id: FromPath[str]
    ) -> WebhookEventOut:
        return event_out(principal.check(await queries.get_event(db, id), "webhook event"))

    @post(
        "/events/{id:str}/redeliver",
        summary="Redeliver a webhook event",
        status_code=202,
        responses=responses.errors(404, 409),
    )
    async def redeliver(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        principal: NamedDependency[Principal],
        id: FromPath[str],
    ) -> None:
        principal.check(await queries.get_event(db, id), "webhook event")
        async with db.write() as tx:
            if not await queries.requeue_event(tx, id, now=clock.now()):
                raise Conflict("the event is being delivered right now; try again shortly")
