"""Test support for the Polar connector: a real Portal instance served on loopback plays Polar (Portal's admin API
and its webhook payloads are Polar's shapes), and deliveries are signed with Standard Webhooks as Polar signs; and
Polar's refunds endpoint, which Portal's own API does not serve, on a small loopback server (``fake_polar_refunds``)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import standardwebhooks

from portal.settings import Settings
from portal.tls import https_context
from tests.admin_support import create_org, free_port, mint_token, serve
from tests.apps import app_for
from tests.serving import SERVER_POLL

WEBHOOK_SECRET = "whsec_" + "cG9sYXItY29ubmVjdG9yLXRlc3Qtc2VjcmV0LTMyYnl0ZXMh"


def signed(
    event_type: str,
    data: dict[str, Any],
    *,
    message_id: str,
    secret: str = WEBHOOK_SECRET,
    when: datetime | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A Polar delivery: ``{"type", "timestamp", "data"}`` and its Standard Webhooks headers."""
    moment = when or datetime.now(UTC)
    body = json.dumps({"type": event_type, "timestamp": moment.isoformat(), "data": data}).encode()
    signature = standardwebhooks.Webhook(secret).sign(message_id, moment, body.decode())
    return body, {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


def stale() -> datetime:
    return datetime.now(UTC) - timedelta(minutes=10)


@dataclass
class FakePolar:
    """A served Portal playing Polar: the seller's organization, an organization token, and its products."""

    base_url: str
    token: str
    org: dict[str, Any]
    products: dict[str, dict[str, Any]]

    def call(self, method: str, path: str, expect: int | None = None, **kwargs: Any) -> Any:
        answer = httpx.request(
            method,
            self.base_url + path,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
            verify=https_context(),
            **kwargs,
        )
        if expect is not None:
            assert answer.status_code == expect, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json() if answer.content else None

    def customer(self, email: str, name: str) -> dict[str, Any]:
        return self.call(  # type: ignore[no-any-return]
            "POST", "/v1/customers/", 201, json={"email": email, "name": name, "organization_id": self.org["id"]}
        )

    def order(self, customer: dict[str, Any], product: str) -> dict[str, Any]:
        item = {"label": product, "unit_amount": self.products[product]["prices"][0]["price_amount"]}
        body = {"customer_id": customer["id"], "currency": "usd", "product_id": self.products[product]["id"]}
        return self.call("POST", "/v1/orders/", 201, json={**body, "items": [item]})  # type: ignore[no-any-return]

    def subscription(self, customer: dict[str, Any], product: str) -> dict[str, Any]:
        body = {
            "customer_id": customer["id"],
            "product_id": self.products[product]["id"],
            "status": "active",
            "current_period_start": datetime.now(UTC).replace(microsecond=0).isoformat(),
        }
        return self.call("POST", "/v1/subscriptions/", 201, json=body)  # type: ignore[no-any-return]

    def grants(self, **filters: str) -> list[dict[str, Any]]:
        return self.call("GET", "/v1/benefit-grants/", 200, params=filters)["items"]  # type: ignore[no-any-return]

    def key_of(self, grant: dict[str, Any]) -> dict[str, Any]:
        return self.call(  # type: ignore[no-any-return]
            "GET", f"/v1/license-keys/{grant['properties']['license_key_id']}", 200
        )


def seller_catalog(call: Any, organization_id: str, prefix: str) -> dict[str, dict[str, Any]]:
    """A license-key benefit (3 activations) and two products with it: Guide (one-time), Pro (monthly)."""
    benefit = call(
        "POST",
        "/v1/benefits/",
        201,
        json={
            "organization_id": organization_id,
            "type": "license_keys",
            "description": "License key",
            "properties": {"prefix": prefix, "activations": {"limit": 3, "enable_customer_admin": True}},
        },
    )
    products = {}
    for name, amount, recurring in (("Guide", 2900, False), ("Pro", 1000, True), ("Team", 3000, True)):
        products[name] = call(
            "POST",
            "/v1/products/",
            201,
            json={
                "organization_id": organization_id,
                "name": name,
                "prices": [{"amount_type": "fixed", "price_amount": amount, "price_currency": "usd"}],
                "benefits": [benefit["id"]],
                **({"recurring_interval": "month"} if recurring else {}),
            },
        )
    return products


@contextmanager
def fake_polar(data_dir: Path) -> Iterator[FakePolar]:
    # Its own address as base URL: the download links it hands out (customer portal) are followed by the importer.
    port = free_port()
    settings = Settings(
        data_dir=data_dir,
        base_url=f"http://127.0.0.1:{port}",
        secret_key="polar-instance-secret-key-for-tests",
        argon2_profile="test",
    )
    with serve(app_for(settings), port) as base_url:
        admin = mint_token(settings)
        with httpx.Client(base_url=base_url, timeout=10, verify=https_context()) as client:
            org = create_org(client, admin, "seller")
        token = mint_token(settings, org["id"])
        polar = FakePolar(base_url=base_url, token=token, org=org, products={})
        polar.products = seller_catalog(polar.call, org["id"], "POLAR")
        yield polar


# --- Polar's refunds (issue 21): the one endpoint Portal's own API does not serve ----------------------------------

REFUND_REASONS = (
    "duplicate",
    "fraudulent",
    "customer_request",
    "service_disruption",
    "satisfaction_guarantee",
    "other",
)


@dataclass
class FakePolarRefunds:
    """Polar's ``POST /v1/refunds/`` on loopback (``RefundCreate`` in, ``Refund`` out, its documented errors:
    ``RefundAmountTooHigh`` 400, ``RefundedAlready`` 403, a 422 for a bad body), over the Polar orders a test puts
    in ``orders`` (Polar's ``Order`` shape; ``refunded_amount`` and ``status`` follow each refund)."""

    token: str = "polar_oat_refunds_fake"
    base_url: str = ""
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    fail_with: int | None = None

    def order(self, order_id: str, total: int, *, customer_id: str = "cus_polar_1") -> dict[str, Any]:
        moment = datetime.now(UTC).isoformat()
        order = {
            "id": order_id,
            "created_at": moment,
            "modified_at": moment,
            "status": "paid",
            "paid": True,
            "subtotal_amount": total,
            "discount_amount": 0,
            "net_amount": total,
            "tax_amount": 0,
            "total_amount": total,
            "refunded_amount": 0,
            "refunded_tax_amount": 0,
            "currency": "usd",
            "billing_reason": "purchase",
            "customer_id": customer_id,
            "product_id": "prod_polar_1",
            "subscription_id": None,
            "metadata": {},
        }
        self.orders[order_id] = order
        return order


def _polar_refund(fake: FakePolarRefunds, body: Any) -> tuple[int, dict[str, Any]]:
    if fake.fail_with is not None:
        return fake.fail_with, {"error": "InternalServerError", "detail": "refused by the fake"}
    problems = []
    if not isinstance(body, dict):
        body = {}
    if body.get("reason") not in REFUND_REASONS:
        problems.append({"loc": ["body", "reason"], "msg": "Input should be a valid reason", "type": "enum"})
    if not isinstance(body.get("amount"), int) or body["amount"] <= 0:
        problems.append({"loc": ["body", "amount"], "msg": "Input should be greater than 0", "type": "greater_than"})
    order = fake.orders.get(str(body.get("order_id")))
    if order is None:
        problems.append({"loc": ["body", "order_id"], "msg": "Order not found", "type": "value_error"})
    if problems or order is None:
        return 422, {"detail": problems}
    left = order["total_amount"] - order["refunded_amount"]
    if left <= 0:
        return 403, {"error": "RefundedAlready", "detail": "Order is already fully refunded."}
    if body["amount"] > left:
        return 400, {
            "error": "RefundAmountTooHigh",
            "detail": f"Refund amount exceeds remaining order balance ({left}).",
        }
    moment = datetime.now(UTC).isoformat()
    order["refunded_amount"] += body["amount"]
    order["status"] = "refunded" if order["refunded_amount"] >= order["total_amount"] else "partially_refunded"
    order["modified_at"] = moment
    refund = {
        "id": f"00000000-0000-4000-8000-{len(fake.refunds) + 1:012d}",
        "created_at": moment,
        "modified_at": None,
        "metadata": {},
        "status": "succeeded",
        "reason": body["reason"],
        "amount": body["amount"],
        "tax_amount": 0,
        "currency": order["currency"],
        "organization_id": "00000000-0000-4000-8000-00000000000a",
        "order_id": order["id"],
        "subscription_id": order["subscription_id"],
        "customer_id": order["customer_id"],
        "revoke_benefits": bool(body.get("revoke_benefits", False)),
        "dispute": None,
    }
    fake.refunds.append(refund)
    return 200, refund


@contextmanager
def fake_polar_refunds() -> Iterator[FakePolarRefunds]:
    fake = FakePolarRefunds()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return None

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            fake.requests.append(("POST", self.path, body))
            if self.headers.get("Authorization") != f"Bearer {fake.token}":
                status, answer = 401, {"error": "Unauthorized", "detail": "Unauthorized"}
            elif self.path != "/v1/refunds/":
                status, answer = 404, {"detail": "Not Found"}
            else:
                status, answer = _polar_refund(fake, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": SERVER_POLL}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
