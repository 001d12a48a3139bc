"""Every read of benefits, benefit grants, license keys (and their activations) and downloadable files, for every
surface; the writes are in ``service``, ``grants``, ``license_keys`` and ``customer_actions``.

Each function takes a ``portal.scope.Scope`` (see there); what a customer holds (the HTML pages' grants, keys and
files) is read per customer (``Scope.of_customer``). Three groups of shapes:

- ``Grant`` / ``LicenseKey`` / ``Activation`` / ``File`` / ``PastGrant`` (HTML pages, downloads): what a customer
  holds, in four queries whatever the number of grants.
- ``BenefitRecord`` / ``FileRecord`` / ``GrantRecord`` (admin API, webhook payloads): whole rows (JSON columns stay
  text; the converters decode).
- rows of ``GRANT_COLUMNS`` / ``LICENSE_KEY_COLUMNS`` / ``ACTIVATION_COLUMNS`` / ``FILE_COLUMNS`` (customer-portal
  API): Polar's filters and ``sorting``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from portal.db import Database, Reader, row_to, rows_to
from portal.pagination import PageOf, add_in, fetch_page, fetch_rows_page, like_pattern, marks, order_by
from portal.scope import Scope

Row = sqlite3.Row

# --- what a customer holds (HTML pages, downloads) ------------------------------------------------------------


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


async def list_held_grants(db: Database, scope: Scope) -> list[Grant]:
    """The customer's live grants, newest first, each with its license keys (+ activations) and files."""
    organization_id, customer_id = scope.customer_ids()
    grants = await list_grant_summaries(db, scope)
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
        files = {
            f.id: f
            for f in rows_to(
                File,
                await db.fetchall(
                    f"SELECT {_FILE_COLUMNS} FROM files f WHERE f.organization_id = ? AND f.id IN ({marks(wanted)})",
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


async def list_grant_summaries(db: Database, scope: Scope) -> list[Grant]:
    """The customer's live grants, newest first, without their license keys and files: what the overview lists
    (one query)."""
    organization_id, customer_id = scope.customer_ids()
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


async def list_past_grants(db: Database, scope: Scope) -> list[PastGrant]:
    """The customer's revoked grants, most recently ended first. The JSON API leaves them out (Polar's rule); the
    HTML portal shows them so that a customer whose subscription ended sees what they had instead of "No benefits
    yet"."""
    organization_id, customer_id = scope.customer_ids()
    return rows_to(PastGrant, await db.fetchall(_PAST_GRANTS, (customer_id, organization_id)))


async def get_live_grant_file(db: Database, scope: Scope, grant_id: str, file_id: str) -> File | None:
    """The file if ``grant_id`` is a live downloadables grant of this (not deleted) customer that includes it;
    else None. A signed download link minted before the customer was deleted stops working at once."""
    organization_id, customer_id = scope.customer_ids()
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


# --- records: whole rows (admin API, webhook payloads) ----------------------------------------------


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

_FILE_RECORD_COLUMNS = """
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

_GRANT_RECORD_COLUMNS = """
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


async def get_benefit_record(
    db: Reader, scope: Scope, benefit_id: str, *, include_deleted: bool = False
) -> BenefitRecord | None:
    """The benefit, or None if missing or outside the scope (or deleted, unless ``include_deleted``: grants keep
    pointing at deleted benefits)."""
    where, params = scope.where("b")
    live = "" if include_deleted else " AND b.deleted_at IS NULL"
    row = await db.fetchone(
        f"SELECT {_BENEFIT_COLUMNS} FROM benefits b WHERE {' AND '.join(['b.id = ?', *where])}{live}",
        [benefit_id, *params],
    )
    return row_to(BenefitRecord, row)


async def get_benefit_records(db: Reader, benefit_ids: list[str]) -> list[BenefitRecord]:
    """Live benefits with these ids, in the order given (the ids come from a record the caller has checked)."""
    if not benefit_ids:
        return []
    rows = await db.fetchall(
        f"SELECT {_BENEFIT_COLUMNS} FROM benefits b WHERE b.id IN ({marks(benefit_ids)}) AND b.deleted_at IS NULL",
        benefit_ids,
    )
    found = {record.id: record for record in rows_to(BenefitRecord, rows)}
    return [found[i] for i in benefit_ids if i in found]


async def list_benefit_records(
    db: Reader, scope: Scope, *, type: str | None, page: int, limit: int
) -> PageOf[BenefitRecord]:
    """A page of the scope's live benefits, newest first."""
    return await fetch_page(
        db,
        BenefitRecord,
        select=_BENEFIT_COLUMNS,
        source="benefits b",
        filters={"b.organization_id": scope.organization_id, "b.type": type},
        base_where="b.deleted_at IS NULL",
        order_by="b.created_at DESC, b.id",
        page=page,
        limit=limit,
    )


async def get_file_record(db: Reader, scope: Scope, file_id: str) -> FileRecord | None:
    """The file, or None if missing or outside the scope."""
    where, params = scope.where("f")
    row = await db.fetchone(
        f"SELECT {_FILE_RECORD_COLUMNS} FROM files f WHERE {' AND '.join(['f.id = ?', *where])}", [file_id, *params]
    )
    return row_to(FileRecord, row)


async def list_file_records(
    db: Reader, scope: Scope, *, page: int, limit: int, ids: Sequence[str] | None = None
) -> PageOf[FileRecord]:
    """A page of the scope's files, newest first; ``ids``: only these (Polar's ``GET /v1/files/?ids=…``)."""
    return await fetch_page(
        db,
        FileRecord,
        select=_FILE_RECORD_COLUMNS,
        source="files f",
        filters={"f.organization_id": scope.organization_id},
        base_where=f"f.id IN ({marks(ids)})" if ids else "1 = 1",
        base_params=list(ids or ()),
        order_by="f.created_at DESC, f.id",
        page=page,
        limit=limit,
    )


async def benefits_using_file(db: Reader, organization_id: str, file_id: str) -> list[str]:
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


async def get_grant_record(db: Reader, scope: Scope, grant_id: str) -> GrantRecord | None:
    """The whole grant, or None if missing or outside the scope."""
    where, params = scope.where("g")
    row = await db.fetchone(
        f"SELECT {_GRANT_RECORD_COLUMNS} FROM benefit_grants g WHERE {' AND '.join(['g.id = ?', *where])}",
        [grant_id, *params],
    )
    return row_to(GrantRecord, row)


async def list_grant_records(
    db: Reader,
    scope: Scope,
    *,
    benefit_id: str | None,
    order_id: str | None,
    subscription_id: str | None,
    is_granted: bool | None,
    page: int,
    limit: int,
) -> PageOf[GrantRecord]:
    """A page of the scope's grants, newest first; ``None`` filters are not applied."""
    base = "1 = 1"
    if is_granted is True:
        base = "g.granted_at IS NOT NULL AND g.revoked_at IS NULL"
    elif is_granted is False:
        base = "(g.granted_at IS NULL OR g.revoked_at IS NOT NULL)"
    return await fetch_page(
        db,
        GrantRecord,
        select=_GRANT_RECORD_COLUMNS,
        source="benefit_grants g",
        filters={
            **scope.filters("g"),
            "g.benefit_id": benefit_id,
            "g.order_id": order_id,
            "g.subscription_id": subscription_id,
        },
        base_where=base,
        order_by="g.created_at DESC, g.id",
        page=page,
        limit=limit,
    )


# --- API rows (customer-portal API): grants, license keys, files ---------------------------------------------

GRANT_COLUMNS = """
    g.id,
    g.organization_id,
    g.customer_id,
    g.benefit_id,
    g.order_id,
    g.subscription_id,
    g.granted_at,
    g.revoked_at,
    g.properties,
    g.error,
    g.created_at,
    g.modified_at,
    b.type AS benefit_type,
    b.description AS benefit_description,
    b.properties AS benefit_properties,
    b.created_at AS benefit_created_at,
    b.modified_at AS benefit_modified_at,
    b.deleted_at AS benefit_deleted_at
"""
GRANT_SOURCE = "benefit_grants g JOIN benefits b ON b.id = g.benefit_id"
# Polar's customer portal reads only live grants of public benefits: a revoked one, or one of a private or draft
# benefit, is not listed and answers 404 (the HTML portal still shows a revoked one under "Past benefits", from
# portal/benefits; it leaves out non-public benefits as well).
GRANT_LIVE = "g.revoked_at IS NULL AND b.visibility = 'public'"
GRANT_SORT = {
    "granted_at": "COALESCE(g.granted_at, g.created_at)",
    "type": "b.type",
    "organization": "g.organization_id",
    "product_benefit": "b.description",
}


async def list_grant_rows(
    db: Database,
    scope: Scope,
    *,
    query: str | None,
    types: Sequence[str] | None,
    benefit_id: Sequence[str] | None,
    order_id: Sequence[str] | None,
    subscription_id: Sequence[str] | None,
    sorting: Sequence[str] | None,
    page_number: int,
    limit: int,
) -> tuple[list[Row], int]:
    """A page of the scope's live grants of public benefits with Polar's filters and ``sorting``, and the total."""
    where, params = scope.where("g")
    where.append(GRANT_LIVE)
    add_in(where, params, "b.type", types)
    add_in(where, params, "g.benefit_id", benefit_id)
    add_in(where, params, "g.order_id", order_id)
    add_in(where, params, "g.subscription_id", subscription_id)
    if query:
        where.append("b.description LIKE ? ESCAPE '\\'")
        params.append(like_pattern(query))
    return await fetch_rows_page(
        db,
        select=GRANT_COLUMNS,
        source=GRANT_SOURCE,
        where=where,
        params=params,
        order=order_by(sorting, GRANT_SORT, "-granted_at", "g.id"),
        page=page_number,
        limit=limit,
    )


async def get_grant_row(db: Database, scope: Scope, grant_id: str) -> Row | None:
    """One live grant of a public benefit as a row of ``GRANT_COLUMNS``, or None."""
    where, params = scope.where("g")
    return await db.fetchone(
        f"SELECT {GRANT_COLUMNS} FROM {GRANT_SOURCE} WHERE {' AND '.join(['g.id = ?', *where, GRANT_LIVE])}",
        [grant_id, *params],
    )


# --- license keys ----------------------------------------------------------------------------------------

LICENSE_KEY_COLUMNS = """
    k.id,
    k.organization_id,
    k.customer_id,
    k.benefit_id,
    k.grant_id,
    k.key,
    k.display_key,
    k.status,
    k.limit_activations,
    k.usage,
    k.limit_usage,
    k.validations,
    k.last_validated_at,
    k.expires_at,
    k.created_at,
    k.modified_at,
    b.properties AS benefit_properties,
    g.order_id AS order_id,
    g.subscription_id AS subscription_id
"""
# The grant's order and subscription: the sale that holds the key (Polar's admin ``LicenseKeyRead`` names them).
LICENSE_KEY_SOURCE = (
    "license_keys k JOIN benefits b ON b.id = k.benefit_id LEFT JOIN benefit_grants g ON g.id = k.grant_id"
)
ACTIVATION_COLUMNS = """
    a.id,
    a.license_key_id,
    a.label,
    a.meta,
    a.conditions,
    a.created_at,
    a.modified_at
"""


async def list_license_key_rows(
    db: Database, scope: Scope, *, benefit_id: str | None, page_number: int, limit: int
) -> tuple[list[Row], int]:
    """A page of the scope's license keys, oldest first, and the total."""
    where, params = scope.where("k")
    if benefit_id:
        where.append("k.benefit_id = ?")
        params.append(benefit_id)
    return await fetch_rows_page(
        db,
        select=LICENSE_KEY_COLUMNS,
        source=LICENSE_KEY_SOURCE,
        where=where,
        params=params,
        order="k.created_at ASC, k.id",
        page=page_number,
        limit=limit,
    )


async def get_license_key_row(db: Reader, scope: Scope, license_key_id: str) -> Row | None:
    """One license key as a row of ``LICENSE_KEY_COLUMNS``, or None if missing or outside the scope."""
    where, params = scope.where("k")
    return await db.fetchone(
        f"SELECT {LICENSE_KEY_COLUMNS} FROM {LICENSE_KEY_SOURCE} WHERE {' AND '.join(['k.id = ?', *where])}",
        [license_key_id, *params],
    )


async def license_key_source(db: Database, license_key_id: str) -> Row | None:
    """The subscription and the order of the grant that holds the key (columns ``s_*`` and ``o_*``, NULL when
    there is none), or None for a key without a grant."""
    return await db.fetchone(
        """
        SELECT
            s.id AS s_id,
            s.status AS s_status,
            s.current_period_start AS s_current_period_start,
            s.current_period_end AS s_current_period_end,
            s.cancel_at_period_end AS s_cancel_at_period_end,
            s.ends_at AS s_ends_at,
            s.ended_at AS s_ended_at,
            o.id AS o_id,
            o.created_at AS o_created_at,
            o.status AS o_status
        FROM license_keys k
        JOIN benefit_grants g ON g.id = k.grant_id
        LEFT JOIN subscriptions s ON s.id = g.subscription_id
        LEFT JOIN orders o ON o.id = g.order_id
        WHERE k.id = ?
        """,
        (license_key_id,),
    )


async def get_activation_row(db: Reader, activation_id: str) -> Row | None:
    """One activation as a row of ``ACTIVATION_COLUMNS`` (of a key the caller has checked)."""
    return await db.fetchone(
        f"SELECT {ACTIVATION_COLUMNS} FROM license_key_activations a WHERE a.id = ?", (activation_id,)
    )


async def activation_rows(db: Database, license_key_id: str) -> list[Row]:
    return await db.fetchall(
        f"SELECT {ACTIVATION_COLUMNS} FROM license_key_activations a WHERE a.license_key_id = ? "
        "ORDER BY a.created_at, a.id",
        (license_key_id,),
    )


# --- files -----------------------------------------------------------------------------------------------

FILE_COLUMNS = """
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


async def file_rows_by_id(db: Database, organization_id: str, file_ids: Iterable[str]) -> dict[str, Row]:
    ids = sorted(set(file_ids))
    if not ids:
        return {}
    rows = await db.fetchall(
        f"SELECT {FILE_COLUMNS} FROM files f WHERE f.organization_id = ? AND f.id IN ({marks(ids)})",
        [organization_id, *ids],
    )
    return {row["id"]: row for row in rows}


# --- seller console: license keys of one customer, and the customer of a key prefix -----------------------


async def customers_by_key_prefix(db: Reader, scope: Scope, prefix: str, limit: int = 20) -> list[tuple[str, str]]:
    """``(customer id, display key)`` of the organization's license keys starting with ``prefix`` (keys are upper
    case: the prefix is too), a range over ``license_keys_org_key``."""
    if scope.organization_id is None:
        raise ValueError("a license-key search needs an organization")
    where, params = scope.where("k")
    low = prefix.strip().upper()
    rows = await db.fetchall(
        f"""
        SELECT k.customer_id, k.display_key FROM license_keys k INDEXED BY license_keys_org_key
        WHERE {" AND ".join(where)} AND k.key >= ? AND k.key < ?
        ORDER BY k.key
        LIMIT ?
        """,
        [*params, low, low + "\U0010ffff", limit],
    )
    return [(str(row["customer_id"]), str(row["display_key"])) for row in rows]


async def customer_license_key_rows(db: Reader, scope: Scope, limit: int = 100) -> list[Row]:
    """The customer's license keys as rows of ``LICENSE_KEY_COLUMNS``, oldest first (``license_keys_customer``)."""
    organization_id, customer_id = scope.customer_ids()
    return await db.fetchall(
        f"SELECT {LICENSE_KEY_COLUMNS} FROM {LICENSE_KEY_SOURCE} "
        "WHERE k.customer_id = ? AND k.organization_id = ? ORDER BY k.created_at, k.id LIMIT ?",
        (customer_id, organization_id, limit),
    )


async def activation_rows_of_keys(db: Reader, license_key_ids: list[str]) -> dict[str, list[Row]]:
    """The activations of the given keys (of a customer the caller scoped), by key, oldest first."""
    if not license_key_ids:
        return {}
    rows = await db.fetchall(
        f"SELECT {ACTIVATION_COLUMNS} FROM license_key_activations a "
        f"WHERE a.license_key_id IN ({marks(license_key_ids)}) ORDER BY a.created_at, a.id",
        license_key_ids,
    )
    found: dict[str, list[Row]] = {}
    for row in rows:
        found.setdefault(str(row["license_key_id"]), []).append(row)
    return found


async def customer_grant_rows(db: Reader, scope: Scope, limit: int = 100) -> list[Row]:
    """Every grant of the customer as rows of ``GRANT_COLUMNS``, live and revoked, of any benefit visibility
    (the seller sees what the customer does not), newest first (``benefit_grants_customer``)."""
    organization_id, customer_id = scope.customer_ids()
    return await db.fetchall(
        f"SELECT {GRANT_COLUMNS} FROM {GRANT_SOURCE} WHERE g.customer_id = ? AND g.organization_id = ? "
        "ORDER BY g.created_at DESC, g.id LIMIT ?",
        (customer_id, organization_id, limit),
    )


# --- a customer's grants as the seller sees them (the seller console) ----------------------------------------


class SellerGrant(msgspec.Struct, frozen=True, kw_only=True):
    """One grant of a customer, live or revoked, of any benefit (private and deleted ones too: the seller gave
    them), with where it came from and its first license key."""

    id: str
    benefit_id: str
    type: str
    description: str
    benefit_deleted_at: str | None
    order_id: str | None
    subscription_id: str | None
    granted_at: str | None
    revoked_at: str | None
    created_at: str
    license_key_id: str | None
    display_key: str | None

    @property
    def is_live(self) -> bool:
        return self.granted_at is not None and self.revoked_at is None

    @property
    def is_manual(self) -> bool:
        return self.order_id is None and self.subscription_id is None


async def list_customer_grants(db: Reader, scope: Scope) -> list[SellerGrant]:
    """Every grant of the scope's customer (``Scope.of_customer``), live ones first, newest first (one query on
    ``benefit_grants_customer``)."""
    organization_id, customer_id = scope.customer_ids()
    rows = await db.fetchall(
        """
        SELECT
            g.id, g.benefit_id, b.type, b.description, b.deleted_at AS benefit_deleted_at,
            g.order_id, g.subscription_id, g.granted_at, g.revoked_at, g.created_at,
            k.id AS license_key_id, k.display_key
        FROM benefit_grants g
        JOIN benefits b ON b.id = g.benefit_id
        LEFT JOIN license_keys k ON k.id = (
            SELECT id FROM license_keys WHERE grant_id = g.id ORDER BY created_at, id LIMIT 1
        )
        WHERE g.customer_id = ? AND g.organization_id = ?
        ORDER BY g.revoked_at IS NOT NULL, g.created_at DESC, g.id
        """,
        (customer_id, organization_id),
    )
    return rows_to(SellerGrant, rows)
