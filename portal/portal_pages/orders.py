"""Orders: the paginated list (date, product, amount, status) and one order's detail (items, totals, refunds,
billing details snapshot)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.response import Template

from portal.db import Database
from portal.orders.reads import PAGE_SIZE, get_order_detail, list_order_summaries
from portal.portal_pages import text
from portal.portal_pages.layout import not_found, render
from portal.scope import Scope
from portal.sessions.store import SessionContext


class OrdersController(Controller):
    path = "/{slug:str}/portal/orders"
    include_in_schema = False

    @get("/", name="portal.orders")
    async def orders(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        portal_customer: NamedDependency[SessionContext],
        page: Annotated[int, QueryParameter(name="page", ge=1, le=100_000)] = 1,
    ) -> Template:
        ctx = portal_customer
        orders, total = await list_order_summaries(
            db, Scope.of_customer(ctx.organization.id, ctx.customer.id), page=page
        )
        pages = max(1, -(-total // PAGE_SIZE))
        return render(
            "portal/orders.html",
            request,
            ctx,
            active="orders",
            orders=orders,
            total=total,
            page=page,
            pages=pages,
        )

    @get("/{order_id:str}", name="portal.order")
    async def order(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        portal_customer: NamedDependency[SessionContext],
        order_id: FromPath[str],
    ) -> Template:
        ctx = portal_customer
        order = await get_order_detail(db, Scope.of_customer(ctx.organization.id, ctx.customer.id), order_id)
        if order is None:
            raise not_found()
        return render(
            "portal/order.html",
            request,
            ctx,
            active="orders",
            order=order,
            bill_to_address=text.address_lines(order.billing_address_dict),
        )
