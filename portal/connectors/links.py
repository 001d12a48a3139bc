"""Links between processor objects and Portal rows (``connector_links``: a Stripe ``cus_…`` to a Portal customer,
with the version of the state applied last) and the seller's price mappings (``connector_prices``: a processor
price to a Portal product). Shared by every processor's mapping and by the importer."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from portal.clock import iso
from portal.connectors.base import ApplyContext, MappingError
from portal.connectors.store import Connection, get_connection
from portal.db import Database, Transaction
from portal.references import owner_of

Reader = Database | Transaction


async def get_link(tx: Transaction, ctx: ApplyContext, kind: str, processor_id: str) -> sqlite3.Row | None:
    """The link of a Stripe object of ``kind`` to its Portal row (``portal_id``, ``version``), or None."""
    return await tx.fetchone(
        "SELECT portal_id, version FROM connector_links WHERE connection_id = ? AND kind = ? AND processor_id = ?",
        (ctx.connection.id, kind, processor_id),
    )


async def linked_id(tx: Transaction, ctx: ApplyContext, kind: str, processor_id: str | None) -> str | None:
    if not processor_id:
        return None
    row = await get_link(tx, ctx, kind, processor_id)
    return None if row is None else str(row["portal_id"])


async def set_link(
    tx: Transaction, ctx: ApplyContext, kind: str, processor_id: str, portal_id: str, version: int = 0
) -> None:
    await tx.execute(
        """
        INSERT INTO connector_links (connection_id, kind, processor_id, portal_id, version) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (connection_id, kind, processor_id)
        DO UPDATE SET portal_id = excluded.portal_id, version = MAX(version, excluded.version)
        """,
        (ctx.connection.id, kind, processor_id, portal_id, version),
    )


async def processor_id_for(tx: Reader, connection_id: str, kind: str, portal_id: str) -> str | None:
    """The Stripe id linked to a Portal row (e.g. the ``sub_…`` of a Portal subscription), or None."""
    return await tx.fetchval(
        "SELECT processor_id FROM connector_links WHERE connection_id = ? AND kind = ? AND portal_id = ?",
        (connection_id, kind, portal_id),
    )


async def set_price_mapping(
    tx: Transaction, connection_id: str, organization_id: str, price_id: str, product_id: str, *, now: datetime
) -> None:
    """Map a Stripe price to a Portal product of the organization (``MappingError`` for another's product)."""
    if await owner_of(tx, "product", product_id) != organization_id:
        raise MappingError(f"no product {product_id} in this organization")
    await tx.execute(
        """
        INSERT INTO connector_prices (connection_id, processor_price_id, product_id, created_at) VALUES (?, ?, ?, ?)
        ON CONFLICT (connection_id, processor_price_id) DO UPDATE SET product_id = excluded.product_id
        """,
        (connection_id, price_id, product_id, iso(now)),
    )


async def mapped_product(tx: Transaction, ctx: ApplyContext, price_id: str) -> str | None:
    """The Portal product the seller mapped a processor price to (still the organization's), or None."""
    mapped = await tx.fetchval(
        """
        SELECT m.product_id FROM connector_prices m JOIN products p ON p.id = m.product_id
        WHERE m.connection_id = ? AND m.processor_price_id = ? AND p.organization_id = ?
        """,
        (ctx.connection.id, price_id, ctx.connection.organization_id),
    )
    return None if mapped is None else str(mapped)


async def list_price_mappings(reader: Reader, connection_id: str) -> list[sqlite3.Row]:
    return await reader.fetchall(
        """
        SELECT processor_price_id, product_id, created_at FROM connector_prices
        WHERE connection_id = ? ORDER BY created_at, processor_price_id
        """,
        (connection_id,),
    )


# --- read by customer actions out (portal.subscriptions.remote) ---------------------------------------------------


async def linked_connection(
    reader: Reader, organization_id: str, kind: str, portal_id: str
) -> tuple[Connection, str] | None:
    """The organization's connection a Portal row came from and the processor's id for it, or None for a row made
    in Portal. Scoped by organization: a link never crosses tenants."""
    row = await reader.fetchone(
        """
        SELECT c.processor, l.processor_id FROM connector_links l
        JOIN connector_connections c ON c.id = l.connection_id
        WHERE l.kind = ? AND l.portal_id = ? AND c.organization_id = ?
        ORDER BY c.processor LIMIT 1
        """,
        (kind, portal_id, organization_id),
    )
    if row is None:
        return None
    connection = await get_connection(reader, organization_id, row["processor"])
    return None if connection is None else (connection, str(row["processor_id"]))


async def processor_prices(reader: Reader, connection_id: str, product_ids: list[str]) -> dict[str, str]:
    """For each Portal product, the processor price it is mapped to (``connector_prices``); a product mapped to
    several prices gets the oldest mapping, so the choice is stable."""
    if not product_ids:
        return {}
    marks = ",".join("?" * len(product_ids))
    rows = await reader.fetchall(
        f"""SELECT product_id, processor_price_id FROM connector_prices
        WHERE connection_id = ? AND product_id IN ({marks})
        ORDER BY created_at DESC, processor_price_id DESC""",
        (connection_id, *product_ids),
    )
    # Newest first, so the oldest mapping is the one left in the dict.
    return {row["product_id"]: row["processor_price_id"] for row in rows}


# --- read by the console's customer search -------------------------------------------------------------------

# The link kinds whose Portal row is a customer, an order or a subscription (the others are catalog rows).
CUSTOMER_LINK_KINDS = (
    "customer",
    "checkout_session",
    "order",
    "transaction",
    "adjustment",
    "invoice",
    "payment_intent",
    "charge",
    "subscription",
)


async def portal_ids_for_processor_id(reader: Reader, organization_id: str, processor_id: str) -> list[sqlite3.Row]:
    """``(processor, kind, portal_id)`` of the organization's links from a processor's id (``cus_…``, ``sub_…``,
    ``ch_…``, …): the primary key of each of the organization's connections, per kind."""
    marks = ",".join("?" * len(CUSTOMER_LINK_KINDS))
    return await reader.fetchall(
        f"""
        SELECT c.processor, l.kind, l.portal_id FROM connector_connections c
        JOIN connector_links l ON l.connection_id = c.id AND l.kind IN ({marks}) AND l.processor_id = ?
        WHERE c.organization_id = ?
        LIMIT 20
        """,
        (*CUSTOMER_LINK_KINDS, processor_id, organization_id),
    )


# --- read by the seller's refunds from the console (portal.orders.remote) ---------------------------------------


async def order_links(reader: Reader, organization_id: str, order_id: str, kinds: list[str]) -> list[sqlite3.Row]:
    """The links of ``kinds`` to a Portal order from the organization's connections (``processor``, ``kind``,
    ``processor_id``); the caller keeps the kinds its processor names as sales (``Processor.order_kinds``). The
    kinds are named, and the links read first (CROSS JOIN fixes SQLite's join order), so the lookup is the
    ``(kind, portal_id)`` index, never a scan of a connection's links of a kind."""
    if not kinds:
        return []
    marks = ",".join("?" * len(kinds))
    return await reader.fetchall(
        f"""
        SELECT c.processor, l.kind, l.processor_id FROM connector_links l
        CROSS JOIN connector_connections c ON c.id = l.connection_id
        WHERE l.kind IN ({marks}) AND l.portal_id = ? AND c.organization_id = ?
        ORDER BY c.processor, l.kind, l.processor_id
        """,
        (*kinds, order_id, organization_id),
    )


async def refund_links(reader: Reader, organization_id: str, refund_ids: list[str]) -> dict[str, tuple[str, str]]:
    """For refunds made through a processor from the console: refund id -> (processor, the processor's id)."""
    if not refund_ids:
        return {}
    marks = ",".join("?" * len(refund_ids))
    rows = await reader.fetchall(
        f"""SELECT l.portal_id, c.processor, l.processor_id FROM connector_links l
        JOIN connector_connections c ON c.id = l.connection_id
        WHERE l.kind = 'refund' AND c.organization_id = ? AND l.portal_id IN ({marks})""",
        (organization_id, *refund_ids),
    )
    return {row["portal_id"]: (row["processor"], row["processor_id"]) for row in rows}
