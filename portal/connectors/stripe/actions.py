"""Customer actions sent to Stripe (issue 19, "Actions out"): cancel at period end, un-cancel, plan change and the
billing-portal session of "Update payment method"; and the seller's refunds from the console (issue 21). Each is
one or two calls through the official SDK (``portal.connectors.stripe.client``) and raises ``ProcessorError`` when
Stripe refuses or cannot be reached; Portal changes its own records only after these return
(``portal.subscriptions.remote``, ``portal.orders.remote``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from portal.connectors.base import ActionTarget, ProcessorError, ProcessorRefund, RefundReason, RefundTarget
from portal.connectors.stripe import client as stripe_client
from portal.settings import Settings

# What the Stripe connector can do for a customer (``portal.connectors.base.Action``).
CAPABILITIES = frozenset({"cancel", "uncancel", "change_plan", "payment_method_update"})
PRORATION_BEHAVIORS = frozenset({"create_prorations", "always_invoice", "none"})
STRIPE_API_BASE = "https://api.stripe.com"
BILLING_PORTAL_ORIGIN = "https://billing.stripe.com"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def redirect_origins(settings: Settings) -> tuple[str, ...]:
    """Stripe's billing portal; with ``PORTAL_STRIPE_API_BASE`` pointing elsewhere (staging, tests), that
    server's origin instead (it serves the sessions it creates)."""
    if settings.stripe_api_base.rstrip("/") == STRIPE_API_BASE:
        return (BILLING_PORTAL_ORIGIN,)
    return (_origin(settings.stripe_api_base),)


def _api(target: ActionTarget) -> Any:
    return stripe_client.client(target.secrets.api_key, target.settings.stripe_api_base).v1


def set_cancel_at_period_end(target: ActionTarget, cancel: bool) -> None:
    api = _api(target)
    stripe_client.call(lambda: api.subscriptions.update(target.subscription_id, {"cancel_at_period_end": cancel}))


def change_plan(target: ActionTarget, processor_price_id: str) -> None:
    """Swap the subscription's one item to ``processor_price_id`` (Stripe keeps the item, so its quantity and
    billing anchor stay), prorated as the seller chose (``ConnectorSettings.proration_behavior``)."""
    api = _api(target)
    subscription = stripe_client.call(lambda: api.subscriptions.retrieve(target.subscription_id))
    items = subscription["items"]["data"] if "items" in subscription else []
    if len(items) != 1:
        # Several items (add-ons, seats): which one is "the plan" is the seller's call, not Portal's.
        raise ProcessorError("the Stripe subscription has several items; change it in Stripe")
    proration = target.connector_settings.proration_behavior
    if proration not in PRORATION_BEHAVIORS:
        proration = "create_prorations"
    params: dict[str, Any] = {
        "items": [{"id": items[0]["id"], "price": processor_price_id}],
        "proration_behavior": proration,
        # A plan change also undoes nothing else: a scheduled cancellation stays as it is.
    }
    stripe_client.call(lambda: api.subscriptions.update(target.subscription_id, params))


def payment_method_url(target: ActionTarget, return_url: str) -> str:
    """A Stripe billing-portal session limited to the payment-method flow, sending the customer back to
    ``return_url`` when done (or when they leave)."""
    api = _api(target)
    customer = target.customer_id
    if customer is None:
        subscription = stripe_client.call(lambda: api.subscriptions.retrieve(target.subscription_id))
        customer = subscription["customer"]
        if not isinstance(customer, str):
            customer = customer["id"]
    params: dict[str, Any] = {
        "customer": customer,
        "return_url": return_url,
        "flow_data": {
            "type": "payment_method_update",
            "after_completion": {"type": "redirect", "redirect": {"return_url": return_url}},
        },
    }
    session = stripe_client.call(lambda: api.billing_portal.sessions.create(params))
    url = session["url"]
    if not isinstance(url, str) or _origin(url) not in redirect_origins(target.settings):
        raise ProcessorError("Stripe answered a billing-portal session without a billing-portal URL")
    return url


# Stripe's own reasons; "other" sends none (Stripe has no such value).
STRIPE_REFUND_REASONS = frozenset({"requested_by_customer", "duplicate", "fraudulent"})


def refund(target: RefundTarget, amount: int, reason: RefundReason) -> ProcessorRefund:
    """``POST /v1/refunds`` for the order's PaymentIntent (or, for an order Portal knows only by its charge, the
    charge). A refund Stripe answers ``failed`` or ``canceled`` is an error; ``pending`` (some payment methods
    settle later) counts, as Stripe counts it in the charge's ``amount_refunded``."""
    params: dict[str, Any] = {"amount": amount, "metadata": {"portal_source": "console"}}
    if target.links.get("payment_intent"):
        params["payment_intent"] = target.links["payment_intent"]
    elif target.links.get("charge"):
        params["charge"] = target.links["charge"]
    else:
        raise ProcessorError("Portal does not know the Stripe payment of this order; refund it in Stripe's dashboard")
    if reason in STRIPE_REFUND_REASONS:
        params["reason"] = reason
    api: Any = stripe_client.client(target.secrets.api_key, target.settings.stripe_api_base).v1
    made = stripe_client.call(lambda: api.refunds.create(params))
    if made["status"] in ("failed", "canceled"):
        raise ProcessorError(f"Stripe did not refund the payment (the refund is {made['status']})")
    return ProcessorRefund(id=str(made["id"]), kind="refund", amount=int(made["amount"]))
