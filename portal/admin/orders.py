"""``/v1/orders/``: orders with their items. Polar creates orders at checkout; a self-hosted Portal records
them through this API instead. Status changes go through the domain rules in one transaction each: paying
allocates the next receipt number (gap-free per organization) and grants the product's benefits; a refund of
what remains revokes them; a partial refund keeps them."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from portal.admin import loaders, responses
from portal.admin.auth import Principal
from portal.clock import Clock
from portal.db import Database, Transaction
from portal.errors import InvalidInput
from portal.fields import Moment, NonNegative, Positive, SingleLine, moment_problem
from portal.orders import reads as order_reads
from portal.orders import service as order_service
from portal.orders.service import BillingReason, OrderItemInput
from portal.pagination import LimitParam, ListResource, PageParam, list_resource
from portal.polar import loaders as polar_loaders
from portal.polar.models import OrderOut
from portal.products import service as product_service
from portal.scope import Scope


class OrderCreate(msgspec.Struct, kw_only=True):
    """An order. Without ``items``, one item is made from ``product_id``'s price in ``currency``.
    ``status`` ``paid`` (the default: Polar orders exist once paid) pays it at once.

    ``created_at`` (imports from another system): when the order was made, and paid, in the past (never in the
    future; with a time zone). An order backdated by more than ``BACKDATED_AFTER`` is history, not a purchase
    happening now: the customer gets no receipt email for it (webhooks are still sent)."""

    customer_id: str
    currency: SingleLine = "usd"
    items: list[OrderItemInput] = []
    product_id: str | None = None
    subscription_id: str | None = None
    billing_reason: BillingReason = "purchase"
    discount_amount: NonNegative = 0
    tax_amount: NonNegative | None = None
    status: Literal["pending", "paid"] = "paid"
    external_id: SingleLine | None = None
    metadata: dict[str, Any] = {}
    created_at: Moment | None = None


# An explicit created_at older than this is an import: no receipt email. Within it (a checkout the seller records
# a little late, clocks a little apart) the order is a purchase of now and the customer gets the receipt.
BACKDATED_AFTER = timedelta(hours=1)
# Tolerated clock difference for a created_at slightly ahead of this server's clock.
FUTURE_SKEW = timedelta(minutes=5)


class OrderUpdate(msgspec.Struct, kw_only=True):
    """A status change: ``paid`` (pending only), ``void`` (pending only), ``refunded`` (refunds what remains,
    or ``refund_amount`` if it is all that remains) or ``partially_refunded`` (needs ``refund_amount``).
    ``refund_amount`` alone refunds that much; the status follows."""

    status: Literal["paid", "void", "refunded", "partially_refunded"] | None = None
    refund_amount: Positive | None = None
    refund_reason: str | None = None


async def _default_items(tx: Transaction, data: order_service.OrderInput) -> list[OrderItemInput]:
    """The items as given, else one item from ``product_id``'s active price in the order's currency (the
    product is known to be the organization's: ``check_references`` ran first)."""
    if data.items or data.product_id is None:
        return data.items
    product = await product_service.get_product_row(tx, data.product_id)
    price = await product_service.get_active_price(tx, data.product_id, data.currency)
    if price is None:
        raise InvalidInput(f"the product has no price in {data.currency}", "currency")
    return [OrderItemInput(label=product["name"], unit_amount=price["price_amount"], product_price_id=price["id"])]


class OrderController(Controller):
    path = "/orders"
    tags = ["orders"]

    @get("/", summary="List orders", responses=responses.LIST)
    async def list_orders(
        self,
        db: NamedDependency[Database],
        principal: NamedDependency[Principal],
        organization_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
        customer_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
        product_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
        subscription_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
        status: FromQuery[Literal["pending", "paid", "refunded", "partially_refunded", "void"] | None] = None,
        page: PageParam = 1,
        limit: LimitParam = 10,
    ) -> ListResource[OrderOut]:
        result = await order_reads.list_order_records(
            db,
            Scope(organization_id=principal.list_filter(organization_id), customer_id=customer_id),
            product_id=product_id,
            subscription_id=subscription_id,
            status=status,
            page=page,
            limit=limit,
        )
        return list_resource([await polar_loaders.order(db, r) for r in result.records], result.total, limit)

    @post("/", summary="Record an order (paid by default)", responses=responses.WRITE)
    async def create_order(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        principal: NamedDependency[Principal],
        data: JSONBody[OrderCreate],
    ) -> OrderOut:
        now = clock.now()
        created = now
        if data.created_at is not None:
            if problem := moment_problem(data.created_at):
                raise InvalidInput(f"created_at: {problem}", "created_at")
            if data.created_at > now + FUTURE_SKEW:
                raise InvalidInput("created_at is in the future", "created_at")
            created = min(data.created_at.astimezone(UTC), now)
        backdated = now - created > BACKDATED_AFTER
        async with db.write() as tx:
            organization_id = await principal.customer_organization(tx, data.customer_id)
            order = order_service.OrderInput(
                customer_id=data.customer_id,
                currency=data.currency.lower(),
                items=data.items,
                product_id=data.product_id,
                subscription_id=data.subscription_id,
                billing_reason=data.billing_reason,
                discount_amount=data.discount_amount,
                tax_amount=data.tax_amount,
                external_id=data.external_id,
                metadata=data.metadata,
            )
            # Ids first: a foreign product must answer "does not exist", not "has no price in usd".
            await order_service.check_references(tx, organization_id, order)
            order.items = await _default_items(tx, order)
            order_id = await order_service.create_order(tx, organization_id, order, now=created)
            if data.status == "paid":
                await order_service.mark_order_paid(tx, order_id, now=created, send_receipt=not backdated)
        return await loaders.order_by_id(db, principal, order_id)

    @get("/{id:str}", summary="Get an order", responses=responses.READ)
    async def get_order(
        self, db: NamedDependency[Database], principal: NamedDependency[Principal], id: FromPath[str]
    ) -> OrderOut:
        return await loaders.order_by_id(db, principal, id)

    @patch("/{id:str}", summary="Pay, void or refund an order", responses=responses.WRITE)
    async def update_order(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        principal: NamedDependency[Principal],
        id: FromPath[str],
        data: JSONBody[OrderUpdate],
    ) -> OrderOut:
        order = await loaders.order_by_id(db, principal, id)
        now = clock.now()
        async with db.write() as tx:
            if data.status == "paid":
                await order_service.mark_order_paid(tx, id, now=now)
            elif data.status == "void":
                await order_service.void_order(tx, id, now=now)
            elif data.status is not None or data.refund_amount is not None:
                remaining = order.total_amount - order.refunded_amount
                amount = data.refund_amount if data.refund_amount is not None else remaining
                if data.status == "partially_refunded" and (data.refund_amount is None or amount >= remaining):
                    raise InvalidInput(f"a partial refund is less than the {remaining} that remains", "refund_amount")
                if data.status == "refunded" and amount != remaining:
                    raise InvalidInput(f"a full refund is the {remaining} that remains", "refund_amount")
                await order_service.refund_order(tx, id, amount, now=now, reason=data.refund_reason)
        return await loaders.order_by_id(db, principal, id)
