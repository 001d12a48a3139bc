"""Event payloads in Polar's shapes, built inside the write transaction of the change (so they describe the
object as that change left it). ``portal.polar``'s loaders and converters make the ``data`` objects; they only
call ``fetchone``/``fetchall``, which the transaction provides too, and read through the writer connection so
they see the uncommitted change."""

from __future__ import annotations

from typing import Any, cast

import msgspec

from portal.benefits import reads as benefit_reads
from portal.customers import reads as customer_reads
from portal.db import Database, Transaction
from portal.orders import reads as order_reads
from portal.polar import convert, loaders
from portal.scope import EVERY_ORGANIZATION
from portal.subscriptions import reads as subscription_reads


def _reader(tx: Transaction) -> Database:
    return cast(Database, tx)


async def order(tx: Transaction, order_id: str) -> dict[str, Any]:
    """Polar's ``Order``."""
    record = await order_reads.get_order_record(tx, EVERY_ORGANIZATION, order_id)
    assert record is not None
    return msgspec.to_builtins(await loaders.order(_reader(tx), record))


async def subscription(tx: Transaction, subscription_id: str) -> dict[str, Any]:
    """Polar's ``Subscription``."""
    record = await subscription_reads.get_subscription_record(tx, EVERY_ORGANIZATION, subscription_id)
    assert record is not None
    return msgspec.to_builtins(await loaders.subscription(_reader(tx), record))


async def benefit_grant(
    tx: Transaction, grant_id: str, previous_properties: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Polar's ``BenefitGrantWebhook``: a ``BenefitGrant`` and its ``previous_properties``."""
    record = await benefit_reads.get_grant_record(tx, EVERY_ORGANIZATION, grant_id)
    assert record is not None
    data = msgspec.to_builtins(await loaders.grant(_reader(tx), record))
    data["previous_properties"] = previous_properties
    return data


async def customer(tx: Transaction, customer_id: str) -> dict[str, Any]:
    """Polar's ``Customer``."""
    record = await customer_reads.get_customer_record(tx, EVERY_ORGANIZATION, customer_id, include_deleted=True)
    assert record is not None
    return msgspec.to_builtins(convert.customer_out(record))


async def license_key_activation(tx: Transaction, activation_id: str) -> dict[str, Any]:
    """Portal's own shape, after Polar's ``LicenseKeyActivationRead``: the activation and its license key
    (Polar's ``LicenseKeyRead``, with the customer nested)."""
    activation = await benefit_reads.get_activation_row(tx, activation_id)
    assert activation is not None
    key = await benefit_reads.get_license_key_row(tx, EVERY_ORGANIZATION, activation["license_key_id"])
    assert key is not None
    owner = await customer(tx, key["customer_id"])
    return {
        "id": activation["id"],
        "license_key_id": activation["license_key_id"],
        "label": activation["label"],
        "meta": msgspec.json.decode(activation["meta"] or "{}"),
        "conditions": msgspec.json.decode(activation["conditions"] or "{}"),
        "created_at": activation["created_at"],
        "modified_at": activation["modified_at"],
        "license_key": {
            "id": key["id"],
            "created_at": key["created_at"],
            "modified_at": key["modified_at"],
            "organization_id": key["organization_id"],
            "customer_id": key["customer_id"],
            "customer": owner,
            "benefit_id": key["benefit_id"],
            "key": key["key"],
            "display_key": key["display_key"],
            "status": key["status"],
            "limit_activations": key["limit_activations"],
            "usage": key["usage"],
            "limit_usage": key["limit_usage"],
            "validations": key["validations"],
            "last_validated_at": key["last_validated_at"],
            "expires_at": key["expires_at"],
        },
    }
