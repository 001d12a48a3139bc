"""``POST /v1/admin/seed``: load a whole seed document (the format of ``seed/demo.json``) in one transaction,
admin token only. All or nothing: a refused document changes nothing and every problem is listed (422) with
its path. Objects are upserted by ``external_id``, so sending the same document twice duplicates nothing.
Files must be inline (``content_base64``): the server never reads paths named by a request."""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, post
from litestar.di import NamedDependency
from litestar.params import Body

from portal.admin import responses
from portal.admin.auth import require_admin_token
from portal.clock import Clock
from portal.db import Database
from portal.seeding.loader import SeedError, SeedResult, load_seed
from portal.settings import Settings

_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def error_location(error: str) -> tuple[list[str | int], str]:
    """``organizations[0].orders[3].amount: expected int`` -> (["body", "organizations", 0, …], "expected int")."""
    path, sep, message = error.partition(": ")
    if not sep:
        return ["body"], error
    loc: list[str | int] = ["body"]
    for name, index in _STEP.findall(path):
        loc.append(int(index) if index else name)
    return loc, message


class SeedController(Controller):
    path = "/admin/seed"
    tags = ["admin"]

    @post(
        "/",
        summary="Load a seed document (admin token)",
        guards=[require_admin_token],
        responses=responses.errors(403, 422),
    )
    async def seed(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        data: Annotated[dict[str, Any], Body(description="A seed document, as seed/demo.json.")],
    ) -> Response[SeedResult | dict[str, Any]]:
        try:
            result = await load_seed(db, data, seed_dir=None, files_dir=settings.files_dir, now=clock.now())
        except SeedError as exc:
            detail = []
            for error in exc.errors:
                loc, message = error_location(error)
                detail.append({"loc": loc, "msg": message, "type": "value_error"})
            return Response({"detail": detail}, status_code=422)
        return Response(msgspec.to_builtins(result), status_code=201)
