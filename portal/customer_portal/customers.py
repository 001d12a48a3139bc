"""``/v1/customer-portal/customers/me``: the signed-in customer (GET), billing details (PATCH, the same
validation as the portal's billing page), and the email change flow (``email-update/request|check|verify``),
off unless the organization enables ``allow_email_change``. Payment methods need a payment processor: 403
``NotSupported``."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter

from portal.clock import Clock
from portal.customer_portal.errors import (
    BEARER,
    UNAUTHORIZED,
    UNSUPPORTED_RESPONSES,
    PolarAPIError,
    not_permitted,
    not_supported,
    responses,
)
from portal.customer_portal.inputs import (
    CustomerEmailUpdateRequest,
    CustomerEmailUpdateVerifyRequest,
    CustomerPortalCustomerUpdate,
)
from portal.customers import email_change
from portal.customers.billing import BillingForm, save_billing
from portal.customers.reads import get_customer
from portal.db import Database, Transaction
from portal.errors import InvalidInput
from portal.polar import convert
from portal.polar.models import ApiError, CustomerEmailUpdateVerifyResponse, CustomerPortalCustomer
from portal.scope import Scope
from portal.sessions import rate_limit
from portal.sessions.emails import send_email_change
from portal.sessions.store import SessionContext, create_session
from portal.settings import Settings
from portal.web import client_ip

API_SESSION_TTL = 3600  # seconds, like the customer sessions POST /v1/customer-sessions/ mints
EMAIL_CHANGE_OFF = "Changing the email address is not enabled by this seller."
_CUSTOMER_NOT_READY = ResponseSpec(
    ApiError, description="`CustomerNotReady`: no payment processor.", generate_examples=False
)
_THROTTLED = ResponseSpec(
    ApiError, description="`TooManyRequests`: too many wrong tokens; see `Retry-After`.", generate_examples=False
)


class CustomersController(Controller):
    path = "/customers/me"
    tags = ["customer_portal.customers"]

    @get("/", summary="Get Customer", responses=responses(found=False), security=BEARER)
    async def get_me(self, api_customer: NamedDependency[SessionContext]) -> CustomerPortalCustomer:
        return convert.portal_customer_out(api_customer.customer)

    @patch(
        "/",
        summary="Update Customer",
        description="Update billing name, address and tax id.",
        responses=responses(found=False),
        security=BEARER,
    )
    async def update_me(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        api_customer: NamedDependency[SessionContext],
        data: JSONBody[CustomerPortalCustomerUpdate],
    ) -> CustomerPortalCustomer:
        ctx = api_customer
        if data.default_payment_method_id is None:
            raise InvalidInput("Default payment method cannot be reset to null.", "default_payment_method_id")
        if data.default_payment_method_id is not msgspec.UNSET:
            raise InvalidInput("Payment method not found.", "default_payment_method_id")
        customer = ctx.customer
        form = BillingForm.from_customer(customer.billing_name, customer.billing_address_dict, customer.tax_id)
        if data.billing_name is not msgspec.UNSET:
            form.billing_name = data.billing_name or ""
        if data.billing_address is None:
            # Polar: an address can be changed, never removed (whether or not one is stored).
            raise InvalidInput("Customer billing address cannot be reset to null once set.", "billing_address")
        if data.billing_address is not msgspec.UNSET:
            address = data.billing_address
            for field in ("line1", "line2", "postal_code", "city", "state", "country"):
                setattr(form, field, getattr(address, field) or "")
        if data.tax_id is not msgspec.UNSET:
            # Unlike Polar (where null keeps the stored one), null or "" removes the customer's tax ID: it is
            # their data to withdraw. A new one is validated against the billing country, as in Polar.
            form.tax_id = data.tax_id or ""
        errors = await save_billing(db, ctx, form, now=clock.now(), api=True)
        if errors:
            field, message = next(iter(errors.items()))
            api_fields = ("billing_name", "tax_id", "billing_address")
            raise InvalidInput(message, field if field in api_fields else f"billing_address.{field}")
        fresh = await get_customer(db, Scope.of_organization(ctx.organization.id), customer.id)
        assert fresh is not None
        return convert.portal_customer_out(fresh)

    # --- email change ------------------------------------------------------------------------------------

    @post(
        "/email-update/request",
        status_code=202,
        summary="Request Email Change",
        description="Emails a verification code to the new address. 403 when the seller disables email changes.",
        responses={
            **responses((403, "`NotPermitted`: email changes are disabled."), found=False),
            429: ResponseSpec(
                ApiError,
                description="`TooManyRequests`: too many verification mails; see `Retry-After`.",
                generate_examples=False,
            ),
        },
        security=BEARER,
    )
    async def request_email_update(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        api_customer: NamedDependency[SessionContext],
        data: JSONBody[CustomerEmailUpdateRequest],
    ) -> Response[None]:
        ctx = api_customer
        try:
            requested = await email_change.request_change(
                db, settings, ctx, data.email, ip=client_ip(request, settings), now=clock.now()
            )
        except email_change.EmailChangeDisabled:
            raise not_permitted(EMAIL_CHANGE_OFF) from None
        except rate_limit.RateLimited as exc:
            raise _throttled(exc) from None
        if requested.token is not None:  # None: the address is a customer's; the same answer, no mail
            send_email_change(
                request.app.state.portal.mailer,
                settings,
                ctx.organization,
                to=requested.email,
                token=requested.token,
                minutes=requested.minutes,
                locale=ctx.customer.locale or ctx.organization.default_locale,
            )
        return Response(None, status_code=202)

    @get(
        "/email-update/check",
        status_code=204,
        summary="Check Email Change Token",
        description="204 when the verification token is valid, 401 otherwise. No authentication.",
        responses={401: responses(auth=True)[401], 422: responses(auth=False)[422], 429: _THROTTLED},
    )
    async def check_email_update(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        token: Annotated[str, QueryParameter(max_length=200)],
    ) -> None:
        try:
            await email_change.check_token(db, settings, token, ip=client_ip(request, settings), now=clock.now())
        except rate_limit.RateLimited as exc:
            raise _throttled(exc) from None
        except email_change.InvalidEmailChangeToken:
            raise PolarAPIError(401, "Unauthorized", "Invalid or expired verification token.") from None

    @post(
        "/email-update/verify",
        status_code=200,
        summary="Verify Email Change",
        description="Changes the email and answers a new customer-session token. No authentication.",
        responses={
            401: responses(auth=True)[401],
            422: responses(auth=False)[422],
            429: _THROTTLED,
        },
    )
    async def verify_email_update(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        data: JSONBody[CustomerEmailUpdateVerifyRequest],
    ) -> CustomerEmailUpdateVerifyResponse:
        now = clock.now()

        async def mint(tx: Transaction, changed: email_change.EmailChanged) -> str:
            token, _ = await create_session(
                tx,
                secret=settings.secret_key,
                kind="api",
                organization_id=changed.organization_id,
                customer_id=changed.customer_id,
                now=now,
                ttl_seconds=API_SESSION_TTL,
                origin="email_change",
            )
            return token

        try:
            token = await email_change.verify(
                db, settings, data.token, ip=client_ip(request, settings), now=now, then=mint
            )
        except rate_limit.RateLimited as exc:
            raise _throttled(exc) from None
        except email_change.InvalidEmailChangeToken:
            raise PolarAPIError(401, "Unauthorized", "Invalid or expired verification token.") from None
        return CustomerEmailUpdateVerifyResponse(token=token)

    # --- payment methods: need a payment processor --------------------------------------------------------

    @get(
        "/payment-methods",
        summary="List Customer Payment Methods (not supported)",
        responses=UNSUPPORTED_RESPONSES,
        security=BEARER,
    )
    async def list_payment_methods(self, api_customer: NamedDependency[SessionContext]) -> None:
        raise not_supported("Payment methods")

    @post(
        "/payment-methods",
        summary="Add Customer Payment Method (not supported)",
        responses=UNSUPPORTED_RESPONSES,
        security=BEARER,
    )
    async def add_payment_method(self, api_customer: NamedDependency[SessionContext]) -> None:
        raise not_supported("Payment methods")

    @post(
        "/payment-methods/confirm",
        summary="Confirm Customer Payment Method (not supported)",
        description=(
            "403 `CustomerNotReady`: Polar's answer when the customer has no payment-processor account, which is "
            "always so without a payment processor (polar-sdk reads this method's 403 as `CustomerNotReady`)."
        ),
        responses={401: UNAUTHORIZED, 403: _CUSTOMER_NOT_READY},
        security=BEARER,
    )
    async def confirm_payment_method(self, api_customer: NamedDependency[SessionContext]) -> None:
        raise PolarAPIError(
            403,
            "CustomerNotReady",
            "Customer is not ready for this operation: payment methods need a payment processor, "
            "which this portal does not have.",
        )

    @delete(
        "/payment-methods/{id:str}",
        status_code=204,
        summary="Delete Customer Payment Method (not supported)",
        responses=UNSUPPORTED_RESPONSES,
        security=BEARER,
    )
    async def delete_payment_method(self, api_customer: NamedDependency[SessionContext], id: FromPath[str]) -> None:
        raise not_supported("Payment methods")


def _throttled(exc: rate_limit.RateLimited) -> PolarAPIError:
    return PolarAPIError(
        429, "TooManyRequests", "Too many requests. Try again later.", headers={"Retry-After": str(exc.retry_after)}
    )
