"""Gumroad's API v2 (``PORTAL_GUMROAD_API_BASE``, default https://api.gumroad.com) with the seller's access token:
``get`` (and ``put``, the seller's refunds) answers the JSON of a successful call (``{"success": true, ...}``);
errors become ``ProcessorError``."""

from __future__ import annotations

from typing import Any

import httpx

from portal.connectors.base import ProcessorError
from portal.tls import https_context

GUMROAD_API_BASE = "https://api.gumroad.com"
TIMEOUT = 20.0


def get(access_token: str, api_base: str, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return request(access_token, api_base, "GET", path, params=params)


def put(access_token: str, api_base: str, path: str, form: dict[str, Any]) -> dict[str, Any]:
    """A PUT with form fields, as Gumroad's API takes them (``PUT /v2/sales/{id}/refund``)."""
    return request(access_token, api_base, "PUT", path, form=form)


def request(
    access_token: str,
    api_base: str,
    method: str,
    path: str,
    *,
    params: dict[str, Any] | None = None,
    form: dict[str, Any] | None = None,
) -> dict[str, Any]:
    try:
        with httpx.Client(base_url=api_base.rstrip("/"), timeout=TIMEOUT, verify=https_context()) as client:
            response = client.request(
                method, path, params=params or {}, data=form, headers={"Authorization": f"Bearer {access_token}"}
            )
    except httpx.HTTPError:
        raise ProcessorError("Gumroad could not be reached", unavailable=True) from None
    if response.status_code == 401:
        raise ProcessorError("Gumroad refused the access token (invalid or revoked)")
    if response.status_code >= 500:
        raise ProcessorError(f"Gumroad answered an error ({response.status_code})", unavailable=True)
    try:
        answer = response.json()
    except ValueError:
        raise ProcessorError("Gumroad answered something that is not JSON", unavailable=True) from None
    if response.status_code >= 400 or not isinstance(answer, dict) or answer.get("success") is not True:
        message = answer.get("message") if isinstance(answer, dict) else None
        raise ProcessorError(f"Gumroad refused the request ({response.status_code}): {str(message or '')[:200]}")
    return answer
