"""Read queries for customers, returning ``Customer`` structs."""

from __future__ import annotations

import msgspec

from portal.db import Database, row_to


class Customer(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    organization_id: str
    email: str
    email_verified: bool = False
    name: str | None = None
    external_id: str | None = None
    billing_name: str | None = None
    billing_address: str | None = None  # json text
    tax_id: str | None = None
    locale: str | None = None
    created_at: str
    modified_at: str | None = None

    @property
    def billing_address_dict(self) -> dict[str, str] | None:
        return msgspec.json.decode(self.billing_address) if self.billing_address else None


CUSTOMER_COLUMNS = """
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
    c.created_at,
    c.modified_at
"""


async def get_in_org(db: Database, organization_id: str, customer_id: str) -> Customer | None:
    row = await db.fetchone(
        f"SELECT {CUSTOMER_COLUMNS} FROM customers c WHERE c.organization_id = ? AND c.id = ? AND c.deleted_at IS NULL",
        (organization_id, customer_id),
    )
    return row_to(Customer, row)


async def get_by_email(db: Database, organization_id: str, email: str) -> Customer | None:
    row = await db.fetchone(
        f"SELECT {CUSTOMER_COLUMNS} FROM customers c "
        "WHERE c.organization_id = ? AND c.email = ? COLLATE NOCASE AND c.deleted_at IS NULL",
        (organization_id, email.strip()),
    )
    return row_to(Customer, row)
