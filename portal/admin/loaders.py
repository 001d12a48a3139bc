"""The admin API's reads by id: the record if the token may see it (``Principal.check``: else 404), built into
Polar's shape by ``portal.polar.loaders``."""

from __future__ import annotations

from portal.admin.auth import Principal
from portal.benefits import reads as benefit_reads
from portal.customers import reads as customer_reads
from portal.db import Database
from portal.orders import reads as order_reads
from portal.polar import convert, models
from portal.polar import loaders as polar_loaders
from portal.products import reads as product_reads
from portal.scope import EVERY_ORGANIZATION
from portal.subscriptions import reads as subscription_reads


async def product_by_id(db: Database, principal: Principal, product_id: str) -> models.ProductOut:
    record = principal.check(await product_reads.get_product_record(db, EVERY_ORGANIZATION, product_id), "product")
    return await polar_loaders.product(db, record)


async def benefit_by_id(db: Database, principal: Principal, benefit_id: str) -> models.BenefitOut:
    record = principal.check(await benefit_reads.get_benefit_record(db, EVERY_ORGANIZATION, benefit_id), "benefit")
    return convert.benefit_out(record)


async def file_by_id(db: Database, principal: Principal, file_id: str) -> models.FileOut:
    record = principal.check(await benefit_reads.get_file_record(db, EVERY_ORGANIZATION, file_id), "file")
    return convert.file_out(record)


async def customer_by_id(db: Database, principal: Principal, customer_id: str) -> models.CustomerOut:
    record = principal.check(await customer_reads.get_customer_record(db, EVERY_ORGANIZATION, customer_id), "customer")
    return convert.customer_out(record)


async def order_by_id(db: Database, principal: Principal, order_id: str) -> models.OrderOut:
    return await polar_loaders.order(
        db, principal.check(await order_reads.get_order_record(db, EVERY_ORGANIZATION, order_id), "order")
    )


async def subscription_by_id(db: Database, principal: Principal, subscription_id: str) -> models.SubscriptionOut:
    record = principal.check(
        await subscription_reads.get_subscription_record(db, EVERY_ORGANIZATION, subscription_id), "subscription"
    )
    return await polar_loaders.subscription(db, record)


async def grant_by_id(db: Database, principal: Principal, grant_id: str) -> models.BenefitGrantOut:
    return await polar_loaders.grant(
        db, principal.check(await benefit_reads.get_grant_record(db, EVERY_ORGANIZATION, grant_id), "benefit grant")
    )
