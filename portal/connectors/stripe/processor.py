"""``StripeProcessor``: the ``portal.connectors.base.Processor`` for Stripe."""

from __future__ import annotations

import json
from collections.abc import Mapping

import stripe

from portal.connectors.base import Account, ActionTarget, BadSignature, InboundEvent
from portal.connectors.store import Secrets
from portal.connectors.stripe import actions as stripe_actions
from portal.connectors.stripe import client as stripe_client
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


class StripeProcessor:
    name = "stripe"
    label = "Stripe"
    webhook_events = WEBHOOK_EVENTS
    capabilities = stripe_actions.CAPABILITIES

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

    def redirect_origins(self, settings: Settings) -> tuple[str, ...]:
        return stripe_actions.redirect_origins(settings)
