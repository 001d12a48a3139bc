"""Polar-style pagination for list endpoints: ``page``/``limit`` in, ``{items, pagination: {total_count,
max_page}}`` out, and the one helper that runs a filtered ``COUNT`` + ``LIMIT/OFFSET`` pair of queries.

Filter column names come from the calling ``queries`` module (constants), never from input; values are bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Generic, TypeVar

import msgspec
from litestar.params import QueryParameter

from portal.db import Database, rows_to

T = TypeVar("T")

MAX_LIMIT = 100
PageParam = Annotated[int, QueryParameter(ge=1, le=100_000, description="Page number, from 1.")]
LimitParam = Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT, description="Size of a page (1-100).")]
# The customer-portal API follows Polar's ``get_pagination_params``: ``limit`` above the maximum is accepted and
# clamped (``clamp_limit``), ``page``/``limit`` <= 0 are 422. ``page`` keeps Portal's upper bound (an OFFSET of
# ten million rows is a denial of service, not a page).
ClampedLimitParam = Annotated[
    int, QueryParameter(ge=1, description=f"Size of a page, defaults to 10. Maximum is {MAX_LIMIT}.")
]


def clamp_limit(limit: int) -> int:
    """Polar's rule for a ``limit`` above the maximum: use the maximum (never an error)."""
    return min(limit, MAX_LIMIT)


class Pagination(msgspec.Struct, frozen=True, kw_only=True):
    total_count: int
    max_page: int


class ListResource(msgspec.Struct, Generic[T], frozen=True, kw_only=True):
    """Polar's ``ListResource[T]``."""

    items: list[T]
    pagination: Pagination


def list_resource(items: list[T], total: int, limit: int) -> ListResource[T]:
    return ListResource(items=items, pagination=Pagination(total_count=total, max_page=math.ceil(total / limit)))


class PageOf(msgspec.Struct, Generic[T], frozen=True, kw_only=True):
    """One page of records and the total count across pages."""

    records: list[T]
    total: int


async def fetch_page(
    db: Database,
    struct: type[T],
    *,
    select: str,
    source: str,
    filters: Mapping[str, Any],
    base_where: str = "1 = 1",
    order_by: str,
    page: int,
    limit: int,
) -> PageOf[T]:
    """``SELECT {select} FROM {source} WHERE {base_where} AND col = ? …``; ``None`` filter values are skipped.

    ``filters`` keys are column expressions owned by the caller (e.g. ``"o.customer_id"``)."""
    clauses = [base_where]
    params: list[Any] = []
    for column, value in filters.items():
        if value is None:
            continue
        clauses.append(f"{column} = ?")
        params.append(value)
    where = " AND ".join(clauses)
    total = await db.fetchval(f"SELECT COUNT(*) FROM {source} WHERE {where}", params)
    rows = await db.fetchall(
        f"SELECT {select} FROM {source} WHERE {where} ORDER BY {order_by} LIMIT ? OFFSET ?",
        [*params, limit, (page - 1) * limit],
    )
    return PageOf(records=rows_to(struct, rows), total=int(total or 0))
