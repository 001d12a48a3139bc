"""``POST /v1/integrations/{processor}/{organization_slug}/webhook``: where a processor delivers its events for one
organization (no API token: the processor's signature authenticates the delivery; ``portal.connectors.events``).

Answers: 200 ``{"received": true, "status": ...}`` for an event applied, ignored, kept unmapped, failed for a
reason the operator sees in ``portal connect status`` (retrying would not help), or already received; 400 for a
signature, timestamp or body that does not verify (nothing stored); 404 for an unknown processor, organization or
connection; 503 when the processor's own API could not be reached while applying (the processor retries). The body
is capped (``portal.limits.SMALL_BODY_BYTES``, 413 above it) like every route that takes no files.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath

from portal.clock import Clock
from portal.connectors import events
from portal.connectors.base import URL_SECRET, BadSignature, get_processor
from portal.db import Database
from portal.errors import NotFound
from portal.polar.models import ApiError
from portal.settings import Settings
from portal.web import api_error


class WebhookAnswer(msgspec.Struct, kw_only=True):
    """What a delivery did: ``status`` is applied, ignored, unmapped, failed or duplicate."""

    received: bool
    event_id: str
    status: str
    reason: str | None


def _error(description: str) -> ResponseSpec:
    return ResponseSpec(ApiError, description=description, generate_examples=False)


RESPONSES = {
    200: ResponseSpec(WebhookAnswer, description="Received (see status).", generate_examples=False),
    400: _error("The signature, its timestamp or the body does not verify; nothing stored."),
    404: _error("No such processor, organization or connection."),
    413: _error("The body is too large."),
    503: ResponseSpec(
        WebhookAnswer, description="The processor's API could not be reached; retry.", generate_examples=False
    ),
}


@post(
    "/v1/integrations/{processor:str}/{organization_slug:str}/webhook",
    summary="Receive a payment processor's webhook events for an organization",
    tags=["integrations"],
    status_code=200,
    responses=RESPONSES,
)
async def receive_webhook(
    request: Request[Any, Any, Any],
    db: NamedDependency[Database],
    settings: NamedDependency[Settings],
    clock: NamedDependency[Clock],
    processor: FromPath[str],
    organization_slug: FromPath[str],
) -> Response[Any]:
    found = get_processor(processor)
    if found is None:
        raise NotFound(f"no processor named {processor!r}")
    body = await request.body()
    headers = {name.lower(): value for name, value in request.headers.items()}
    # A processor whose deliveries carry no signature (Gumroad) is authenticated by a secret in the URL's query;
    # it reaches the processor under a name no client header can set.
    headers.pop(URL_SECRET, None)
    if "secret" in request.query_params:
        headers[URL_SECRET] = str(request.query_params.get("secret"))
    try:
        result = await events.receive(db, settings, found, organization_slug, body, headers, now=clock.now())
    except BadSignature as exc:
        return api_error(400, f"the webhook signature does not verify: {exc}")
    answer = WebhookAnswer(received=True, event_id=result.event_id, status=result.status, reason=result.reason)
    return Response(answer, status_code=503 if result.unavailable else 200)


ROUTES = [receive_webhook]
