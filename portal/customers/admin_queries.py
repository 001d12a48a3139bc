"""Organization-wide reads of customers for the admin API and ``POST /v1/customer-sessions/``. Returns
``CustomerRecord`` (every column the Polar ``Customer`` shape needs); deleted customers are never returned."""

from __future__ import annotations

import msgspec

from portal.db import Database, row_to, rows_to
from portal.pagination import PageOf, fetch_page


class CustomerRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    organization_id: str
    email: str
    email_verified: bool
    name: str | None
    external_id: str | None
    billing_name: str | None
    billing_address: str | None
    tax_id: str | None
    locale: str | None
    metadata: str
    created_at: str
    modified_at: str | None
    deleted_at: str | None


_COLUMNS = """
    c.id,
    c.organization_id,
    c.email,
    c.email_verified,
    c.name,
    c.external_id,
    c.billing_name,
    c.billing_address,
    c.tax_id,
    c.locale,
    c.metadata,
    c.created_at,
    c.modified_at,
    c.deleted_at
"""


async def get_customer(db: Database, customer_id: str) -> CustomerRecord | None:
    row = await db.fetchone(
        f"SELECT {_COLUMNS} FROM customers c WHERE c.id = ? AND c.deleted_at IS NULL", (customer_id,)
    )
    return row_to(CustomerRecord, row)


async def get_customer_any(db: Database, customer_id: str) -> CustomerRecord | None:
    """Also a deleted customer (their orders and grants still name them)."""
    row = await db.fetchone(f"SELECT {_COLUMNS} FROM customers c WHERE c.id = ?", (customer_id,))
    return row_to(CustomerRecord, row)


async def find_by_external_id(db: Database, external_id: str, organization_id: str | None) -> list[CustomerRecord]:
    """Live customers with this external id: in one organization, or in all (an admin token)."""
    rows = await db.fetchall(
        f"""
        SELECT {_COLUMNS} FROM customers c
        WHERE c.external_id = ?
          AND c.deleted_at IS NULL
          AND (? IS NULL OR c.organization_id = ?)
        ORDER BY c.created_at
        LIMIT 2
        """,
        (external_id, organization_id, organization_id),
    )
    return rows_to(CustomerRecord, rows)


async def list_customers(
    db: Database,
    *,
    organization_id: str | None,
    email: str | None,
    external_id: str | None,
    page: int,
    limit: int,
) -> PageOf[CustomerRecord]:
    return await fetch_page(
        db,
        CustomerRecord,
        select=_COLUMNS,
        source="customers c",
        filters={"c.organization_id": organization_id, "c.email": email, "c.external_id": external_id},
        base_where="c.deleted_at IS NULL",
        order_by="c.created_at DESC, c.id",
        page=page,
        limit=limit,
    )
