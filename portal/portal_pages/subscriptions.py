"""Subscriptions: list, detail, cancel at period end (reason + comment), resume, and change plan through a
confirmation page. Every action is a POST (CSRF-checked by the app) answered with a 303; the rules live in
``portal.subscriptions.actions``.

A subscription billed by a payment processor (``portal.subscriptions.remote``) offers only the actions its
processor can receive (else the page says how to reach the seller); when the processor refuses or is down the
customer comes back to the page with a notice (``?failed=``) and nothing changed. "Update payment method" sends
the customer to the processor's own page (only where the seller enabled it) and back."""

from __future__ import annotations

from typing import Annotated, Any, NoReturn

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, QueryParameter
from litestar.response import Redirect, Template

from portal.benefits.license_keys import add_interval
from portal.clock import Clock, iso, parse_iso
from portal.connectors.base import Action
from portal.db import Database
from portal.errors import NotFound
from portal.i18n import lazy_gettext as _l
from portal.portal_pages.layout import base_path, not_found, render, see_other
from portal.products.reads import list_product_benefits
from portal.scope import Scope
from portal.sessions.store import SessionContext
from portal.settings import Settings
from portal.subscriptions import actions, remote
from portal.subscriptions.reads import (
    PlanOption,
    Subscription,
    get_plan_option,
    get_subscription,
    list_plan_options,
    list_subscriptions,
)
from portal.web import CSP

# Why an action sent to the payment processor did not happen (``?failed=``: a key, nothing echoed).
FAILURES = {
    "unavailable": _l("This change can't be made here. Please contact the seller."),
    "processor_down": _l("We couldn't reach the payment processor, so nothing was changed. Please try again later."),
    "processor_refused": _l(
        "The payment processor refused this change, so nothing was changed. Please contact the seller."
    ),
}


class CancelForm(msgspec.Struct, kw_only=True):
    cancellation_reason: str = ""
    cancellation_comment: str = ""


class ChangePlanForm(msgspec.Struct, kw_only=True):
    product_id: str


async def _own(db: Database, ctx: SessionContext, subscription_id: str) -> Subscription:
    subscription = await get_subscription(db, Scope.of_customer(ctx.organization.id, ctx.customer.id), subscription_id)
    if subscription is None:
        raise not_found()
    return subscription


def _detail_path(ctx: SessionContext, subscription_id: str) -> str:
    return f"{base_path(ctx.organization)}/subscriptions/{subscription_id}"


def _failed(ctx: SessionContext, subscription_id: str, exc: Exception) -> Redirect:
    if isinstance(exc, remote.ProcessorFailed):
        key = "processor_down" if exc.unavailable else "processor_refused"
    else:
        key = "unavailable"
    return see_other(_detail_path(ctx, subscription_id) + f"?failed={key}")


async def _plan_options(db: Database, ctx: SessionContext, subscription: Subscription) -> list[PlanOption]:
    """The plans offered: for a subscription billed by a processor, only products mapped to one of its prices."""
    options = await list_plan_options(db, subscription)
    source = await remote.source_of(db, ctx.organization.id, subscription.id)
    if not remote.offers(source, "change_plan"):
        return []
    prices = await remote.plan_prices(db, source, [option.product_id for option in options])
    return options if prices is None else [option for option in options if option.product_id in prices]


