"""Polar-shaped errors of the customer-portal API: ``PolarAPIError`` carries Polar's error name (the SDKs pick
their exception class from the status code and parse ``{"error", "detail"}`` with ``error`` as a literal), a
router-level handler that answers it, and the ``responses=`` maps that document each endpoint's errors."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.openapi.datastructures import ResponseSpec

from portal.polar.models import ApiError, HTTPValidationError


class PolarAPIError(Exception):
    """An answer in Polar's error shape with Polar's error name, e.g. 403 ``AlreadyCanceledSubscription``."""

    def __init__(self, status_code: int, error: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.error = error
        self.detail = detail
        self.headers = headers


def not_found(detail: str = "Not found") -> PolarAPIError:
    """Missing and someone else's answer the same (Polar's ``ResourceNotFound``)."""
    return PolarAPIError(404, "ResourceNotFound", detail)


def not_permitted(detail: str) -> PolarAPIError:
    return PolarAPIError(403, "NotPermitted", detail)


NOT_SUPPORTED = "NotSupported"


def not_supported(feature: str) -> PolarAPIError:
    """Portal's answer for Polar features it does not have (payments, seats, members, wallets, meters).

    403, like Polar's own answer when an organization has a feature turned off (seats, members, pause): a
    client error the SDKs raise as ``PolarClientError`` (never retried as a server fault), not an empty list."""
    return PolarAPIError(
        403,
        NOT_SUPPORTED,
        f"{feature} is not supported by this Portal: it has no payment processor, seats, members, wallets or "
        "meters. See the README's customer-portal API table.",
    )


def polar_error_handler(_: Request[Any, Any, Any], exc: PolarAPIError) -> Response[Any]:
    return Response({"error": exc.error, "detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def _spec(description: str, model: type = ApiError) -> ResponseSpec:
    return ResponseSpec(model, description=description, generate_examples=False)


VALIDATION = _spec("Validation error (Polar's HTTPValidationError).", HTTPValidationError)
UNAUTHORIZED = _spec("`Unauthorized`: missing, expired or revoked customer-session token.")
NOT_FOUND = _spec("`ResourceNotFound`: missing, or belongs to another customer or organization.")
UNSUPPORTED = _spec(f"`{NOT_SUPPORTED}`: the feature needs a payment processor or seats/members/meters.")


def responses(*extra: tuple[int, str], auth: bool = True, found: bool = True) -> dict[int, ResponseSpec]:
    """401 (when authenticated), 404 (when ``found``), 422, plus ``(status, description)`` pairs."""
    specs: dict[int, ResponseSpec] = {422: VALIDATION}
    if auth:
        specs[401] = UNAUTHORIZED
    if found:
        specs[404] = NOT_FOUND
    for status, description in extra:
        specs[status] = _spec(description)
    return dict(sorted(specs.items()))


BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]

UNSUPPORTED_RESPONSES: dict[int, ResponseSpec] = {401: UNAUTHORIZED, 403: UNSUPPORTED}
