"""Reads of organizations for the admin API: one page of them (all for an admin token, one for an
organization token). Single lookups reuse ``portal.organizations.queries``."""

from __future__ import annotations

from portal.db import Database
from portal.organizations.queries import _COLUMNS, Organization
from portal.pagination import PageOf, fetch_page


async def list_organizations(
    db: Database, *, organization_id: str | None, slug: str | None, page: int, limit: int
) -> PageOf[Organization]:
    return await fetch_page(
        db,
        Organization,
        select=_COLUMNS,
        source="organizations",
        filters={"id": organization_id, "slug": slug},
        order_by="created_at, id",
        page=page,
        limit=limit,
    )
