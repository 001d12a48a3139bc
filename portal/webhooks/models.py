"""Admin-API Structs for webhooks in Polar's shapes (``WebhookEndpoint``, ``WebhookEvent``, ``WebhookDelivery``
of ``polar/v2026_10/outputs.py``; inputs ``WebhookEndpointCreate``/``Update``), plus a few Portal-only fields
(queue status, attempts, next attempt) that SDKs ignore."""

from __future__ import annotations

from typing import Literal

import msgspec

from portal.webhooks.events import WebhookEventType
from portal.webhooks.queries import DeliveryRecord, EndpointRecord, EventRecord
from portal.webhooks.service import API_VERSION


class WebhookEndpointCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A new endpoint; the signing secret is generated (``whsec_…``) and returned. Only http(s) URLs."""

    url: str
    events: list[WebhookEventType]
    format: Literal["raw"] = "raw"
    name: str | None = None
    api_version: Literal["2026-04", "2026-10"] | None = None
    organization_id: str | None = None
    enabled: bool = True


class WebhookEndpointUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    url: str | None = None
    name: str | msgspec.UnsetType | None = msgspec.UNSET
    api_version: Literal["2026-04", "2026-10"] | None = None
    format: Literal["raw"] | None = None
    events: list[WebhookEventType] | None = None
    enabled: bool | None = None


class WebhookEndpointOut(msgspec.Struct, kw_only=True):
    created_at: str
    modified_at: str | None
    id: str
    url: str
    name: str | None
    api_version: str = API_VERSION
    format: Literal["raw"] = "raw"
    secret: str
    organization_id: str
    events: list[str]
    enabled: bool
    uses_standard_webhook_signature: bool = True


class WebhookEventOut(msgspec.Struct, kw_only=True):
    created_at: str
    modified_at: str | None
    id: str
    last_http_code: int | None
    succeeded: bool | None
    skipped: bool
    api_version: str = API_VERSION
    payload: str | None
    type: str
    is_archived: bool = False
    # Portal's own: the queue state.
    status: str
    attempts: int
    next_attempt_at: str | None
    last_error: str | None


class WebhookDeliveryOut(msgspec.Struct, kw_only=True):
    created_at: str
    modified_at: str | None
    id: str
    succeeded: bool
    http_code: int | None
    response: str | None
    webhook_event: WebhookEventOut
    # Portal's own.
    endpoint_id: str
    attempt: int
    duration_ms: int


def endpoint_out(record: EndpointRecord) -> WebhookEndpointOut:
    return WebhookEndpointOut(
        created_at=record.created_at,
        modified_at=record.modified_at,
        id=record.id,
        url=record.url,
        name=record.name,
        secret=record.secret,
        organization_id=record.organization_id,
        events=msgspec.json.decode(record.events),
        enabled=record.enabled,
    )


def event_out(record: EventRecord) -> WebhookEventOut:
    finished = record.status in ("succeeded", "failed")
    return WebhookEventOut(
        created_at=record.created_at,
        modified_at=record.modified_at,
        id=record.id,
        last_http_code=record.last_http_code,
        succeeded=(record.status == "succeeded") if finished or record.attempts else None,
        skipped=record.status == "skipped",
        payload=record.payload,
        type=record.type,
        status=record.status,
        attempts=record.attempts,
        next_attempt_at=record.next_attempt_at if record.status in ("pending", "sending") else None,
        last_error=record.last_error,
    )


def delivery_out(record: DeliveryRecord, event: EventRecord) -> WebhookDeliveryOut:
    return WebhookDeliveryOut(
        created_at=record.created_at,
        modified_at=None,
        id=record.id,
        succeeded=record.succeeded,
        http_code=record.http_code,
        response=record.response,
        webhook_event=event_out(event),
        endpoint_id=record.endpoint_id,
        attempt=record.attempt,
        duration_ms=record.duration_ms,
    )
