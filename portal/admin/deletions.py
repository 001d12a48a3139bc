"""Deletes the domain services do not offer, with Polar's semantics: organizations are removed with
everything they own; customers and benefits are soft-deleted (their orders and grants stay readable);
a benefit's deletion revokes its live grants; a file still listed by a live benefit cannot be deleted.
Every function runs inside the caller's ``db.write()`` transaction."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from portal.benefits.grants import revoke_grant
from portal.clock import iso
from portal.db import Transaction
from portal.errors import Conflict, NotFound


async def delete_organization(tx: Transaction, organization_id: str) -> None:
    """Delete the organization and everything it owns. Another organization's rows never block it: writes
    only store references to the writer's own objects (``portal.references``), and order items recorded before
    that check that name this organization's prices are detached (the item keeps its label and amounts)."""
    await tx.execute(
        """
        UPDATE order_items SET product_price_id = NULL
        WHERE product_price_id IN (
            SELECT pp.id FROM product_prices pp JOIN products p ON p.id = pp.product_id WHERE p.organization_id = ?
        )
        AND order_id NOT IN (SELECT id FROM orders WHERE organization_id = ?)
        """,
        (organization_id, organization_id),
    )
    try:
        # ON DELETE CASCADE removes customers, products, orders, grants, tokens… in this one statement.
        cursor = await tx.execute("DELETE FROM organizations WHERE id = ?", (organization_id,))
    except sqlite3.IntegrityError:
        # Not a duplicate (the API's generic 409 says so): name what blocks, rather than mislead.
        raise Conflict("rows of another organization still reference this organization's objects") from None
    if cursor.rowcount == 0:
        raise NotFound("organization not found")


async def delete_customer(tx: Transaction, customer_id: str, *, now: datetime) -> None:
    """Soft-delete; the customer's sessions are revoked so portal links stop working at once."""
    cursor = await tx.execute(
        "UPDATE customers SET deleted_at = ?, modified_at = ? WHERE id = ? AND deleted_at IS NULL",
        (iso(now), iso(now), customer_id),
    )
    if cursor.rowcount == 0:
        raise NotFound("customer not found")
    await tx.execute(
        "UPDATE customer_sessions SET revoked_at = ? WHERE customer_id = ? AND revoked_at IS NULL",
        (iso(now), customer_id),
    )


async def delete_benefit(tx: Transaction, benefit_id: str, *, now: datetime) -> None:
    """Soft-delete, unlink from products, revoke live grants (and their license keys)."""
    cursor = await tx.execute(
        "UPDATE benefits SET deleted_at = ?, modified_at = ? WHERE id = ? AND deleted_at IS NULL",
        (iso(now), iso(now), benefit_id),
    )
    if cursor.rowcount == 0:
        raise NotFound("benefit not found")
    await tx.execute("DELETE FROM product_benefits WHERE benefit_id = ?", (benefit_id,))
    for row in await tx.fetchall(
        "SELECT id FROM benefit_grants WHERE benefit_id = ? AND revoked_at IS NULL", (benefit_id,)
    ):
        await revoke_grant(tx, row["id"], now=now)


async def delete_file(tx: Transaction, file_id: str) -> str:
    """Remove a file's row; returns its path (relative to the files dir) for the caller to unlink."""
    row = await tx.fetchone("SELECT organization_id, path FROM files WHERE id = ?", (file_id,))
    if row is None:
        raise NotFound("file not found")
    in_use = await tx.fetchval(
        """
        SELECT b.id
        FROM benefits b, json_each(b.properties, '$.files') AS f
        WHERE b.organization_id = ? AND b.type = 'downloadables' AND b.deleted_at IS NULL AND f.value = ?
        LIMIT 1
        """,
        (row["organization_id"], file_id),
    )
    if in_use is not None:
        raise Conflict("the file is listed by a benefit; remove it from the benefit first", "id")
    await tx.execute("DELETE FROM files WHERE id = ?", (file_id,))
    return str(row["path"])
