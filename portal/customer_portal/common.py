"""What every customer-portal controller shares: Polar's ``page``/``limit``/filter parameters and list answers."""

from __future__ import annotations

from typing import Annotated, TypeVar

from litestar.params import QueryParameter

from portal.pagination import ClampedLimitParam, ListResource, clamp_limit, list_resource

__all__ = ["IdList", "Limit", "Page", "Search", "clamp_limit", "listing"]

T = TypeVar("T")

Page = Annotated[int, QueryParameter(ge=1, le=100_000, description="Page number, defaults to 1.")]
# Above 100 is clamped by the handler (``clamp_limit``), as Polar does; <= 0 is 422.
Limit = ClampedLimitParam
IdList = Annotated[list[str] | None, QueryParameter(description="Filter by one or several IDs.")]
Search = Annotated[str | None, QueryParameter(name="query", max_length=200, description="Search by name.")]


def listing(items: list[T], total: int, limit: int) -> ListResource[T]:
    return list_resource(items, total, limit)
