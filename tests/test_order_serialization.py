"""A page of orders is built as ``CustomerOrderWire``s with each product embedded as its cached encoding, a single
order as a ``CustomerOrder`` (``portal.polar.models``), both by ``portal.polar.convert.build_order``. Here: every value
lands on the field it is meant for (distinct values, expected by name), and over the demo seed the list answers
exactly what the single-order answers and the documented model say."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import pytest

from portal.orders.reads import OrderRow
from portal.pagination import ListResource
from portal.polar.convert import build_order
from portal.polar.models import CustomerOrder, CustomerOrderWire, OrderItem, SubscriptionBase
from portal.settings import Settings
from portal.tls import https_context
from tests.admin_support import bearer
from tests.api_server import api_token, served_portal
from tests.browser_helpers import query

pytestmark = pytest.mark.seeded  # data_dir: a copy of the demo seed (tests/conftest.py)

ITEM = '{"created_at":"i-created","modified_at":null,"id":"item-1","label":"First item","amount":1000,'
ITEM += '"tax_amount":180,"proration":false,"product_price_id":"price-1"}'
SUBSCRIPTION = SubscriptionBase(
    created_at="s-created",
    modified_at=None,
    id="sub-1",
    amount=1000,
    currency="eur",
    recurring_interval="month",
    recurring_interval_count=1,
    status="active",
    current_period_start="s-start",
    current_period_end="s-end",
    trial_start=None,
    trial_end=None,
    cancel_at_period_end=False,
    canceled_at=None,
    started_at="s-start",
    ends_at=None,
    ended_at=None,
    customer_id="cust-1",
    product_id="prod-1",
    customer_cancellation_reason=None,
    customer_cancellation_comment=None,
)


def _row(**changes: Any) -> OrderRow:
    values: dict[str, Any] = {
        "id": "order-1",
        "organization_id": "org-1",
        "customer_id": "cust-1",
        "product_id": "prod-1",
        "subscription_id": "sub-1",
        "status": "partially_refunded",
        "billing_reason": "subscription_cycle",
        "subtotal_amount": 1000,
        "discount_amount": 100,
        "tax_amount": 180,
        "total_amount": 1080,
        "refunded_amount": 200,
        "refunded_tax_amount": 30,
        "currency": "eur",
        "billing_name": "Billing Name",
        "billing_address": '{"line1":"1 Rue","city":"Paris","country":"FR"}',
        "tax_id": "FR123",
        "receipt_number": "ACME-0001",
        "invoice_number": "ACME-I-0001",
        "paid_at": "paid-at",
        "created_at": "o-created",
        "modified_at": "o-modified",
        "is_invoice_generated": True,
        "items_json": f"[{ITEM}]",
    }
    values.update(changes)
    return OrderRow(**values)


def _order(row: OrderRow, product: object = "PRODUCT", name: str | None = "Product Name") -> dict[str, Any]:
    order = build_order(CustomerOrder, row, product, name, SUBSCRIPTION if row.subscription_id else None)
    return msgspec.structs.asdict(order)


def test_each_value_lands_on_its_field() -> None:
    order = _order(_row())
    address = order.pop("billing_address")
    assert (address.line1, address.city, address.country, address.state) == ("1 Rue", "Paris", "FR", None)
    assert order.pop("items") == [msgspec.json.decode(ITEM, type=OrderItem)]
    assert order == {
        "id": "order-1",
        "created_at": "o-created",
        "modified_at": "o-modified",
        "status": "partially_refunded",
        "paid": True,
        "subtotal_amount": 1000,
        "discount_amount": 100,
        "net_amount": 900,
        "tax_amount": 180,
        "total_amount": 1080,
        "applied_balance_amount": 0,
        "due_amount": 0,
        "refunded_amount": 200,
        "refunded_tax_amount": 30,
        "currency": "eur",
        "billing_reason": "subscription_cycle",
        "billing_name": "Billing Name",
        "invoice_number": "ACME-I-0001",
        "is_invoice_generated": True,
        "receipt_number": "ACME-0001",
        "seats": None,
        "units": None,
        "customer_id": "cust-1",
        "product_id": "prod-1",
        "discount_id": None,
        "subscription_id": "sub-1",
        "checkout_id": None,
        "next_payment_attempt_at": None,
        "product": "PRODUCT",
        "subscription": SUBSCRIPTION,
        "description": "Product Name",
        "refundable_amount": 700,
        "refundable_tax_amount": 150,
    }


def test_unpaid_orders_and_descriptions_without_a_product() -> None:
    pending = _order(_row(status="pending", refunded_amount=0, refunded_tax_amount=0), product=None, name=None)
    assert (pending["paid"], pending["due_amount"], pending["refundable_amount"]) == (False, 1080, 0)
    assert (pending["refundable_tax_amount"], pending["description"], pending["product"]) == (0, "First item", None)
    void = _order(_row(status="void", items_json=None, subscription_id=None), product=None, name=None)
    assert (void["due_amount"], void["items"], void["description"], void["subscription"]) == (0, [], "Order", None)
    assert _order(_row(billing_address=None, is_invoice_generated=False))["billing_address"] is None
    # More refunded than the net (a refund of tax): never a negative refundable amount.
    assert _order(_row(refunded_amount=5000, refunded_tax_amount=500))["refundable_amount"] == 0


def test_the_wire_form_is_the_models_json() -> None:
    product = {"id": "prod-1", "name": "Product Name"}
    model = build_order(CustomerOrder, _row(), product, "Product Name", SUBSCRIPTION)
    wire = build_order(
        CustomerOrderWire, _row(), msgspec.Raw(msgspec.json.encode(product)), "Product Name", SUBSCRIPTION
    )
    assert isinstance(wire, CustomerOrder)
    assert msgspec.json.encode(wire) == msgspec.json.encode(model)


def test_the_list_answers_what_each_order_answers(settings: Settings) -> None:
    customers = query(
        settings,
        "SELECT o.slug, c.email, COUNT(*) AS orders FROM orders x JOIN customers c ON c.id = x.customer_id "
        "JOIN organizations o ON o.id = x.organization_id GROUP BY c.id ORDER BY orders DESC LIMIT 3",
    )
    seen = 0
    with served_portal(settings) as (base_url, _):
        for customer in customers:
            headers = bearer(api_token(settings, customer["slug"], customer["email"]))
            listed = httpx.get(
                f"{base_url}/v1/customer-portal/orders/", params={"limit": 100}, headers=headers, verify=https_context()
            )
            assert listed.status_code == 200, listed.text
            assert listed.headers["content-type"] == "application/json"
            page = msgspec.json.decode(listed.content, type=ListResource[CustomerOrder])  # the documented shape
            assert page.pagination.total_count == customer["orders"] == len(page.items)
            for order in listed.json()["items"]:
                single = httpx.get(
                    f"{base_url}/v1/customer-portal/orders/{order['id']}", headers=headers, verify=https_context()
                )
                assert single.status_code == 200, single.text
                assert order == single.json()
                seen += 1
    assert seen >= 5
