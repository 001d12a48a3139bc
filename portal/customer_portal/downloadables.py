"""``GET /v1/customer-portal/downloadables/``: the files of the caller's live downloadables grants, each with a
``file.download.url`` that works without a cookie for ten minutes: ``GET /v1/customer-portal/downloadables/{token}``
(public, as Polar's) answers 302 to a signed file URL that lives one minute and streams the file. The grants and
links come from the pages' shared modules (``benefits.reads``, ``benefits.downloads``)."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect

from portal.benefits.downloads import DownloadTokenExpired, downloadable_url, redirect_target
from portal.benefits.reads import list_held_grants
from portal.clock import Clock
from portal.customer_portal.common import Limit, Page, clamp_limit, listing
from portal.customer_portal.errors import BEARER, PolarAPIError, not_found, responses
from portal.db import Database
from portal.errors import NotFound
from portal.pagination import ListResource
from portal.polar.convert import sha256_base64, size_readable
from portal.polar.models import DownloadableRead, FileDownload, S3DownloadURL
from portal.scope import Scope
from portal.sessions.store import SessionContext
from portal.settings import Settings

MAX_TOKEN_LENGTH = 300  # two UUIDs, an expiry and a MAC fit in about 130 characters


def downloadable_id(grant_id: str, file_id: str) -> str:
    """A stable id for (grant, file): Portal stores no separate downloadable rows."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"portal:downloadable:{grant_id}:{file_id}"))


class DownloadablesController(Controller):
    path = "/downloadables"
    tags = ["customer_portal.downloadables"]

    @get("/", summary="List Downloadables", security=BEARER, responses=responses(found=False))
    async def list_downloadables(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        api_customer: NamedDependency[SessionContext],
        benefit_id: Annotated[list[str] | None, QueryParameter(description="Filter by benefit ID.")] = None,
        page: Page = 1,
        limit: Limit = 10,
    ) -> ListResource[DownloadableRead]:
        limit = clamp_limit(limit)
        ctx = api_customer
        now = clock.now()
        items: list[DownloadableRead] = []
        for grant in await list_held_grants(db, Scope.of_customer(ctx.organization.id, ctx.customer.id)):
            if grant.type != "downloadables" or (benefit_id and grant.benefit_id not in benefit_id):
                continue
            for file in grant.files:
                link = downloadable_url(settings, grant.id, file.id, now=now)
                items.append(
                    DownloadableRead(
                        id=downloadable_id(grant.id, file.id),
                        benefit_id=grant.benefit_id,
                        file=FileDownload(
                            id=file.id,
                            organization_id=file.organization_id,
                            name=file.name,
                            path=file.name,
                            mime_type=file.mime_type,
                            size=file.size,
                            checksum_sha256_base64=sha256_base64(file.checksum_sha256_hex),
                            checksum_sha256_hex=file.checksum_sha256_hex,
                            last_modified_at=file.created_at,
                            download=S3DownloadURL(url=link.url, expires_at=link.expires_at),
                            version=file.version,
                            size_readable=size_readable(file.size),
                        ),
                    )
                )
        start = (page - 1) * limit
        return listing(items[start : start + limit], len(items), limit)

    @get(
        "/{token:str}",
        summary="Get Downloadable",
        description="Public (the token is the credential): 302 to a signed file URL valid one minute.",
        status_code=302,
        responses=responses(
            (302, "Redirected to the download."),
            (410, "`ResourceUnavailable`: the download link has expired; list the downloadables again."),
            auth=False,
        ),
    )
    async def get_downloadable(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        token: FromPath[str],
    ) -> Redirect:
        if len(token) > MAX_TOKEN_LENGTH:
            raise not_found("Downloadable not found.")
        try:
            target = await redirect_target(db, settings, token, now=clock.now())
        except NotFound as exc:
            raise not_found(exc.message) from None
        except DownloadTokenExpired:
            raise PolarAPIError(410, "ResourceUnavailable", "This download link has expired.") from None
        return Redirect(path=target, status_code=302, headers={"Cache-Control": "no-store"})
