"""Organization-wide reads of benefits, downloadable files and benefit grants, for the admin API. Returns
``BenefitRecord``/``FileRecord``/``GrantRecord`` structs (JSON columns stay text; the API layer decodes)."""

from __future__ import annotations

import sqlite3

import msgspec

from portal.db import Database, row_to, rows_to
from portal.pagination import PageOf, fetch_page


class BenefitRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    organization_id: str
    type: str
    description: str
    properties: str
    external_id: str | None
    metadata: str
    visibility: str
    created_at: str
    modified_at: str | None
    deleted_at: str | None


class FileRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    organization_id: str
    name: str
    path: str
    mime_type: str
    size: int
    checksum_sha256_hex: str
    version: str | None
    created_at: str
    modified_at: str | None


class GrantRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    organization_id: str
    customer_id: str
    benefit_id: str
    order_id: str | None
    subscription_id: str | None
    granted_at: str | None
    revoked_at: str | None
    properties: str
    created_at: str
    modified_at: str | None


_BENEFIT_COLUMNS = """
    b.id,
    b.organization_id,
    b.type,
    b.description,
    b.properties,
    b.external_id,
    b.metadata,
    b.visibility,
    b.created_at,
    b.modified_at,
    b.deleted_at
"""

_FILE_COLUMNS = """
    f.id,
    f.organization_id,
    f.name,
    f.path,
    f.mime_type,
    f.size,
    f.checksum_sha256_hex,
    f.version,
    f.created_at,
    f.modified_at
"""

_GRANT_COLUMNS = """
    g.id,
    g.organization_id,
    g.customer_id,
    g.benefit_id,
    g.order_id,
    g.subscription_id,
    g.granted_at,
    g.revoked_at,
    g.properties,
    g.created_at,
    g.modified_at
"""


async def get_benefit(db: Database, benefit_id: str) -> BenefitRecord | None:
    """A live (not deleted) benefit."""
    row = await db.fetchone(
        f"SELECT {_BENEFIT_COLUMNS} FROM benefits b WHERE b.id = ? AND b.deleted_at IS NULL", (benefit_id,)
    )
    return row_to(BenefitRecord, row)


async def get_benefit_any(db: Database, benefit_id: str) -> BenefitRecord | None:
    """A benefit even if deleted (grants keep pointing at deleted benefits)."""
    row = await db.fetchone(f"SELECT {_BENEFIT_COLUMNS} FROM benefits b WHERE b.id = ?", (benefit_id,))
    return row_to(BenefitRecord, row)


async def get_benefits(db: Database, benefit_ids: list[str]) -> list[BenefitRecord]:
    """Live benefits with these ids, in the order given."""
    if not benefit_ids:
        return []
    marks = ", ".join("?" for _ in benefit_ids)
    rows = await db.fetchall(
        f"SELECT {_BENEFIT_COLUMNS} FROM benefits b WHERE b.id IN ({marks}) AND b.deleted_at IS NULL",
        benefit_ids,
    )
    found = {record.id: record for record in rows_to(BenefitRecord, rows)}
    return [found[i] for i in benefit_ids if i in found]


async def list_benefits(
    db: Database, *, organization_id: str | None, type: str | None, page: int, limit: int
) -> PageOf[BenefitRecord]:
    return await fetch_page(
        db,
        BenefitRecord,
        select=_BENEFIT_COLUMNS,
        source="benefits b",
        filters={"b.organization_id": organization_id, "b.type": type},
        base_where="b.deleted_at IS NULL",
        order_by="b.created_at DESC, b.id",
        page=page,
        limit=limit,
    )


async def get_file(db: Database, file_id: str) -> FileRecord | None:
    row = await db.fetchone(f"SELECT {_FILE_COLUMNS} FROM files f WHERE f.id = ?", (file_id,))
    return row_to(FileRecord, row)


async def list_files(db: Database, *, organization_id: str | None, page: int, limit: int) -> PageOf[FileRecord]:
    return await fetch_page(
        db,
        FileRecord,
        select=_FILE_COLUMNS,
        source="files f",
        filters={"f.organization_id": organization_id},
        order_by="f.created_at DESC, f.id",
        page=page,
        limit=limit,
    )


