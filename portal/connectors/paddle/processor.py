"""``PaddleProcessor``: the ``portal.connectors.base.Processor`` for Paddle Billing: credentials check, webhook
verification with the official SDK's ``Verifier`` (``Paddle-Signature: ts=…;h1=…``, every ``h1`` tried, so a
secret rotation's two signatures both pass; 300 s tolerance), dispatch of each event to
``portal.connectors.paddle.mapping``, and the customer actions out through the SDK: cancel at the period end
(``effective_from: next_billing_period``), un-cancel (the scheduled change removed) and a plan change with the
seller's proration mode. Paddle has no hosted payment-method page Portal can open by URL, so that action is not
offered. The seller's refunds from the console are refund adjustments (``POST /adjustments``), which Paddle
approves later: they count in Portal when ``adjustment.updated`` says ``approved``. Events are stored once by
``event_id``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
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
from portal.connectors.names import PROCESSOR_LABELS
from portal.connectors.paddle import client as paddle_client
from portal.connectors.paddle import mapping
from portal.connectors.store import Secrets
from portal.db import Transaction
from portal.settings import Settings

# Paddle takes a reason in words.
REFUND_REASONS = {
    "requested_by_customer": "requested by customer",
    "duplicate": "duplicate payment",
    "fraudulent": "fraudulent payment",
}

WEBHOOK_EVENTS: tuple[str, ...] = (
    "transaction.completed",
    "subscription.created",
    "subscription.updated",
    "subscription.activated",
    "subscription.canceled",
    "subscription.paused",
    "subscription.resumed",
    "subscription.past_due",
    "subscription.trialing",
    "adjustment.created",
    "adjustment.updated",
    "customer.updated",
)
CAPABILITIES = frozenset({"cancel", "uncancel", "change_plan"})
# The seller's proration setting (``ConnectorSettings.proration_behavior``) -> Paddle's proration_billing_mode.
PRORATION = {
    "create_prorations": "prorated_next_billing_period",
    "always_invoice": "prorated_immediately",
    "none": "do_not_bill",
}
# Entities fetched for an event and applied first, in this order (their mapping by API collection).
STATE_KINDS = {
    "customers": mapping.apply_customer,
    "subscriptions": mapping.apply_subscription,
    "transactions": mapping.apply_transaction,
}


@dataclass(frozen=True)
class _Delivery:
    """What the SDK's verifier reads of a request: its headers and raw body."""

    headers: dict[str, str]
    body: bytes


