"""Lemon Squeezy's JSON:API over ``httpx`` (Lemon Squeezy publishes no official Python library): the API base from
``PORTAL_LEMONSQUEEZY_API_BASE``, the key as a Bearer token, and every failure turned into ``ProcessorError`` with
a message for people (never the key)."""

from __future__ import annotations

from typing import Any

import httpx

from portal.connectors.base import ProcessorError
from portal.tls import https_context

JSON_API = "application/vnd.api+json"
TIMEOUT = 20.0


def _headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}", "Accept": JSON_API, "Content-Type": JSON_API}


def _detail(response: httpx.Response) -> str:
    """The first JSON:API error's ``detail`` (or title), else the status."""
    try:
        errors = response.json().get("errors") or []
        first = errors[0] if errors else {}
        return str(first.get("detail") or first.get("title") or f"HTTP {response.status_code}")
    except (ValueError, AttributeError, IndexError):
        return f"HTTP {response.status_code}"


def request(
    api_key: str,
    api_base: str,
    method: str,
    path: str,
    *,
    params: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One call (blocking); the JSON:API document answered (``{}`` for 204)."""
    url = api_base.rstrip("/") + path
    try:
        response = httpx.request(
            method, url, headers=_headers(api_key), params=params, json=body, timeout=TIMEOUT, verify=https_context()
        )
    except httpx.HTTPError:
        raise ProcessorError("Lemon Squeezy could not be reached", unavailable=True) from None
    if response.status_code == 401:
        raise ProcessorError("Lemon Squeezy refused the API key (invalid, revoked or expired)")
    if response.status_code >= 500:
        raise ProcessorError(f"Lemon Squeezy answered an error ({response.status_code})", unavailable=True)
    if response.status_code >= 400:
        raise ProcessorError(f"Lemon Squeezy refused the request: {_detail(response)}")
    if response.status_code == 204 or not response.content:
        return {}
    try:
        document = response.json()
    except ValueError:
        raise ProcessorError("Lemon Squeezy answered something that is not JSON", unavailable=True) from None
    if not isinstance(document, dict):
        raise ProcessorError("Lemon Squeezy answered something that is not a JSON:API document", unavailable=True)
    return document
