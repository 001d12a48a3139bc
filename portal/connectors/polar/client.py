"""Polar's HTTP API (``PORTAL_POLAR_API_BASE``, default https://api.polar.sh) with the seller's organization
access token: the few calls the connector makes (``get``, ``list_page``, ``patch``), their errors turned into
``ProcessorError`` with a message for people (never the token).

httpx rather than ``polar-sdk``: the SDK validates every answer against one release's models and refuses fields
it does not know, so a Polar API that grows a field would stop the import; the connector reads plain JSON and
takes the few fields it maps."""

from __future__ import annotations

from typing import Any

import httpx

from portal.connectors.base import ProcessorError
from portal.tls import https_context

POLAR_API_BASE = "https://api.polar.sh"
TIMEOUT = 20.0


def _client(api_key: str, api_base: str) -> httpx.Client:
    return httpx.Client(
        base_url=api_base.rstrip("/"),
        headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
        timeout=TIMEOUT,
        verify=https_context(),
    )


def _answer(response: httpx.Response) -> Any:
    if response.status_code in (401, 403):
        raise ProcessorError("Polar refused the access token (invalid, revoked, or missing a scope)")
    if response.status_code == 404:
        raise ProcessorError("Polar does not know this object (404)")
    if response.status_code >= 500:
        raise ProcessorError(f"Polar answered an error ({response.status_code})", unavailable=True)
    if response.status_code >= 400:
        detail = _detail(response)
        raise ProcessorError(f"Polar refused the request ({response.status_code}){detail}")
    try:
        return response.json()
    except ValueError:
        raise ProcessorError("Polar answered something that is not JSON", unavailable=True) from None


def _detail(response: httpx.Response) -> str:
    """Polar's error ``detail``: a message, or a 422 list of ``{"loc", "msg"}``."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return ""
    if isinstance(detail, str):
        return f": {detail[:200]}"
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        where = ".".join(str(part) for part in detail[0].get("loc") or [])
        return f": {where}: {str(detail[0].get('msg') or '')[:200]}"
    return ""


def request(api_key: str, api_base: str, method: str, path: str, **kwargs: Any) -> Any:
    """One call; ``ProcessorError`` (``unavailable`` when Polar could not be reached or failed on its side)."""
    try:
        with _client(api_key, api_base) as client:
            return _answer(client.request(method, path, **kwargs))
    except httpx.HTTPError:
        raise ProcessorError("Polar could not be reached", unavailable=True) from None


def get(api_key: str, api_base: str, path: str, params: dict[str, Any] | None = None) -> Any:
    return request(api_key, api_base, "GET", path, params=params or {})


def patch(api_key: str, api_base: str, path: str, body: dict[str, Any]) -> Any:
    return request(api_key, api_base, "PATCH", path, json=body)


def list_page(api_key: str, api_base: str, path: str, page: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """One page of a Polar list (``page`` from 1): its items and ``pagination.max_page``."""
    # Oldest first: a sale made during the import lands on a later page instead of shifting the pages resumed.
    answer = get(api_key, api_base, path, {"page": page, "limit": limit, "sorting": "created_at"})
    items = answer.get("items") if isinstance(answer, dict) else None
    if not isinstance(items, list):
        raise ProcessorError(f"Polar answered a list without items for {path}")
    pagination = answer.get("pagination") or {}
    return [item for item in items if isinstance(item, dict)], int(pagination.get("max_page") or 0)