class PaddleProcessor:
    name = "paddle"
    label = PROCESSOR_LABELS[name]
    webhook_events = WEBHOOK_EVENTS
    capabilities = CAPABILITIES
    order_kinds: tuple[str, ...] = ("transaction",)

    def check_credentials(self, secrets: Secrets, settings: Settings) -> Account:
        api = paddle_client.client(secrets.api_key, settings.paddle_api_base)
        paddle_client.call(lambda: api.get_raw("/event-types"))
        # Paddle's keys say their environment: pdl_live_apikey_… or pdl_sdbx_apikey_….
        sandbox = "_sdbx_" in secrets.api_key or "sandbox" in settings.paddle_api_base
        return Account(id=None, livemode=not sandbox)

    def verify_event(self, body: bytes, headers: Mapping[str, str], secrets: Secrets) -> InboundEvent:
        # The SDK is imported on first use (portal.connectors.paddle.client says why).
        from paddle_billing.Notifications import Secret, Verifier
        from paddle_billing.Notifications.PaddleSignature import PaddleSignature

        header = headers.get("paddle-signature")
        if not header or not secrets.webhook_secret:
            raise BadSignature("missing Paddle-Signature")
        delivery = _Delivery(headers={"Paddle-Signature": header}, body=body)
        try:
            # The SDK's verifier skips the timestamp check when the process has TEST_MODE set: Portal checks the
            # tolerance itself as well, whatever the environment.
            timestamp, _hashes = PaddleSignature.parse(header)
            if abs(time.time() - timestamp) > paddle_client.SIGNATURE_TOLERANCE:
                raise BadSignature("the Paddle-Signature timestamp is too old (or in the future)")
            verified = Verifier(maximum_variance=paddle_client.SIGNATURE_TOLERANCE).verify(
                delivery, Secret(secrets.webhook_secret)
            )
            payload = json.loads(body)
        except (ValueError, TypeError):  # a malformed header (non-ASCII too), a body not UTF-8 or not JSON
            raise BadSignature("a malformed Paddle-Signature or body") from None
        if not verified:
            raise BadSignature("Paddle-Signature does not match the body, or its timestamp is too old")
        if not isinstance(payload, dict) or not isinstance(payload.get("event_id"), str):
            raise BadSignature("not a Paddle event")
        if not isinstance(payload.get("event_type"), str) or not isinstance(payload.get("data"), dict):
            raise BadSignature("not a Paddle event")
        try:
            created = mapping.stamp(payload.get("occurred_at"))
        except MappingError:
            raise BadSignature("not a Paddle event (occurred_at)") from None
        return InboundEvent(id=payload["event_id"], type=payload["event_type"], created=created, payload=payload)

    # --- actions out -------------------------------------------------------------------------------------------

    def _api(self, target: ActionTarget) -> Any:
        return self._api_of(target.secrets, target.settings)

    def _api_of(self, secrets: Secrets, settings: Settings) -> Any:
        return paddle_client.client(secrets.api_key, settings.paddle_api_base)

    def cancel_subscription(self, target: ActionTarget) -> None:
        api = self._api(target)
        body = {"effective_from": "next_billing_period"}
        paddle_client.call(lambda: api.post_raw(f"/subscriptions/{target.subscription_id}/cancel", body))

    def uncancel_subscription(self, target: ActionTarget) -> None:
        api = self._api(target)
        body = {"scheduled_change": None}
        paddle_client.call(lambda: api.patch_raw(f"/subscriptions/{target.subscription_id}", body))

    def change_plan(self, target: ActionTarget, processor_price_id: str) -> None:
        api = self._api(target)
        current = paddle_client.call(lambda: api.get_raw(f"/subscriptions/{target.subscription_id}"))
        items = (current.get("data") or {}).get("items") or []
        if len(items) > 1:
            raise ProcessorError("the Paddle subscription has several items; change it in Paddle")
        quantity = int(items[0].get("quantity") or 1) if items else 1
        body = {
            "items": [{"price_id": processor_price_id, "quantity": quantity}],
            "proration_billing_mode": PRORATION.get(
                target.connector_settings.proration_behavior, "prorated_next_billing_period"
            ),
        }
        paddle_client.call(lambda: api.patch_raw(f"/subscriptions/{target.subscription_id}", body))

    def payment_method_url(self, target: ActionTarget, return_url: str) -> str:
        raise ProcessorError("Paddle's payment-method update is not offered through Portal")

    def redirect_origins(self, settings: Settings) -> tuple[str, ...]:
        return ()

    def refund_order(self, target: RefundTarget, amount: int, reason: RefundReason) -> ProcessorRefund:
        """A refund adjustment of the order's transaction: ``type: full`` for all that is left, else ``partial``
        with the amount spread over the transaction's line items (``details.line_items[].id``, amounts inclusive
        of tax). Keyed as the webhook mapping keys adjustments, so the approved refund counts once."""
        transaction_id = target.links.get("transaction")
        if not transaction_id:
            raise ProcessorError("Portal does not know the Paddle transaction of this order")
        api = self._api_of(target.secrets, target.settings)
        body: dict[str, Any] = {
            "action": "refund",
            "transaction_id": transaction_id,
            "reason": REFUND_REASONS.get(reason, "other"),
        }
        if amount >= target.remaining:
            body["type"] = "full"
        else:
            current = paddle_client.call(lambda: api.get_raw(f"/transactions/{transaction_id}"))
            line_items = (((current.get("data") or {}).get("details") or {}).get("line_items")) or []
            items, left = [], amount
            for line in line_items:
                room = int(str((line.get("totals") or {}).get("total") or "0"))
                take = min(room, left)
                if take > 0 and line.get("id"):
                    items.append({"item_id": line["id"], "type": "partial", "amount": str(take)})
                    left -= take
            if left > 0 or not items:
                raise ProcessorError("the Paddle transaction's items do not cover this amount; refund it in Paddle")
            body |= {"type": "partial", "items": items}
        made = (paddle_client.call(lambda: api.post_raw("/adjustments", body)).get("data")) or {}
        if not isinstance(made.get("id"), str):
            raise ProcessorError("Paddle answered an adjustment without an id", unavailable=True)
        status = made.get("status")
        if status == "rejected":
            raise ProcessorError("Paddle rejected the refund")
        total = int(str((made.get("totals") or {}).get("total") or amount))
        return ProcessorRefund(id=made["id"], kind="adjustment", amount=total, pending=status != "approved")

    # --- events in ---------------------------------------------------------------------------------------------

    async def apply(
        self, tx: Transaction, ctx: ApplyContext, event: InboundEvent, fetched: Mapping[tuple[str, str], Any]
    ) -> Outcome:
        unmapped = await self.apply_fetched(tx, ctx, fetched)
        if unmapped is not None:
            return unmapped
        data = event.payload["data"]
        name = event.type
        if name == "transaction.completed":
            return await mapping.apply_transaction(tx, ctx, data)
        if name.startswith("subscription."):
            return await mapping.apply_subscription(tx, ctx, data)
        if name.startswith("adjustment."):
            return await mapping.apply_adjustment(tx, ctx, data)
        if name == "customer.updated":
            return await mapping.apply_customer(tx, ctx, data)
        return Outcome("ignored", f"Portal does not use {name} events")

    async def apply_fetched(
        self, tx: Transaction, ctx: ApplyContext, fetched: Mapping[tuple[str, str], Any]
    ) -> Outcome | None:
        """Fetched entities are current states, applied first (customers, subscriptions, transactions); the
        outcome when one waits for a price mapping (the event waits with it), else None."""
        for state_kind, apply_state in STATE_KINDS.items():
            for (kind, _object_id), entity in fetched.items():
                if kind == state_kind:
                    outcome = await apply_state(tx, ctx, entity)
                    if outcome.status == "unmapped":
                        return outcome
        return None

    def needs(self, event: InboundEvent) -> list[tuple[str, str]]:
        return []

    def fetch(self, kind: str, object_id: str, secrets: Secrets, settings: Settings) -> Any:
        if kind not in STATE_KINDS:
            raise ValueError(f"Paddle entities of kind {kind!r} are not fetched")
        api = paddle_client.client(secrets.api_key, settings.paddle_api_base)
        return paddle_client.call(lambda: api.get_raw(f"/{kind}/{object_id}")).get("data")
