"""``GET /v1/customer-portal/downloadables/``: the files of the caller's live downloadables grants, each with a
signed download URL (``file.download.url``) that streams the file without a cookie for a few minutes. The
grants and links come from the pages' shared modules (``benefits.queries``, ``benefits.downloads``)."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from portal.admin.models import size_readable
from portal.benefits.downloads import download_link
from portal.benefits.queries import list_grants
from portal.clock import Clock
from portal.customer_portal.common import Limit, Page, listing
from portal.customer_portal.errors import BEARER, responses
from portal.customer_portal.models import DownloadableRead, FileDownload, ListResource, S3DownloadURL
from portal.customer_portal.serialize import sha256_base64
from portal.db import Database
from portal.sessions.store import SessionContext
from portal.settings import Settings


def downloadable_id(grant_id: str, file_id: str) -> str:
    """A stable id for (grant, file): Portal stores no separate downloadable rows."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"portal:downloadable:{grant_id}:{file_id}"))


class DownloadablesController(Controller):
    path = "/downloadables"
    tags = ["customer_portal.downloadables"]
    security = BEARER

    @get("/", summary="List Downloadables", responses=responses(found=False))
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
        ctx = api_customer
        now = clock.now()
        items: list[DownloadableRead] = []
        for grant in await list_grants(db, ctx.organization.id, ctx.customer.id):
            if grant.type != "downloadables" or (benefit_id and grant.benefit_id not in benefit_id):
                continue
            for file in grant.files:
                link = download_link(settings, ctx.organization, grant.id, file.id, now=now)
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
