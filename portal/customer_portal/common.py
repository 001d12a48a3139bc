"""What every customer-portal controller shares: Polar's ``page``/``limit``/filter parameters and list answers."""

from __future__ import annotations

from typing import Annotated, TypeVar

from litestar.params import QueryParameter

from portal.pagination import ListResource, list_resource

T = TypeVar("T")

Page = Annotated[int, QueryParameter(ge=1, le=100_000, description="Page number, defaults to 1.")]
Limit = Annotated[int, QueryParameter(ge=1, le=100, description="Size of a page, defaults to 10. Maximum is 100.")]
IdList = Annotated[list[str] | None, QueryParameter(description="Filter by one or several IDs.")]
Search = Annotated[str | None, QueryParameter(name="query", max_length=200, description="Search by name.")]


def listing(items: list[T], total: int, limit: int) -> ListResource[T]:
    return list_resource(items, total, limit)
