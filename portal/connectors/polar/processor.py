"""``PolarProcessor``: the ``portal.connectors.base.Processor`` for Polar: credentials check, Standard Webhooks
verification (the ``standardwebhooks`` package, five minutes' tolerance; the event id is the ``webhook-id``
header), the dispatch of each event type to ``portal.connectors.polar.mapping``, and the customer actions Polar's
``PATCH /v1/subscriptions/{id}`` receives (cancel at period end, un-cancel, product change), and the seller's
refunds from the console (``POST /v1/refunds/``).

Polar's webhook secrets: the signature may be made with the secret's own bytes or, when the secret is base64
(after an optional ``whsec_``, as Portal's own endpoints have), with the bytes it encodes; both are tried, as
Polar's SDK (``polar.webhooks.validate_event``) does."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

import standardwebhooks

from portal.connectors.base import (
    Account,
    ActionTarget,
    ApplyContext,
    BadSignature,
    InboundEvent,
    NeedObject,
    Outcome,
    ProcessorError,
    ProcessorRefund,
    RefundReason,
    RefundTarget,
)
from portal.connectors.names import PROCESSOR_LABELS
from portal.connectors.polar import client, mapping
from portal.connectors.store import Secrets
from portal.db import Transaction
from portal.settings import Settings

WEBHOOK_EVENTS: tuple[str, ...] = (
    "order.paid",
    "order.updated",
    "order.refunded",
    "subscription.created",
    "subscription.updated",
    "subscription.active",
    "subscription.canceled",
    "subscription.uncanceled",
    "subscription.revoked",
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "benefit_grant.created",
    "benefit_grant.updated",
    "benefit_grant.revoked",
)
CAPABILITIES = frozenset({"cancel", "uncancel", "change_plan"})
# Portal's refund reasons in Polar's ``RefundReason`` (which says "customer_request" where Stripe says
# "requested_by_customer").
REFUND_REASONS = {"requested_by_customer": "customer_request", "duplicate": "duplicate", "fraudulent": "fraudulent"}
LICENSE_KEYS = "license-keys"


def _signing_keys(secret: str) -> list[bytes]:
    """The keys a Polar webhook secret may sign with, as Polar's SDK tries them: the secret's own bytes, and the
    base64 it encodes (without the ``whsec_`` prefix) when it is base64."""
    keys = [secret.encode()]
    remainder = secret.removeprefix("whsec_")
    try:
        decoded = base64.b64decode(remainder + "=" * (-len(remainder) % 4), validate=True)
    except (binascii.Error, ValueError):
        return keys
    if decoded and decoded != keys[0]:
        keys.append(decoded)
    return keys


def _object(event: InboundEvent) -> dict[str, Any] | None:
    data = event.payload.get("data")
    return data if isinstance(data, dict) and isinstance(data.get("id"), str) else None


def _license_key_id(grant: dict[str, Any]) -> str | None:
    found = (grant.get("properties") or {}).get("license_key_id") if isinstance(grant.get("properties"), dict) else None
    return found if isinstance(found, str) else None


class PolarProcessor:
    name = "polar"
    label = PROCESSOR_LABELS[name]
    webhook_events = WEBHOOK_EVENTS
    capabilities = CAPABILITIES
    order_kinds: tuple[str, ...] = ("order",)

    def check_credentials(self, secrets: Secrets, settings: Settings) -> Account:
        """List one customer: the smallest read the connector needs (``customers:read``)."""
        client.get(secrets.api_key, settings.polar_api_base, "/v1/customers/", {"limit": 1})
        return Account(id=None, livemode="sandbox" not in settings.polar_api_base)

    def verify_event(self, body: bytes, headers: Mapping[str, str], secrets: Secrets) -> InboundEvent:
        if not secrets.webhook_secret or not headers.get("webhook-signature") or not headers.get("webhook-id"):
            raise BadSignature("missing webhook-id or webhook-signature")
        failure = "the signature does not verify"
        for key in _signing_keys(secrets.webhook_secret):
            try:
                standardwebhooks.Webhook(key).verify(body, dict(headers))
                break
            except (standardwebhooks.WebhookVerificationError, ValueError, TypeError) as exc:
                failure = str(exc) or failure
        else:
            raise BadSignature(failure)
        try:
            payload = json.loads(body)
        except ValueError:
            raise BadSignature("not JSON") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
            raise BadSignature("not a Polar event")
        created = mapping.parse_time(payload.get("timestamp"))
        stamp = int(created.timestamp()) if created else int(headers.get("webhook-timestamp") or 0)
        return InboundEvent(id=headers["webhook-id"], type=payload["type"], created=stamp, payload=payload)

    # --- actions out: PATCH /v1/subscriptions/{id} ---------------------------------------------------------------

    def _patch(self, target: ActionTarget, body: dict[str, Any]) -> None:
        client.patch(
            target.secrets.api_key, target.settings.polar_api_base, f"/v1/subscriptions/{target.subscription_id}", body
        )

    def cancel_subscription(self, target: ActionTarget) -> None:
        self._patch(target, {"cancel_at_period_end": True})

    def uncancel_subscription(self, target: ActionTarget) -> None:
        self._patch(target, {"cancel_at_period_end": False})

    def change_plan(self, target: ActionTarget, processor_price_id: str) -> None:
        """``processor_price_id`` is the Polar product the Portal product is mapped to (Polar prices a product)."""
        self._patch(target, {"product_id": processor_price_id})

    def payment_method_url(self, target: ActionTarget, return_url: str) -> str:
        raise ProcessorError("Polar's customers update their payment method in Polar's own portal")

    def redirect_origins(self, settings: Settings) -> tuple[str, ...]:
        return ()

    def refund_order(self, target: RefundTarget, amount: int, reason: RefundReason) -> ProcessorRefund:
        """``POST /v1/refunds/`` (``RefundCreate``: order, reason, amount). The order's benefits follow the
        connection's setting through Portal's own full-refund rule, so Polar is not asked to revoke them."""
        order_id = target.links.get("order")
        if not order_id:
            raise ProcessorError("Portal does not know the Polar order of this order")
        body = {"order_id": order_id, "reason": REFUND_REASONS.get(reason, "other"), "amount": amount}
        made = client.request(target.secrets.api_key, target.settings.polar_api_base, "POST", "/v1/refunds/", json=body)
        if not isinstance(made, dict) or not isinstance(made.get("id"), str):
            raise ProcessorError("Polar answered a refund without an id", unavailable=True)
        if made.get("status") in ("failed", "canceled"):
            raise ProcessorError(f"Polar did not refund the order (the refund is {made['status']})")
        return ProcessorRefund(id=made["id"], kind="refund", amount=int(made.get("amount") or amount))

    # --- events in -----------------------------------------------------------------------------------------------

    async def apply(
        self, tx: Transaction, ctx: ApplyContext, event: InboundEvent, fetched: Mapping[tuple[str, str], Any]
    ) -> Outcome:
        # Parents fetched for the event (an order's subscription, a key's order) first, as their current state.
        for wanted in ("subscriptions", "orders"):
            for (kind, _object_id), obj in fetched.items():
                if kind == wanted:
                    apply_state = mapping.apply_subscription if kind == "subscriptions" else mapping.apply_order
                    outcome = await apply_state(tx, ctx, obj)
                    if outcome.status == "unmapped":
                        return outcome
        obj = _object(event)
        if obj is None:
            return Outcome("ignored", "the event carries no object")
        kind = event.type
        if kind.startswith("customer."):
            return await mapping.apply_customer(tx, ctx, obj, kind)
        if kind.startswith("order."):
            return await mapping.apply_order(tx, ctx, obj)
        if kind.startswith("subscription."):
            return await mapping.apply_subscription(tx, ctx, obj)
        if kind.startswith("benefit_grant."):
            key_id = _license_key_id(obj)
            if key_id is None:
                return Outcome(
                    "ignored", "Portal grants the mapped product's own benefits; only license keys carry over"
                )
            key = fetched.get((LICENSE_KEYS, key_id))
            if key is None:
                raise NeedObject(LICENSE_KEYS, key_id)
            return await mapping.apply_license_key(
                tx, ctx, key, order_id=obj.get("order_id"), subscription_id=obj.get("subscription_id")
            )
        return Outcome("ignored", f"Portal does not use {kind} events")

    def needs(self, event: InboundEvent) -> list[tuple[str, str]]:
        """A grant's license key: the event names it only (``properties.license_key_id``), never its key."""
        obj = _object(event)
        if obj is not None and event.type.startswith("benefit_grant."):
            key_id = _license_key_id(obj)
            if key_id is not None:
                return [(LICENSE_KEYS, key_id)]
        return []

    def fetch(self, kind: str, object_id: str, secrets: Secrets, settings: Settings) -> Any:
        if kind not in ("subscriptions", "orders", LICENSE_KEYS, "customers"):
            raise ValueError(f"Polar objects of kind {kind!r} are not fetched")
        return client.get(secrets.api_key, settings.polar_api_base, f"/v1/{kind}/{object_id}")
