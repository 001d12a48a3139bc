"""``/v1/customer-portal/subscriptions``: list (filters ``product_id``, ``active``, ``query``), get, update
(cancel at period end with reason/comment, uncancel, change plan) and cancel (DELETE). The rules and events are
``portal.subscriptions.actions`` (shared with the portal pages); this module maps their refusals to Polar's
error classes: 403 ``AlreadyCanceledSubscription``, 409 ``SubscriptionNotScheduledToCancel``, 403
``UpdateSubscriptionPlanNotAllowed``, 422 for an unknown product. Seats, units and pause/resume: 403 with the
error Polar uses when an organization disables them.

A subscription billed by a payment processor (``portal.subscriptions.remote``) is changed there first: an action
its processor cannot receive answers 403 ``NotPermitted`` naming how to reach the seller; the processor refusing
answers 422 at the action's field, the processor unreachable 502 ``ProcessorUnavailable``; nothing changes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Literal

import msgspec
from litestar import Controller, delete, get, patch
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from portal.clock import Clock
from portal.customer_portal.common import IdList, Limit, Page, Search, clamp_limit, listing
from portal.customer_portal.errors import BEARER, PolarAPIError, not_found, responses
from portal.customer_portal.inputs import CustomerSubscriptionUpdate
from portal.db import Database
from portal.errors import Conflict, InvalidInput, NotFound
from portal.pagination import ListResource
from portal.polar import loaders
from portal.polar.models import CustomerSubscription
from portal.scope import Scope
from portal.sessions.store import SessionContext
from portal.settings import Settings
from portal.subscriptions import actions, remote
from portal.subscriptions import reads as subscription_reads

SubscriptionSort = Literal[
    "started_at", "-started_at", "amount", "-amount", "status", "-status", "organization", "-organization",
    "product", "-product",
]  # fmt: skip
NOT_FOUND = "Subscription not found."
ALREADY_CANCELED = "This subscription is already canceled or will be at the end of the period."

UPDATE_RESPONSES = responses(
    (403, "`AlreadyCanceledSubscription`, `UpdateSubscriptionPlanNotAllowed`, `UpdateSubscriptionSeatsNotAllowed`, "
     "`UpdateSubscriptionUnitsNotAllowed`, `PauseResumeNotAllowed` or `NotPermitted` (the seller does not let "
     "customers cancel)."),
    (409, "`SubscriptionNotScheduledToCancel`: uncancel of a subscription that is not scheduled to cancel."),
    (410, "`ResourceUnavailable`: uncancel of a subscription that has ended."),
    (502, "`ProcessorUnavailable`: the payment processor billing the subscription could not be reached."),
)  # fmt: skip


def already_canceled() -> PolarAPIError:
    return PolarAPIError(403, "AlreadyCanceledSubscription", ALREADY_CANCELED)


async def _subscription(db: Database, ctx: SessionContext, subscription_id: str) -> CustomerSubscription:
    row = await subscription_reads.get_subscription_row(
        db, Scope.of_customer(ctx.organization.id, ctx.customer.id), subscription_id
    )
    if row is None:
        raise not_found(NOT_FOUND)
    return (await loaders.customer_subscriptions(db, ctx.organization, [row]))[0]


@asynccontextmanager
async def processor_errors(ctx: SessionContext, field: str) -> AsyncIterator[None]:
    """Answers for a subscription billed by a payment processor that did not take the action."""
    try:
        yield
    except remote.ActionUnavailable:
        contact = ctx.organization.support_email
        reach = f" Contact {ctx.organization.name} at {contact}." if contact else f" Contact {ctx.organization.name}."
        raise PolarAPIError(
            403, "NotPermitted", "This subscription is managed by the seller's payment processor." + reach
        ) from None
    except remote.ProcessorFailed as exc:
        if exc.unavailable:
            raise PolarAPIError(
                502,
                "ProcessorUnavailable",
                f"{exc.processor} could not be reached; nothing was changed. Try again later.",
            ) from None
        raise InvalidInput(f"{exc.processor} refused the change; nothing was changed.", field) from None


async def _cancel(
    db: Database, settings: Settings, ctx: SessionContext, subscription_id: str, clock: Clock, **why: str | None
) -> None:
    try:
        async with processor_errors(ctx, "cancel_at_period_end"):
            await actions.cancel_subscription(db, settings, ctx, subscription_id, now=clock.now(), **why)
    except actions.CancelNotAllowed:
        raise PolarAPIError(403, "NotPermitted", "Canceling subscriptions is not allowed by this seller.") from None
    except NotFound:
        raise not_found(NOT_FOUND) from None
    except Conflict:
        raise already_canceled() from None


class SubscriptionsController(Controller):
    path = "/subscriptions"
    tags = ["customer_portal.subscriptions"]
    security = BEARER

    @get("/", summary="List Subscriptions", responses=responses(found=False))
    async def list_subscriptions(
        self,
        db: NamedDependency[Database],
        api_customer: NamedDependency[SessionContext],
        product_id: IdList = None,
        active: Annotated[bool | None, QueryParameter(description="Only live (true) or ended (false).")] = None,
        search: Search = None,
        page: Page = 1,
        limit: Limit = 10,
        sorting: Annotated[list[SubscriptionSort] | None, QueryParameter()] = None,
    ) -> ListResource[CustomerSubscription]:
        limit = clamp_limit(limit)
        ctx = api_customer
        rows, total = await subscription_reads.list_subscription_rows(
            db,
            Scope.of_customer(ctx.organization.id, ctx.customer.id),
            product_id=product_id,
            active=active,
            query=search,
            sorting=sorting,
            page_number=page,
            limit=limit,
        )
        return listing(await loaders.customer_subscriptions(db, ctx.organization, rows), total, limit)

    @get("/{id:str}", summary="Get Subscription", responses=responses())
    async def get_subscription(
        self, db: NamedDependency[Database], api_customer: NamedDependency[SessionContext], id: FromPath[str]
    ) -> CustomerSubscription:
        return await _subscription(db, api_customer, id)

    @patch(
        "/{id:str}",
        summary="Update Subscription",
        description=(
            "One change per request: `{cancel_at_period_end: true, cancellation_reason?, cancellation_comment?}`, "
            "`{cancel_at_period_end: false}` (uncancel) or `{product_id}` (plan change, when the seller allows it)."
        ),
        responses=UPDATE_RESPONSES,
    )
    async def update_subscription(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        settings: NamedDependency[Settings],
        api_customer: NamedDependency[SessionContext],
        id: FromPath[str],
        data: JSONBody[CustomerSubscriptionUpdate],
    ) -> CustomerSubscription:
        ctx = api_customer
        current = await _subscription(db, ctx, id)
        if data.product_id is not msgspec.UNSET:
            await _change_plan(db, settings, ctx, current, data.product_id, clock)
        elif data.seats is not msgspec.UNSET:
            raise PolarAPIError(403, "UpdateSubscriptionSeatsNotAllowed", "Updating subscription seats is not allowed.")
        elif data.units is not msgspec.UNSET:
            raise PolarAPIError(403, "UpdateSubscriptionUnitsNotAllowed", "Updating subscription units is not allowed.")
        elif data.pause_at_period_end is not msgspec.UNSET or data.resume is not msgspec.UNSET:
            raise PolarAPIError(403, "PauseResumeNotAllowed", "Pausing and resuming subscriptions is not enabled.")
        elif data.cancel_at_period_end is True:
            await _cancel(
                db, settings, ctx, id, clock, reason=data.cancellation_reason, comment=data.cancellation_comment
            )  # fmt: skip
        elif data.cancel_at_period_end is False:
            await _uncancel(db, settings, ctx, current, clock)
        elif data.pending_update is None:
            # Clearing a scheduled change: Portal schedules none, so there is never one to clear (Polar's 422).
            raise InvalidInput("This subscription has no pending update to clear.", "pending_update")
        return await _subscription(db, ctx, id)

    @delete(
        "/{id:str}",
        status_code=200,
        summary="Cancel Subscription",
        description="Cancel at the end of the current period (benefits stay until then).",
        responses=responses(
            (
                403,
                "`AlreadyCanceledSubscription` or `NotPermitted` (billed by a processor that cannot cancel, or the "
                "seller does not let customers cancel).",
            ),
            (502, "`ProcessorUnavailable`: the payment processor billing the subscription could not be reached."),
        ),
    )
    async def cancel_subscription(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        settings: NamedDependency[Settings],
        api_customer: NamedDependency[SessionContext],
        id: FromPath[str],
    ) -> CustomerSubscription:
        await _cancel(db, settings, api_customer, id, clock)
        return await _subscription(db, api_customer, id)


async def _uncancel(
    db: Database, settings: Settings, ctx: SessionContext, current: CustomerSubscription, clock: Clock
) -> None:
    """Polar's order: an ended subscription is gone (410 ``ResourceUnavailable``) before any other check."""
    if current.ended_at is not None:
        raise PolarAPIError(410, "ResourceUnavailable", "This subscription has ended and cannot be uncanceled.")
    if not current.cancel_at_period_end:
        if current.ended_at is not None or current.status not in actions.CANCELABLE_STATUSES:
            raise already_canceled()
        raise PolarAPIError(409, "SubscriptionNotScheduledToCancel", "This subscription is not scheduled to cancel.")
    try:
        async with processor_errors(ctx, "cancel_at_period_end"):
            await actions.uncancel_subscription(db, settings, ctx, current.id, now=clock.now())
    except NotFound:
        raise not_found(NOT_FOUND) from None
    except Conflict:
        raise already_canceled() from None


async def _change_plan(
    db: Database, settings: Settings, ctx: SessionContext, current: CustomerSubscription, product_id: str, clock: Clock
) -> None:
    if not ctx.organization.allow_plan_change:
        raise PolarAPIError(403, "UpdateSubscriptionPlanNotAllowed", "Updating subscription plan is not allowed.")
    try:
        async with processor_errors(ctx, "product_id"):
            await actions.change_plan(db, settings, ctx, current.id, product_id, now=clock.now())
    except actions.PlanChangeNotAllowed:
        raise PolarAPIError(
            403, "UpdateSubscriptionPlanNotAllowed", "Updating subscription plan is not allowed."
        ) from None
    except NotFound as exc:
        if exc.field == "product_id":
            raise InvalidInput(
                "Product does not exist or is not available for this subscription.", "product_id"
            ) from None
        raise not_found(NOT_FOUND) from None
    except Conflict:
        raise already_canceled() from None
