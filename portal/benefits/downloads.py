"""Downloadable files: short-lived signed links (no cookie needed) and resolving a link back to a file on disk,
refusing revoked grants and paths outside the files directory. Each download is counted as a ``file.downloaded``
event.

Two kinds of link, as in Polar: pages link the signed file URL itself (``download_link``); the JSON API hands out
a downloadable token URL (``downloadable_url``, ``/v1/customer-portal/downloadables/{token}``) whose ``GET``
answers 302 to a fresh signed file URL that lives only ``REDIRECT_LINK_TTL`` seconds (Polar redirects to its
storage the same way)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import msgspec

from portal.benefits.reads import File, get_live_grant_file
from portal.clock import iso
from portal.db import Database
from portal.errors import NotFound
from portal.organizations.queries import Organization
from portal.organizations.queries import get_by_id as get_organization
from portal.scope import Scope
from portal.security import constant_time_equal, sign, verify_signature
from portal.settings import Settings
from portal.subscriptions.actions import record_event

DOWNLOAD_LINK_TTL = 600  # seconds: long enough to start a download, short enough not to be shared around
# The file URL a downloadable token redirects to is followed at once: a minute covers a slow client.
REDIRECT_LINK_TTL = 60


class DownloadTokenExpired(Exception):
    """A genuine downloadable token past its lifetime (Polar answers 410 ``ResourceUnavailable``)."""


class DownloadLink(msgspec.Struct, frozen=True, kw_only=True):
    path: str  # site-relative, for pages
    url: str  # absolute (settings.base_url), for the JSON API
    expires_at: str


EXPIRED_DOWNLOAD = "This download link has expired. Open the Benefits page again for a fresh one."


def _payload(organization_id: str, grant_id: str, file_id: str) -> str:
    # The grant identifies the customer; binding the org too keeps a link from working under another slug.
    return f"download|{organization_id}|{grant_id}|{file_id}"


def download_link(
    settings: Settings,
    organization: Organization,
    grant_id: str,
    file_id: str,
    *,
    now: datetime,
    ttl_seconds: int = DOWNLOAD_LINK_TTL,
) -> DownloadLink:
    expires = int(now.timestamp()) + ttl_seconds
    signature = sign(settings.secret_key, _payload(organization.id, grant_id, file_id), expires)
    path = f"/{quote(organization.slug)}/portal/downloads/{quote(grant_id)}/{quote(file_id)}?sig={quote(signature)}"
    return DownloadLink(
        path=path,
        url=settings.public_base_url + path,
        expires_at=iso(datetime.fromtimestamp(expires, tz=now.tzinfo)),
    )


def _token_payload(grant_id: str, file_id: str) -> str:
    return f"downloadable|{grant_id}|{file_id}"


def downloadable_url(
    settings: Settings, grant_id: str, file_id: str, *, now: datetime, ttl_seconds: int = DOWNLOAD_LINK_TTL
) -> DownloadLink:
    """The API's ``file.download.url``: ``…/downloadables/<grant>.<file>.<expires>.<mac>`` (ids are UUIDs)."""
    expires = int(now.timestamp()) + ttl_seconds
    token = f"{grant_id}.{file_id}.{sign(settings.secret_key, _token_payload(grant_id, file_id), expires)}"
    path = f"/v1/customer-portal/downloadables/{quote(token)}"
    return DownloadLink(
        path=path,
        url=settings.public_base_url + path,
        expires_at=iso(datetime.fromtimestamp(expires, tz=now.tzinfo)),
    )


async def redirect_target(db: Database, settings: Settings, token: str, *, now: datetime) -> str:
    """The short-lived signed file URL a downloadable token stands for. ``NotFound`` for a forged, malformed or
    revoked one (alike), ``DownloadTokenExpired`` for a genuine one past its time. Counts nothing: the download
    is counted when the file itself is fetched."""
    parts = token.split(".")
    if len(parts) != 4:
        raise NotFound("Downloadable not found.")
    grant_id, file_id, expires_text, _ = parts
    signature = f"{expires_text}.{parts[3]}"
    try:
        expires_at = int(expires_text)
    except ValueError:
        raise NotFound("Downloadable not found.") from None
    if not constant_time_equal(sign(settings.secret_key, _token_payload(grant_id, file_id), expires_at), signature):
        raise NotFound("Downloadable not found.")
    if expires_at < now.timestamp():
        raise DownloadTokenExpired
    row = await db.fetchone("SELECT g.customer_id, g.organization_id FROM benefit_grants g WHERE g.id = ?", (grant_id,))
    if row is None:
        raise NotFound("Downloadable not found.")
    organization = await get_organization(db, row["organization_id"])
    file = await get_live_grant_file(
        db, Scope.of_customer(row["organization_id"], row["customer_id"]), grant_id, file_id
    )
    if organization is None or file is None:
        raise NotFound("Downloadable not found.")
    return download_link(settings, organization, grant_id, file_id, now=now, ttl_seconds=REDIRECT_LINK_TTL).url


def file_path(settings: Settings, file: File) -> Path:
    """The file on disk; ``NotFound`` if the stored path escapes the files directory or is gone."""
    root = settings.files_dir.resolve()
    path = (root / file.path).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise NotFound("file not found")
    return path


async def open_download(
    db: Database,
    settings: Settings,
    organization: Organization,
    grant_id: str,
    file_id: str,
    signature: str,
    *,
    now: datetime,
) -> tuple[File, Path]:
    """Check the signed link and the grant (still live, includes the file), count the download, and return the
    file row with its path. Every failure is ``NotFound``: a stale link and someone else's file look alike."""
    if not verify_signature(
        settings.secret_key, _payload(organization.id, grant_id, file_id), signature, now.timestamp()
    ):
        raise NotFound(EXPIRED_DOWNLOAD)
    owner = await db.fetchval(
        "SELECT customer_id FROM benefit_grants WHERE id = ? AND organization_id = ?", (grant_id, organization.id)
    )
    if owner is None:
        raise NotFound("file not found")
    file = await get_live_grant_file(db, Scope.of_customer(organization.id, owner), grant_id, file_id)
    if file is None:
        raise NotFound("file not found")
    path = file_path(settings, file)
    async with db.write() as tx:
        await record_event(
            tx,
            organization_id=organization.id,
            customer_id=owner,
            name="file.downloaded",
            subject_id=file.id,
            now=now,
            data={"grant_id": grant_id, "name": file.name, "size": file.size},
        )
    return file, path
