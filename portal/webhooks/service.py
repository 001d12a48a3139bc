"""Webhook rules without HTTP: endpoint create/update/delete/rotate (URL and event checks) and ``emit``, which
queues one event per subscribed endpoint inside the caller's write transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import msgspec

from portal.clock import iso
from portal.db import Transaction
from portal.errors import InvalidInput, NotFound
from portal.webhooks import destinations, queries, signing
from portal.webhooks.events import EVENT_TYPES
from portal.webhooks.queries import EndpointRecord

MAX_URL_LENGTH = 2048
# Polar's payload envelope names the API version its ``data`` follows.
API_VERSION = "2026-10"


def url_problem(url: str, *, private_allowed: bool) -> str | None:
    """Only absolute ``http://`` or ``https://`` URLs (no credentials in them) are accepted, and unless
    ``private_allowed`` (``PORTAL_WEBHOOK_PRIVATE_ADDRESSES``) none whose host is a non-public address literal or
    a ``localhost`` name (``portal.webhooks.destinations``; names are checked again when a delivery resolves them)."""
    if len(url) > MAX_URL_LENGTH:
        return f"at most {MAX_URL_LENGTH} characters"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "expected an http(s) URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "expected an http:// or https:// URL"
    if parts.username or parts.password:
        return "credentials in the URL are not allowed"
    if any(ch.isspace() for ch in url):
        return "expected an http(s) URL without spaces"
    if not private_allowed:
        return destinations.host_problem(parts.hostname)
    return None


def check_events(events: list[str]) -> list[str]:
    for index, event in enumerate(events):
        if event not in EVENT_TYPES:
            raise InvalidInput(f"unknown event type {event!r}", f"events[{index}]")
    return list(dict.fromkeys(events))


def _check_url(url: str, private_allowed: bool) -> str:
    url = url.strip()
    if (problem := url_problem(url, private_allowed=private_allowed)) is not None:
        raise InvalidInput(problem, "url")
    return url


async def create_endpoint(
    tx: Transaction,
    organization_id: str,
    *,
    url: str,
    events: list[str],
    name: str | None = None,
    enabled: bool = True,
    private_allowed: bool,
    now: datetime,
) -> str:
    """A new endpoint with a generated ``whsec_`` secret; returns its id. ``private_allowed``: the instance's
    ``webhook_private_addresses``."""
    return await queries.insert_endpoint(
        tx,
        organization_id=organization_id,
        url=_check_url(url, private_allowed),
        name=name,
        secret=signing.new_secret(),
        events=check_events(events),
        enabled=enabled,
        now=now,
    )


async def get_endpoint(tx: Transaction, endpoint_id: str, *, organization_id: str | None) -> EndpointRecord:
    record = await queries.get_endpoint(tx, endpoint_id)
    if record is None or (organization_id is not None and record.organization_id != organization_id):
        raise NotFound("webhook endpoint not found")
    return record


async def update_endpoint(
    tx: Transaction,
    record: EndpointRecord,
    *,
    url: str | None,
    name: str | msgspec.UnsetType | None,
    events: list[str] | None,
    enabled: bool | None,
    private_allowed: bool,
    now: datetime,
) -> None:
    """Change the given fields (None/UNSET: keep). ``private_allowed``: as for ``create_endpoint``."""
    await queries.update_endpoint(
        tx,
        record.id,
        url=record.url if url is None else _check_url(url, private_allowed),
        name=record.name if name is msgspec.UNSET else name,
        events=msgspec.json.decode(record.events) if events is None else check_events(events),
        enabled=record.enabled if enabled is None else enabled,
        now=now,
    )


async def rotate_secret(tx: Transaction, record: EndpointRecord, *, now: datetime) -> None:
    await queries.set_secret(tx, record.id, signing.new_secret(), now=now)


async def emit(
    tx: Transaction,
    *,
    organization_id: str,
    event_type: str,
    build: Callable[[], Awaitable[dict[str, Any]]],
    now: datetime,
) -> int:
    """Queue ``event_type`` for every enabled endpoint of the organization that subscribed to it; the payload
    (``build()``) is made only when one did. Returns how many events were queued."""
    endpoint_ids = await queries.subscribed_endpoint_ids(tx, organization_id, event_type)
    if not endpoint_ids:
        return 0
    envelope = {"type": event_type, "timestamp": iso(now), "api_version": API_VERSION, "data": await build()}
    body = msgspec.json.encode(envelope).decode()
    for endpoint_id in endpoint_ids:
        await queries.insert_event(
            tx,
            endpoint_id=endpoint_id,
            organization_id=organization_id,
            event_type=event_type,
            payload=body,
            now=now,
        )
    return len(endpoint_ids)
