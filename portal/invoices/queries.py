"""Read queries for invoices, scoped by organization AND customer (someone else's invoice reads as missing)."""

from __future__ import annotations

from typing import Any

import msgspec

from portal.db import Database, row_to, rows_to
from portal.scope import Scope


class Invoice(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    organization_id: str
    customer_id: str
    order_id: str
    invoice_number: str
    billing_name: str
    billing_address: str  # json Address
    tax_id: str | None
    snapshot: str  # json, see service.build_snapshot
    corrects_invoice_id: str | None
    issued_at: str

    @property
    def data(self) -> dict[str, Any]:
        return msgspec.json.decode(self.snapshot)

    @property
    def address(self) -> dict[str, Any]:
        return msgspec.json.decode(self.billing_address)


INVOICE_COLUMNS = """
    i.id,
    i.organization_id,
    i.customer_id,
    i.order_id,
    i.invoice_number,
    i.billing_name,
    i.billing_address,
    i.tax_id,
    i.snapshot,
    i.corrects_invoice_id,
    i.issued_at
"""


async def list_for_order(db: Database, organization_id: str, customer_id: str, order_id: str) -> list[Invoice]:
    """Every invoice of the order, oldest first (the last one is current; earlier ones were corrected)."""
    rows = await db.fetchall(
        f"""
        SELECT {INVOICE_COLUMNS} FROM invoices i
        WHERE i.order_id = ? AND i.organization_id = ? AND i.customer_id = ?
        ORDER BY i.issued_at, i.rowid
        """,
        (order_id, organization_id, customer_id),
    )
    return rows_to(Invoice, rows)


async def latest_for_order(db: Database, organization_id: str, customer_id: str, order_id: str) -> Invoice | None:
    invoices = await list_for_order(db, organization_id, customer_id, order_id)
    return invoices[-1] if invoices else None


async def get_invoice(db: Database, organization_id: str, customer_id: str, invoice_id: str) -> Invoice | None:
    row = await db.fetchone(
        f"SELECT {INVOICE_COLUMNS} FROM invoices i WHERE i.id = ? AND i.organization_id = ? AND i.customer_id = ?",
        (invoice_id, organization_id, customer_id),
    )
    return row_to(Invoice, row)


async def get_invoice_any(db: Database, invoice_id: str) -> Invoice | None:
    """By id only: for signed links, whose signature names the organization and customer to check."""
    row = await db.fetchone(f"SELECT {INVOICE_COLUMNS} FROM invoices i WHERE i.id = ?", (invoice_id,))
    return row_to(Invoice, row)


async def customers_by_invoice_number(db: Database, scope: Scope, number: str) -> list[tuple[str, str]]:
    """``(customer id, order id)`` of the organization's invoice numbered ``number`` (``invoices_org_number``): the
    console's customer search (corrected invoices carry their own numbers)."""
    if scope.organization_id is None:
        raise ValueError("an invoice search needs an organization")
    where, params = scope.where("i")
    rows = await db.fetchall(
        f"SELECT i.customer_id, i.order_id FROM invoices i WHERE {' AND '.join(where)} AND i.invoice_number = ? "
        "LIMIT 2",
        [*params, number],
    )
    return [(str(row["customer_id"]), str(row["order_id"])) for row in rows]
