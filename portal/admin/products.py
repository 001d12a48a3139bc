"""``/v1/products/``: Polar's product endpoints — prices (one active price per currency; a changed amount
archives the old price), benefits (``POST /v1/products/{id}/benefits``), archive instead of delete."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from portal.admin import loaders, responses
from portal.admin.auth import Principal
from portal.clock import Clock
from portal.db import Database, Transaction
from portal.errors import InvalidInput
from portal.fields import NonNegative, SingleLine
from portal.pagination import LimitParam, ListResource, PageParam, list_resource
from portal.polar import loaders as polar_loaders
from portal.polar.models import ProductOut
from portal.products import reads as product_reads
from portal.products import service as product_service
from portal.references import UnknownReference
from portal.scope import Scope


class PriceIn(msgspec.Struct, kw_only=True):
    """Polar's ``ProductPrice*Create`` (fixed, custom, free), or ``{"id": …}`` to keep an existing price."""

    id: str | None = None
    amount_type: Literal["fixed", "custom", "free"] = "fixed"
    price_amount: NonNegative | None = None
    price_currency: str = "usd"
    preset_amount: NonNegative | None = None


class ProductCreate(msgspec.Struct, kw_only=True):
    name: SingleLine
    prices: list[PriceIn]
    description: str | None = None
    visibility: Literal["public", "private", "draft"] = "public"
    recurring_interval: Literal["day", "week", "month", "year"] | None = None
    recurring_interval_count: Annotated[int, msgspec.Meta(ge=1, le=365)] | None = None
    organization_id: str | None = None
    metadata: dict[str, Any] = {}
    external_id: SingleLine | None = None
    benefits: list[str] | None = None


class ProductUpdate(msgspec.Struct, kw_only=True):
    name: SingleLine | msgspec.UnsetType = msgspec.UNSET
    description: str | msgspec.UnsetType | None = msgspec.UNSET
    visibility: Literal["public", "private", "draft"] | msgspec.UnsetType = msgspec.UNSET
    recurring_interval: Literal["day", "week", "month", "year"] | msgspec.UnsetType | None = msgspec.UNSET
    recurring_interval_count: Annotated[int, msgspec.Meta(ge=1, le=365)] | msgspec.UnsetType = msgspec.UNSET
    is_archived: bool | msgspec.UnsetType = msgspec.UNSET
    prices: list[PriceIn] | msgspec.UnsetType = msgspec.UNSET
    metadata: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    external_id: SingleLine | msgspec.UnsetType | None = msgspec.UNSET


class ProductBenefitsUpdate(msgspec.Struct, kw_only=True):
    """Polar's ``ProductBenefitsUpdate``: the complete, ordered list of benefit ids."""

    benefits: list[str]


def _price_input(price: product_reads.PriceRecord) -> product_service.PriceInput:
    return product_service.PriceInput(
        amount=price.price_amount,
        currency=price.price_currency,
        amount_type=price.amount_type,  # type: ignore[arg-type]
    )


async def _price_inputs(
    tx: Transaction, product_id: str | None, prices: list[PriceIn]
) -> list[product_service.PriceInput]:
    converted: list[product_service.PriceInput] = []
    for index, price in enumerate(prices):
        if price.id is not None:
            kept = await product_reads.get_product_price_record(tx, price.id, product_id)
            if kept is None:
                raise UnknownReference("price", f"prices[{index}].id")
            converted.append(_price_input(kept))
            continue
        amount = price.preset_amount if price.amount_type == "custom" else price.price_amount
        if price.amount_type == "fixed" and amount is None:
            raise InvalidInput("required for a fixed price", f"prices[{index}].price_amount")
        converted.append(
            product_service.PriceInput(
                amount=amount or 0, currency=price.price_currency.lower(), amount_type=price.amount_type
            )
        )
    return converted


class ProductController(Controller):
    path = "/products"
    tags = ["products"]

    @get("/", summary="List products", responses=responses.LIST)
    async def list_products(
        self,
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
        organization_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
        is_archived: FromQuery[bool | None] = None,
        is_recurring: FromQuery[bool | None] = None,
        page: PageParam = 1,
        limit: LimitParam = 10,
    ) -> ListResource[ProductOut]:
        result = await product_reads.list_product_records(
            db,
            Scope(organization_id=principal.list_filter(organization_id)),
            is_archived=is_archived,
            is_recurring=is_recurring,
            page=page,
            limit=limit,
        )
        return list_resource([await polar_loaders.product(db, r) for r in result.records], result.total, limit)

    @post("/", summary="Create a product with its prices", responses=responses.WRITE)
    async def create_product(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        principal: NamedDependency[Principal],
        data: JSONBody[ProductCreate],
    ) -> ProductOut:
        now = clock.now()
        async with db.write() as tx:
            organization_id = await principal.target_organization(tx, data.organization_id)
            product_id = await product_service.create_product(
                tx,
                organization_id,
                product_service.ProductInput(
                    name=data.name,
                    description=data.description,
                    recurring_interval=data.recurring_interval,
                    recurring_interval_count=data.recurring_interval_count or 1,
                    prices=await _price_inputs(tx, None, data.prices),
                    visibility=data.visibility,
                    external_id=data.external_id,
                    metadata=data.metadata,
                ),
                now=now,
            )
            if data.benefits:
                await product_service.set_product_benefits(tx, product_id, data.benefits, now=now)
        return await loaders.product_by_id(db, principal, product_id)

    @get("/{id:str}", summary="Get a product", responses=responses.READ)
    async def get_product(
        self, db: NamedDependency[Database], principal: NamedDependency[Principal], id: FromPath[str]
    ) -> ProductOut:
        return await loaders.product_by_id(db, principal, id)

    @patch("/{id:str}", summary="Update a product (prices per currency)", responses=responses.WRITE)
    async def update_product(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        principal: NamedDependency[Principal],
        id: FromPath[str],
        data: JSONBody[ProductUpdate],
    ) -> ProductOut:
        await loaders.product_by_id(db, principal, id)
        async with db.write() as tx:
            current = await product_service.current_input(tx, id)
            changes = {
                name: value
                for name in data.__struct_fields__
                if (value := getattr(data, name)) is not msgspec.UNSET and name != "prices"
            }
            if data.prices is not msgspec.UNSET:
                changes["prices"] = await _price_inputs(tx, id, data.prices)
            await product_service.update_product(tx, id, msgspec.structs.replace(current, **changes), now=clock.now())
        return await loaders.product_by_id(db, principal, id)

    @post("/{id:str}/benefits", summary="Set a product's benefits", status_code=200, responses=responses.WRITE)
    async def update_product_benefits(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        principal: NamedDependency[Principal],
        id: FromPath[str],
        data: JSONBody[ProductBenefitsUpdate],
    ) -> ProductOut:
        await loaders.product_by_id(db, principal, id)
        async with db.write() as tx:
            await product_service.set_product_benefits(tx, id, data.benefits, now=clock.now())
        return await loaders.product_by_id(db, principal, id)

    @delete("/{id:str}", summary="Archive a product (orders keep pointing at it)", responses=responses.READ)
    async def delete_product(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        principal: NamedDependency[Principal],
        id: FromPath[str],
    ) -> None:
        await loaders.product_by_id(db, principal, id)
        async with db.write() as tx:
            current = await product_service.current_input(tx, id)
            await product_service.update_product(
                tx, id, msgspec.structs.replace(current, is_archived=True), now=clock.now()
            )
