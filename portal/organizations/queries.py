"""Read queries for organizations (by slug, by id), returning ``Organization`` structs."""

from __future__ import annotations

import msgspec

from portal.db import Database, row_dict, row_to


class Organization(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    slug: str
    name: str
    avatar_url: str | None = None
    website_url: str | None = None
    support_email: str | None = None
    address: str | None = None
    receipt_prefix: str
    default_currency: str
    default_locale: str
    accent_color: str
    allow_plan_change: bool
    allow_seats: bool
    show_usage: bool
    allow_email_change: bool
    settings: str = "{}"
    created_at: str
    modified_at: str | None = None
    # Bumped by triggers on every change to products, prices, benefits and their links (migration 7): the key of
    # the per-process product cache (portal.customer_portal.catalog). Not part of any API output.
    catalog_version: int = 0


_COLUMNS = """
    id,
    slug,
    name,
    avatar_url,
    website_url,
    support_email,
    address,
    receipt_prefix,
    default_currency,
    default_locale,
    accent_color,
    allow_plan_change,
    allow_seats,
    show_usage,
    allow_email_change,
    settings,
    created_at,
    modified_at,
    catalog_version
"""


async def get_by_slug(db: Database, slug: str) -> Organization | None:
    row = await db.fetchone(f"SELECT {_COLUMNS} FROM organizations WHERE slug = ?", (slug,))
    return row_to(Organization, row)


async def get_by_id(db: Database, organization_id: str) -> Organization | None:
    row = await db.fetchone(f"SELECT {_COLUMNS} FROM organizations WHERE id = ?", (organization_id,))
    return row_to(Organization, row)


async def list_public(db: Database) -> list[Organization]:
    rows = await db.fetchall(f"SELECT {_COLUMNS} FROM organizations ORDER BY name")
    return [Organization(**row_dict(row)) for row in rows]
