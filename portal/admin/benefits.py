"""``/v1/benefits/``: Polar's benefit endpoints for every benefit type Portal supports (custom, license keys
with prefix/expiry/activation limits/customer-managed activations, downloadables, Discord, GitHub repository,
meter credit, feature flag) and their grants (``GET /v1/benefits/{id}/grants``)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from portal.admin import deletions, loaders, responses
from portal.admin.auth import Principal
from portal.benefits import reads as benefit_reads
from portal.benefits import service as benefit_service
from portal.benefits.service import BenefitType
from portal.clock import Clock
from portal.db import Database
from portal.fields import SingleLine
from portal.pagination import LimitParam, ListResource, PageParam, list_resource
from portal.polar import loaders as polar_loaders
from portal.polar.convert import benefit_out
from portal.polar.models import BenefitGrantOut, BenefitOut
from portal.scope import EVERY_ORGANIZATION, Scope


class BenefitCreate(msgspec.Struct, kw_only=True):
    """Polar's ``Benefit*Create``: ``properties`` are checked against ``type`` (422 names the bad field)."""

    type: BenefitType
    description: SingleLine
    properties: dict[str, Any] = {}
    organization_id: str | None = None
    metadata: dict[str, Any] = {}
    external_id: SingleLine | None = None
    visibility: benefit_service.Visibility | None = None  # None: the type's default (feature flags private)


class BenefitUpdate(msgspec.Struct, kw_only=True):
    """Polar's ``Benefit*Update``: ``type`` may be sent but never changes."""

    type: BenefitType | msgspec.UnsetType = msgspec.UNSET
    description: SingleLine | msgspec.UnsetType = msgspec.UNSET
    properties: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    metadata: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    external_id: SingleLine | msgspec.UnsetType | None = msgspec.UNSET
    visibility: benefit_service.Visibility | msgspec.UnsetType | None = msgspec.UNSET


class BenefitController(Controller):
    path = "/benefits"
    tags = ["benefits"]

    @get("/", summary="List benefits", responses=responses.LIST)
    async def list_benefits(
        self,
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
        organization_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
        type: FromQuery[BenefitType | None] = None,
        page: PageParam = 1,
        limit: LimitParam = 10,
    ) -> ListResource[BenefitOut]:
        result = await benefit_reads.list_benefit_records(
            db, Scope(organization_id=principal.list_filter(organization_id)), type=type, page=page, limit=limit
        )
        return list_resource([benefit_out(r) for r in result.records], result.total, limit)

    @post("/", summary="Create a benefit", responses=responses.WRITE)
    async def create_benefit(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        principal: NamedDependency[Principal],
        data: JSONBody[BenefitCreate],
    ) -> BenefitOut:
        async with db.write() as tx:
            organization_id = await principal.target_organization(tx, data.organization_id)
            benefit_id = await benefit_service.create_benefit(
                tx,
                organization_id,
                benefit_service.BenefitInput(
                    type=data.type,
                    description=data.description,
                    properties=data.properties,
                    external_id=data.external_id,
                    metadata=data.metadata,
                    visibility=data.visibility,
                ),
                now=clock.now(),
            )
        return await loaders.benefit_by_id(db, principal, benefit_id)

    @get("/{id:str}", summary="Get a benefit", responses=responses.READ)
    async def get_benefit(
        self, db: NamedDependency[Database], principal: NamedDependency[Principal], id: FromPath[str]
    ) -> BenefitOut:
        return await loaders.benefit_by_id(db, principal, id)

    @patch("/{id:str}", summary="Update a benefit", responses=responses.WRITE)
    async def update_benefit(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        principal: NamedDependency[Principal],
        id: FromPath[str],
        data: JSONBody[BenefitUpdate],
    ) -> BenefitOut:
        current = await loaders.benefit_by_id(db, principal, id)
        record = await benefit_reads.get_benefit_record(db, EVERY_ORGANIZATION, id)
        assert record is not None
        merged = benefit_service.BenefitInput(
            type=current.type if data.type is msgspec.UNSET else data.type,  # type: ignore[arg-type]
            description=current.description if data.description is msgspec.UNSET else data.description,
            properties=(
                msgspec.json.decode(record.properties) if data.properties is msgspec.UNSET else data.properties
            ),
            external_id=current.external_id if data.external_id is msgspec.UNSET else data.external_id,
            metadata=current.metadata if data.metadata is msgspec.UNSET else data.metadata,
            visibility=current.visibility if data.visibility is msgspec.UNSET else data.visibility,
        )
        async with db.write() as tx:
            await benefit_service.update_benefit(tx, id, merged, now=clock.now())
        return await loaders.benefit_by_id(db, principal, id)

    @delete("/{id:str}", summary="Delete a benefit (revokes its grants)", responses=responses.READ)
    async def delete_benefit(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        principal: NamedDependency[Principal],
        id: FromPath[str],
    ) -> None:
        await loaders.benefit_by_id(db, principal, id)
        async with db.write() as tx:
            await deletions.delete_benefit(tx, id, now=clock.now())

    @get("/{id:str}/grants", summary="List a benefit's grants", responses=responses.errors(404, 422))
    async def list_benefit_grants(
        self,
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
        id: FromPath[str],
        is_granted: FromQuery[bool | None] = None,
        customer_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
        page: PageParam = 1,
        limit: LimitParam = 10,
    ) -> ListResource[BenefitGrantOut]:
        await loaders.benefit_by_id(db, principal, id)
        result = await benefit_reads.list_grant_records(
            db,
            Scope(organization_id=principal.list_filter(None), customer_id=customer_id),
            benefit_id=id,
            order_id=None,
            subscription_id=None,
            is_granted=is_granted,
            page=page,
            limit=limit,
        )
        return list_resource([await polar_loaders.grant(db, r) for r in result.records], result.total, limit)
