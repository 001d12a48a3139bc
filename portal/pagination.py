"""Polar-style pagination for list endpoints: ``page``/``limit`` in, ``{items, pagination: {total_count,
max_page}}`` out, and the one helper that runs a filtered ``COUNT`` + ``LIMIT/OFFSET`` pair of queries.

Filter column names come from the calling ``queries`` module (constants), never from input; values are bound.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Generic, TypeVar

import msgspec
from litestar.params import QueryParameter

from portal.db import Database, Reader, rows_to

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
    db: Reader,
    struct: type[T],
    *,
    select: str,
    source: str,
    filters: Mapping[str, Any],
    base_where: str = "1 = 1",
    base_params: Sequence[Any] = (),
    order_by: str,
    page: int,
    limit: int,
) -> PageOf[T]:
    """``SELECT {select} FROM {source} WHERE {base_where} AND col = ? …``; ``None`` filter values are skipped.

    ``filters`` keys are column expressions owned by the caller (e.g. ``"o.customer_id"``)."""
    clauses = [base_where]
    params: list[Any] = list(base_params)  # the placeholders of ``base_where``, bound first
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


# --- filtered, sorted pages of raw rows (the customer-portal API's lists: Polar's filters and ``sorting``) ------


def marks(values: Sequence[Any]) -> str:
    """``?, ?, …``: one bound parameter per value (for ``IN (…)``)."""
    return ", ".join("?" for _ in values)


def order_by(sorting: Sequence[str] | None, columns: dict[str, str], default: str, tiebreak: str) -> str:
    """``ORDER BY`` from Polar's ``sorting`` (``-name`` = descending); unknown names were refused earlier."""
    clauses = []
    for criterion in sorting or [default]:
        name = criterion.lstrip("-")
        clauses.append(f"{columns[name]} {'DESC' if criterion.startswith('-') else 'ASC'}")
    return ", ".join([*clauses, tiebreak])


def add_in(where: list[str], params: list[Any], column: str, values: Sequence[Any] | None) -> None:
    """``column IN (…)`` when ``values`` is given and not empty."""
    if values:
        where.append(f"{column} IN ({marks(values)})")
        params.extend(values)


def like_pattern(query: str) -> str:
    """A ``LIKE … ESCAPE '\\'`` pattern matching ``query`` anywhere, its wildcards taken literally."""
    return "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def fetch_rows_page(
    db: Database,
    *,
    select: str,
    source: str,
    where: list[str],
    params: list[Any],
    order: str,
    page: int,
    limit: int,
    count_source: str | None = None,
) -> tuple[list[sqlite3.Row], int]:
    """One page of rows and the total. ``count_source``: a narrower FROM for the count when the joins in ``source``
    only add columns (the count then reads the index alone)."""
    condition = " AND ".join(where)
    total = await db.fetchval(f"SELECT COUNT(*) FROM {count_source or source} WHERE {condition}", params)
    rows = await db.fetchall(
        f"SELECT {select} FROM {source} WHERE {condition} ORDER BY {order} LIMIT ? OFFSET ?",
        [*params, limit, (page - 1) * limit],
    )
    return rows, int(total or 0)
