"""OpenAPI documentation of the admin API's error answers (Polar's shapes) and the ``responses=`` maps that
handlers declare, so ``/docs/openapi.json`` lists 401/403/404/409/422 where they can happen."""

from __future__ import annotations

from typing import Any

from litestar.openapi.datastructures import ResponseSpec

from portal.polar.models import ApiError, HTTPValidationError

_SPECS: dict[int, ResponseSpec] = {
    401: ResponseSpec(ApiError, description="Missing, invalid or revoked API token.", generate_examples=False),
    403: ResponseSpec(ApiError, description="Needs an admin token.", generate_examples=False),
    404: ResponseSpec(ApiError, description="Not found, or owned by another organization.", generate_examples=False),
    409: ResponseSpec(ApiError, description="Conflicts with existing data or state.", generate_examples=False),
    422: ResponseSpec(HTTPValidationError, description="Validation error.", generate_examples=False),
}


def errors(*codes: int) -> dict[int, ResponseSpec]:
    """The ``responses=`` map for these status codes (401 is always included: every route needs a token)."""
    return {code: _SPECS[code] for code in sorted({401, *codes})}


READ: dict[int, Any] = errors(404)
LIST: dict[int, Any] = errors(422)
WRITE: dict[int, Any] = errors(404, 409, 422)
