"""``/v1/license-keys/``: Polar's admin reads of license keys (list, and one with its activations), in Polar's
``LicenseKeyRead``/``LicenseKeyWithActivations`` shapes with the key itself: what a seller's tools (and
another Portal's Polar connector, ``portal import polar``) read to carry keys over."""

from __future__ import annotations

import sqlite3
from typing import Annotated, Any

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from portal.admin import responses
from portal.admin.auth import Principal
from portal.benefits import reads as benefit_reads
from portal.customers import reads as customer_reads
from portal.db import Database
from portal.errors import NotFound
from portal.pagination import LimitParam, ListResource, PageParam, list_resource
from portal.polar.convert import activation_out, customer_out
from portal.polar.models import LicenseKeyOut, LicenseKeyWithActivationsOut
from portal.scope import EVERY_ORGANIZATION, Scope


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
        row = await benefit_reads.get_license_key_row(db, EVERY_ORGANIZATION, id)
        if row is None or not principal.can_see(row["organization_id"]):
            raise NotFound("license key not found")
        activations = [activation_out(a) for a in await benefit_reads.activation_rows(db, id)]
        fields = await _out(db, row)
        return msgspec.convert(
            {**fields, "activations": activations}, LicenseKeyWithActivationsOut, from_attributes=True
        )
