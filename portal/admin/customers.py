"""``/v1/customers/``: Polar's customer endpoints (by id and by ``external_id``). Emails are unique per
organization (case-insensitive) and so are external ids: a duplicate answers 409. Delete is a soft delete
that also revokes the customer's portal sessions."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from portal.admin import deletions, loaders, responses
from portal.admin.auth import Principal
from portal.clock import Clock
from portal.customers import reads as customer_reads
from portal.customers import service as customer_service
from portal.customers.service import Address
from portal.db import Database
from portal.errors import NotFound
from portal.fields import EmailLine, SingleLine
from portal.pagination import LimitParam, ListResource, PageParam, list_resource
from portal.polar.convert import customer_out
from portal.polar.models import CustomerOut
from portal.scope import Scope


class CustomerCreate(msgspec.Struct, kw_only=True):
    """Polar's ``CustomerIndividualCreate`` (+ ``billing_name``, ``email_verified``)."""

    email: EmailLine
    name: SingleLine | None = None
    external_id: SingleLine | None = None
    billing_name: SingleLine | None = None
    billing_address: Address | None = None
    tax_id: SingleLine | None = None
    locale: SingleLine | None = None
    organization_id: str | None = None
    metadata: dict[str, Any] = {}
    email_verified: bool = False
    type: str = "individual"


class CustomerUpdate(msgspec.Struct, kw_only=True):
    email: EmailLine | msgspec.UnsetType = msgspec.UNSET
    name: SingleLine | msgspec.UnsetType | None = msgspec.UNSET
    external_id: SingleLine | msgspec.UnsetType | None = msgspec.UNSET
    billing_name: SingleLine | msgspec.UnsetType | None = msgspec.UNSET
    billing_address: Address | msgspec.UnsetType | None = msgspec.UNSET
    tax_id: SingleLine | msgspec.UnsetType | None = msgspec.UNSET
    locale: SingleLine | msgspec.UnsetType | None = msgspec.UNSET
    metadata: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    email_verified: bool | msgspec.UnsetType = msgspec.UNSET


def _update(data: CustomerUpdate) -> customer_service.CustomerUpdate:
    return customer_service.CustomerUpdate(
        **{name: getattr(data, name) for name in data.__struct_fields__ if getattr(data, name) is not msgspec.UNSET}
    )


async def _by_external_id(db: Database, principal: Principal, external_id: str) -> customer_reads.CustomerRecord:
    found = await customer_reads.find_customer_records_by_external_id(
        db, Scope(organization_id=principal.organization_id), external_id
    )
    if len(found) != 1:  # none, or (admin token) ambiguous across organizations
        raise NotFound("customer not found")
    return found[0]


class CustomerController(Controller):
    path = "/customers"
    tags = ["customers"]

    @get("/", summary="List customers", responses=responses.LIST)
    async def list_customers(
        self,
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
        organization_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
        email: Annotated[str | None, QueryParameter(max_length=320)] = None,
        external_id: Annotated[str | None, QueryParameter(max_length=200)] = None,
        page: PageParam = 1,
        limit: LimitParam = 10,
    ) -> ListResource[CustomerOut]:
        result = await customer_reads.list_customer_records(
            db,
            Scope(organization_id=principal.list_filter(organization_id)),
            email=email,
            external_id=external_id,
            page=page,
            limit=limit,
        )
        return list_resource([customer_out(r) for r in result.records], result.total, limit)

    @post("/", summary="Create a customer", responses=responses.WRITE)
    async def create_customer(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        principal: NamedDependency[Principal],
        data: JSONBody[CustomerCreate],
    ) -> CustomerOut:
        async with db.write() as tx:
            organization_id = await principal.target_organization(tx, data.organization_id)
            customer_id = await customer_service.create_customer(
                tx,
                organization_id,
                customer_service.CustomerInput(
                    email=data.email,
                    name=data.name,
                    external_id=data.external_id,
                    billing_name=data.billing_name,
                    billing_address=data.billing_address,
                    tax_id=data.tax_id,
                    locale=data.locale,
                    email_verified=data.email_verified,
                    metadata=data.metadata,
                ),
                now=clock.now(),
            )
        return await loaders.customer_by_id(db, principal, customer_id)

    @get("/{id:str}", summary="Get a customer", responses=responses.READ)
    async def get_customer(
        self, db: NamedDependency[Database], principal: NamedDependency[Principal], id: FromPath[str]
    ) -> CustomerOut:
        return await loaders.customer_by_id(db, principal, id)

    @patch("/{id:str}", summary="Update a customer", responses=responses.WRITE)
    async def update_customer(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        principal: NamedDependency[Principal],
        id: FromPath[str],
        data: JSONBody[CustomerUpdate],
    ) -> CustomerOut:
        await loaders.customer_by_id(db, principal, id)
        async with db.write() as tx:
            await customer_service.update_customer(tx, id, _update(data), now=clock.now())
        return await loaders.customer_by_id(db, principal, id)

    @delete("/{id:str}", summary="Delete a customer (soft)", responses=responses.READ)
    async def delete_customer(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        principal: NamedDependency[Principal],
        id: FromPath[str],
    ) -> None:
        await loaders.customer_by_id(db, principal, id)
        async with db.write() as tx:
            await deletions.delete_customer(tx, id, now=clock.now())

    @get("/external/{external_id:str}", summary="Get a customer by external id", responses=responses.READ)
    async def get_customer_external(
        self, db: NamedDependency[Database], principal: NamedDependency[Principal], external_id: FromPath[str]
    ) -> CustomerOut:
        return customer_out(await _by_external_id(db, principal, external_id))

    @patch("/external/{external_id:str}", summary="Update a customer by external id", responses=responses.WRITE)
    async def update_customer_external(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        principal: NamedDependency[Principal],
        external_id: FromPath[str],
        data: JSONBody[CustomerUpdate],
    ) -> CustomerOut:
        record = await _by_external_id(db, principal, external_id)
        async with db.write() as tx:
            await customer_service.update_customer(tx, record.id, _update(data), now=clock.now())
        return await loaders.customer_by_id(db, principal, record.id)

    @delete("/external/{external_id:str}", summary="Delete a customer by external id", responses=responses.READ)
    async def delete_customer_external(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        principal: NamedDependency[Principal],
        external_id: FromPath[str],
    ) -> None:
        record = await _by_external_id(db, principal, external_id)
        async with db.write() as tx:
            await deletions.delete_customer(tx, record.id, now=clock.now())
