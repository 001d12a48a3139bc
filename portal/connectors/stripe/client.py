"""The official ``stripe`` SDK, configured once: the API version Portal's mapping is written and tested against
(``API_VERSION``), the API base from ``PORTAL_STRIPE_API_BASE``, and SDK errors turned into ``ProcessorError``
with a message for people (never the key)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import stripe

from portal.connectors.base import ProcessorError

# The one Stripe API version every call sends and every event shape in the tests follows (stripe-python 16.1's).
# Set the webhook endpoint in Stripe's dashboard to the same version.
API_VERSION = "2026-10-28.endive"
# Webhook timestamps older (or newer) than this are refused.
SIGNATURE_TOLERANCE = 300

T = TypeVar("T")


@functools.lru_cache(maxsize=64)
def client(api_key: str, api_base: str) -> stripe.StripeClient:
    """The SDK client for a key and API base, kept (its HTTP connections are reused: a webhook that needs an object
    fetched pays one request, not a TLS handshake too). Keyed by the key itself, so a replaced key gets a new one."""
    return stripe.StripeClient(
        api_key,
        stripe_version=API_VERSION,
        base_addresses={"api": api_base.rstrip("/")},
        max_network_retries=1,
    )


def call(action: Callable[[], T]) -> T:
    """Run one SDK call; its errors become ``ProcessorError`` (``unavailable`` when Stripe could not be reached or
    failed on its side)."""
    try:
        return action()
    except stripe.AuthenticationError:
        raise ProcessorError("Stripe refused the API key (invalid, revoked or expired)") from None
    except stripe.PermissionError as exc:
        detail = exc.user_message or "see the key's settings"
        raise ProcessorError(f"the Stripe key lacks a permission: {detail}") from None
    except stripe.APIConnectionError:
        raise ProcessorError("Stripe could not be reached", unavailable=True) from None
    except stripe.InvalidRequestError as exc:
        detail = exc.user_message or exc.code or "invalid request"
        raise ProcessorError(f"Stripe refused the request: {detail}") from None
    except stripe.StripeError as exc:
        status = exc.http_status or 0
        raise ProcessorError(
            f"Stripe answered an error ({status or 'no status'})", unavailable=status >= 500 or status == 0
        ) from None
