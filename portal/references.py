"""Tenant references: whether an id named in a write belongs to the organization the write is for.

Every write that stores an id given by a client (an order's customer, product, subscription and item prices; a
subscription's customer, product and price; a product's benefits; a downloadables benefit's files; a grant's
customer, benefit and source; the organization of anything new) checks it here before storing it, whoever calls
(admin API, seed loader). An unknown id and another organization's id answer alike — Polar's 422 at
``["body", <field>]`` with "<Thing> does not exist." — so a token learns nothing about other tenants and can never
store a row pointing into another organization (which would also block that organization's deletion)."""

from __future__ import annotations

from typing import Any, Literal, Protocol

from portal.errors import InvalidInput

Kind = Literal["organization", "customer", "product", "price", "benefit", "file", "order", "subscription"]

# The owning organization of each kind of object, by id. Fixed SQL, chosen by ``kind`` (never from input).
# Deleted customers and benefits do not exist for new references, as in Polar.
_OWNER_SQL: dict[Kind, str] = {
    "organization": "SELECT id FROM organizations WHERE id = ?",
    "customer": "SELECT organization_id FROM customers WHERE id = ? AND deleted_at IS NULL",
    "product": "SELECT organization_id FROM products WHERE id = ?",
    "price": (
        "SELECT p.organization_id FROM product_prices pp JOIN products p ON p.id = pp.product_id WHERE pp.id = ?"
    ),
    "benefit": "SELECT organization_id FROM benefits WHERE id = ? AND deleted_at IS NULL",
    "file": "SELECT organization_id FROM files WHERE id = ?",
    "order": "SELECT organization_id FROM orders WHERE id = ?",
    "subscription": "SELECT organization_id FROM subscriptions WHERE id = ?",
}


class Reader(Protocol):
    """A ``Transaction`` or the ``Database`` (reads only)."""

    async def fetchval(self, sql: str, params: Any = ()) -> Any: ...


class UnknownReference(InvalidInput):
    """An id in a body that is missing or belongs to another organization (422 naming ``field``)."""

    def __init__(self, kind: Kind, field: str) -> None:
        super().__init__(f"{kind.capitalize()} does not exist.", field)
        self.kind = kind


async def owner_of(reader: Reader, kind: Kind, object_id: str) -> str | None:
    """The organization that owns ``object_id`` of ``kind``, or None if there is no such (live) object."""
    owner = await reader.fetchval(_OWNER_SQL[kind], (object_id,))
    return None if owner is None else str(owner)


async def require_owned(reader: Reader, kind: Kind, object_id: str, organization_id: str, field: str) -> None:
    """``UnknownReference`` on ``field`` unless ``object_id`` is a live ``kind`` of ``organization_id``."""
    if await owner_of(reader, kind, object_id) != organization_id:
        raise UnknownReference(kind, field)


async def require_all_owned(
    reader: Reader, kind: Kind, object_ids: list[str], organization_id: str, field: str
) -> None:
    """``require_owned`` for each id of a list; the error names ``field[index]`` of the first bad one."""
    for index, object_id in enumerate(object_ids):
        await require_owned(reader, kind, object_id, organization_id, f"{field}[{index}]")
