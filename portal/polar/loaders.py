"""Read what Polar's shapes nest and build them: a product's prices and benefits, an order's items, customer,
product and subscription, … through the areas' ``reads`` modules, converted by ``convert``. Reads only; callers
(the admin API after ``Principal.check``, webhook payloads inside their transaction, the customer-portal API on rows
its scope read) have checked ownership.

The customer portal's loaders work on a whole page at once, in a fixed number of queries: its products (with
prices, benefits and organization) come from the per-process ``catalog`` cache, its orders' items from
``orders.items_json``."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from portal.benefits import reads as benefit_reads
from portal.benefits.reads import GrantRecord
from portal.customers import reads as customer_reads
from portal.db import Database, row_dicts
from portal.errors import NotFound
from portal.orders import reads as order_reads
from portal.orders.reads import OrderRecord
from portal.organizations.queries import Organization
from portal.polar import catalog, convert, models
from portal.polar.models import (
    CustomerOrder,
    CustomerOrderWire,
    CustomerProduct,
    CustomerProductWithOrganization,
    CustomerSubscription,
    SubscriptionBase,
)
from portal.products import reads as product_reads
from portal.products.reads import ProductRecord
from portal.scope import EVERY_ORGANIZATION
from portal.subscriptions import reads as subscription_reads
from portal.subscriptions.reads import SubscriptionRecord


async def product(db: Database, record: ProductRecord) -> models.ProductOut:
    prices = await product_reads.list_price_records(db, record.id)
    benefits = await benefit_reads.get_benefit_records(db, await product_reads.product_benefit_ids(db, record.id))
    return convert.product_out(record, prices, benefits)


async def _customer_any(db: Database, customer_id: str) -> customer_reads.CustomerRecord:
    record = await customer_reads.get_customer_record(db, EVERY_ORGANIZATION, customer_id, include_deleted=True)
    if record is None:  # pragma: no cover - foreign keys make this impossible
        raise NotFound("customer not found")
    return record


async def order(db: Database, record: OrderRecord) -> models.OrderOut:
    items = await order_reads.list_order_item_records(db, record.id)
    customer = await _customer_any(db, record.customer_id)
    product_record = (
        None
        if record.product_id is None
        else await product_reads.get_product_record(db, EVERY_ORGANIZATION, record.product_id)
    )
    subscription_record = (
        None
        if record.subscription_id is None
        else await subscription_reads.get_subscription_record(db, EVERY_ORGANIZATION, record.subscription_id)
    )
    return convert.order_out(record, items, customer, product_record, subscription_record)


async def subscription(db: Database, record: SubscriptionRecord) -> models.SubscriptionOut:
    customer = await _customer_any(db, record.customer_id)
    product_record = await product_reads.get_product_record(db, EVERY_ORGANIZATION, record.product_id)
    if product_record is None:  # pragma: no cover - foreign keys make this impossible
        raise NotFound("product not found")
    price = None if record.price_id is None else await product_reads.get_price_record(db, record.price_id)
    return convert.subscription_out(record, customer, await product(db, product_record), price)


async def grant(db: Database, record: GrantRecord) -> models.BenefitGrantOut:
    customer = await _customer_any(db, record.customer_id)
    benefit = await benefit_reads.get_benefit_record(db, EVERY_ORGANIZATION, record.benefit_id, include_deleted=True)
    if benefit is None:  # pragma: no cover - foreign keys make this impossible
        raise NotFound("benefit not found")
    return convert.grant_out(record, customer, benefit)


# --- the customer-portal API -------------------------------------------------------------------------------------


async def customer_products(
    db: Database, organization: Organization, product_ids: Sequence[str | None]
) -> dict[str, CustomerProductWithOrganization]:
    """The products (with active prices, live benefits and the organization), from the per-process catalog cache
    (``portal.polar.catalog``), reading what is not cached yet in three queries. Shared objects: callers must not
    change them."""
    return await catalog.cached_products(db, organization, product_ids, _read_customer_products)


async def _read_customer_products(
    db: Database, organization: Organization, product_ids: Sequence[str]
) -> dict[str, CustomerProductWithOrganization]:
    rows = await product_reads.product_rows_by_id(db, product_ids)
    ids = list(rows)
    prices = await product_reads.price_rows_by_product(db, ids)
    benefits = await product_reads.benefit_rows_by_product(db, ids)
    org = convert.customer_organization_out(organization)
    return {
        pid: CustomerProductWithOrganization(
            **convert.customer_product_fields(row, prices.get(pid, []), benefits.get(pid, [])), organization=org
        )
        for pid, row in rows.items()
    }


async def public_products(db: Database, organization: Organization) -> list[CustomerProduct]:
    rows = await product_reads.public_product_rows(db, organization.id)
    ids = [row["id"] for row in rows]
    prices = await product_reads.price_rows_by_product(db, ids)
    benefits = await product_reads.benefit_rows_by_product(db, ids)
    return [
        CustomerProduct(**convert.customer_product_fields(row, prices.get(row["id"], []), benefits.get(row["id"], [])))
        for row in rows
    ]


async def customer_subscriptions(
    db: Database, organization: Organization, rows: Sequence[sqlite3.Row]
) -> list[CustomerSubscription]:
    products = await customer_products(db, organization, [row["product_id"] for row in rows])
    dicts = row_dicts(rows)  # by name, a dict is faster than sqlite3.Row (see customer_orders_wire)
    return [
        CustomerSubscription(
            **convert.subscription_row_fields(row),
            product=products[row["product_id"]],
            prices=[p for p in products[row["product_id"]].prices if p.id == row["price_id"]]
            or products[row["product_id"]].prices[:1],
        )
        for row in dicts
    ]


async def _order_subscriptions(db: Database, orders: Sequence[order_reads.OrderRow]) -> dict[str, SubscriptionBase]:
    by_id = await subscription_reads.subscription_rows_by_id(db, [order.subscription_id for order in orders])
    return dict(zip(by_id, map(convert.subscription_base, row_dicts(list(by_id.values()))), strict=True))


async def customer_orders(db: Database, organization: Organization, rows: Sequence[sqlite3.Row]) -> list[CustomerOrder]:
    """Orders with items, product and subscription, in a fixed number of queries (one order's answer)."""
    orders = order_reads.order_rows(rows)
    products = await customer_products(db, organization, [order.product_id for order in orders])
    subscriptions = await _order_subscriptions(db, orders)
    out = []
    for row in orders:
        product = products.get(row.product_id) if row.product_id else None
        name = product.name if product is not None else None
        subscription = subscriptions.get(row.subscription_id) if row.subscription_id else None
        out.append(convert.build_order(CustomerOrder, row, product, name, subscription))
    return out


async def customer_orders_wire(
    db: Database, organization: Organization, rows: Sequence[sqlite3.Row]
) -> list[CustomerOrderWire]:
    """A page of orders as ``CustomerOrderWire``s, in a fixed number of queries. The rows are read by position
    (``order_reads.order_rows``): ``sqlite3.Row["name"]`` compares the name with each column in turn, and a dict per
    row costs more than the rest of the order (bench/README.md)."""
    orders = order_reads.order_rows(rows)
    product_ids = [order.product_id for order in orders]
    products = await catalog.cached_products_encoded(db, organization, product_ids, _read_customer_products)
    subscriptions = await _order_subscriptions(db, orders)
    build_order = convert.build_order
    out = []
    for row in orders:
        product, encoded = products.get(row.product_id, _NO_PRODUCT) if row.product_id else _NO_PRODUCT
        name = product.name if product is not None else None
        subscription = subscriptions.get(row.subscription_id) if row.subscription_id else None
        out.append(build_order(CustomerOrderWire, row, encoded, name, subscription))
    return out


_NO_PRODUCT: tuple[None, None] = (None, None)
