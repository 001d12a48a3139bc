"""Billing details (``/<slug>/portal/settings``): the form, and saving it with per-field errors (400 + the form
again) or a 303 back on success."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Template

from portal.clock import Clock
from portal.customers.billing import BillingForm, countries, save_billing, stored_problems
from portal.db import Database
from portal.i18n import current_locale
from portal.portal_pages.layout import base_path, page_context, render, see_other
from portal.sessions.store import SessionContext


class BillingController(Controller):
    path = "/{slug:str}/portal/settings"
    include_in_schema = False

    @get("/", name="portal.billing")
    async def form(
        self,
        request: Request[Any, Any, Any],
        portal_customer: NamedDependency[SessionContext],
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
        )

    @post("/", name="portal.billing.save")
    async def save(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        portal_customer: NamedDependency[SessionContext],
        data: Annotated[BillingForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        errors = await save_billing(db, portal_customer, data, now=clock.now())
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
                ),
                status_code=400,
            )
        return see_other(f"{base_path(portal_customer.organization)}/settings?done=billing_saved")
