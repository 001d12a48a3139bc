"""Instance-level routes: the landing page (nothing private) and health checks."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.response import Template

from portal.db import Database


@get("/", name="landing", include_in_schema=False)
async def landing() -> Template:
    return Template(template_name="landing.html", context={})


@get("/healthz", name="healthz", tags=["system"], summary="Process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", name="readyz", tags=["system"], summary="Database is writable and migrated")
async def readyz(db: NamedDependency[Database]) -> Response[Any]:
    from portal.migrations import LATEST_VERSION

    try:
        version = await db.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        async with db.write() as tx:
            await tx.execute("SELECT 1")
    except Exception as exc:  # any DB failure means not ready
        return Response({"status": "unavailable", "detail": str(exc)}, status_code=503)
    if version != LATEST_VERSION:
        return Response({"status": "unavailable", "detail": "migrations pending"}, status_code=503)
    return Response({"status": "ok", "schema_version": version})
