"""Signed Stripe webhook deliveries for the inbound connector tests: events and objects in the shapes of the pinned
API version (``portal.connectors.stripe.client.API_VERSION``, 2026-10-28.endive: subscription periods on the items,
``invoice.parent.subscription_details``, invoice lines priced through ``pricing.price_details``, no ``charge.invoice``),
signed with Stripe's scheme (``Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">``).

``Story`` builds a seller's history step by step: each step is the events Stripe sends and the state Stripe's API
holds afterwards (``FakeStripe`` objects), so a test can deliver in order while the API follows along, or all at
once, shuffled and twice, against the final state."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

from portal.connectors.stripe.client import API_VERSION
from tests.stripe_fake import FakeStripe

DAY = 86400


def signature(body: bytes, secret: str, timestamp: int | None = None) -> str:
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def event(
    event_id: str, kind: str, obj: dict[str, Any], created: int, previous: dict[str, Any] | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    return {
        "id": event_id,
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "data": data,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
    }


def body_of(evt: dict[str, Any]) -> bytes:
    return json.dumps(evt, separators=(",", ":")).encode()


def price(
    price_id: str, amount: int, *, product: str, interval: str | None = None, metadata: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "id": price_id,
        "object": "price",
        "active": True,
        "billing_scheme": "per_unit",
        "created": 1_700_000_000,
        "currency": "usd",
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": None,
        "metadata": metadata or {},
        "nickname": None,
        "product": product,
        "recurring": None
        if interval is None
        else {
            "interval": interval,
            "interval_count": 1,
            "meter": None,
            "trial_period_days": None,
            "usage_type": "licensed",
        },
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "one_time" if interval is None else "recurring",
        "unit_amount": amount,
        "unit_amount_decimal": str(amount),
    }


def customer(customer_id: str, email: str, name: str, created: int, country: str = "DE") -> dict[str, Any]:
    return {
        "id": customer_id,
        "object": "customer",
        "address": {
            "city": "Berlin",
            "country": country,
            "line1": "Hauptstr. 1",
            "line2": None,
            "postal_code": "10115",
            "state": None,
        },
        "balance": 0,
        "created": created,
        "currency": "usd",
        "default_source": None,
        "delinquent": False,
        "description": None,
        "email": email,
        "invoice_prefix": "ABC123",
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": {},
        "name": name,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def checkout_session(
    session_id: str,
    *,
    created: int,
    email: str,
    name: str,
    amount: int,
    mode: str = "payment",
    customer_id: str | None = None,
    payment_intent: str | None = None,
    subscription: str | None = None,
    payment_link: str | None = None,
    payment_status: str = "paid",
) -> dict[str, Any]:
    return {
        "id": session_id,
        "object": "checkout.session",
        "amount_subtotal": amount,
        "amount_total": amount,
        "billing_address_collection": None,
        "cancel_url": None,
        "client_reference_id": None,
        "created": created,
        "currency": "usd",
        "customer": customer_id,
        "customer_creation": "if_required",
        "customer_details": {
            "address": {
                "city": None,
                "country": "US",
                "line1": None,
                "line2": None,
                "postal_code": "94107",
                "state": None,
            },
            "business_name": None,
            "email": email,
            "individual_name": None,
            "name": name,
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
        },
        "customer_email": None,
        "expires_at": created + DAY,
        "invoice": None,
        "livemode": False,
        "metadata": {},
        "mode": mode,
        "payment_intent": payment_intent,
        "payment_link": payment_link,
        "payment_method_types": ["card"],
        "payment_status": payment_status,
        "status": "complete",
        "subscription": subscription,
        "success_url": "https://example.com/thanks",
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted",
        "url": None,
    }


def line_item(item_id: str, the_price: dict[str, Any], description: str, quantity: int = 1) -> dict[str, Any]:
    amount = the_price["unit_amount"] * quantity
    return {
        "id": item_id,
        "object": "item",
        "amount_discount": 0,
        "amount_subtotal": amount,
        "amount_tax": 0,
        "amount_total": amount,
        "currency": "usd",
        "description": description,
        "price": the_price,
        "quantity": quantity,
    }


def subscription(
    subscription_id: str,
    *,
    customer_id: str,
    the_price: dict[str, Any],
    created: int,
    period_start: int,
    status: str = "active",
    cancel_at_period_end: bool = False,
    canceled_at: int | None = None,
    ended_at: int | None = None,
) -> dict[str, Any]:
    period_end = period_start + 30 * DAY
    return {
        "id": subscription_id,
        "object": "subscription",
        "application": None,
        "billing_cycle_anchor": created,
        "billing_mode": {"type": "flexible"},
        "cancel_at": period_end if cancel_at_period_end else None,
        "cancel_at_period_end": cancel_at_period_end,
        "canceled_at": canceled_at,
        "cancellation_details": {
            "comment": None,
            "feedback": None,
            "reason": "cancellation_requested" if canceled_at else None,
        },
        "collection_method": "charge_automatically",
        "created": created,
        "currency": "usd",
        "customer": customer_id,
        "days_until_due": None,
        "default_payment_method": "pm_card_visa",
        "discounts": [],
        "ended_at": ended_at,
        "items": {
            "object": "list",
            "data": [
                {
                    "id": f"si_{subscription_id[4:]}",
                    "object": "subscription_item",
                    "created": created,
                    "current_period_end": period_end,
                    "current_period_start": period_start,
                    "discounts": [],
                    "metadata": {},
                    "price": the_price,
                    "quantity": 1,
                    "subscription": subscription_id,
                    "tax_rates": [],
                }
            ],
            "has_more": False,
            "total_count": 1,
            "url": f"/v1/subscription_items?subscription={subscription_id}",
        },
        "latest_invoice": None,
        "livemode": False,
        "metadata": {},
        "pause_collection": None,
        "start_date": created,
        "status": status,
        "test_clock": None,
        "trial_end": None,
        "trial_start": None,
    }


def invoice_line(
    line_id: str,
    amount: int,
    the_price: dict[str, Any],
    subscription_id: str,
    description: str,
    *,
    proration: bool = False,
) -> dict[str, Any]:
    return {
        "id": line_id,
        "object": "line_item",
        "amount": amount,
        "currency": "usd",
        "description": description,
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "invoice": None,
        "livemode": False,
        "metadata": {},
        "parent": {
            "type": "subscription_item_details",
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": proration,
                "proration_details": {"credited_items": None},
                "subscription": subscription_id,
                "subscription_item": f"si_{subscription_id[4:]}",
            },
        },
        "period": {"end": 0, "start": 0},
        "pretax_credit_amounts": [],
        "pricing": {
            "type": "price_details",
            "price_details": {"price": the_price["id"], "product": the_price["product"]},
            "unit_amount_decimal": str(the_price["unit_amount"]),
        },
        "quantity": 1,
        "taxes": [],
    }


def invoice(
    invoice_id: str,
    *,
    customer_id: str,
    subscription_id: str,
    created: int,
    billing_reason: str,
    lines: list[dict[str, Any]],
    status: str = "paid",
    attempt_count: int = 1,
    next_payment_attempt: int | None = None,
) -> dict[str, Any]:
    total = sum(line["amount"] for line in lines)
    paid = status == "paid"
    for line in lines:
        line["invoice"] = invoice_id
    return {
        "id": invoice_id,
        "object": "invoice",
        "account_country": "US",
        "amount_due": total,
        "amount_paid": total if paid else 0,
        "amount_remaining": 0 if paid else total,
        "attempt_count": attempt_count,
        "attempted": True,
        "auto_advance": not paid,
        "billing_reason": billing_reason,
        "collection_method": "charge_automatically",
        "created": created,
        "currency": "usd",
        "customer": customer_id,
        "customer_email": None,
        "hosted_invoice_url": f"https://invoice.stripe.com/i/{invoice_id}",
        "lines": {"object": "list", "data": lines, "has_more": False, "url": f"/v1/invoices/{invoice_id}/lines"},
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": next_payment_attempt,
        "number": f"ABC123-{invoice_id[-4:]}",
        "parent": {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {"metadata": {}, "subscription": subscription_id},
        },
        "period_end": created,
        "period_start": created - 30 * DAY,
        "status": status,
        "status_transitions": {
            "finalized_at": created,
            "marked_uncollectible_at": None,
            "paid_at": created if paid else None,
            "voided_at": None,
        },
        "subtotal": total,
        "total": total,
        "total_discount_amounts": [],
        "total_taxes": [],
    }


def charge(
    charge_id: str, *, payment_intent: str, amount: int, refunded: int, created: int, customer_id: str | None = None
) -> dict[str, Any]:
    return {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": refunded,
        "balance_transaction": f"txn_{charge_id[3:]}",
        "captured": True,
        "created": created,
        "currency": "usd",
        "customer": customer_id,
        "disputed": False,
        "livemode": False,
        "metadata": {},
        "paid": True,
        "payment_intent": payment_intent,
        "payment_method": "pm_card_visa",
        "refunded": refunded >= amount,
        "status": "succeeded",
    }


@dataclass
class Story:
    """A seller's Stripe history: ``steps`` of (events sent, API objects afterwards, by list name)."""

    steps: list[tuple[list[dict[str, Any]], list[tuple[str, dict[str, Any]]]]] = field(default_factory=list)
    line_items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    payments: dict[str, str] = field(default_factory=dict)
    counter: int = 0

    def step(self, events: list[tuple[str, dict[str, Any], int]], objects: list[tuple[str, dict[str, Any]]]) -> None:
        built = []
        for kind, obj, created in events:
            self.counter += 1
            built.append(event(f"evt_{self.counter:04d}_{kind.replace('.', '_')}", kind, obj, created))
        self.steps.append((built, objects))

    def events(self) -> list[dict[str, Any]]:
        return [evt for events, _ in self.steps for evt in events]

    def load(self, fake: FakeStripe, upto: int | None = None) -> None:
        """Put the API state after step ``upto`` (all steps: None) into ``fake``."""
        fake.line_items.update(self.line_items)
        fake.invoice_of_payment.update(self.payments)
        for _, objects in self.steps[: None if upto is None else upto + 1]:
            for kind, obj in objects:
                fake.add(kind, obj)
