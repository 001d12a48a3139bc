"""Benefit grants: giving a product's benefits to a customer (from a paid order or a live subscription),
revoking them (full refund, ended subscription) and re-syncing a subscription's grants after its status or
product changes; a seller's manual grant (the seller console: no order, no subscription) and revoking one grant.
One grant per (customer, benefit, order|subscription|manual): granting again is a no-op, and a revoked grant is
restored rather than duplicated."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from portal.benefits.license_keys import issue_license_key, set_grant_license_keys_status
from portal.benefits.service import (
    DiscordProperties,
    DownloadablesProperties,
    GitHubRepositoryProperties,
    LicenseKeysProperties,
    MeterCreditProperties,
    load_properties,
)
from portal.clock import iso, new_id
from portal.db import Transaction
from portal.errors import InvalidInput
from portal.notifications import hooks as notify
from portal.orders.reads import paid_one_time_orders_of_product
from portal.products.service import get_product_benefit_ids
from portal.references import require_owned
from portal.scope import EVERY_ORGANIZATION
from portal.subscriptions.reads import get_subscription_record, subscriptions_of_product

# Subscription statuses that hold their product's benefits.
BENEFIT_HOLDING_STATUSES = frozenset({"active", "trialing"})


async def _grant_properties(
    tx: Transaction,
    *,
    benefit: Any,
    grant_id: str,
    customer_id: str,
    now: datetime,
) -> dict[str, Any]:
    """Per-type grant ``properties`` (Polar's ``BenefitGrant*Properties``); issues license keys."""
    props = load_properties(benefit["type"], benefit["properties"])
    if isinstance(props, LicenseKeysProperties):
        license_key_id, shown = await issue_license_key(
            tx,
            organization_id=benefit["organization_id"],
            customer_id=customer_id,
            benefit_id=benefit["id"],
            grant_id=grant_id,
            properties=props,
            now=now,
        )
        return {"license_key_id": license_key_id, "display_key": shown}
    if isinstance(props, DownloadablesProperties):
        return {"files": [f for f in props.files if not props.archived.get(f)]}
    if isinstance(props, GitHubRepositoryProperties):
        return {
            "repository_owner": props.repository_owner,
            "repository_name": props.repository_name,
            "permission": props.permission,
        }
    if isinstance(props, DiscordProperties):
        return {"guild_id": props.guild_id, "role_id": props.role_id}
    if isinstance(props, MeterCreditProperties):
        return {
            "last_credited_meter_id": props.meter_id,
            "last_credited_units": props.units,
            "last_credited_at": iso(now),
        }
    return {}


async def grant_benefit(
    tx: Transaction,
    *,
    customer_id: str,
    benefit_id: str,
    order_id: str | None = None,
    subscription_id: str | None = None,
    now: datetime,
    manual: bool = False,
) -> str:
    """Grant one benefit to a customer for an order or a subscription (exactly one), or ``manual`` (neither: the
    seller gave it); returns the grant id."""
    if manual:
        if order_id is not None or subscription_id is not None:
            raise InvalidInput("a manual grant comes from no order or subscription")
    elif (order_id is None) == (subscription_id is None):
        raise InvalidInput("a grant comes from exactly one order or subscription")
    benefit = await tx.fetchone("SELECT * FROM benefits WHERE id = ?", (benefit_id,))
    if benefit is None:
        raise InvalidInput("benefit not found", "benefit_id")
    existing = await tx.fetchone(
        """
        SELECT id, revoked_at FROM benefit_grants
        WHERE customer_id = ?
          AND benefit_id = ?
          AND order_id IS ?
          AND subscription_id IS ?
        """,
        (customer_id, benefit_id, order_id, subscription_id),
    )
    if existing is not None:
        if existing["revoked_at"] is not None:
            await tx.execute(
                """
                UPDATE benefit_grants
                SET revoked_at = NULL, granted_at = ?, modified_at = ?
                WHERE id = ?
                """,
                (iso(now), iso(now), existing["id"]),
            )
            await set_grant_license_keys_status(tx, existing["id"], "granted", now=now)
            await notify.grant_restored(tx, existing["id"], now=now)
        return existing["id"]
    grant_id = new_id()
    # The row goes in first: license_keys.grant_id references it.
    await tx.execute(
        """
        INSERT INTO benefit_grants (
            id,
            organization_id,
            customer_id,
            benefit_id,
            order_id,
            subscription_id,
            granted_at,
            created_at
        ) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        """,
        (
            grant_id,
            benefit["organization_id"],
            customer_id,
            benefit_id,
            order_id,
            subscription_id,
            iso(now),
            iso(now),
        ),
    )
    properties = await _grant_properties(tx, benefit=benefit, grant_id=grant_id, customer_id=customer_id, now=now)
    await tx.execute(
        "UPDATE benefit_grants SET properties = ? WHERE id = ?",
        (msgspec.json.encode(properties).decode(), grant_id),
    )
    await notify.grant_created(tx, grant_id, now=now)
    return grant_id


async def grant_manually(
    tx: Transaction, *, organization_id: str, customer_id: str, benefit_id: str, now: datetime
) -> tuple[str, bool]:
    """A seller gives one of the organization's (live) benefits to one of its customers, outside any order or
    subscription: a license-key benefit issues a key, webhooks ``benefit_grant.created`` (``.updated`` when a revoked
    manual grant of the same benefit is restored) go out as for any grant. Returns (grant id, whether it is new or
    restored: False when the customer already held this manual grant). ``UnknownReference`` on ``customer_id`` /
    ``benefit_id`` for another organization's or a deleted one."""
    await require_owned(tx, "customer", customer_id, organization_id, "customer_id")
    await require_owned(tx, "benefit", benefit_id, organization_id, "benefit_id")
    held = await tx.fetchval(
        """
        SELECT id FROM benefit_grants
        WHERE customer_id = ? AND benefit_id = ? AND order_id IS NULL AND subscription_id IS NULL
          AND revoked_at IS NULL
        """,
        (customer_id, benefit_id),
    )
    grant_id = await grant_benefit(tx, customer_id=customer_id, benefit_id=benefit_id, now=now, manual=True)
    return grant_id, held is None


async def grant_product_benefits(
    tx: Transaction,
    *,
    customer_id: str,
    product_id: str,
    order_id: str | None = None,
    subscription_id: str | None = None,
    now: datetime,
) -> list[str]:
    """Grant every benefit of ``product_id``; returns the grant ids (existing ones included)."""
    return [
        await grant_benefit(
            tx,
            customer_id=customer_id,
            benefit_id=benefit_id,
            order_id=order_id,
            subscription_id=subscription_id,
            now=now,
        )
        for benefit_id in await get_product_benefit_ids(tx, product_id)
    ]


async def revoke_grant(tx: Transaction, grant_id: str, *, now: datetime) -> bool:
    """Revoke one grant (and its license keys); already revoked grants keep their first ``revoked_at``. True when
    it was live. A grant of a live subscription comes back when the subscription's grants are synced again (a plan
    change, a renewal); one of an order stays revoked."""
    cursor = await tx.execute(
        """
        UPDATE benefit_grants SET revoked_at = ?, modified_at = ?
        WHERE id = ? AND revoked_at IS NULL
        """,
        (iso(now), iso(now), grant_id),
    )
    await set_grant_license_keys_status(tx, grant_id, "revoked", now=now)
    if cursor.rowcount:
        await notify.grant_revoked(tx, grant_id, now=now)
    return bool(cursor.rowcount)


async def _revoke_where(tx: Transaction, column: str, value: str, now: datetime) -> int:
    sql = {
        "order_id": "SELECT id FROM benefit_grants WHERE order_id = ? AND revoked_at IS NULL",
        "subscription_id": ("SELECT id FROM benefit_grants WHERE subscription_id = ? AND revoked_at IS NULL"),
    }[column]
    rows = await tx.fetchall(sql, (value,))
    for row in rows:
        await revoke_grant(tx, row["id"], now=now)
    return len(rows)


async def revoke_order_grants(tx: Transaction, order_id: str, *, now: datetime) -> int:
    """Revoke every live grant that came from an order; returns how many."""
    return await _revoke_where(tx, "order_id", order_id, now)


async def revoke_subscription_grants(tx: Transaction, subscription_id: str, *, now: datetime) -> int:
    """Revoke every live grant that came from a subscription; returns how many."""
    return await _revoke_where(tx, "subscription_id", subscription_id, now)


async def sync_subscription_grants(tx: Transaction, subscription_id: str, *, now: datetime) -> None:
    """Make a subscription's grants match its state: while ``active``/``trialing`` it holds exactly its
    current product's benefits (a plan change revokes the old product's extra benefits and grants the new
    ones); in any other status it holds none."""
    subscription = await get_subscription_record(tx, EVERY_ORGANIZATION, subscription_id)
    if subscription is None:
        raise InvalidInput("subscription not found", "subscription_id")
    if subscription.status not in BENEFIT_HOLDING_STATUSES:
        await revoke_subscription_grants(tx, subscription_id, now=now)
        return
    wanted = await get_product_benefit_ids(tx, subscription.product_id)
    live = await tx.fetchall(
        """
        SELECT id, benefit_id FROM benefit_grants
        WHERE subscription_id = ? AND revoked_at IS NULL
        """,
        (subscription_id,),
    )
    for row in live:
        if row["benefit_id"] not in wanted:
            await revoke_grant(tx, row["id"], now=now)
    for benefit_id in wanted:
        await grant_benefit(
            tx,
            customer_id=subscription.customer_id,
            benefit_id=benefit_id,
            subscription_id=subscription_id,
            now=now,
        )


async def grant_to_product_holders(tx: Transaction, product_id: str, benefit_id: str, *, now: datetime) -> int:
    """Grant a benefit just added to a product to those who already hold the product: each paid one-time order's
    customer and each active or trialing subscription's (the others hold no benefits). Returns how many grants."""
    holders = [
        (row["customer_id"], row["id"], None) for row in await paid_one_time_orders_of_product(tx, product_id)
    ] + [
        (row["customer_id"], None, row["id"])
        for row in await subscriptions_of_product(tx, product_id, BENEFIT_HOLDING_STATUSES)
    ]
    for customer_id, order_id, subscription_id in holders:
        await grant_benefit(
            tx,
            customer_id=customer_id,
            benefit_id=benefit_id,
            order_id=order_id,
            subscription_id=subscription_id,
            now=now,
        )
    return len(holders)
