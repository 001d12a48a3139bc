"""``/v1/benefit-grants/``: Polar's benefit-grant list, plus Portal's manual grant (``POST``) and revoke
(``DELETE``) for benefits given outside an order or subscription's own lifecycle."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from portal.admin import loaders, responses
from portal.admin.auth import Principal
from portal.benefits import reads as benefit_reads
from portal.benefits.grants import grant_benefit, revoke_grant
from portal.clock import Clock
from portal.customers import reads as customer_reads
from portal.db import Database
from portal.errors import InvalidInput, NotFound
from portal.pagination import LimitParam, ListResource, PageParam, list_resource
from portal.polar import loaders as polar_loaders
from portal.polar.models import BenefitGrantOut
from portal.references import Kind, require_owned
from portal.scope import Scope


class BenefitGrantCreate(msgspec.Struct, kw_only=True):
    """Grant ``benefit_id`` to ``customer_id`` on account of exactly one of their orders or subscriptions."""

    customer_id: str
    benefit_id: str
    order_id: str | None = None
    subscription_id: str | None = None


class BenefitGrantController(Controller):
    path = "/benefit-grants"
    tags = ["benefit-grants"]

    @get("/", summary="List benefit grants", responses=responses.LIST)
    async def list_grants(
        self,
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
        organization_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
        customer_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
        external_customer_id: Annotated[str | None, QueryParameter(max_length=200)] = None,
        benefit_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
        order_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
        subscription_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
        is_granted: FromQuery[bool | None] = None,
        page: PageParam = 1,
        limit: LimitParam = 10,
    ) -> ListResource[BenefitGrantOut]:
        org_filter = principal.list_filter(organization_id)
        if external_customer_id is not None:
            found = await customer_reads.find_customer_records_by_external_id(
                db, Scope(organization_id=org_filter), external_customer_id
            )
            customer_id = found[0].id if len(found) == 1 else "~none~"
        result = await benefit_reads.list_grant_records(
            db,
            Scope(organization_id=org_filter, customer_id=customer_id),
            benefit_id=benefit_id,
            order_id=order_id,
            subscription_id=subscription_id,
            is_granted=is_granted,
            page=page,
            limit=limit,
        )
        return list_resource([await polar_loaders.grant(db, r) for r in result.records], result.total, limit)

    @post("/", summary="Grant a benefit", responses=responses.WRITE)
    async def create_grant(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        principal: NamedDependency[Principal],
        data: JSONBody[BenefitGrantCreate],
    ) -> BenefitGrantOut:
        if (data.order_id is None) == (data.subscription_id is None):
            raise InvalidInput("give exactly one of order_id and subscription_id", "order_id")
        async with db.write() as tx:
            organization_id = await principal.customer_organization(tx, data.customer_id)
            await require_owned(tx, "benefit", data.benefit_id, organization_id, "benefit_id")
            kind: Kind = "order" if data.order_id is not None else "subscription"
            field = f"{kind}_id"
            source_id = data.order_id or data.subscription_id or ""
            await require_owned(tx, kind, source_id, organization_id, field)
            # The table name is one of two literals (``kind``), never input.
            owner = await tx.fetchval(f"SELECT customer_id FROM {kind}s WHERE id = ?", (source_id,))
            if owner != data.customer_id:
                raise InvalidInput(f"not one of this customer's {kind}s", field)
            grant_id = await grant_benefit(
                tx,
                customer_id=data.customer_id,
                benefit_id=data.benefit_id,
                order_id=data.order_id,
                subscription_id=data.subscription_id,
                now=clock.now(),
            )
        return await loaders.grant_by_id(db, principal, grant_id)

    @get("/{id:str}", summary="Get a benefit grant", responses=responses.READ)
    async def get_grant(
        self, db: NamedDependency[Database], principal: NamedDependency[Principal], id: FromPath[str]
    ) -> BenefitGrantOut:
        return await loaders.grant_by_id(db, principal, id)

    @delete("/{id:str}", summary="Revoke a benefit grant", status_code=200, responses=responses.READ)
    async def revoke(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        principal: NamedDependency[Principal],
        id: FromPath[str],
    ) -> BenefitGrantOut:
        grant = await loaders.grant_by_id(db, principal, id)
        if grant is None:  # pragma: no cover - grant_by_id raises
            raise NotFound("benefit grant not found")
        async with db.write() as tx:
            await revoke_grant(tx, id, now=clock.now())
        return await loaders.grant_by_id(db, principal, id)
