"""Organization-wide reads of subscriptions for the admin API (the portal's customer-scoped reads are in
``queries``). Returns ``SubscriptionRecord`` structs."""

from __future__ import annotations

import msgspec

from portal.db import Database, Transaction, row_dict, row_to
from portal.errors import NotFound
from portal.pagination import PageOf, fetch_page
from portal.subscriptions.queries import SUBSCRIPTION_BASE_COLUMNS


class SubscriptionRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    organization_id: str
    customer_id: str
    product_id: str
    price_id: str | None
    status: str
    amount: int
    currency: str
    recurring_interval: str
    recurring_interval_count: int
    current_period_start: str
    current_period_end: str | None
    trial_start: str | None
    trial_end: str | None
    cancel_at_period_end: bool
    canceled_at: str | None
    started_at: str | None
    ends_at: str | None
    ended_at: str | None
    customer_cancellation_reason: str | None
    customer_cancellation_comment: str | None
    external_id: str | None
    metadata: str
    created_at: str
    modified_at: str | None


_COLUMNS = (
    SUBSCRIPTION_BASE_COLUMNS
    + """    s.external_id,
    s.metadata,
    s.created_at,
    s.modified_at
"""
)


async def get_subscription(db: Database, subscription_id: str) -> SubscriptionRecord | None:
    row = await db.fetchone(f"SELECT {_COLUMNS} FROM subscriptions s WHERE s.id = ?", (subscription_id,))
    return row_to(SubscriptionRecord, row)


async def list_subscriptions(
    db: Database,
    *,
    organization_id: str | None,
    customer_id: str | None,
    product_id: str | None,
    status: str | None,
    page: int,
    limit: int,
) -> PageOf[SubscriptionRecord]:
    return await fetch_page(
        db,
        SubscriptionRecord,
        select=_COLUMNS,
        source="subscriptions s",
        filters={
            "s.organization_id": organization_id,
            "s.customer_id": customer_id,
            "s.product_id": product_id,
            "s.status": status,
        },
        order_by="s.created_at DESC, s.id",
        page=page,
        limit=limit,
    )


async def get_subscription_in_transaction(tx: Transaction, subscription_id: str) -> SubscriptionRecord:
    row = await tx.fetchone(f"SELECT {_COLUMNS} FROM subscriptions s WHERE s.id = ?", (subscription_id,))
    if row is None:
        raise NotFound("subscription not found")
    return msgspec.convert(row_dict(row), SubscriptionRecord, strict=False)
