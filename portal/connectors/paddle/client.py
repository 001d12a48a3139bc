"""Paddle's official SDK (``paddle-python-sdk``), configured once: the API base from ``PORTAL_PADDLE_API_BASE``
(the SDK's environments name only Paddle's two hosts, so an object with the chosen ``base_url`` stands in for one),
and SDK errors turned into ``ProcessorError`` with a message for people (never the key)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from portal.connectors.base import ProcessorError

# Webhook timestamps further than this from now (seconds) are refused.
SIGNATURE_TOLERANCE = 300


@dataclass(frozen=True)
class _Environment:
    """What the SDK reads of an environment: its base URL."""

    base_url: str


@functools.lru_cache(maxsize=64)
def client(api_key: str, api_base: str) -> Any:
    """The SDK client for a key and API base, kept (its HTTP session is reused)."""
    # The SDK is imported on first use, as in ``call``: loading it costs every process ~0.3 s and several MB, and
    # most instances never talk to Paddle.
    from paddle_billing import Client, Options

    options = Options(environment=_Environment(api_base.rstrip("/") + "/"), retries=1)
    return Client(api_key, options=options, retry_count=1, timeout=20.0)


def _detail(error: Any) -> str:
    return str(getattr(error, "detail", None) or getattr(error, "error_code", None) or "invalid request")


def call(action: Callable[[], Any]) -> dict[str, Any]:
    """Run one SDK call returning an HTTP response; the JSON document answered. Errors become ``ProcessorError``
    (``unavailable`` when Paddle could not be reached or failed on its side)."""
    from paddle_billing.Exceptions.ApiError import ApiError

    try:
        response = action()
    except ApiError as error:
        status = error.response.status_code if error.response is not None else 0
        if status == 401 or getattr(error, "error_code", "") in ("authentication_malformed", "authentication_missing"):
            raise ProcessorError("Paddle refused the API key (invalid, revoked or expired)") from None
        if status >= 500:
            raise ProcessorError(f"Paddle answered an error ({status})", unavailable=True) from None
        raise ProcessorError(f"Paddle refused the request: {_detail(error)}") from None
    except requests.HTTPError as error:
        status = error.response.status_code if error.response is not None else 0
        if status == 401:
            raise ProcessorError("Paddle refused the API key (invalid, revoked or expired)") from None
        raise ProcessorError(f"Paddle answered an error ({status})", unavailable=status >= 500) from None
    except requests.RequestException:
        raise ProcessorError("Paddle could not be reached", unavailable=True) from None
    if response.status_code == 204 or not response.content:
        return {}
    try:
        document = response.json()
    except ValueError:
        raise ProcessorError("Paddle answered something that is not JSON", unavailable=True) from None
    return document if isinstance(document, dict) else {}
