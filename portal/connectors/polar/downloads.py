"""The ``benefits`` stage of ``portal import polar``: Polar's downloadables benefits (``GET /v1/benefits/
?type=downloadables``, ``properties.files``) become Portal downloadables benefits with the same files, the bytes
stored through Portal's own file service (as ``POST /v1/files`` stores an upload), attached to the mapped Portal
products whose Polar product carries the benefit. It runs before the sales, so the imported orders and subscriptions
grant the downloads with the product's other benefits.

Getting the bytes: Polar's organization API describes a file (``GET /v1/files/?ids=…``: name, MIME type, size,
SHA-256) but hands out no download link; its customer portal does. So the importer mints a customer session
(``POST /v1/customer-sessions/``) for a customer holding the benefit (``GET /v1/benefits/{id}/grants``), lists that
customer's downloadables of the benefit and follows each ``file.download.url`` (Polar redirects to its storage),
checking the bytes against the file's SHA-256. A benefit nobody holds yet has no download link: it is reported as
failed and tried again by the next import.

Idempotent: a file brought over is linked (``connector_links`` kind ``file``, by Polar's file id) and never fetched
again; a benefit is linked (kind ``benefit``) and updated with the files added since. One benefit is one write
transaction (its new files, the benefit, the products' benefit lists)."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime
from typing import Any

import httpx

from portal.benefits import service as benefit_service
from portal.benefits.grants import grant_to_product_holders
from portal.benefits.service import BenefitInput
from portal.connectors.base import ApplyContext, ProcessorError
from portal.connectors.links import linked_id, list_price_mappings, set_link
from portal.connectors.polar import client
from portal.connectors.store import Connection
from portal.db import Database
from portal.notifications.mute import muted
from portal.products import service as product_service
from portal.settings import Settings

DOWNLOAD_TIMEOUT = 120.0


def benefits_page(api_key: str, api_base: str, page: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    answer = client.get(api_key, api_base, "/v1/benefits/", {"type": "downloadables", "page": page, "limit": limit})
    items = answer.get("items") if isinstance(answer, dict) else None
    if not isinstance(items, list):
        raise ProcessorError("Polar answered a list without items for /v1/benefits/")
    pagination = answer.get("pagination") or {}
    return [item for item in items if isinstance(item, dict)], int(pagination.get("max_page") or 0)


def product_benefits(api_key: str, api_base: str, polar_product_ids: list[str]) -> dict[str, set[str]]:
    """For each mapped Polar product, the ids of its benefits."""
    found: dict[str, set[str]] = {}
    for product_id in polar_product_ids:
        product = client.get(api_key, api_base, f"/v1/products/{product_id}")
        found[product_id] = {str(b.get("id")) for b in product.get("benefits") or [] if isinstance(b, dict)}
    return found


def _holder_token(api_key: str, api_base: str, benefit_id: str) -> str | None:
    """A customer-session token of a customer holding the benefit, or None when nobody holds it."""
    grants = client.get(api_key, api_base, f"/v1/benefits/{benefit_id}/grants", {"is_granted": "true", "limit": 1})
    items = grants.get("items") if isinstance(grants, dict) else None
    if not items:
        return None
    session = client.request(
        api_key, api_base, "POST", "/v1/customer-sessions/", json={"customer_id": items[0]["customer_id"]}
    )
    return str(session["token"])


def fetch_files(
    api_key: str, api_base: str, benefit_id: str, file_ids: list[str]
) -> dict[str, tuple[dict[str, Any], bytes]]:
    """Each file's Polar description and bytes (``ProcessorError`` if they cannot be had or do not check out)."""
    described = client.get(api_key, api_base, "/v1/files/", {"ids": file_ids, "limit": 100}).get("items") or []
    files = {str(f["id"]): f for f in described if isinstance(f, dict)}
    missing = [file_id for file_id in file_ids if file_id not in files]
    if missing:
        raise ProcessorError(f"Polar does not describe file {missing[0]} of benefit {benefit_id}")
    token = _holder_token(api_key, api_base, benefit_id)
    if token is None:
        raise ProcessorError(f"no customer holds benefit {benefit_id} yet: Polar gives no download link for its files")
    listed = client.get(token, api_base, "/v1/customer-portal/downloadables/", {"benefit_id": benefit_id, "limit": 100})
    urls = {
        str(item["file"]["id"]): str(item["file"]["download"]["url"])
        for item in listed.get("items") or []
        if isinstance(item, dict) and isinstance(item.get("file"), dict)
    }
    result: dict[str, tuple[dict[str, Any], bytes]] = {}
    for file_id in file_ids:
        if file_id not in urls:
            raise ProcessorError(f"Polar lists no download for file {file_id} of benefit {benefit_id}")
        try:
            response = httpx.get(urls[file_id], timeout=DOWNLOAD_TIMEOUT, follow_redirects=True)
        except httpx.HTTPError:
            raise ProcessorError("a Polar file download could not be reached", unavailable=True) from None
        if response.status_code != 200:
            raise ProcessorError(f"downloading Polar file {file_id} answered {response.status_code}")
        expected = files[file_id].get("checksum_sha256_hex")
        if expected and hashlib.sha256(response.content).hexdigest() != expected:
            raise ProcessorError(f"Polar file {file_id} did not match its SHA-256")
        result[file_id] = (files[file_id], response.content)
    return result


