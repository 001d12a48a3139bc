"""``LemonSqueezyProcessor``: the ``portal.connectors.base.Processor`` for Lemon Squeezy: credentials check
(``GET /v1/users/me``), webhook verification (``X-Signature``: hex HMAC-SHA256 of the raw body with the webhook's
signing secret, compared in constant time), dispatch of each event to ``portal.connectors.lemonsqueezy.mapping``,
and the customer actions out (cancel, resume, variant change) and the seller's refunds (``POST
/v1/orders/{id}/refund``, ``POST /v1/subscription-invoices/{id}/refund``) through Lemon Squeezy's API.

Lemon Squeezy's payloads carry no event id: an event's id is the SHA-256 of its body (a redelivery is the same
body, so it is stored once), and its version is the resource's ``updated_at`` (see ``mapping`` on ordering).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from portal.connectors.base import (
    Account,
    ActionTarget,
    ApplyContext,
    BadSignature,
    InboundEvent,
    MappingError,
    Outcome,
    ProcessorError,
    ProcessorRefund,
    RefundReason,
    RefundTarget,
)
from portal.connectors.lemonsqueezy import client, mapping
from portal.connectors.names import PROCESSOR_LABELS
from portal.connectors.store import Secrets
from portal.db import Transaction
from portal.settings import Settings

# What to tick in Lemon Squeezy's webhook settings (README "Connect Lemon Squeezy").
WEBHOOK_EVENTS: tuple[str, ...] = (
    "order_created",
    "order_refunded",
    "subscription_created",
    "subscription_updated",
    "subscription_cancelled",
    "subscription_resumed",
    "subscription_expired",
    "subscription_paused",
    "subscription_unpaused",
    "subscription_payment_success",
    "subscription_payment_failed",
    "subscription_payment_recovered",
    "subscription_payment_refunded",
    "license_key_created",
    "license_key_updated",
)
SUBSCRIPTION_EVENTS = frozenset(e for e in WEBHOOK_EVENTS if e.startswith("subscription_") and "payment" not in e)
CAPABILITIES = frozenset({"cancel", "uncancel", "change_plan"})
# The resource kinds ``fetch`` reads (the API's collections), plus a subscription found by its first order.
ORDER_SUBSCRIPTION = "order_subscription"


class LemonSqueezyProcessor:
    name = "lemonsqueezy"
    label = PROCESSOR_LABELS[name]
    webhook_events = WEBHOOK_EVENTS
    order_kinds: tuple[str, ...] = ("order", "invoice")
    capabilities = CAPABILITIES

    def check_credentials(self, secrets: Secrets, settings: Settings) -> Account:
        document = client.request(secrets.api_key, settings.lemonsqueezy_api_base, "GET", "/v1/users/me")
        user = document.get("data") or {}
        test_mode = bool((document.get("meta") or {}).get("test_mode"))
        return Account(id=None if user.get("id") is None else str(user["id"]), livemode=not test_mode)

    def verify_event(self, body: bytes, headers: Mapping[str, str], secrets: Secrets) -> InboundEvent:
        signature = headers.get("x-signature")
        if not signature or not secrets.webhook_secret:
            raise BadSignature("missing X-Signature")
        expected = hmac.new(secrets.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        # Bytes, not str: compare_digest refuses non-ASCII str (a header may carry any Latin-1 character).
        if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode("utf-8", "replace")):
            raise BadSignature("X-Signature does not match the body")
        try:
            payload = json.loads(body)
        except ValueError:
            raise BadSignature("the body is not JSON") from None
        meta = payload.get("meta") if isinstance(payload, dict) else None
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(meta, dict) or not isinstance(meta.get("event_name"), str) or not isinstance(data, dict):
            raise BadSignature("not a Lemon Squeezy event")
        try:
            created = mapping.stamp((data.get("attributes") or {}).get("updated_at"))
        except MappingError:
            created = 0
        return InboundEvent(
            id=hashlib.sha256(body).hexdigest(), type=meta["event_name"], created=created, payload=payload
        )

    # --- actions out -------------------------------------------------------------------------------------------

    def _patch(self, target: ActionTarget, attributes: dict[str, Any]) -> None:
        body = {"data": {"type": "subscriptions", "id": target.subscription_id, "attributes": attributes}}
        client.request(
            target.secrets.api_key,
            target.settings.lemonsqueezy_api_base,
            "PATCH",
            f"/v1/subscriptions/{target.subscription_id}",
            body=body,
        )

    def cancel_subscription(self, target: ActionTarget) -> None:
        """Lemon Squeezy's cancel is at the period end (the subscription stays active until ``ends_at``)."""
        client.request(
            target.secrets.api_key,
            target.settings.lemonsqueezy_api_base,
            "DELETE",
            f"/v1/subscriptions/{target.subscription_id}",
        )

    def uncancel_subscription(self, target: ActionTarget) -> None:
        self._patch(target, {"cancelled": False})

    def change_plan(self, target: ActionTarget, processor_price_id: str) -> None:
        """Move to another variant; the seller's proration setting: ``none`` disables prorations,
        ``always_invoice`` charges the difference now, ``create_prorations`` leaves it for the next renewal."""
        try:
            variant = int(processor_price_id)
        except ValueError:
            raise ProcessorError(f"{processor_price_id!r} is not a Lemon Squeezy variant id") from None
        attributes: dict[str, Any] = {"variant_id": variant}
        proration = target.connector_settings.proration_behavior
        if proration == "none":
            attributes["disable_prorations"] = True
        elif proration == "always_invoice":
            attributes["invoice_immediately"] = True
        self._patch(target, attributes)

    def payment_method_url(self, target: ActionTarget, return_url: str) -> str:
        raise ProcessorError("Lemon Squeezy's payment-method page is not offered through Portal")

    def redirect_origins(self, settings: Settings) -> tuple[str, ...]:
        return ()

    def refund_order(self, target: RefundTarget, amount: int, reason: RefundReason) -> ProcessorRefund:
        """Refund ``amount`` cents of the order (or, for a subscription payment, of its subscription invoice);
        Lemon Squeezy takes no reason. It answers the order (invoice) with its cumulative ``refunded_amount``:
        this refund's id is the resource and that figure, so the same refund is keyed once."""
        if target.links.get("order"):
            kind, ls_id = "orders", target.links["order"]
        elif target.links.get("invoice"):
            kind, ls_id = "subscription-invoices", target.links["invoice"]
        else:
            raise ProcessorError("Portal does not know the Lemon Squeezy order of this order")
        body = {"data": {"type": kind, "id": ls_id, "attributes": {"amount": amount}}}
        answer = client.request(
            target.secrets.api_key,
            target.settings.lemonsqueezy_api_base,
            "POST",
            f"/v1/{kind}/{ls_id}/refund",
            body=body,
        )
        attributes = (answer.get("data") or {}).get("attributes") or {}
        refunded = attributes.get("refunded_amount")
        if not isinstance(refunded, int):
            raise ProcessorError("Lemon Squeezy answered a refund without the refunded amount", unavailable=True)
        return ProcessorRefund(id=f"{kind}/{ls_id}@{refunded}", kind="refund", amount=amount)

    # --- events in ---------------------------------------------------------------------------------------------

    async def apply(
        self, tx: Transaction, ctx: ApplyContext, event: InboundEvent, fetched: Mapping[tuple[str, str], Any]
    ) -> Outcome:
        unmapped = await self.apply_fetched(tx, ctx, fetched)
        if unmapped is not None:
            return unmapped
        data = event.payload.get("data")
        if not isinstance(data, dict):
            return Outcome("ignored", "the event carries no resource")
        name = event.type
        if name in ("order_created", "order_refunded"):
            keys = fetched.get((mapping.ORDER_LICENSE_KEYS, str(data.get("id"))))
            return await mapping.apply_order(tx, ctx, data, keys)
        if name in SUBSCRIPTION_EVENTS:
            return await mapping.apply_subscription(tx, ctx, data)
        if name in ("subscription_payment_success", "subscription_payment_recovered", "subscription_payment_refunded"):
            # A refunded invoice is the same invoice with its cumulative ``refunded_amount``/``status``: applied
            # as such, it creates the paid order first if the refund came before the payment.
            return await mapping.apply_subscription_invoice(tx, ctx, data)
        if name == "subscription_payment_failed":
            return await mapping.apply_payment_failed(tx, ctx, data)
        if name in ("license_key_created", "license_key_updated"):
            return await mapping.apply_license_key(tx, ctx, data)
        return Outcome("ignored", f"Portal does not use {name} events")

    async def apply_fetched(
        self, tx: Transaction, ctx: ApplyContext, fetched: Mapping[tuple[str, str], Any]
    ) -> Outcome | None:
        """Fetched resources are current states: applied first (orders, then subscriptions), as their own
        versions; the outcome when one waits for a variant mapping (the event waits with it), else None."""
        for wanted in ("orders", "subscriptions", ORDER_SUBSCRIPTION):
            for (kind, object_id), resource in fetched.items():
                if kind != wanted:
                    continue
                if resource is None:
                    raise MappingError(f"Lemon Squeezy has no subscription for order {object_id}")
                if kind == "orders":
                    keys = fetched.get((mapping.ORDER_LICENSE_KEYS, object_id))
                    outcome = await mapping.apply_order(tx, ctx, resource, keys)
                else:
                    outcome = await mapping.apply_subscription(tx, ctx, resource)
                if outcome.status == "unmapped":
                    return outcome
        return None

    def needs(self, event: InboundEvent) -> list[tuple[str, str]]:
        """A new order's license keys (adopted before its receipt is queued): fetched before the transaction."""
        data = event.payload.get("data") or {}
        if event.type == "order_created" and data.get("id") is not None:
            return [(mapping.ORDER_LICENSE_KEYS, str(data["id"]))]
        return []

    def fetch(self, kind: str, object_id: str, secrets: Secrets, settings: Settings) -> Any:
        base = settings.lemonsqueezy_api_base
        if kind == mapping.ORDER_LICENSE_KEYS:
            found = client.request(
                secrets.api_key, base, "GET", "/v1/license-keys", params={"filter[order_id]": object_id}
            )
            return list(found.get("data") or [])
        if kind == ORDER_SUBSCRIPTION:
            found = client.request(
                secrets.api_key, base, "GET", "/v1/subscriptions", params={"filter[order_id]": object_id}
            )
            items = found.get("data") or []
            return items[0] if items else None
        if kind not in ("orders", "subscriptions", "customers", "license-keys"):
            raise ValueError(f"Lemon Squeezy resources of kind {kind!r} are not fetched")
        return client.request(secrets.api_key, base, "GET", f"/v1/{kind}/{object_id}").get("data")
