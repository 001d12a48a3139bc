"""``/v1/license-keys/``: Polar's admin reads of license keys (list, and one with its activations), in Polar's
``LicenseKeyRead``/``LicenseKeyWithActivations`` shapes with the key itself: what a seller's tools (and
another Portal's Polar connector, ``portal import polar``) read to carry keys over; and Polar's update
(``PATCH``: status, usage, limits, expiry) through the functions the seller console uses
(``portal.benefits.license_keys``)."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, get, patch
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from portal.admin import responses
from portal.admin.auth import Principal
from portal.benefits import license_keys
from portal.benefits import reads as benefit_reads
from portal.clock import Clock
from portal.customers import reads as customer_reads
from portal.db import Database
from portal.errors import InvalidInput, NotFound
from portal.fields import Moment, NonNegative, Positive, moment_problem
from portal.pagination import LimitParam, ListResource, PageParam, list_resource
from portal.polar.convert import activation_out, customer_out
from portal.polar.models import LicenseKeyOut, LicenseKeyWithActivationsOut
from portal.scope import EVERY_ORGANIZATION, Scope


class LicenseKeyUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Polar's ``LicenseKeyUpdate``: the fields sent change, the others keep their value. ``status`` moves between
    ``granted`` and ``disabled`` (a key is revoked and restored with its benefit grant); ``limit_activations`` is
    refused below the activations the key has (null: no activations, for a key without any)."""

    status: Literal["granted", "revoked", "disabled"] | msgspec.UnsetType = msgspec.UNSET
    usage: NonNegative | msgspec.UnsetType = msgspec.UNSET
    limit_activations: (
        Annotated[int, msgspec.Meta(ge=1, le=license_keys.MAX_ACTIVATION_LIMIT)] | msgspec.UnsetType | None
    ) = msgspec.UNSET
    limit_usage: Positive | msgspec.UnsetType | None = msgspec.UNSET
    expires_at: Moment | msgspec.UnsetType | None = msgspec.UNSET


async def _out(db: Database, row: sqlite3.Row) -> dict[str, Any]:
    customer = await customer_reads.get_customer_record(
        db, EVERY_ORGANIZATION, row["customer_id"], include_deleted=True
    )
    if customer is None:
        raise NotFound("license key not found")
    return {
        **{name: row[name] for name in row.keys()},  # noqa: SIM118 - sqlite3.Row is not a mapping
        "customer": customer_out(customer),
    }


class LicenseKeyController(Controller):
    path = "/license-keys"
    tags = ["license_keys"]

    @get("/", summary="List license keys", responses=responses.LIST)
    async def list_license_keys(
        self,
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
        organization_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
        benefit_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
        page: PageParam = 1,
        limit: LimitParam = 10,
    ) -> ListResource[LicenseKeyOut]:
        scope = Scope(organization_id=principal.list_filter(organization_id))
        rows, total = await benefit_reads.list_license_key_rows(
            db, scope, benefit_id=benefit_id, page_number=page, limit=limit
        )
        items = [msgspec.convert(await _out(db, row), LicenseKeyOut, from_attributes=True) for row in rows]
        return list_resource(items, total, limit)

    @get("/{id:str}", summary="Get a license key with its activations", responses=responses.READ)
    async def get_license_key(
        self, db: NamedDependency[Database], principal: NamedDependency[Principal], id: FromPath[str]
    ) -> LicenseKeyWithActivationsOut:
        return await _with_activations(db, principal, id)

    @patch("/{id:str}", summary="Update a license key", responses=responses.WRITE)
    async def update_license_key(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        principal: NamedDependency[Principal],
        id: FromPath[str],
        data: JSONBody[LicenseKeyUpdate],
    ) -> LicenseKeyWithActivationsOut:
        if isinstance(data.expires_at, datetime) and (problem := moment_problem(data.expires_at)):
            raise InvalidInput(problem, "expires_at")
        await _with_activations(db, principal, id)
        now = clock.now()
        async with db.write() as tx:
            if not isinstance(data.status, msgspec.UnsetType):
                await license_keys.set_license_key_status(tx, id, data.status, now=now)
            if not isinstance(data.limit_activations, msgspec.UnsetType):
                await license_keys.set_activation_limit(tx, id, data.limit_activations, now=now)
            if not isinstance(data.expires_at, msgspec.UnsetType):
                await license_keys.set_expiry(tx, id, data.expires_at, now=now)
            if not (isinstance(data.usage, msgspec.UnsetType) and isinstance(data.limit_usage, msgspec.UnsetType)):
                usage = None if isinstance(data.usage, msgspec.UnsetType) else data.usage
                await license_keys.set_usage(tx, id, usage=usage, limit_usage=data.limit_usage, now=now)
        return await _with_activations(db, principal, id)


async def _with_activations(db: Database, principal: Principal, id: str) -> LicenseKeyWithActivationsOut:
    """The key with its activations, if the principal may see it; ``NotFound`` otherwise."""
    row = await benefit_reads.get_license_key_row(db, EVERY_ORGANIZATION, id)
    if row is None or not principal.can_see(row["organization_id"]):
        raise NotFound("license key not found")
    activations = [activation_out(a) for a in await benefit_reads.activation_rows(db, id)]
    fields = await _out(db, row)
    return msgspec.convert({**fields, "activations": activations}, LicenseKeyWithActivationsOut, from_attributes=True)
