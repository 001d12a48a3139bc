"""The ``files`` stream of ``portal import lemonsqueezy``: each mapped variant's files (``GET /v1/files
?filter[variant_id]=…``, attributes ``name``, ``size``, ``download_url``, ``status``) become one Portal downloadables
benefit on the mapped product, the bytes fetched from ``download_url`` and stored through Portal's own file service
(as ``POST /v1/files`` stores an upload).

It runs before the orders, so imported orders grant the downloads with the product's other benefits. Idempotent:
a file already brought over is linked (``connector_links`` kind ``file``, by Lemon Squeezy's file id) and not fetched
again; a variant's benefit is linked (kind ``benefit``, by variant id) and updated with the files added since. Each
variant is one write transaction (its new files, its benefit, the product's benefit list)."""

from __future__ import annotations

import asyncio
import mimetypes
from datetime import datetime
from typing import Any

import httpx

from portal.benefits import service as benefit_service
from portal.benefits.grants import grant_to_product_holders
from portal.benefits.service import BenefitInput
from portal.connectors.base import ApplyContext, ProcessorError
from portal.connectors.lemonsqueezy import client
from portal.connectors.links import linked_id, list_price_mappings, set_link
from portal.connectors.store import Connection
from portal.db import Database
from portal.notifications.mute import muted
from portal.products import service as product_service
from portal.settings import Settings
from portal.tls import https_context

PAGE_SIZE = 100
DOWNLOAD_TIMEOUT = 120.0


def _list_files(api_key: str, api_base: str, variant_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    number, last = 1, 1
    while number <= last:
        params = {"filter[variant_id]": variant_id, "page[number]": str(number), "page[size]": str(PAGE_SIZE)}
        document = client.request(api_key, api_base, "GET", "/v1/files", params=params)
        data = document.get("data")
        if not isinstance(data, list):
            raise ProcessorError("Lemon Squeezy answered /v1/files with something that is not a list")
        found.extend(item for item in data if isinstance(item, dict))
        last = int(((document.get("meta") or {}).get("page") or {}).get("lastPage") or 1)
        number += 1
    # Lemon Squeezy keeps deleted files listed with ``status`` "deleted"; only published ones are sold.
    return [f for f in found if (f.get("attributes") or {}).get("status", "published") == "published"]


def _fetch_bytes(url: str) -> bytes:
    """A file's bytes from its signed ``download_url`` (no API key: the URL carries its own signature)."""
    try:
        response = httpx.get(url, timeout=DOWNLOAD_TIMEOUT, follow_redirects=True, verify=https_context())
    except httpx.HTTPError:
        raise ProcessorError("a file's download_url could not be reached", unavailable=True) from None
    if response.status_code != 200:
        raise ProcessorError(f"a file's download_url answered {response.status_code}")
    return response.content


async def import_variant_files(
    db: Database, settings: Settings, connection: Connection, variant_id: str, product_id: str, *, now: datetime
) -> int:
    """Bring one variant's files over; returns how many files were new."""
    api_key = connection.secrets(settings.secret_key).api_key
    files = await asyncio.to_thread(_list_files, api_key, settings.lemonsqueezy_api_base, variant_id)
    if not files:
        return 0
    ctx = ApplyContext(connection=connection, now=now, history=True)
    async with db.write() as tx:  # which files are already here (read with the links' own lookup)
        known = {str(f["id"]): await linked_id(tx, ctx, "file", str(f["id"])) for f in files}
    fetched: dict[str, bytes] = {}
    for item in files:
        if known[str(item["id"])] is None:
            url = str((item.get("attributes") or {}).get("download_url") or "")
            if not url:
                raise ProcessorError(f"Lemon Squeezy file {item['id']} has no download_url")
            fetched[str(item["id"])] = await asyncio.to_thread(_fetch_bytes, url)
    async with db.write() as tx:
        file_ids: list[str] = []
        for item in files:
            ls_id = str(item["id"])
            portal_id = await linked_id(tx, ctx, "file", ls_id)
            if portal_id is None:
                name = str((item.get("attributes") or {}).get("name") or f"file-{ls_id}")
                mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
                stored = await benefit_service.register_file(
                    tx,
                    connection.organization_id,
                    name=name,
                    content=fetched[ls_id],
                    mime_type=mime,
                    files_dir=settings.files_dir,
                    now=now,
                )
                portal_id = stored.id
                await set_link(tx, ctx, "file", ls_id, portal_id)
            file_ids.append(portal_id)
        data = BenefitInput(type="downloadables", description="Downloads", properties={"files": file_ids})
        benefit_id = await linked_id(tx, ctx, "benefit", variant_id)
        if benefit_id is None:
            benefit_id = await benefit_service.create_benefit(tx, connection.organization_id, data, now=now)
            await set_link(tx, ctx, "benefit", variant_id, benefit_id)
        else:
            await benefit_service.update_benefit(tx, benefit_id, data, now=now)
        current = await product_service.get_product_benefit_ids(tx, product_id)
        if benefit_id not in current:
            await product_service.set_product_benefits(tx, product_id, [*current, benefit_id], now=now)
            # Sales already in Portal (live webhooks before the import) hold the product: they get the downloads
            # too, once, when the benefit joins the product (a grant revoked later by the seller stays revoked).
            with muted():
                await grant_to_product_holders(tx, product_id, benefit_id, now=now)
    return len(fetched)


async def mapped_variants(db: Database, connection: Connection) -> list[tuple[str, str]]:
    rows = await list_price_mappings(db, connection.id)
    return [(str(row["processor_price_id"]), str(row["product_id"])) for row in rows]
