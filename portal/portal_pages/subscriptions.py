"""Subscriptions: list, detail, cancel at period end (reason + comment), resume, and change plan through a
confirmation page. Every action is a POST (CSRF-checked by the app) answered with a 303; the rules live in
``portal.subscriptions.actions``."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, QueryParameter
from litestar.response import Redirect, Template

from portal.benefits.license_keys import add_interval
from portal.benefits.queries import list_product_benefits
from portal.clock import Clock, iso, parse_iso
from portal.db import Database
from portal.errors import NotFound
from portal.portal_pages.layout import base_path, not_found, render, see_other
from portal.sessions.store import SessionContext
from portal.subscriptions import actions
from portal.subscriptions.queries import (
    Subscription,
    get_plan_option,
    get_subscription,
    list_plan_options,
    list_subscriptions,
)


class CancelForm(msgspec.Struct, kw_only=True):
    cancellation_reason: str = ""
    cancellation_comment: str = ""


class ChangePlanForm(msgspec.Struct, kw_only=True):
    product_id: str


async def _own(db: Database, ctx: SessionContext, subscription_id: str) -> Subscription:
    subscription = await get_subscription(db, ctx.organization.id, ctx.customer.id, subscription_id)
    if subscription is None:
        raise not_found()
    return subscription


def _detail_path(ctx: SessionContext, subscription_id: str) -> str:
    return f"{base_path(ctx.organization)}/subscriptions/{subscription_id}"


class SubscriptionsController(Controller):
    path = "/{slug:str}/portal/subscriptions"
    include_in_schema = False

    @get("/", name="portal.subscriptions")
    async def subscriptions(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        portal_customer: NamedDependency[SessionContext],
    ) -> Template:
        ctx = portal_customer
        items = await list_subscriptions(db, ctx.organization.id, ctx.customer.id)
        return render("portal/subscriptions.html", request, ctx, active="subscriptions", subscriptions=items)

    @get("/{subscription_id:str}", name="portal.subscription")
    async def subscription(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        portal_customer: NamedDependency[SessionContext],
        subscription_id: FromPath[str],
    ) -> Template:
        ctx = portal_customer
        subscription = await _own(db, ctx, subscription_id)
        now = clock.now()
        can_change = actions.can_change_plan(ctx.organization, subscription, now)
        return render(
            "portal/subscription.html",
            request,
            ctx,
            active="subscriptions",
            subscription=subscription,
            can_cancel=actions.can_cancel(subscription, now),
            can_uncancel=actions.can_uncancel(subscription, now),
            can_change_plan=can_change and bool(await list_plan_options(db, subscription)),
        )

    @get("/{subscription_id:str}/cancel", name="portal.subscription.cancel_form")
    async def cancel_form(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        portal_customer: NamedDependency[SessionContext],
        subscription_id: FromPath[str],
    ) -> Response[Any]:
        """Cancelling is its own step (issue 22): what happens, the optional reason and comment, a confirm button.
        A subscription that cannot be canceled (already canceling or ended) goes back to its page."""
        ctx = portal_customer
        subscription = await _own(db, ctx, subscription_id)
        if not actions.can_cancel(subscription, clock.now()):
            return see_other(_detail_path(ctx, subscription_id))
        return render(
            "portal/cancel_subscription.html",
            request,
            ctx,
            active="subscriptions",
            subscription=subscription,
            reasons=actions.CANCELLATION_REASON_LABELS,
        )

    @post("/{subscription_id:str}/cancel", name="portal.subscription.cancel")
    async def cancel(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        portal_customer: NamedDependency[SessionContext],
        subscription_id: FromPath[str],
        data: Annotated[CancelForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect:
        try:
            await actions.cancel_subscription(
                db,
                portal_customer,
                subscription_id,
                now=clock.now(),
                reason=data.cancellation_reason or None,
                comment=data.cancellation_comment or None,
            )
        except NotFound:
            raise not_found() from None
        return see_other(_detail_path(portal_customer, subscription_id) + "?done=canceled")

    @post("/{subscription_id:str}/uncancel", name="portal.subscription.uncancel")
    async def uncancel(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        portal_customer: NamedDependency[SessionContext],
        subscription_id: FromPath[str],
    ) -> Redirect:
        try:
            await actions.uncancel_subscription(db, portal_customer, subscription_id, now=clock.now())
        except NotFound:
            raise not_found() from None
        return see_other(_detail_path(portal_customer, subscription_id) + "?done=uncanceled")

    @get("/{subscription_id:str}/change-plan", name="portal.subscription.plans")
    async def plans(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        portal_customer: NamedDependency[SessionContext],
        subscription_id: FromPath[str],
    ) -> Template:
        ctx = portal_customer
        subscription = await _own(db, ctx, subscription_id)
        if not actions.can_change_plan(ctx.organization, subscription, clock.now()):
            raise not_found()
        return render(
            "portal/change_plan.html",
            request,
            ctx,
            active="subscriptions",
            subscription=subscription,
            options=await list_plan_options(db, subscription),
        )

    @get("/{subscription_id:str}/change-plan/confirm", name="portal.subscription.plan_confirm")
    async def confirm_plan(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        portal_customer: NamedDependency[SessionContext],
        subscription_id: FromPath[str],
        product_id: Annotated[str, QueryParameter(name="product_id", max_length=64)],
    ) -> Template:
        ctx = portal_customer
        subscription = await _own(db, ctx, subscription_id)
        if not actions.can_change_plan(ctx.organization, subscription, clock.now()):
            raise not_found()
        option = await get_plan_option(db, subscription, product_id)
        if option is None:
            raise not_found()
        # What the change does: benefits gained and lost, and the first period billed at the new price and
        # interval (it starts when the current, already paid, period ends: a monthly→yearly change runs a year).
        now_benefits = await list_product_benefits(db, ctx.organization.id, subscription.product_id)
        new_benefits = await list_product_benefits(db, ctx.organization.id, option.product_id)
        kept_ids = {benefit.id for benefit in now_benefits} & {benefit.id for benefit in new_benefits}
        next_start = parse_iso(subscription.current_period_end) if subscription.current_period_end else clock.now()
        next_end = add_interval(next_start, option.recurring_interval, option.recurring_interval_count)
        return render(
            "portal/change_plan_confirm.html",
            request,
            ctx,
            active="subscriptions",
            subscription=subscription,
            option=option,
            gained=[benefit for benefit in new_benefits if benefit.id not in kept_ids],
            lost=[benefit for benefit in now_benefits if benefit.id not in kept_ids],
            kept=[benefit for benefit in new_benefits if benefit.id in kept_ids],
            next_period=(iso(next_start), iso(next_end)),
        )

    @post("/{subscription_id:str}/change-plan", name="portal.subscription.change_plan")
    async def change_plan(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        portal_customer: NamedDependency[SessionContext],
        subscription_id: FromPath[str],
        data: Annotated[ChangePlanForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect:
        try:
            await actions.change_plan(db, portal_customer, subscription_id, data.product_id, now=clock.now())
        except NotFound:
            raise not_found() from None
        return see_other(_detail_path(portal_customer, subscription_id) + "?done=plan_changed")