async def benefits_using_file(db: Database, organization_id: str, file_id: str) -> list[str]:
    """Ids of live downloadables benefits that list this file."""
    rows = await db.fetchall(
        """
        SELECT b.id
        FROM benefits b, json_each(b.properties, '$.files') AS f
        WHERE b.organization_id = ? AND b.type = 'downloadables' AND b.deleted_at IS NULL AND f.value = ?
        """,
        (organization_id, file_id),
    )
    return [row[0] for row in rows]


async def get_grant(db: Database, grant_id: str) -> GrantRecord | None:
    row = await db.fetchone(f"SELECT {_GRANT_COLUMNS} FROM benefit_grants g WHERE g.id = ?", (grant_id,))
    return row_to(GrantRecord, row)


async def list_grants(
    db: Database,
    *,
    organization_id: str | None,
    customer_id: str | None,
    benefit_id: str | None,
    order_id: str | None,
    subscription_id: str | None,
    is_granted: bool | None,
    page: int,
    limit: int,
) -> PageOf[GrantRecord]:
    base = "1 = 1"
    if is_granted is True:
        base = "g.granted_at IS NOT NULL AND g.revoked_at IS NULL"
    elif is_granted is False:
        base = "(g.granted_at IS NULL OR g.revoked_at IS NOT NULL)"
    return await fetch_page(
        db,
        GrantRecord,
        select=_GRANT_COLUMNS,
        source="benefit_grants g",
        filters={
            "g.organization_id": organization_id,
            "g.customer_id": customer_id,
            "g.benefit_id": benefit_id,
            "g.order_id": order_id,
            "g.subscription_id": subscription_id,
        },
        base_where=base,
        order_by="g.created_at DESC, g.id",
        page=page,
        limit=limit,
    )


# --- license keys (``/v1/license-keys/``) ---------------------------------------------------------------------

LICENSE_KEY_READ = """
    k.id, k.organization_id, k.customer_id, k.benefit_id, k.key, k.display_key, k.status, k.limit_activations,
    k.usage, k.limit_usage, k.validations, k.last_validated_at, k.expires_at, k.created_at, k.modified_at,
    g.order_id AS order_id, g.subscription_id AS subscription_id
"""
LICENSE_KEY_FROM = "license_keys k LEFT JOIN benefit_grants g ON g.id = k.grant_id"


async def list_license_keys(
    db: Database, *, organization_id: str | None, benefit_id: str | None, page: int, limit: int
) -> tuple[list[sqlite3.Row], int]:
    """An organization's (or, for an admin token, every) license key, oldest first."""
    where, params = ["1 = 1"], []
    if organization_id is not None:
        where.append("k.organization_id = ?")
        params.append(organization_id)
    if benefit_id is not None:
        where.append("k.benefit_id = ?")
        params.append(benefit_id)
    condition = " AND ".join(where)
    total = await db.fetchval(f"SELECT COUNT(*) FROM license_keys k WHERE {condition}", params)
    rows = await db.fetchall(
        f"SELECT {LICENSE_KEY_READ} FROM {LICENSE_KEY_FROM} WHERE {condition} "
        "ORDER BY k.created_at, k.id LIMIT ? OFFSET ?",
        [*params, limit, (page - 1) * limit],
    )
    return rows, int(total or 0)


async def get_license_key(db: Database, license_key_id: str) -> sqlite3.Row | None:
    return await db.fetchone(f"SELECT {LICENSE_KEY_READ} FROM {LICENSE_KEY_FROM} WHERE k.id = ?", (license_key_id,))


async def license_key_activations(db: Database, license_key_id: str) -> list[sqlite3.Row]:
    return await db.fetchall(
        "SELECT id, license_key_id, label, meta, created_at, modified_at FROM license_key_activations "
        "WHERE license_key_id = ? ORDER BY created_at, id",
        (license_key_id,),
    )
