"""Read queries for what a customer holds: live benefit grants with their license keys (and activations) and
downloadable files, in four queries whatever the number of grants. Scoped by organization AND customer."""

from __future__ import annotations

from typing import Any

import msgspec

from portal.db import Database, row_to, rows_to


class Activation(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    license_key_id: str
    label: str
    meta: str
    created_at: str


class LicenseKey(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    grant_id: str | None
    benefit_id: str
    key: str
    display_key: str
    status: str
    limit_activations: int | None
    usage: int
    limit_usage: int | None
    validations: int
    last_validated_at: str | None
    expires_at: str | None
    created_at: str
    activations: list[Activation] = []


class File(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    organization_id: str
    name: str
    path: str
    mime_type: str
    size: int
    checksum_sha256_hex: str
    version: str | None
    created_at: str


class Grant(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    benefit_id: str
    type: str
    description: str
    benefit_properties: str
    grant_properties: str
    order_id: str | None
    subscription_id: str | None
    granted_at: str | None
    created_at: str
    license_keys: list[LicenseKey] = []
    files: list[File] = []

    @property
    def benefit_props(self) -> dict[str, Any]:
        return msgspec.json.decode(self.benefit_properties)

    @property
    def props(self) -> dict[str, Any]:
        return msgspec.json.decode(self.grant_properties)

    @property
    def customer_can_deactivate(self) -> bool:
        activations = self.benefit_props.get("activations") or {}
        return bool(activations.get("enable_customer_admin"))

    @property
    def file_ids(self) -> list[str]:
        files = self.props.get("files")
        if files is None:
            files = self.benefit_props.get("files", [])
        return [str(file_id) for file_id in files]


_GRANTS = """
SELECT
    g.id,
    g.benefit_id,
    b.type,
    b.description,
    b.properties AS benefit_properties,
    g.properties AS grant_properties,
    g.order_id,
    g.subscription_id,
    g.granted_at,
    g.created_at
FROM benefit_grants g
JOIN benefits b ON b.id = g.benefit_id AND b.deleted_at IS NULL AND b.visibility = 'public'
WHERE g.customer_id = ?
  AND g.organization_id = ?
  AND g.granted_at IS NOT NULL
  AND g.revoked_at IS NULL
ORDER BY g.granted_at DESC, g.id
"""

_KEYS = """
SELECT
    k.id,
    k.grant_id,
    k.benefit_id,
    k.key,
    k.display_key,
    k.status,
    k.limit_activations,
    k.usage,
    k.limit_usage,
    k.validations,
    k.last_validated_at,
    k.expires_at,
    k.created_at
FROM license_keys k
WHERE k.customer_id = ? AND k.organization_id = ?
ORDER BY k.created_at
"""

_ACTIVATIONS = """
SELECT
    a.id,
    a.license_key_id,
    a.label,
    a.meta,
    a.created_at
FROM license_key_activations a
JOIN license_keys k ON k.id = a.license_key_id
WHERE k.customer_id = ? AND k.organization_id = ?
ORDER BY a.created_at, a.id
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
    f.created_at
"""


async def list_grants(db: Database, organization_id: str, customer_id: str) -> list[Grant]:
    """Live grants, newest first, each with its license keys (+ activations) and files."""
    grants = await list_grant_summaries(db, organization_id, customer_id)
    if not grants:
        return []
    activations: dict[str, list[Activation]] = {}
    if any(g.type == "license_keys" for g in grants):
        for activation in rows_to(Activation, await db.fetchall(_ACTIVATIONS, (customer_id, organization_id))):
            activations.setdefault(activation.license_key_id, []).append(activation)
        keys: dict[str, list[LicenseKey]] = {}
        for key in rows_to(LicenseKey, await db.fetchall(_KEYS, (customer_id, organization_id))):
            if key.grant_id is not None:
                keys.setdefault(key.grant_id, []).append(
                    msgspec.structs.replace(key, activations=activations.get(key.id, []))
                )
        grants = [msgspec.structs.replace(g, license_keys=keys.get(g.id, [])) for g in grants]
    wanted = sorted({file_id for g in grants if g.type == "downloadables" for file_id in g.file_ids})
    if wanted:
        marks = ", ".join("?" for _ in wanted)
        files = {
            f.id: f
            for f in rows_to(
                File,
                await db.fetchall(
                    f"SELECT {_FILE_COLUMNS} FROM files f WHERE f.organization_id = ? AND f.id IN ({marks})",
                    (organization_id, *wanted),
                ),
            )
        }
        grants = [
            msgspec.structs.replace(g, files=[files[i] for i in g.file_ids if i in files])
            if g.type == "downloadables"
            else g
            for g in grants
        ]
    return grants


async def list_grant_summaries(db: Database, organization_id: str, customer_id: str) -> list[Grant]:
    """Live grants, newest first, without their license keys and files: what the overview lists (one query)."""
    return rows_to(Grant, await db.fetchall(_GRANTS, (customer_id, organization_id)))


class PastGrant(msgspec.Struct, frozen=True, kw_only=True):
    """A revoked grant as the HTML portal lists it under "Past benefits": what it was and when it ended."""

    id: str
    type: str
    description: str
    granted_at: str | None
    revoked_at: str


_PAST_GRANTS = """
SELECT g.id, b.type, b.description, g.granted_at, g.revoked_at
FROM benefit_grants g
JOIN benefits b ON b.id = g.benefit_id AND b.deleted_at IS NULL AND b.visibility = 'public'
WHERE g.customer_id = ?
  AND g.organization_id = ?
  AND g.revoked_at IS NOT NULL
ORDER BY g.revoked_at DESC, g.id
"""


async def list_past_grants(db: Database, organization_id: str, customer_id: str) -> list[PastGrant]:
    """Revoked grants, most recently ended first. The JSON API leaves them out (Polar's rule); the HTML portal
    shows them so that a customer whose subscription ended sees what they had instead of "No benefits yet"."""
    return rows_to(PastGrant, await db.fetchall(_PAST_GRANTS, (customer_id, organization_id)))


async def get_live_grant_file(
    db: Database, organization_id: str, customer_id: str, grant_id: str, file_id: str
) -> File | None:
    """The file if ``grant_id`` is a live downloadables grant of this (not deleted) customer that includes it;
    else None. A signed download link minted before the customer was deleted stops working at once."""
    grant = await db.fetchone(
        """
        SELECT g.properties AS grant_properties, b.properties AS benefit_properties
        FROM benefit_grants g
        JOIN benefits b ON b.id = g.benefit_id AND b.type = 'downloadables' AND b.deleted_at IS NULL
        JOIN customers c ON c.id = g.customer_id AND c.deleted_at IS NULL
        WHERE g.id = ?
          AND g.customer_id = ?
          AND g.organization_id = ?
          AND g.granted_at IS NOT NULL
          AND g.revoked_at IS NULL
        """,
        (grant_id, customer_id, organization_id),
    )
    if grant is None:
        return None
    props = msgspec.json.decode(grant["grant_properties"])
    files = props.get("files")
    if files is None:
        files = msgspec.json.decode(grant["benefit_properties"]).get("files", [])
    if file_id not in files:
        return None
    row = await db.fetchone(
        f"SELECT {_FILE_COLUMNS} FROM files f WHERE f.id = ? AND f.organization_id = ?",
        (file_id, organization_id),
    )
    return row_to(File, row)


class ProductBenefit(msgspec.Struct, frozen=True, kw_only=True):
    """A benefit a product grants, as the plan-change page compares them."""

    id: str
    type: str
    description: str


async def list_product_benefits(db: Database, organization_id: str, product_id: str) -> list[ProductBenefit]:
    """The live benefits ``product_id`` grants, in the seller's display order (scoped by organization)."""
    rows = await db.fetchall(
        """
        SELECT b.id, b.type, b.description
        FROM product_benefits pb
        JOIN benefits b ON b.id = pb.benefit_id AND b.deleted_at IS NULL
        JOIN products p ON p.id = pb.product_id
        WHERE pb.product_id = ?
          AND p.organization_id = ?
        ORDER BY pb.position
        """,
        (product_id, organization_id),
    )
    return rows_to(ProductBenefit, rows)
