"""The event types Portal sends. Polar's names and payload shapes (``{"type", "timestamp", "data"}`` with
``data`` an ``Order``, ``Subscription``, ``BenefitGrant`` or ``Customer``) where Polar has the event; the two
license-key events are Portal's own (``data``: the activation, with its ``license_key`` nested)."""

from __future__ import annotations

from typing import Literal, get_args

WebhookEventType = Literal[
    "order.paid",
    "order.refunded",
    "subscription.updated",
    "subscription.active",
    "subscription.canceled",
    "subscription.uncanceled",
    "subscription.revoked",
    "benefit_grant.created",
    "benefit_grant.updated",
    "benefit_grant.revoked",
    "customer.updated",
    "license_key.activated",
    "license_key.deactivated",
]
EVENT_TYPES: tuple[str, ...] = get_args(WebhookEventType)
