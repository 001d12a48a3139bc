"""``/v1/customer-portal/customers/me``: the signed-in customer (GET), billing details (PATCH, the same
validation as the portal's billing page), and the email change flow (``email-update/request|check|verify``),
off unless the organization enables ``allow_email_change``. Payment methods need a payment processor: 403
``NotSupported``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter

from portal.clock import Clock, iso, new_id
from portal.customer_portal import serialize
from portal.customer_portal.errors import (
    BEARER,
    UNAUTHORIZED,
    UNSUPPORTED_RESPONSES,
    PolarAPIError,
    not_permitted,
    not_supported,
    responses,
)
from portal.customer_portal.models import (
    CustomerEmailUpdateRequest,
    CustomerEmailUpdateVerifyRequest,
    CustomerEmailUpdateVerifyResponse,
    CustomerPortalCustomer,
    CustomerPortalCustomerUpdate,
    PolarErrorBody,
)
from portal.customers.billing import BillingForm, save_billing
from portal.customers.reads import get_customer, get_customer_by_email
from portal.customers.service import CustomerUpdate, update_customer
from portal.db import Database, Transaction
from portal.errors import Conflict, InvalidInput
from portal.mail import MailMessage, send_in_background
from portal.organizations.queries import get_by_id
from portal.scope import Scope
from portal.security import hmac_digest, new_token
from portal.sessions import rate_limit
from portal.sessions.service import MailBudget
from portal.sessions.store import SessionContext, create_session
from portal.settings import Settings
from portal.subscriptions.actions import record_event
from portal.web import client_ip

EMAIL_UPDATE_TTL = timedelta(minutes=30)
API_SESSION_TTL = 3600  # seconds, like the customer sessions POST /v1/customer-sessions/ mints
EMAIL_CHANGE_OFF = "Changing the email address is not enabled by this seller."
_CUSTOMER_NOT_READY = ResponseSpec(
    PolarErrorBody, description="`CustomerNotReady`: no payment processor.", generate_examples=False
)
_THROTTLED = ResponseSpec(
    PolarErrorBody, description="`TooManyRequests`: too many wrong tokens; see `Retry-After`.", generate_examples=False
)


def _digest(settings: Settings, token: str) -> str:
    return hmac_digest(settings.secret_key, token, purpose="email-update")


def _verification_email(settings: Settings, org_name: str, to: str, token: str, minutes: int) -> MailMessage:
    text = (
        f"Someone asked to change the email address of your {org_name} customer account to this address.\n\n"
        f"Your verification code: {token}\n\n"
        f"It is valid for {minutes} minutes. If you did not ask for this, ignore this email: nothing changes.\n"
    )
    return MailMessage(
        to=to,
        subject=f"Confirm your new email address for {org_name}",
        text=text,
        console_note=f"Email change code for {to}: {token}",
    )


class CustomersController(Controller):
    path = "/customers/me"
    tags = ["customer_portal.customers"]

    @get("/", summary="Get Customer", responses=responses(found=False), security=BEARER)
    async def get_me(self, api_customer: NamedDependency[SessionContext]) -> CustomerPortalCustomer:
        return serialize.customer_out(api_customer.customer)

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
        return serialize.customer_out(fresh)

    # --- email change ------------------------------------------------------------------------------------

    @post(
        "/email-update/request",
        status_code=202,
        summary="Request Email Change",
        description="Emails a verification code to the new address. 403 when the seller disables email changes.",
        responses={
            **responses((403, "`NotPermitted`: email changes are disabled."), found=False),
            429: ResponseSpec(
                PolarErrorBody,
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
        if not ctx.organization.allow_email_change:
            raise not_permitted(EMAIL_CHANGE_OFF)
        email = data.email.strip()
        if email.lower() == ctx.customer.email.lower():
            raise InvalidInput("this is already your email address", "email")
        # An address that is already a customer's gets the same answer and the same writes, but no mail: the
        # answer must not tell who is a customer (issue 17.3); such a change would fail at verification anyway.
        in_use = await get_customer_by_email(db, Scope.of_organization(ctx.organization.id), email) is not None
        now = clock.now()
        # Throttled like sign-in (issue 17.3): per customer, per target address, per client network (IPv6 /64).
        budget = MailBudget.for_email_change(
            settings,
            organization_id=ctx.organization.id,
            customer_id=ctx.customer.id,
            email=email,
            ip=client_ip(request, settings),
        )
        # 12 characters of A-Z0-9 (~62 bits): short enough to type, far too many to guess in 30 minutes.
        token = "".join(ch for ch in new_token(24).upper() if ch.isalnum())[:12]
        try:
            await budget.check(db, now)  # a spent budget is refused from memory, before any write
            async with db.write() as tx:
                await budget.charge(tx, now)
                await _store_email_update(tx, settings, ctx, email, token, now)
        except rate_limit.RateLimited as exc:
            raise _throttled(exc) from None
        budget.charged(db, now)
        if in_use:
            return Response(None, status_code=202)
        minutes = int(EMAIL_UPDATE_TTL.total_seconds() // 60)
        name = ctx.organization.name
        send_in_background(
            request.app.state.portal.mailer, lambda: _verification_email(settings, name, email, token, minutes)
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
        now = clock.now()
        network = await _guess_allowed(db, request, settings, now)
        if await _pending(db, settings, token.strip().upper(), iso(now)) is None:
            _guess_failed(db, network, now)
            raise PolarAPIError(401, "Unauthorized", "Invalid or expired verification token.")

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
        network = await _guess_allowed(db, request, settings, now)
        digest = _digest(settings, data.token.strip().upper())
        if await _pending(db, settings, data.token.strip().upper(), iso(now)) is None:
            # A wrong token is answered from a reader: a flood of them never takes the write lock.
            _guess_failed(db, network, now)
            raise PolarAPIError(401, "Unauthorized", "Invalid or expired verification token.")
        async with db.write() as tx:
            row = await tx.fetchone(
                """
                SELECT u.id, u.organization_id, u.customer_id, u.email, o.allow_email_change
                FROM customer_email_updates u
                JOIN organizations o ON o.id = u.organization_id
                WHERE u.token_hash = ? AND u.used_at IS NULL AND u.expires_at > ?
                """,
                (digest, iso(now)),
            )
            if row is None or not row["allow_email_change"]:
                raise PolarAPIError(401, "Unauthorized", "Invalid or expired verification token.")
            await tx.execute("UPDATE customer_email_updates SET used_at = ? WHERE id = ?", (iso(now), row["id"]))
            try:
                await update_customer(
                    tx,
                    row["customer_id"],
                    CustomerUpdate(email=row["email"], email_verified=True),
                    now=now,
                    organization_id=row["organization_id"],
                )
            except Conflict:
                raise InvalidInput("this email address is already in use", "email") from None
            token, _ = await create_session(
                tx,
                secret=settings.secret_key,
                kind="api",
                organization_id=row["organization_id"],
                customer_id=row["customer_id"],
                now=now,
                ttl_seconds=API_SESSION_TTL,
                origin="email_change",
            )
            await record_event(
                tx,
                organization_id=row["organization_id"],
                customer_id=row["customer_id"],
                name="customer.email_updated",
                subject_id=row["customer_id"],
                now=now,
                data={"email": row["email"]},
            )
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


async def _guess_allowed(db: Database, request: Request[Any, Any, Any], settings: Settings, now: Any) -> str:
    """The client's network, once its and the instance's budgets of wrong verification tokens allow another guess
    (429 otherwise, answered from memory)."""
    network = rate_limit.network_key(client_ip(request, settings))
    limiter, ts = rate_limit.limiter(db), int(now.timestamp())
    try:
        await limiter.check(rate_limit.EMAIL_UPDATE_FAILURE_PER_IP, network, ts)
        await limiter.check(rate_limit.EMAIL_UPDATE_FAILURE_GLOBAL, rate_limit.GLOBAL, ts)
    except rate_limit.RateLimited as exc:
        raise _throttled(exc) from None
    return network


def _guess_failed(db: Database, network: str, now: Any) -> None:
    limiter, ts = rate_limit.limiter(db), int(now.timestamp())
    limiter.add(rate_limit.EMAIL_UPDATE_FAILURE_PER_IP, network, ts)
    limiter.add(rate_limit.EMAIL_UPDATE_FAILURE_GLOBAL, rate_limit.GLOBAL, ts)


async def _pending(db: Database, settings: Settings, token: str, now: str) -> Any:
    row = await db.fetchone(
        """
        SELECT u.id, u.organization_id
        FROM customer_email_updates u
        WHERE u.token_hash = ? AND u.used_at IS NULL AND u.expires_at > ?
        """,
        (_digest(settings, token), now),
    )
    if row is None:
        return None
    organization = await get_by_id(db, row["organization_id"])
    return row if organization is not None and organization.allow_email_change else None


async def _store_email_update(
    tx: Transaction, settings: Settings, ctx: SessionContext, email: str, token: str, now: datetime
) -> None:
    """Record a requested change (a new request cancels older unused ones)."""
    # A new request cancels older unused ones.
    await tx.execute(
        "UPDATE customer_email_updates SET used_at = ? WHERE customer_id = ? AND used_at IS NULL",
        (iso(now), ctx.customer.id),
    )
    await tx.execute(
        """
        INSERT INTO customer_email_updates (
            id,
            organization_id,
            customer_id,
            email,
            token_hash,
            expires_at,
            created_at
        ) VALUES (?, ?, ?, ?, ?, ?, ?)
        """,
        (
            new_id(),
            ctx.organization.id,
            ctx.customer.id,
            email,
            _digest(settings, token),
            iso(now + EMAIL_UPDATE_TTL),
            iso(now),
        ),
    )
    await record_event(
        tx,
        organization_id=ctx.organization.id,
        customer_id=ctx.customer.id,
        name="customer.email_update_requested",
        subject_id=ctx.customer.id,
        now=now,
    )
