"""``portal import lemonsqueezy``: a Lemon Squeezy store's history into Portal (issue 20, "Moving off a platform").

Streams, in this order: ``files`` (each mapped variant's downloadable files, ``downloads``), then each a JSON:API
list read ``page[number]`` by ``page[number]`` (``page[size]`` 100) until ``meta.page.lastPage``: ``customers``,
``orders`` (one-time purchases; a subscription's first order is linked only), ``subscriptions``,
``subscription-invoices`` (the subscriptions' paid orders) and ``license-keys``, each key with its
``license-key-instances`` (its activations, kept under their instance ids). Every resource goes through the same
mapping as live webhooks (``portal.connectors.lemonsqueezy.mapping``) in history mode: Lemon Squeezy's dates kept,
no emails, no outgoing webhooks. Each resource is its own write transaction, and the stream's checkpoint (the last
page done, ``connector_checkpoints``) is stored after its page: a Ctrl-C or a crash resumes at the page in flight,
whose resources already written apply again as no-ops (facts once by id, states by ``updated_at``). A resource whose
parent Portal has not seen (``NeedObject``) has it fetched and applied first, as a live event does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from portal.connectors.base import ApplyContext, InboundEvent, MappingError, NeedObject, Outcome, ProcessorError
from portal.connectors.lemonsqueezy import client, downloads, mapping
from portal.connectors.lemonsqueezy.processor import LemonSqueezyProcessor
from portal.connectors.store import Connection
from portal.connectors.stripe.importer import (
    ImportReport,
    Progress,
    StreamReport,
    load_checkpoints,
    reset_checkpoints,
    save_checkpoint,
)
from portal.db import Database
from portal.errors import DomainError
from portal.settings import Settings

PAGE_SIZE = 100
MAX_FETCHES = 4
# Each stream and the webhook event whose mapping applies its resources.
# ``files`` (each mapped variant's files, ``portal.connectors.lemonsqueezy.downloads``) comes first so that the
# orders imported after it grant the downloads with the product's other benefits.
STREAMS: tuple[tuple[str, str], ...] = (
    ("files", ""),
    ("customers", ""),
    ("orders", "order_created"),
    ("subscriptions", "subscription_updated"),
    ("subscription-invoices", "subscription_payment_success"),
    ("license-keys", "license_key_updated"),
)


class _Importer:
    def __init__(self, db: Database, settings: Settings, connection: Connection, now: Callable[[], datetime]) -> None:
        self.db = db
        self.settings = settings
        self.connection = connection
        self.now = now
        self.secrets = connection.secrets(settings.secret_key)
        self.processor = LemonSqueezyProcessor()

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        return client.request(self.secrets.api_key, self.settings.lemonsqueezy_api_base, "GET", path, params=params)

    async def page(self, kind: str, number: int) -> tuple[list[dict[str, Any]], int]:
        params = {"page[number]": str(number), "page[size]": str(PAGE_SIZE)}
        document = await asyncio.to_thread(self._get, f"/v1/{kind}", params)
        data = document.get("data")
        if not isinstance(data, list):
            raise ProcessorError(f"Lemon Squeezy answered /v1/{kind} with something that is not a list")
        last = int(((document.get("meta") or {}).get("page") or {}).get("lastPage") or 1)
        return data, last

    async def instances(self, key_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        number, last = 1, 1
        while number <= last:
            params = {"filter[license_key_id]": key_id, "page[number]": str(number), "page[size]": str(PAGE_SIZE)}
            document = await asyncio.to_thread(self._get, "/v1/license-key-instances", params)
            found.extend(document.get("data") or [])
            last = int(((document.get("meta") or {}).get("page") or {}).get("lastPage") or 1)
            number += 1
        return found

    async def apply(self, kind: str, event_name: str, resource: dict[str, Any]) -> Outcome:
        """One resource in its own write transaction, its missing parents fetched and applied first."""
        instances = await self.instances(str(resource["id"])) if kind == "license-keys" else None
        fetched: dict[tuple[str, str], Any] = {}
        event = InboundEvent(id="", type=event_name, created=0, payload={"data": resource})
        for _ in range(MAX_FETCHES + 1):
            ctx = ApplyContext(connection=self.connection, now=self.now(), history=True)
            try:
                async with self.db.write() as tx:
                    if kind == "customers":
                        return await mapping.apply_customer(tx, ctx, resource)
                    if kind == "license-keys":
                        unmapped = await self.processor.apply_fetched(tx, ctx, fetched)
                        if unmapped is not None:
                            return unmapped
                        return await mapping.apply_license_key(tx, ctx, resource, instances)
                    return await self.processor.apply(tx, ctx, event, fetched)
            except NeedObject as need:
                if (need.kind, need.object_id) in fetched:
                    raise MappingError(f"applying the fetched {need.kind} {need.object_id} did not help") from None
                fetched[(need.kind, need.object_id)] = await asyncio.to_thread(
                    self.processor.fetch, need.kind, need.object_id, self.secrets, self.settings
                )
        raise MappingError("needs too many objects from Lemon Squeezy's API")


async def run_import(
    db: Database,
    settings: Settings,
    connection: Connection,
    *,
    now: Callable[[], datetime],
    progress: Progress | None = None,
) -> ImportReport:
    """Import every stream, resuming after the last page done; ``ImportReport.interrupted`` says why it stopped
    early (Lemon Squeezy unreachable: run again to resume)."""
    started = time.monotonic()
    importer = _Importer(db, settings, connection, now)
    checkpoints = await load_checkpoints(db, connection.id)
    if checkpoints and all(checkpoints.get(name, (None, False))[1] for name, _ in STREAMS):
        await reset_checkpoints(db, connection.id)  # a finished import: start over (a no-op where nothing changed)
        checkpoints = {}
    report = ImportReport(streams=[], dry_run=False)
    for kind, event_name in STREAMS:
        stream = StreamReport(kind)
        report.streams.append(stream)
        cursor, done = checkpoints.get(kind, (None, False))
        if done:
            stream.skipped = True
            continue
        number = int(cursor) + 1 if cursor else 1
        stream.resumed = number > 1
        if kind == "files":
            # One "page" per mapped variant (its files), checkpointed after each variant.
            variants = await downloads.mapped_variants(db, connection)
            last = len(variants)
            while number <= last:
                variant_id, product_id = variants[number - 1]
                try:
                    fetched = await downloads.import_variant_files(
                        db, settings, connection, variant_id, product_id, now=now()
                    )
                    stream.outcomes["applied"] += 1
                    stream.outcomes["files fetched"] += fetched
                except ProcessorError as exc:
                    report.interrupted = f"Lemon Squeezy: {exc.message}"
                    report.seconds = time.monotonic() - started
                    return report
                except DomainError as exc:
                    stream.outcomes["failed"] += 1
                    stream.failures.append((variant_id, exc.message))
                stream.seen += 1
                stream.pages += 1
                async with db.write() as tx:
                    await save_checkpoint(tx, connection.id, kind, str(number), number >= last, now())
                if progress is not None:
                    progress(stream)
                number += 1
            if not variants:
                async with db.write() as tx:
                    await save_checkpoint(tx, connection.id, kind, "0", True, now())
            continue
        last = number
        while number <= last:
            try:
                resources, last = await importer.page(kind, number)
                for resource in resources:
                    try:
                        outcome = await importer.apply(kind, event_name, resource)
                    except (MappingError, DomainError) as exc:
                        stream.outcomes["failed"] += 1
                        stream.failures.append((str(resource.get("id")), getattr(exc, "message", str(exc))))
                        continue
                    stream.outcomes[outcome.status] += 1
                    if outcome.status == "unmapped" and outcome.price_id:
                        stream.unmapped[outcome.price_id] += 1
            except ProcessorError as exc:
                report.interrupted = f"Lemon Squeezy: {exc.message}"
                report.seconds = time.monotonic() - started
                return report
            stream.seen += len(resources)
            stream.pages += 1
            async with db.write() as tx:
                await save_checkpoint(tx, connection.id, kind, str(number), number >= last, now())
            if progress is not None:
                progress(stream)
            number += 1
    report.seconds = time.monotonic() - started
    return report
