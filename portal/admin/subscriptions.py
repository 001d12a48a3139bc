"""``/v1/subscriptions/``: subscriptions with their status, periods and cancellation flags. Creating or
updating one re-syncs its benefit grants in the same transaction (granted while active/trialing, revoked
otherwise); ``DELETE`` (Polar's "revoke") ends it now."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from portal.admin import loaders, responses
from portal.admin.auth import Principal
from portal.clock import Clock, parse_iso
from portal.db import Database
from portal.fields import Moment, NonNegative, SingleLine
from portal.pagination import LimitParam, ListResource, PageParam, list_resource
from portal.polar import loaders as polar_loaders
from portal.polar.models import SubscriptionOut
from portal.scope import Scope
from portal.subscriptions import reads as subscription_reads
from portal.subscriptions import service as subscription_service
from portal.subscriptions.reads import SubscriptionRecord
from portal.subscriptions.service import CancellationReason, SubscriptionInput, SubscriptionStatus

UNSET = msgspec.UNSET


class SubscriptionUpdate(msgspec.Struct, kw_only=True):
    """Fields to change (the others keep their value). Polar's shortcuts work too: ``cancel_at_period_end``
    alone cancels at period end (``canceled_at`` = now) or uncancels; ``revoke: true`` ends it now."""

    status: SubscriptionStatus | msgspec.UnsetType = UNSET
    product_id: str | msgspec.UnsetType = UNSET
    price_id: str | msgspec.UnsetType | None = UNSET
    amount: NonNegative | msgspec.UnsetType | None = UNSET
    currency: SingleLine | msgspec.UnsetType | None = UNSET
    current_period_start: Moment | msgspec.UnsetType = UNSET
    current_period_end: Moment | msgspec.UnsetType | None = UNSET
    trial_start: Moment | msgspec.UnsetType | None = UNSET
    trial_end: Moment | msgspec.UnsetType | None = UNSET
    cancel_at_period_end: bool | msgspec.UnsetType = UNSET
    canceled_at: Moment | msgspec.UnsetType | None = UNSET
    started_at: Moment | msgspec.UnsetType | None = UNSET
    ends_at: Moment | msgspec.UnsetType | None = UNSET
    ended_at: Moment | msgspec.UnsetType | None = UNSET
    customer_cancellation_reason: CancellationReason | msgspec.UnsetType | None = UNSET
    customer_cancellation_comment: str | msgspec.UnsetType | None = UNSET
    external_id: SingleLine | msgspec.UnsetType | None = UNSET
    metadata: dict[str, Any] | msgspec.UnsetType = UNSET
    revoke: bool | msgspec.UnsetType = UNSET


def _when(text: str | None) -> datetime | None:
    return None if text is None else parse_iso(text)


def _current(record: SubscriptionRecord) -> SubscriptionInput:
    return SubscriptionInput(
        customer_id=record.customer_id,
        product_id=record.product_id,
        status=record.status,  # type: ignore[arg-type]
        current_period_start=parse_iso(record.current_period_start),
        current_period_end=_when(record.current_period_end),
        price_id=record.price_id,
        amount=record.amount,
        currency=record.currency,
        trial_start=_when(record.trial_start),
        trial_end=_when(record.trial_end),
        cancel_at_period_end=record.cancel_at_period_end,
        canceled_at=_when(record.canceled_at),
        started_at=_when(record.started_at),
        ends_at=_when(record.ends_at),
        ended_at=_when(record.ended_at),
        customer_cancellation_reason=record.customer_cancellation_reason,  # type: ignore[arg-type]
        customer_cancellation_comment=record.customer_cancellation_comment,
        external_id=record.external_id,
        metadata=msgspec.json.decode(record.metadata),
    )


def merge(record: SubscriptionRecord, data: SubscriptionUpdate, now: datetime) -> SubscriptionInput:
    """The whole subscription after ``data``: a new product re-prices it unless a price is given; cancel and
    uncancel fill the dates Polar fills."""
    changes = {
        name: value
        for name in data.__struct_fields__
        if (value := getattr(data, name)) is not UNSET and name != "revoke"
    }
    if "product_id" in changes and changes["product_id"] != record.product_id:
        changes.setdefault("price_id", None)
        changes.setdefault("amount", None)
    if changes.get("cancel_at_period_end") is True and not record.cancel_at_period_end:
        changes.setdefault("canceled_at", now)
    if changes.get("cancel_at_period_end") is False and record.cancel_at_period_end:
        changes.setdefault("canceled_at", None)
        changes.setdefault("ends_at", None)
    return msgspec.structs.replace(_current(record), **changes)


class SubscriptionController(Controller):
    path = "/subscriptions"
    tags = ["subscriptions"]

    @get("/", summary="List subscriptions", responses=responses.LIST)
    async def list_subscriptions(
        self,
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
        organization_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
        customer_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
        product_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
        status: FromQuery[SubscriptionStatus | None] = None,
        page: PageParam = 1,
        limit: LimitParam = 10,
    ) -> ListResource[SubscriptionOut]:
        result = await subscription_reads.list_subscription_records(
            db,
            Scope(organization_id=principal.list_filter(organization_id), customer_id=customer_id),
            product_id=product_id,
            status=status,
            page=page,
            limit=limit,
        )
        return list_resource([await polar_loaders.subscription(db, r) for r in result.records], result.total, limit)

    @post("/", summary="Record a subscription", responses=responses.WRITE)
    async def create_subscription(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        principal: NamedDependency[Principal],
        data: JSONBody[SubscriptionInput],
    ) -> SubscriptionOut:
        async with db.write() as tx:
            organization_id = await principal.customer_organization(tx, data.customer_id)
            subscription_id = await subscription_service.create_subscription(tx, organization_id, data, now=clock.now())
        return await loaders.subscription_by_id(db, principal, subscription_id)

    @get("/{id:str}", summary="Get a subscription", responses=responses.READ)
    async def get_subscription(
        self, db: NamedDependency[Database], principal: NamedDependency[Principal], id: FromPath[str]
    ) -> SubscriptionOut:
        return await loaders.subscription_by_id(db, principal, id)

    @patch("/{id:str}", summary="Update a subscription (status, periods, cancellation)", responses=responses.WRITE)
    async def update_subscription(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        principal: NamedDependency[Principal],
        id: FromPath[str],
        data: JSONBody[SubscriptionUpdate],
    ) -> SubscriptionOut:
        await loaders.subscription_by_id(db, principal, id)
        now = clock.now()
        async with db.write() as tx:
            if data.revoke is True:
                await subscription_service.end_subscription(tx, id, now=now)
            else:
                # Re-read inside the write: the merge must see the row the update replaces.
                record = await subscription_reads.require_subscription_record(tx, id)
                await subscription_service.update_subscription(tx, id, merge(record, data, now), now=now)
        return await loaders.subscription_by_id(db, principal, id)

    @delete(
        "/{id:str}", summary="Revoke (end) a subscription now", status_code=200, responses=responses.errors(404, 409)
    )
    async def revoke_subscription(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        principal: NamedDependency[Principal],
        id: FromPath[str],
    ) -> SubscriptionOut:
        await loaders.subscription_by_id(db, principal, id)
        async with db.write() as tx:
            await subscription_service.end_subscription(tx, id, now=clock.now())
        return await loaders.subscription_by_id(db, principal, id)
