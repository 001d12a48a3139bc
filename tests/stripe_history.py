"""A Stripe account's history for the import tests and the backfill benchmark: customers, products and prices,
subscriptions with their paid invoices, Payment Link checkouts and refunded charges, in the shapes of the pinned
API version (``portal.connectors.stripe.client.API_VERSION``: invoices name their subscription under
``parent.subscription_details``, periods live on subscription items, invoice payments list their PaymentIntent),
put into a ``FakeStripe``. Dates are in the past (``start``), one day apart, so "historical dates kept" shows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.stripe_fake import FakeStripe

DAY = 86_400
MONTH = 30 * DAY
START = 1_735_689_600  # 2025-01-01T00:00:00Z


@dataclass
class History:
    customers: int
    subscriptions: int
    invoices: int
    checkouts: int
    refunded: int

    @property
    def orders(self) -> int:
        return self.invoices + self.checkouts


def product(product_id: str, name: str) -> dict[str, Any]:
    return {
        "id": product_id,
        "object": "product",
        "active": True,
        "name": name,
        "description": f"{name} from Stripe",
        "created": START - DAY,
        "metadata": {},
    }


def price(price_id: str, prod: dict[str, Any], amount: int, interval: str | None) -> dict[str, Any]:
    return {
        "id": price_id,
        "object": "price",
        "active": True,
        "currency": "usd",
        "product": prod,  # as listed with expand[]=data.product
        "unit_amount": amount,
        "type": "recurring" if interval else "one_time",
        "recurring": {"interval": interval, "interval_count": 1, "usage_type": "licensed"} if interval else None,
        "created": START - DAY,
        "metadata": {},
    }


def _flat(price_obj: dict[str, Any]) -> dict[str, Any]:
    """A price as nested in subscriptions and line items: its product as an id."""
    return {**price_obj, "product": price_obj["product"]["id"]}


def customer(index: int, created: int) -> dict[str, Any]:
    return {
        "id": f"cus_{index:06d}",
        "object": "customer",
        "email": f"buyer{index}@example.com",
        "name": f"Buyer {index}",
        "address": {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "us"},
        "created": created,
        "livemode": False,
        "metadata": {},
    }


def subscription(index: int, customer_id: str, price_obj: dict[str, Any], created: int, periods: int) -> dict[str, Any]:
    period_start = created + (periods - 1) * MONTH
    return {
        "id": f"sub_{index:06d}",
        "object": "subscription",
        "customer": customer_id,
        "status": "active",
        "currency": "usd",
        "cancel_at_period_end": False,
        "cancel_at": None,
        "canceled_at": None,
        "ended_at": None,
        "created": created,
        "start_date": created,
        "trial_start": None,
        "trial_end": None,
        "items": {
            "object": "list",
            "data": [
                {
                    "id": f"si_{index:06d}",
                    "object": "subscription_item",
                    "price": _flat(price_obj),
                    "quantity": 1,
                    "current_period_start": period_start,
                    "current_period_end": period_start + MONTH,
                }
            ],
            "has_more": False,
        },
        "metadata": {},
    }


def invoice(sub: dict[str, Any], number: int, created: int) -> dict[str, Any]:
    item = sub["items"]["data"][0]
    amount = int(item["price"]["unit_amount"])
    invoice_id = f"in_{sub['id'][4:]}_{number:03d}"
    return {
        "id": invoice_id,
        "object": "invoice",
        "customer": sub["customer"],
        "status": "paid",
        "currency": "usd",
        "billing_reason": "subscription_create" if number == 0 else "subscription_cycle",
        "created": created,
        "amount_due": amount,
        "amount_paid": amount,
        "subtotal": amount,
        "total": amount,
        "parent": {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {"subscription": sub["id"], "metadata": {}},
        },
        "lines": {
            "object": "list",
            "data": [
                {
                    "id": f"il_{invoice_id[3:]}",
                    "object": "line_item",
                    "amount": amount,
                    "currency": "usd",
                    "description": f"1 × {item['price']['id']}",
                    "quantity": 1,
                    "period": {"start": created, "end": created + MONTH},
                    "pricing": {
                        "type": "price_details",
                        "price_details": {"price": item["price"]["id"], "product": item["price"]["product"]},
                        "unit_amount_decimal": str(amount),
                    },
                    "parent": {
                        "type": "subscription_item_details",
                        "invoice_item_details": None,
                        "subscription_item_details": {
                            "subscription": sub["id"],
                            "subscription_item": item["id"],
                            "proration": False,
                            "invoice_item": None,
                            "proration_details": {"credited_items": None},
                        },
                    },
                }
            ],
            "has_more": False,
        },
        "payments": {
            "object": "list",
            "data": [
                {
                    "id": f"inpay_{invoice_id[3:]}",
                    "object": "invoice_payment",
                    "status": "paid",
                    "payment": {"type": "payment_intent", "payment_intent": f"pi_{invoice_id[3:]}"},
                }
            ],
            "has_more": False,
        },
        "status_transitions": {"finalized_at": created, "paid_at": created + 60},
        "total_discount_amounts": [],
        "total_taxes": [],
    }


def checkout(index: int, cust: dict[str, Any], price_obj: dict[str, Any], created: int) -> dict[str, Any]:
    amount = int(price_obj["unit_amount"])
    return {
        "id": f"cs_test_{index:06d}",
        "object": "checkout.session",
        "mode": "payment",
        "status": "complete",
        "payment_status": "paid",
        "customer": cust["id"],
        "customer_email": None,
        "customer_details": {"email": cust["email"], "name": cust["name"], "address": cust["address"], "tax_ids": []},
        "currency": "usd",
        "amount_subtotal": amount,
        "amount_total": amount,
        "created": created,
        "payment_intent": f"pi_cs_{index:06d}",
        "payment_link": "plink_toolkit",
        "line_items": {
            "object": "list",
            "data": [
                {
                    "id": f"li_{index:06d}",
                    "object": "item",
                    "amount_subtotal": amount,
                    "amount_total": amount,
                    "amount_discount": 0,
                    "amount_tax": 0,
                    "currency": "usd",
                    "description": price_obj["product"]["name"],
                    "quantity": 1,
                    "price": _flat(price_obj),
                }
            ],
            "has_more": False,
        },
        "metadata": {},
    }


def charge(payment_intent: str, amount: int, refunded: int, created: int) -> dict[str, Any]:
    charge_id = "ch_" + payment_intent[3:]
    return {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": refunded,
        "refunded": refunded >= amount,
        "currency": "usd",
        "paid": True,
        "status": "succeeded",
        "payment_intent": payment_intent,
        "created": created,
        "refunds": {
            "object": "list",
            "data": [
                {
                    "id": "re_" + payment_intent[3:],
                    "object": "refund",
                    "amount": refunded,
                    "charge": charge_id,
                    "reason": "requested_by_customer",
                    "status": "succeeded",
                    "created": created + DAY,
                }
            ]
            if refunded
            else [],
            "has_more": False,
        },
    }


def populate(
    fake: FakeStripe,
    *,
    customers: int,
    invoices_per_subscription: int = 2,
    checkouts: int = 0,
    refunds: int = 0,
    spacing: int = DAY,
) -> History:
    """Every customer has one monthly subscription with ``invoices_per_subscription`` paid invoices; the first
    ``checkouts`` customers also bought the one-time Toolkit through a Payment Link; ``refunds`` charges are
    refunded (odd ones in part, even ones in full). Customer ``i`` is created ``i * spacing`` after ``START``."""
    basic = product("prod_basic", "Basic")
    toolkit = product("prod_toolkit", "Toolkit")
    monthly = fake.add("prices", price("price_basic_monthly", basic, 900, "month"))
    once = fake.add("prices", price("price_toolkit", toolkit, 4900, None))
    fake.add("products", basic)
    fake.add("products", toolkit)
    invoices = 0
    charged: list[tuple[str, int, int]] = []
    for index in range(customers):
        created = START + index * spacing
        cust = fake.add("customers", customer(index, created))
        sub = fake.add(
            "subscriptions", subscription(index, cust["id"], monthly, created + 60, invoices_per_subscription)
        )
        for number in range(invoices_per_subscription):
            paid = fake.add("invoices", invoice(sub, number, created + 60 + number * MONTH))
            charged.append((paid["payments"]["data"][0]["payment"]["payment_intent"], 900, paid["created"]))
            invoices += 1
        if index < checkouts:
            session = fake.add("checkout/sessions", checkout(index, cust, once, created + 120))
            charged.append((session["payment_intent"], 4900, session["created"]))
    refunded = 0
    for position, (payment_intent, amount, created) in enumerate(charged[:refunds]):
        part = amount if position % 2 == 0 else amount // 3
        fake.add("charges", charge(payment_intent, amount, part, created))
        refunded += 1
    return History(customers, customers, invoices, min(checkouts, customers), refunded)
