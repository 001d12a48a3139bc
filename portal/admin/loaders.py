"""Read side of the admin API: turn records into Polar-shaped outputs, loading what they nest (a product's
prices and benefits, an order's items/customer/product/subscription, …). Reads only; no HTTP here."""

from __future__ import annotations

from portal.admin import models
from portal.admin.auth import Principal
from portal.benefits import reads as benefit_reads
from portal.benefits.reads import GrantRecord
from portal.customers import reads as customer_reads
from portal.db import Database
from portal.errors import NotFound
from portal.orders import reads as order_reads
from portal.orders.reads import OrderRecord
from portal.products import reads as product_reads
from portal.products.reads import ProductRecord
from portal.scope import EVERY_ORGANIZATION
from portal.subscriptions import reads as subscription_reads
from portal.subscriptions.reads import SubscriptionRecord


async def product(db: Database, record: ProductRecord) -> models.ProductOut:
    prices = await product_reads.list_price_records(db, record.id)
    benefits = await benefit_reads.get_benefit_records(db, await product_reads.product_benefit_ids(db, record.id))
    return models.product_out(record, prices, benefits)


async def product_by_id(db: Database, principal: Principal, product_id: str) -> models.ProductOut:
    record = principal.check(await product_reads.get_product_record(db, EVERY_ORGANIZATION, product_id), "product")
    return await product(db, record)


async def benefit_by_id(db: Database, principal: Principal, benefit_id: str) -> models.BenefitOut:
    record = principal.check(await benefit_reads.get_benefit_record(db, EVERY_ORGANIZATION, benefit_id), "benefit")
    return models.benefit_out(record)


async def file_by_id(db: Database, principal: Principal, file_id: str) -> models.FileOut:
    record = principal.check(await benefit_reads.get_file_record(db, EVERY_ORGANIZATION, file_id), "file")
    return models.file_out(record)


async def customer_by_id(db: Database, principal: Principal, customer_id: str) -> models.CustomerOut:
    record = principal.check(await customer_reads.get_customer_record(db, EVERY_ORGANIZATION, customer_id), "customer")
    return models.customer_out(record)


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
    return models.order_out(record, items, customer, product_record, subscription_record)


async def order_by_id(db: Database, principal: Principal, order_id: str) -> models.OrderOut:
    return await order(
        db, principal.check(await order_reads.get_order_record(db, EVERY_ORGANIZATION, order_id), "order")
    )


async def subscription(db: Database, record: SubscriptionRecord) -> models.SubscriptionOut:
    customer = await _customer_any(db, record.customer_id)
    product_record = await product_reads.get_product_record(db, EVERY_ORGANIZATION, record.product_id)
    if product_record is None:  # pragma: no cover - foreign keys make this impossible
        raise NotFound("product not found")
    price = None if record.price_id is None else await product_reads.get_price_record(db, record.price_id)
    return models.subscription_out(record, customer, await product(db, product_record), price)


async def subscription_by_id(db: Database, principal: Principal, subscription_id: str) -> models.SubscriptionOut:
    record = principal.check(
        await subscription_reads.get_subscription_record(db, EVERY_ORGANIZATION, subscription_id), "subscription"
    )
    return await subscription(db, record)


async def grant(db: Database, record: GrantRecord) -> models.BenefitGrantOut:
    customer = await _customer_any(db, record.customer_id)
    benefit = await benefit_reads.get_benefit_record(db, EVERY_ORGANIZATION, record.benefit_id, include_deleted=True)
    if benefit is None:  # pragma: no cover - foreign keys make this impossible
        raise NotFound("benefit not found")
    return models.grant_out(record, customer, benefit)


async def grant_by_id(db: Database, principal: Principal, grant_id: str) -> models.BenefitGrantOut:
    return await grant(
        db, principal.check(await benefit_reads.get_grant_record(db, EVERY_ORGANIZATION, grant_id), "benefit grant")
    )
