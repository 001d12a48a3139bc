"""Billing details (``/<slug>/portal/settings``): the form, and saving it with per-field errors (400 + the form
again) or a 303 back on success."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Template

from portal.clock import Clock
from portal.customers.billing import BillingForm, countries, save_billing, stored_problems
from portal.customers.reads import get_customer
from portal.db import Database
from portal.errors import NotFound
from portal.i18n import current_locale
from portal.invoices.service import MissingInvoiceBillingDetails, OrderNotEligibleForInvoice, issue_for_customer
from portal.portal_pages.layout import base_path, page_context, render, see_other
from portal.scope import Scope
from portal.sessions.store import SessionContext

# The order whose invoice sent the customer here (issue 22: no dead end); an id, never a URL.
ForOrder = Annotated[str | None, QueryParameter(name="for_order", max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


def _form_action(ctx: SessionContext, for_order: str | None) -> str:
    action = f"{base_path(ctx.organization)}/settings"
    return f"{action}?{urlencode({'for_order': for_order})}" if for_order else action


class BillingController(Controller):
    path = "/{slug:str}/portal/settings"
    include_in_schema = False

    @get("/", name="portal.billing")
    async def form(
        self,
        request: Request[Any, Any, Any],
        portal_customer: NamedDependency[SessionContext],
        for_order: ForOrder = None,
    ) -> Template:
        customer = portal_customer.customer
        form = BillingForm.from_customer(customer.billing_name, customer.billing_address_dict, customer.tax_id)
        return render(
            "portal/billing.html",
            request,
            portal_customer,
            active="billing",
            form=form,
            errors=stored_problems(customer),
            countries=countries(current_locale()),
            form_action=_form_action(portal_customer, for_order),
            email_value="",
            email_error=None,
        )

    @post("/", name="portal.billing.save")
    async def save(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        portal_customer: NamedDependency[SessionContext],
        data: Annotated[BillingForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
        for_order: ForOrder = None,
    ) -> Response[Any]:
        """Save; when the form was opened for an invoice (``for_order``), generate it and go back to it."""
        ctx = portal_customer
        errors = await save_billing(db, ctx, data, now=clock.now())
        if errors:
            return Template(
                template_name="portal/billing.html",
                context=page_context(
                    request,
                    portal_customer,
                    active="billing",
                    form=data,
                    errors=errors,
                    countries=countries(current_locale()),
                    form_action=_form_action(ctx, for_order),
                    email_value="",
                    email_error=None,
                ),
                status_code=400,
            )
        root = base_path(ctx.organization)
        if for_order:
            customer = await get_customer(db, Scope.of_organization(ctx.organization.id), ctx.customer.id)
            try:
                if customer is None:
                    raise NotFound("customer not found")
                await issue_for_customer(db, customer, for_order, now=clock.now())
            except (NotFound, MissingInvoiceBillingDetails, OrderNotEligibleForInvoice):
                return see_other(f"{root}/settings?done=billing_saved")
            return see_other(f"{root}/orders/{quote(for_order, safe='')}/invoice")
        return see_other(f"{root}/settings?done=billing_saved")
