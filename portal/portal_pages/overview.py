"""The overview (``GET /<slug>/portal`` once signed in): live subscriptions with their next charge or end date,
the latest orders and the benefits held. The sign-in pages own the route and call ``render_overview``."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.response import Template

from portal.benefits.reads import list_grant_summaries
from portal.orders.reads import latest_order_summaries
from portal.portal_pages.layout import render
from portal.scope import Scope
from portal.sessions.store import SessionContext, has_earlier_session
from portal.subscriptions.reads import list_subscriptions


async def render_overview(request: Request[Any, Any, Any], context: SessionContext) -> Template:
    db = request.app.state.portal.db
    org_id, customer_id = context.organization.id, context.customer.id
    return render(
        "portal/overview.html",
        request,
        context,
        active="overview",
        subscriptions=await list_subscriptions(db, Scope.of_customer(org_id, customer_id), live_only=True),
        orders=await latest_order_summaries(db, Scope.of_customer(org_id, customer_id), limit=5),
        grants=await list_grant_summaries(db, Scope.of_customer(org_id, customer_id)),
        returning=await has_earlier_session(db, customer_id, context.session.created_at),
    )
