"""JSON sign-in, as Polar's ``/v1/customer-portal/customer-session/*``: request a code, authenticate it for a
customer-session token, introspect the token, describe its user.

``request`` answers 202 with no body whatever happens (unknown organization or email included); ``authenticate``
takes Polar's ``{code}`` (optionally with ``organization_id`` + ``email`` to bind it more tightly) and answers
``{token}`` or 401 ``CustomerSessionCodeInvalidOrExpired``. The token is a Bearer token on
``/v1/customer-portal/*`` (dependency ``api_customer``).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody

from portal.clock import Clock
from portal.db import Database
from portal.fields import EMAIL_ADDRESS_PATTERN
from portal.organizations import queries as org_queries
from portal.polar.models import ApiError, HTTPValidationError
from portal.sessions import codes, service
from portal.sessions.emails import send_login_code
from portal.sessions.rate_limit import RateLimited
from portal.sessions.store import SessionContext
from portal.settings import Settings
from portal.web import api_error, client_ip

EmailText = Annotated[str, msgspec.Meta(min_length=3, max_length=320, pattern=EMAIL_ADDRESS_PATTERN)]


class CustomerSessionCodeRequest(msgspec.Struct, kw_only=True):
    email: EmailText
    organization_id: uuid.UUID
    # Polar lets a client pick among several customers sharing an email; emails are unique per org here.
    customer_id: uuid.UUID | None = None


class CustomerSessionCodeAuthenticateRequest(msgspec.Struct, kw_only=True):
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    organization_id: uuid.UUID | None = None
    email: EmailText | None = None


class CustomerSessionCodeAuthenticateResponse(msgspec.Struct, kw_only=True):
    token: str


class CustomerCustomerSession(msgspec.Struct, kw_only=True):
    expires_at: str
    return_url: str | None


class PortalAuthenticatedUser(msgspec.Struct, kw_only=True):
    type: str
    name: str | None
    email: str
    customer_id: str
    member_id: str | None = None
    role: str | None = None


def _error_spec(description: str, model: type = ApiError) -> ResponseSpec:
    return ResponseSpec(model, description=description, generate_examples=False)


_INVALID = _error_spec("Validation error (Polar's HTTPValidationError).", HTTPValidationError)
_THROTTLED = _error_spec("`TooManyRequests`: too many codes requested or wrong codes sent; see `Retry-After`.")
_BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
_UNAUTHORIZED = _error_spec("`Unauthorized`: missing, expired or revoked customer-session token.")


def _rate_limited(exc: RateLimited) -> Response[Any]:
    return api_error(429, "Too many requests. Try again later.", **{"Retry-After": str(exc.retry_after)})


class CustomerSessionController(Controller):
    path = "/v1/customer-portal/customer-session"
    tags = ["customer_portal.customer_session"]

    @post(
        "/request",
        status_code=202,
        summary="Request a login code by email",
        responses={422: _INVALID, 429: _THROTTLED},
    )
    async def request_code(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        data: JSONBody[CustomerSessionCodeRequest],
    ) -> Response[None]:
        organization = await org_queries.get_by_id(db, str(data.organization_id))
        if organization is not None:
            now = clock.now()
            try:
                issued = await service.request_code(
                    db,
                    settings,
                    now,
                    organization=organization,
                    email=data.email,
                    challenge_hash=codes.api_binding_digest(settings.secret_key, organization.id, data.email),
                    ip=client_ip(request, settings),
                )
            except RateLimited as exc:
                return _rate_limited(exc)
            if issued is not None:
                send_login_code(request.app.state.portal.mailer, settings, organization, issued, now)
        return Response(None, status_code=202)

    @post(
        "/authenticate",
        status_code=200,
        summary="Authenticate with a login code",
        responses={
            401: _error_spec("`CustomerSessionCodeInvalidOrExpired`: wrong, expired or spent code."),
            422: _INVALID,
            429: _THROTTLED,
        },
    )
    async def authenticate(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        data: JSONBody[CustomerSessionCodeAuthenticateRequest],
    ) -> Response[Any]:
        try:
            signed_in = await service.authenticate_api(
                db,
                settings,
                clock.now(),
                code=data.code,
                ip=client_ip(request, settings),
                organization_id=str(data.organization_id) if data.organization_id else None,
                email=data.email,
            )
        except RateLimited as exc:
            return _rate_limited(exc)
        except service.InvalidCode as exc:
            return api_error(401, str(exc), error="CustomerSessionCodeInvalidOrExpired")
        return Response(CustomerSessionCodeAuthenticateResponse(token=signed_in.token), status_code=200)

    @get("/introspect", summary="Introspect Customer Session", responses={401: _UNAUTHORIZED}, security=_BEARER)
    async def introspect(self, api_customer: NamedDependency[SessionContext]) -> CustomerCustomerSession:
        session = api_customer.session
        return CustomerCustomerSession(expires_at=session.expires_at, return_url=session.return_url)

    @get("/user", summary="Get Authenticated Portal User", responses={401: _UNAUTHORIZED}, security=_BEARER)
    async def user(self, api_customer: NamedDependency[SessionContext]) -> PortalAuthenticatedUser:
        customer = api_customer.customer
        return PortalAuthenticatedUser(
            type="customer", name=customer.name, email=customer.email, customer_id=customer.id
        )


ROUTES = [CustomerSessionController]
