"""``/v1/customer-portal/orders``: the caller's orders (list with Polar's filters, get), the bill-to of an order
(PATCH), its receipt and invoice as short-lived signed URLs, and invoice generation. Payment status and retries
need a payment processor: 403 ``NotSupported``."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import Controller, Response, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from portal.clock import Clock
from portal.customer_portal.common import IdList, Limit, Page, Search, clamp_limit, listing
from portal.customer_portal.errors import (
    BEARER,
    UNSUPPORTED_RESPONSES,
    PolarAPIError,
    not_found,
    not_supported,
    responses,
)
from portal.customer_portal.inputs import CustomerOrderUpdate
from portal.customer_portal.links import document_url
from portal.db import Database
from portal.errors import NotFound
from portal.invoices import queries as invoice_queries
from portal.invoices.service import (
    MissingInvoiceBillingDetails,
    OrderNotEligibleForInvoice,
    generate_invoice,
    update_order_billing,
)
from portal.orders import reads as order_reads
from portal.pagination import ListResource
from portal.polar import loaders
from portal.polar.models import CustomerOrder, CustomerOrderInvoice, CustomerOrderReceipt
from portal.scope import Scope
from portal.sessions.store import SessionContext
from portal.settings import Settings

OrderSort = Literal[
    "created_at", "-created_at", "amount", "-amount", "net_amount", "-net_amount", "product", "-product",
    "subscription", "-subscription",
]  # fmt: skip
BillingType = Literal["one_time", "recurring"]
ORDER_NOT_FOUND = "Order not found."


def _scope(ctx: SessionContext) -> Scope:
    return Scope.of_customer(ctx.organization.id, ctx.customer.id)


async def _order(db: Database, ctx: SessionContext, order_id: str) -> CustomerOrder:
    row = await order_reads.get_order_row(db, _scope(ctx), order_id)
    if row is None:
        raise not_found(ORDER_NOT_FOUND)
    return (await loaders.customer_orders(db, ctx.organization, [row]))[0]


class OrdersController(Controller):
    path = "/orders"
    tags = ["customer_portal.orders"]
    security = BEARER

    @get("/", summary="List Orders", responses=responses(found=False))
    async def list_orders(
        self,
        db: NamedDependency[Database],
        api_customer: NamedDependency[SessionContext],
        product_id: IdList = None,
        product_billing_type: Annotated[list[BillingType] | None, QueryParameter()] = None,
        subscription_id: IdList = None,
        search: Search = None,
        page: Page = 1,
        limit: Limit = 10,
        sorting: Annotated[list[OrderSort] | None, QueryParameter()] = None,
    ) -> ListResource[CustomerOrder]:
        limit = clamp_limit(limit)
        ctx = api_customer
        rows, total = await order_reads.list_order_rows(
            db,
            _scope(ctx),
            product_id=product_id,
            product_billing_type=product_billing_type,
            subscription_id=subscription_id,
            query=search,
            sorting=sorting,
            page_number=page,
            limit=limit,
        )
        # The items are ``CustomerOrderWire``s (``portal.polar.models``): CustomerOrders whose product is
        # pre-encoded (see there).
        orders: list[CustomerOrder] = list(await loaders.customer_orders_wire(db, ctx.organization, rows))
        return listing(orders, total, limit)

    @get("/{id:str}", summary="Get Order", responses=responses())
    async def get_order(
        self, db: NamedDependency[Database], api_customer: NamedDependency[SessionContext], id: FromPath[str]
    ) -> CustomerOrder:
        return await _order(db, api_customer, id)

    @patch(
        "/{id:str}",
        summary="Update Order",
        description="Set the billing name and address printed on the invoice. The country and state cannot change.",
        responses=responses(),
    )
    async def update_order(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        api_customer: NamedDependency[SessionContext],
        id: FromPath[str],
        data: JSONBody[CustomerOrderUpdate],
    ) -> CustomerOrder:
        ctx = api_customer
        address = data.billing_address
        try:
            await update_order_billing(
                db,
                ctx.organization.id,
                ctx.customer.id,
                id,
                billing_name=data.billing_name,
                billing_address=address if address in (None, msgspec.UNSET) else msgspec.to_builtins(address),
                now=clock.now(),
            )
        except NotFound:
            raise not_found(ORDER_NOT_FOUND) from None
        return await _order(db, ctx, id)

    @get(
        "/{id:str}/receipt",
        summary="Get Order Receipt",
        description="A signed URL of the HTML receipt; it opens without authentication for one hour.",
        responses=responses(),
    )
    async def receipt(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        api_customer: NamedDependency[SessionContext],
        id: FromPath[str],
    ) -> CustomerOrderReceipt:
        ctx = api_customer
        row = await order_reads.get_order_row(db, _scope(ctx), id)
        if row is None or row["receipt_number"] is None or row["paid_at"] is None:
            raise not_found(ORDER_NOT_FOUND if row is None else "This order has no receipt (it was never paid).")
        url = document_url(
            settings, "receipt", organization_id=ctx.organization.id, customer_id=ctx.customer.id,
            document_id=id, now=clock.now(),
        )  # fmt: skip
        return CustomerOrderReceipt(url=url)

    @post(
        "/{id:str}/invoice",
        status_code=202,
        summary="Generate Order Invoice",
        description=(
            "Issue the order's invoice (numbered per organization, frozen once issued). After a billing change, "
            "issues a corrected invoice; the previous one stays available. Without a change, does nothing."
        ),
        responses=responses(
            (409, "`OrderNotEligibleForInvoice`: the order is not paid."),
            (422, "`MissingInvoiceBillingDetails`: the order has no billing name or address."),
        ),
    )
    async def generate_invoice(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        api_customer: NamedDependency[SessionContext],
        id: FromPath[str],
    ) -> Response[None]:
        ctx = api_customer
        try:
            await generate_invoice(db, ctx.organization.id, ctx.customer.id, id, now=clock.now())
        except NotFound:
            raise not_found(ORDER_NOT_FOUND) from None
        except OrderNotEligibleForInvoice as exc:
            raise PolarAPIError(409, "OrderNotEligibleForInvoice", exc.message) from None
        except MissingInvoiceBillingDetails as exc:
            raise PolarAPIError(422, "MissingInvoiceBillingDetails", exc.message) from None
        # Polar answers 202 with a JSON null body.
        # The annotation documents the null body; Litestar would send None as an empty body, so it is given encoded.
        return Response(content=b"null", status_code=202, media_type="application/json")  # type: ignore[arg-type]

    @get(
        "/{id:str}/invoice",
        summary="Get Order Invoice",
        description="A signed URL of the order's current invoice (HTML), valid for one hour; 404 before one is issued.",
        responses=responses(),
    )
    async def invoice(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        api_customer: NamedDependency[SessionContext],
        id: FromPath[str],
    ) -> CustomerOrderInvoice:
        ctx = api_customer
        if await order_reads.get_order_row(db, _scope(ctx), id) is None:
            raise not_found(ORDER_NOT_FOUND)
        invoice = await invoice_queries.latest_for_order(db, ctx.organization.id, ctx.customer.id, id)
        if invoice is None:
            raise not_found(f"No invoice exists for order {id}.")
        url = document_url(
            settings, "invoice", organization_id=ctx.organization.id, customer_id=ctx.customer.id,
            document_id=invoice.id, now=clock.now(),
        )  # fmt: skip
        return CustomerOrderInvoice(url=url)

    @get(
        "/{id:str}/payment-status",
        summary="Get Order Payment Status (not supported)",
        responses=UNSUPPORTED_RESPONSES,
    )
    async def payment_status(self, api_customer: NamedDependency[SessionContext], id: FromPath[str]) -> None:
        raise not_supported("Order payment status")

    @post(
        "/{id:str}/confirm-payment",
        summary="Confirm Retry Payment (not supported)",
        responses=UNSUPPORTED_RESPONSES,
    )
    async def confirm_payment(self, api_customer: NamedDependency[SessionContext], id: FromPath[str]) -> None:
        raise not_supported("Payment retries")
