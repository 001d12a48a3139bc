"""Read what Polar's shapes nest and build them: a product's prices and benefits, an order's items, customer,
product and subscription, … through the areas' ``reads`` modules, converted by ``convert``. Reads only; callers
(the admin API after ``Principal.check``, webhook payloads inside their transaction) have checked ownership."""

from __future__ import annotations

from portal.benefits import reads as benefit_reads
from portal.benefits.reads import GrantRecord
from portal.customers import reads as customer_reads
from portal.db import Database
from portal.errors import NotFound
from portal.orders import reads as order_reads
from portal.orders.reads import OrderRecord
from portal.polar import convert, models
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
