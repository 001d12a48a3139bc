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


# --- seller console: aggregates of one organization (portal.console.dashboard) -------------------------------


class MonthlyCount(msgspec.Struct, frozen=True, kw_only=True):
    month: str  # YYYY-MM, UTC
    count: int


async def new_customers_by_month(db: Database, organization_id: str, since: str) -> list[MonthlyCount]:
    """Customers created at or after ``since`` (ISO), by month (index ``customers_org_created``, migration 22)."""
    rows = await db.fetchall(
        """
        SELECT substr(created_at, 1, 7) AS month, COUNT(*) AS count
        FROM customers
        WHERE organization_id = ? AND created_at >= ? AND deleted_at IS NULL
        GROUP BY month
        ORDER BY month
        """,
        (organization_id, since),
    )
    return [MonthlyCount(month=str(row["month"]), count=int(row["count"])) for row in rows]
