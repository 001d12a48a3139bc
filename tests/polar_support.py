"""Test support for the Polar connector: a real Portal instance served on loopback plays Polar (Portal's admin API
and its webhook payloads are Polar's shapes), and deliveries are signed with Standard Webhooks as Polar signs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import standardwebhooks

from portal.app import create_app
from portal.settings import Settings
from tests.admin_support import create_org, free_port, mint_token, serve

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
            method, self.base_url + path, headers={"Authorization": f"Bearer {self.token}"}, timeout=10, **kwargs
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
    with serve(create_app(settings), port) as base_url:
        admin = mint_token(settings)
        with httpx.Client(base_url=base_url, timeout=10) as client:
            org = create_org(client, admin, "seller")
        token = mint_token(settings, org["id"])
        polar = FakePolar(base_url=base_url, token=token, org=org, products={})
        polar.products = seller_catalog(polar.call, org["id"], "POLAR")
        yield polar
