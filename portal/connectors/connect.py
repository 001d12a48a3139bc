"""Connecting an organization to a processor (the CLI ``portal connect`` and ``PUT /v1/connectors/{processor}``
both call ``connect``): the key is checked against the processor's API first (in a worker thread), and only a
key the processor accepts is stored (encrypted, ``portal.connectors.store``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from portal.connectors import store
from portal.connectors.base import Processor, webhook_path
from portal.connectors.store import Connection, ConnectorSettings, Secrets
from portal.db import Database
from portal.errors import InvalidInput
from portal.settings import Settings


@dataclass(frozen=True, slots=True)
class Instructions:
    """What to register in the processor's dashboard."""

    webhook_url: str
    events: tuple[str, ...]


def instructions(processor: Processor, settings: Settings, organization_slug: str) -> Instructions:
    return Instructions(
        webhook_url=settings.public_base_url + webhook_path(processor.name, organization_slug),
        events=processor.webhook_events,
    )


def check_secrets(secrets: Secrets) -> None:
    if not secrets.api_key.strip():
        raise InvalidInput("the API key is empty", "api_key")
    if not secrets.webhook_secret.strip():
        raise InvalidInput("the webhook signing secret is empty", "webhook_secret")


async def connect(
    db: Database,
    settings: Settings,
    processor: Processor,
    *,
    organization_id: str,
    secrets: Secrets,
    connector_settings: ConnectorSettings | None,
    now: datetime,
) -> Connection:
    """Check ``secrets`` against the processor (``ProcessorError`` if refused), then store the connection."""
    secrets = Secrets(api_key=secrets.api_key.strip(), webhook_secret=secrets.webhook_secret.strip())
    check_secrets(secrets)
    account = await asyncio.to_thread(processor.check_credentials, secrets, settings)
    async with db.write() as tx:
        await store.save_connection(
            tx,
            instance_secret=settings.secret_key,
            organization_id=organization_id,
            processor=processor.name,
            secrets=secrets,
            account_id=account.id,
            livemode=account.livemode,
            settings=connector_settings,
            now=now,
        )
    return await store.require_connection(db, organization_id, processor.name)