async def mapped_products(db: Database, connection: Connection) -> dict[str, str]:
    """Polar product id -> Portal product id, as the seller mapped them."""
    rows = await list_price_mappings(db, connection.id)
    return {str(row["processor_price_id"]): str(row["product_id"]) for row in rows}


async def apply_benefit(
    db: Database,
    settings: Settings,
    connection: Connection,
    benefit: dict[str, Any],
    carried_by: list[str],
    *,
    now: datetime,
) -> int:
    """Bring one Polar downloadables benefit over (onto ``carried_by``, Portal product ids); returns how many files
    were new."""
    api_key = connection.secrets(settings.secret_key).api_key
    polar_id = str(benefit["id"])
    file_ids = [str(f) for f in (benefit.get("properties") or {}).get("files") or []]
    ctx = ApplyContext(connection=connection, now=now, history=True)
    async with db.write() as tx:  # which files are already here (read with the links' own lookup)
        new = [file_id for file_id in file_ids if await linked_id(tx, ctx, "file", file_id) is None]
    fetched = await asyncio.to_thread(fetch_files, api_key, settings.polar_api_base, polar_id, new) if new else {}
    async with db.write() as tx:
        portal_files: list[str] = []
        for file_id in file_ids:
            portal_id = await linked_id(tx, ctx, "file", file_id)
            if portal_id is None:
                described, content = fetched[file_id]
                stored = await benefit_service.register_file(
                    tx,
                    connection.organization_id,
                    name=str(described.get("name") or f"file-{file_id}"),
                    content=content,
                    mime_type=str(described.get("mime_type") or "application/octet-stream"),
                    files_dir=settings.files_dir,
                    now=now,
                    version=described.get("version"),
                )
                portal_id = stored.id
                await set_link(tx, ctx, "file", file_id, portal_id)
            portal_files.append(portal_id)
        data = BenefitInput(
            type="downloadables",
            description=str(benefit.get("description") or "Downloads"),
            properties={"files": portal_files},
        )
        benefit_id = await linked_id(tx, ctx, "benefit", polar_id)
        if benefit_id is None:
            benefit_id = await benefit_service.create_benefit(tx, connection.organization_id, data, now=now)
            await set_link(tx, ctx, "benefit", polar_id, benefit_id)
        else:
            await benefit_service.update_benefit(tx, benefit_id, data, now=now)
        for product_id in carried_by:
            current = await product_service.get_product_benefit_ids(tx, product_id)
            if benefit_id not in current:
                await product_service.set_product_benefits(tx, product_id, [*current, benefit_id], now=now)
                # Sales already in Portal (live webhooks before the import) hold the product: they get the downloads
                # too, once, when the benefit joins the product (a grant revoked later by the seller stays revoked).
                with muted():
                    await grant_to_product_holders(tx, product_id, benefit_id, now=now)
    return len(fetched)
