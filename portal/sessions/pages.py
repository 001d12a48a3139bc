"""Portal sign-in pages per organization (``/<slug>/portal``)."""

from __future__ import annotations

from typing import Annotated

from litestar import get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, QueryParameter
from litestar.response import Template

from portal.db import Database
from portal.organizations import queries as org_queries


@get("/{slug:str}/portal", name="portal.home", include_in_schema=False)
async def portal_home(
    db: NamedDependency[Database],
    slug: FromPath[str],
    email: Annotated[str | None, QueryParameter(name="email", max_length=320)] = None,
) -> Template:
    org = await org_queries.get_by_slug(db, slug)
    if org is None:
        raise NotFoundException("No portal at this address.")
    return Template(
        template_name="portal/sign_in.html",
        context={"organization": org, "email": email or ""},
    )


ROUTES = [portal_home]
