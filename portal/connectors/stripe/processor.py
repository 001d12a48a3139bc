"""``StripeProcessor``: the ``portal.connectors.base.Processor`` for Stripe: credentials check, webhook
verification (Stripe's signing scheme through the official SDK, 300 s tolerance), and the dispatch of each event
type to ``portal.connectors.stripe.mapping``.

Which object each event applies: the event's own ``data.object`` (its state when the event happened), versioned by
the event's ``created`` (see ``mapping`` on ordering); ``refund.*`` carries one refund, not the charge's total, so
the charge is fetched from the API (its current ``amount_refunded``). Objects an event needs and Portal has not
seen (the customer of a subscription, the subscription of an invoice, a checkout session's line items, which
Stripe leaves out of the event) are fetched from the API (``fetch``) and applied first, versioned as the event.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import stripe

from portal.connectors.base import (
    Account,
    ActionTarget,
    ApplyContext,
    BadSignature,
    InboundEvent,
    MappingError,
    NeedObject,
    Outcome,
    ProcessorRefund,
    RefundReason,
    RefundTarget,
)
from portal.connectors.names import PROCESSOR_LABELS
from portal.connectors.store import Secrets
from portal.connectors.stripe import actions as stripe_actions
from portal.connectors.stripe import client as stripe_client
from portal.connectors.stripe import mapping
from portal.db import Transaction
from portal.settings import Settings

# What to select in Stripe's dashboard for the webhook endpoint (README "Connect Stripe").
WEBHOOK_EVENTS: tuple[str, ...] = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "invoice.paid",
    "invoice.payment_failed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
    "charge.refunded",
    "refund.created",
    "refund.updated",
    "customer.updated",
)

# Objects fetched for an event that are applied first, as their current state (mapping function by API kind).
STATE_KINDS = {"customers": mapping.apply_customer, "subscriptions": mapping.apply_subscription}
LINE_ITEMS = "checkout/sessions/line_items"


class StripeProcessor:
    name = "stripe"
    label = PROCESSOR_LABELS[name]
    webhook_events = WEBHOOK_EVENTS
    capabilities = stripe_actions.CAPABILITIES
    order_kinds: tuple[str, ...] = ("payment_intent", "charge", "checkout_session", "invoice")

    def check_credentials(self, secrets: Secrets, settings: Settings) -> Account:
        """List one customer: the smallest read every connection needs, allowed to a restricted key that has the
        permissions the connector uses (customers read)."""
        api = stripe_client.client(secrets.api_key, settings.stripe_api_base)
        result = stripe_client.call(lambda: api.v1.customers.list({"limit": 1}))
        livemode = bool(getattr(result, "livemode", False)) or "_live_" in secrets.api_key
        return Account(id=None, livemode=livemode)

    def verify_event(self, body: bytes, headers: Mapping[str, str], secrets: Secrets) -> InboundEvent:
        header = headers.get("stripe-signature")
        if not header or not secrets.webhook_secret:
            raise BadSignature("missing Stripe-Signature")
        try:
            stripe.WebhookSignature.verify_header(
                body.decode("utf-8"), header, secrets.webhook_secret, stripe_client.SIGNATURE_TOLERANCE
            )
            payload = json.loads(body)
        except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError) as exc:
            raise BadSignature(str(exc)) from None
        if not isinstance(payload, dict) or not isinstance(payload.get("id"), str):
            raise BadSignature("not a Stripe event")
        if not isinstance(payload.get("type"), str) or not isinstance(payload.get("created"), int):
            raise BadSignature("not a Stripe event")
        return InboundEvent(id=payload["id"], type=payload["type"], created=payload["created"], payload=payload)

    def cancel_subscription(self, target: ActionTarget) -> None:
        stripe_actions.set_cancel_at_period_end(target, True)

    def uncancel_subscription(self, target: ActionTarget) -> None:
        stripe_actions.set_cancel_at_period_end(target, False)

    def change_plan(self, target: ActionTarget, processor_price_id: str) -> None:
        stripe_actions.change_plan(target, processor_price_id)

    def payment_method_url(self, target: ActionTarget, return_url: str) -> str:
        return stripe_actions.payment_method_url(target, return_url)

    def refund_order(self, target: RefundTarget, amount: int, reason: RefundReason) -> ProcessorRefund:
        return stripe_actions.refund(target, amount, reason)

    def redirect_origins(self, settings: Settings) -> tuple[str, ...]:
        return stripe_actions.redirect_origins(settings)

    async def apply(
        self, tx: Transaction, ctx: ApplyContext, event: InboundEvent, fetched: Mapping[tuple[str, str], Any]
    ) -> Outcome:
        # A fetched object's current state is at least as new as the event that needed it: versioned as the event
        # (Stripe's clock), so an event created later still applies (see mapping: Ordering).
        current = ctx
        for state_kind, apply_state in STATE_KINDS.items():  # customers before the subscriptions that name them
            for (kind, _object_id), obj in fetched.items():
                if kind == state_kind:
                    if state_kind == "customers" and not obj.get("email"):
                        raise MappingError(f"the Stripe customer {obj.get('id')} has no email address")
                    outcome = await apply_state(tx, current, obj)
                    if outcome.status == "unmapped":  # the event waits on the same price as its object
                        return outcome
        obj = (event.payload.get("data") or {}).get("object")
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
            return Outcome("ignored", "the event carries no object")
        kind = event.type
        if kind in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
            if "line_items" not in obj and obj.get("mode") == "payment":
                lines = fetched.get((LINE_ITEMS, obj["id"]))
                if lines is None:
                    raise NeedObject(LINE_ITEMS, obj["id"])
                obj = {**obj, "line_items": lines}
            return await mapping.apply_checkout_session(tx, ctx, obj)
        if kind.startswith("customer.subscription."):
            return await mapping.apply_subscription(tx, ctx, obj)
        if kind == "invoice.paid":
            return await mapping.apply_invoice(tx, ctx, obj, _prices(fetched))
        if kind == "invoice.payment_failed":
            return await mapping.apply_invoice_payment_failed(tx, ctx, obj)
        if kind == "charge.refunded":
            return await self._charge(tx, ctx, obj, fetched)
        if kind.startswith("refund."):
            charge_id = obj.get("charge") if isinstance(obj.get("charge"), str) else None
            if charge_id is None:
                return Outcome("ignored", "the refund names no charge")
            charge = fetched.get(("charges", charge_id))
            if charge is None:
                raise NeedObject("charges", charge_id)
            return await self._charge(tx, current, charge, fetched)
        if kind == "customer.updated":
            return await mapping.apply_customer(tx, ctx, obj)
        return Outcome("ignored", f"Portal does not use {kind} events")

    async def _charge(
        self, tx: Transaction, ctx: ApplyContext, charge: dict[str, Any], fetched: Mapping[tuple[str, str], Any]
    ) -> Outcome:
        """A charge's refunds; when its sale was not applied yet, the sale fetched for it is applied first."""
        payment_intent = charge.get("payment_intent")
        payment = fetched.get(("payments", payment_intent)) if isinstance(payment_intent, str) else None
        if payment is not None:
            current = ctx
            if payment.get("checkout_session"):
                await mapping.apply_checkout_session(tx, current, payment["checkout_session"])
            if payment.get("invoice"):
                await mapping.apply_invoice(tx, current, payment["invoice"], _prices(fetched))
        return await mapping.apply_charge(tx, ctx, charge, payment)

    def needs(self, event: InboundEvent) -> list[tuple[str, str]]:
        """A paid checkout's line items: never in the event, always needed (fetched before the transaction, which
        then runs once instead of twice)."""
        obj = (event.payload.get("data") or {}).get("object") or {}
        checkout = event.type in ("checkout.session.completed", "checkout.session.async_payment_succeeded")
        if checkout and obj.get("mode") == "payment" and "line_items" not in obj and isinstance(obj.get("id"), str):
            return [(LINE_ITEMS, obj["id"])]
        return []

    def fetch(self, kind: str, object_id: str, secrets: Secrets, settings: Settings) -> Any:
        api = stripe_client.client(secrets.api_key, settings.stripe_api_base)
        if kind == "payments":
            return _payment(api, object_id)
        if kind == LINE_ITEMS:
            lines = stripe_client.call(
                lambda: api.v1.checkout.sessions.line_items.list(object_id, {"limit": 100}).auto_paging_iter()
            )
            return {"object": "list", "data": [line.to_dict() for line in stripe_client.call(lambda: list(lines))]}
        services: dict[str, Any] = {
            "customers": api.v1.customers,
            "subscriptions": api.v1.subscriptions,
            "charges": api.v1.charges,
            "prices": api.v1.prices,
        }
        if kind not in services:
            raise ValueError(f"Stripe objects of kind {kind!r} are not fetched")
        found = stripe_client.call(lambda: services[kind].retrieve(object_id))
        return found.to_dict()


def _prices(fetched: Mapping[tuple[str, str], Any]) -> dict[str, dict[str, Any]]:
    return {object_id: obj for (kind, object_id), obj in fetched.items() if kind == "prices"}


def _payment(api: stripe.StripeClient, payment_intent: str) -> dict[str, Any]:
    """What a PaymentIntent paid for: its Checkout Session (line items expanded) or its invoice, as far as Stripe
    knows (``{"checkout_session": None, "invoice": None}`` when neither)."""
    sessions = stripe_client.call(
        lambda: api.v1.checkout.sessions.list({"payment_intent": payment_intent, "expand": ["data.line_items"]})
    )
    for session in sessions.data:
        return {"checkout_session": session.to_dict(), "invoice": None}
    payments = stripe_client.call(
        lambda: api.v1.invoice_payments.list(
            {"payment": {"type": "payment_intent", "payment_intent": payment_intent}, "expand": ["data.invoice"]}
        )
    )
    for payment in payments.data:
        invoice = payment.to_dict().get("invoice")
        if isinstance(invoice, dict):
            return {"checkout_session": None, "invoice": invoice}
    return {"checkout_session": None, "invoice": None}