def _not_offered() -> NoReturn:
    raise not_found()


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
        items = await list_subscriptions(db, Scope.of_customer(ctx.organization.id, ctx.customer.id))
        return render("portal/subscriptions.html", request, ctx, active="subscriptions", subscriptions=items)

    @get("/{subscription_id:str}", name="portal.subscription")
    async def subscription(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        settings: NamedDependency[Settings],
        portal_customer: NamedDependency[SessionContext],
        subscription_id: FromPath[str],
    ) -> Template:
        ctx = portal_customer
        subscription = await _own(db, ctx, subscription_id)
        now = clock.now()
        source = await remote.source_of(db, ctx.organization.id, subscription.id)
        # What the rules allow, then what the subscription's processor (if any) can receive.
        allowed: dict[Action, bool] = {
            "cancel": ctx.organization.allow_cancel and actions.can_cancel(subscription, now),
            "uncancel": actions.can_uncancel(subscription, now),
            "change_plan": actions.can_change_plan(ctx.organization, subscription, now)
            and bool(await list_plan_options(db, subscription)),
        }
        offered = {action: ok and remote.offers(source, action) for action, ok in allowed.items()}
        if offered["change_plan"]:
            offered["change_plan"] = bool(await _plan_options(db, ctx, subscription))
        origins = remote.redirect_origins(settings, source) if subscription.is_live else ()
        page = render(
            "portal/subscription.html",
            request,
            ctx,
            active="subscriptions",
            subscription=subscription,
            can_cancel=offered["cancel"],
            can_uncancel=offered["uncancel"],
            can_change_plan=offered["change_plan"],
            can_update_payment_method=bool(origins),
            # The rules allow an action its processor cannot receive: say how to reach the seller instead.
            managed_by=source.label if source and any(allowed[a] and not offered[a] for a in allowed) else None,
            manage_url=source.manage_url if source else None,
            action_failure=FAILURES.get(request.query_params.get("failed") or ""),
        )
        if origins:
            # The payment-method form redirects to the processor: the form-action CSP must allow its origin.
            page.headers["Content-Security-Policy"] = CSP.replace(
                "form-action 'self'", "form-action 'self' " + " ".join(origins)
            )
        return page

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
        A subscription that cannot be canceled (already canceling or ended, or its processor cannot receive a
        cancellation) goes back to its page."""
        ctx = portal_customer
        subscription = await _own(db, ctx, subscription_id)
        source = await remote.source_of(db, ctx.organization.id, subscription.id)
        if not (
            ctx.organization.allow_cancel
            and actions.can_cancel(subscription, clock.now())
            and remote.offers(source, "cancel")
        ):
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
        settings: NamedDependency[Settings],
        portal_customer: NamedDependency[SessionContext],
        subscription_id: FromPath[str],
        data: Annotated[CancelForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect:
        try:
            await actions.cancel_subscription(
                db,
                settings,
                portal_customer,
                subscription_id,
                now=clock.now(),
                reason=data.cancellation_reason or None,
                comment=data.cancellation_comment or None,
            )
        except (NotFound, actions.CancelNotAllowed):
            raise not_found() from None  # the seller does not let customers cancel: no such action here
        except (remote.ActionUnavailable, remote.ProcessorFailed) as exc:
            return _failed(portal_customer, subscription_id, exc)
        return see_other(_detail_path(portal_customer, subscription_id) + "?done=canceled")

    @post("/{subscription_id:str}/uncancel", name="portal.subscription.uncancel")
    async def uncancel(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        settings: NamedDependency[Settings],
        portal_customer: NamedDependency[SessionContext],
        subscription_id: FromPath[str],
    ) -> Redirect:
        try:
            await actions.uncancel_subscription(db, settings, portal_customer, subscription_id, now=clock.now())
        except NotFound:
            raise not_found() from None
        except (remote.ActionUnavailable, remote.ProcessorFailed) as exc:
            return _failed(portal_customer, subscription_id, exc)
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
        options = await _plan_options(db, ctx, subscription)
        if not options:
            _not_offered()
        return render(
            "portal/change_plan.html",
            request,
            ctx,
            active="subscriptions",
            subscription=subscription,
            options=options,
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
        if option is None or option.product_id not in {
            o.product_id for o in await _plan_options(db, ctx, subscription)
        }:
            raise not_found()
        # What the change does: benefits gained and lost, and the first period billed at the new price and
        # interval (it starts when the current, already paid, period ends: a monthly→yearly change runs a year).
        now_benefits = await list_product_benefits(
            db, Scope.of_organization(ctx.organization.id), subscription.product_id
        )
        new_benefits = await list_product_benefits(db, Scope.of_organization(ctx.organization.id), option.product_id)
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
        settings: NamedDependency[Settings],
        portal_customer: NamedDependency[SessionContext],
        subscription_id: FromPath[str],
        data: Annotated[ChangePlanForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect:
        try:
            await actions.change_plan(db, settings, portal_customer, subscription_id, data.product_id, now=clock.now())
        except NotFound:
            raise not_found() from None
        except (remote.ActionUnavailable, remote.ProcessorFailed) as exc:
            return _failed(portal_customer, subscription_id, exc)
        return see_other(_detail_path(portal_customer, subscription_id) + "?done=plan_changed")

    @post("/{subscription_id:str}/payment-method", name="portal.subscription.payment_method")
    async def payment_method(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        portal_customer: NamedDependency[SessionContext],
        subscription_id: FromPath[str],
    ) -> Redirect:
        """Open the processor's payment-method page (a fresh, short-lived session each time) and come back."""
        ctx = portal_customer
        subscription = await _own(db, ctx, subscription_id)
        source = await remote.source_of(db, ctx.organization.id, subscription.id)
        if source is None or not subscription.is_live or not remote.redirect_origins(settings, source):
            _not_offered()
        try:
            url = await remote.push(
                db,
                settings,
                source,
                "payment_method_update",
                customer_id=ctx.customer.id,
                return_url=settings.public_base_url + _detail_path(ctx, subscription.id),
            )
        except (remote.ActionUnavailable, remote.ProcessorFailed) as exc:
            return _failed(ctx, subscription_id, exc)
        assert url is not None
        return Redirect(url, status_code=303)
