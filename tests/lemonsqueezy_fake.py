"""A fake Lemon Squeezy API on loopback for the connector tests: a threaded HTTP server answering the JSON:API
endpoints the connector calls (``/v1/users/me``, resources by id, lists with ``page[number]``/``page[size]`` and
``meta.page.lastPage``, ``filter[...]``, the subscription ``DELETE``/``PATCH``, ``POST /v1/orders/{id}/refund`` and
``POST /v1/subscription-invoices/{id}/refund``), with the resources a test puts in
``FakeLemonSqueezy.resources``. It checks the Bearer key, records every request, and can refuse (``fail_with``),
drop connections (``down``) or fail after some list calls (``lists_before_failing``, for resume tests).

Resource and webhook shapes follow Lemon Squeezy's API reference (orders, subscriptions, subscription-invoices,
license-keys, license-key-instances, customers)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.serving import SERVER_POLL

KINDS = (
    "customers",
    "orders",
    "subscriptions",
    "subscription-invoices",
    "license-keys",
    "license-key-instances",
    "files",
)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class FakeLemonSqueezy:
    api_key: str = "ls_test_fake_key"
    resources: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {k: {} for k in KINDS})
    requests: list[Recorded] = field(default_factory=list)
    fail_with: int | None = None
    down: bool = False
    lists_before_failing: int | None = None
    base_url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    # The bytes behind each file's ``download_url`` (``/downloads/<file id>``, no API key, as a signed URL).
    blobs: dict[str, bytes] = field(default_factory=dict)

    def add(self, resource: dict[str, Any]) -> dict[str, Any]:
        self.resources[resource["type"]][str(resource["id"])] = resource
        return resource


def _error(status: int, detail: str) -> tuple[int, Any]:
    return status, {"errors": [{"status": str(status), "title": "Error", "detail": detail}]}


def _answer(fake: FakeLemonSqueezy, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
    if fake.fail_with is not None:
        return _error(fake.fail_with, "refused by the fake")
    parts = path.strip("/").split("/")
    if parts[:1] != ["v1"] or len(parts) < 2:
        return _error(404, "unknown path")
    if parts[1:] == ["users", "me"]:
        return 200, {"meta": {"test_mode": True}, "data": {"type": "users", "id": "1", "attributes": {}}}
    kind = parts[1]
    if kind not in fake.resources:
        return _error(404, "unknown path")
    if len(parts) == 2 and method == "GET":
        if fake.lists_before_failing is not None and kind != "files":  # the resume tests count the sales' lists
            if fake.lists_before_failing <= 0:
                return _error(500, "the fake fails now")
            fake.lists_before_failing -= 1
        items = sorted(fake.resources[kind].values(), key=lambda r: int(r["id"]))
        for name, value in query.items():
            if name.startswith("filter[") and name.endswith("]"):
                attribute = name[7:-1]
                items = [r for r in items if str(r["attributes"].get(attribute)) == value]
        size = int(query.get("page[size]", "10"))
        number = int(query.get("page[number]", "1"))
        last = max(1, -(-len(items) // size))
        page = items[(number - 1) * size : number * size]
        meta = {"page": {"currentPage": number, "from": 1, "lastPage": last, "perPage": size, "total": len(items)}}
        return 200, {"meta": meta, "data": page}
    if len(parts) == 4 and parts[3] == "refund" and method == "POST" and kind in ("orders", "subscription-invoices"):
        return _refund(fake, kind, parts[2], body or {})
    resource = fake.resources[kind].get(parts[2]) if len(parts) == 3 else None
    if resource is None:
        return _error(404, "not found")
    if method == "GET":
        return 200, {"data": resource}
    if kind != "subscriptions":
        return _error(405, "not allowed")
    attrs = resource["attributes"]
    if method == "DELETE":
        if attrs["status"] == "expired":
            return _error(422, "the subscription has expired")
        attrs.update(status="cancelled", cancelled=True, ends_at=attrs["renews_at"])
        return 200, {"data": resource}
    if method == "PATCH":
        changes = ((body or {}).get("data") or {}).get("attributes") or {}
        if changes.get("cancelled") is False:
            attrs.update(status="active", cancelled=False, ends_at=None)
        if "variant_id" in changes:
            attrs["variant_id"] = changes["variant_id"]
        return 200, {"data": resource}
    return _error(405, "not allowed")


def _refund(fake: FakeLemonSqueezy, kind: str, resource_id: str, body: dict[str, Any]) -> tuple[int, Any]:
    """Lemon Squeezy's "Issue a refund": ``{"data": {"type", "id", "attributes": {"amount"}}}`` (cents; none: all
    that is left); answers the order (invoice) with its cumulative ``refunded_amount``, ``refunded``, ``status``."""
    resource = fake.resources[kind].get(resource_id)
    if resource is None:
        return _error(404, "not found")
    data = body.get("data") or {}
    if data.get("type") != kind or str(data.get("id")) != resource_id:
        return _error(422, "The data type and id must match the resource.")
    attrs = resource["attributes"]
    left = int(attrs["total"]) - int(attrs.get("refunded_amount") or 0)
    amount = (data.get("attributes") or {}).get("amount", left)
    if not isinstance(amount, int) or amount <= 0 or amount > left:
        return _error(422, f"The amount must be between 1 and {left}.")
    refunded = int(attrs.get("refunded_amount") or 0) + amount
    full = refunded >= int(attrs["total"])
    attrs.update(
        refunded_amount=refunded,
        refunded_amount_usd=refunded,
        refunded=full,
        refunded_at=ts(int(time.time())),
        updated_at=ts(int(time.time())),
        status="refunded" if full else "partial_refund",
    )
    attrs["status_formatted"] = attrs["status"].replace("_", " ").title()
    return 200, {
        "jsonapi": {"version": "1.0"},
        "links": {"self": f"{fake.base_url}/v1/{kind}/{resource_id}"},
        "data": resource,
    }


class _Handler(BaseHTTPRequestHandler):
    fake: FakeLemonSqueezy

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        fake = self.fake
        if fake.down:
            self.connection.close()
            return
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query))
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        with fake.lock:
            fake.requests.append(Recorded(self.command, parts.path, query, body))
            if parts.path.startswith("/downloads/"):
                self._download(parts.path.removeprefix("/downloads/"))
                return
            if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                status, answer = _error(401, "Unauthenticated.")
            else:
                status, answer = _answer(fake, self.command, parts.path, query, body)
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.api+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _download(self, file_id: str) -> None:
        blob = self.fake.blobs.get(file_id)
        self.send_response(200 if blob is not None else 404)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(blob or b"")))
        self.end_headers()
        self.wfile.write(blob or b"")

    do_GET = do_PATCH = do_DELETE = do_POST = _handle


@contextmanager
def fake_lemonsqueezy() -> Iterator[FakeLemonSqueezy]:
    fake = FakeLemonSqueezy()
    handler = type("Handler", (_Handler,), {"fake": fake})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": SERVER_POLL}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


# --- resources and webhooks in Lemon Squeezy's shapes ------------------------------------------------------------


def ts(stamp: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def order(
    order_id: int,
    *,
    variant: int,
    email: str,
    name: str,
    total: int,
    created: int,
    updated: int | None = None,
    status: str = "paid",
    refunded_amount: int = 0,
    customer: int = 1,
) -> dict[str, Any]:
    return {
        "type": "orders",
        "id": str(order_id),
        "attributes": {
            "store_id": 1,
            "customer_id": customer,
            "identifier": f"uuid-{order_id}",
            "order_number": order_id,
            "user_name": name,
            "user_email": email,
            "currency": "USD",
            "currency_rate": "1.0000",
            "subtotal": total,
            "discount_total": 0,
            "tax": 0,
            "total": total,
            "subtotal_usd": total,
            "discount_total_usd": 0,
            "tax_usd": 0,
            "total_usd": total,
            "tax_name": None,
            "tax_rate": "0.00",
            "status": status,
            "status_formatted": status.replace("_", " ").title(),
            "refunded": status == "refunded",
            "refunded_at": ts(updated or created) if refunded_amount else None,
            "refunded_amount": refunded_amount,
            "subtotal_formatted": f"${total / 100:.2f}",
            "total_formatted": f"${total / 100:.2f}",
            "first_order_item": {
                "id": order_id * 10,
                "order_id": order_id,
                "product_id": 100,
                "variant_id": variant,
                "product_name": "Toolkit",
                "variant_name": "Default",
                "price": total,
                "quantity": 1,
                "created_at": ts(created),
                "updated_at": ts(created),
                "test_mode": True,
            },
            "urls": {"receipt": f"https://app.lemonsqueezy.com/my-orders/uuid-{order_id}"},
            "created_at": ts(created),
            "updated_at": ts(updated or created),
            "test_mode": True,
        },
        "relationships": {},
    }


def subscription(
    sub_id: int,
    *,
    variant: int,
    order_id: int,
    email: str,
    name: str,
    status: str,
    created: int,
    updated: int,
    renews_at: int,
    ends_at: int | None = None,
    cancelled: bool = False,
    customer: int = 1,
) -> dict[str, Any]:
    return {
        "type": "subscriptions",
        "id": str(sub_id),
        "attributes": {
            "store_id": 1,
            "customer_id": customer,
            "order_id": order_id,
            "order_item_id": order_id * 10,
            "product_id": 200,
            "variant_id": variant,
            "product_name": "Pro",
            "variant_name": "Monthly",
            "user_name": name,
            "user_email": email,
            "status": status,
            "status_formatted": status.title(),
            "card_brand": "visa",
            "card_last_four": "4242",
            "pause": None,
            "cancelled": cancelled,
            "trial_ends_at": None,
            "billing_anchor": 1,
            "first_subscription_item": {"id": sub_id * 10, "subscription_id": sub_id, "price_id": 1, "quantity": 1},
            "urls": {"update_payment_method": "https://example.lemonsqueezy.com/update", "customer_portal": None},
            "renews_at": ts(renews_at),
            "ends_at": None if ends_at is None else ts(ends_at),
            "created_at": ts(created),
            "updated_at": ts(updated),
            "test_mode": True,
        },
        "relationships": {},
    }


def invoice(
    invoice_id: int,
    *,
    sub_id: int,
    total: int,
    created: int,
    reason: str = "initial",
    status: str = "paid",
    refunded_amount: int = 0,
    customer: int = 1,
    email: str = "",
    updated: int | None = None,
) -> dict[str, Any]:
    return {
        "type": "subscription-invoices",
        "id": str(invoice_id),
        "attributes": {
            "store_id": 1,
            "subscription_id": sub_id,
            "customer_id": customer,
            "user_name": "",
            "user_email": email,
            "billing_reason": reason,
            "card_brand": "visa",
            "card_last_four": "4242",
            "currency": "USD",
            "currency_rate": "1.00000000",
            "status": status,
            "status_formatted": status.title(),
            "refunded": status == "refunded",
            "refunded_at": None,
            "refunded_amount": refunded_amount,
            "subtotal": total,
            "discount_total": 0,
            "tax": 0,
            "total": total,
            "urls": {"invoice_url": None},
            "created_at": ts(created),
            "updated_at": ts(updated or created),
            "test_mode": True,
        },
        "relationships": {},
    }


def license_key(
    key_id: int,
    *,
    order_id: int,
    key: str,
    created: int,
    updated: int | None = None,
    limit: int | None = 3,
    status: str = "inactive",
    expires_at: int | None = None,
    customer: int = 1,
    email: str = "",
) -> dict[str, Any]:
    return {
        "type": "license-keys",
        "id": str(key_id),
        "attributes": {
            "store_id": 1,
            "customer_id": customer,
            "order_id": order_id,
            "order_item_id": order_id * 10,
            "product_id": 100,
            "user_name": "",
            "user_email": email,
            "key": key,
            "key_short": f"XXXX-{key[-12:]}",
            "activation_limit": limit,
            "instances_count": 0,
            "disabled": status == "disabled",
            "status": status,
            "status_formatted": status.title(),
            "expires_at": None if expires_at is None else ts(expires_at),
            "created_at": ts(created),
            "updated_at": ts(updated or created),
            "test_mode": True,
        },
        "relationships": {},
    }


def file(fake: FakeLemonSqueezy, file_id: int, *, variant: int, name: str, content: bytes) -> dict[str, Any]:
    """A ``files`` resource of a variant, its bytes served at its ``download_url``."""
    fake.blobs[str(file_id)] = content
    return {
        "type": "files",
        "id": str(file_id),
        "attributes": {
            "variant_id": variant,
            "identifier": f"file-{file_id}",
            "name": name,
            "extension": name.rsplit(".", 1)[-1],
            "download_url": f"{fake.base_url}/downloads/{file_id}?expires=1&signature=fake",
            "size": len(content),
            "size_formatted": f"{len(content)} B",
            "version": "1.0.0",
            "sort": 0,
            "status": "published",
            "createdAt": ts(1_700_000_000),
            "updatedAt": ts(1_700_000_000),
            "test_mode": True,
        },
    }


def instance(instance_id: int, *, key_id: int, identifier: str, name: str, created: int) -> dict[str, Any]:
    return {
        "type": "license-key-instances",
        "id": str(instance_id),
        "attributes": {
            "license_key_id": key_id,
            "identifier": identifier,
            "name": name,
            "created_at": ts(created),
            "updated_at": ts(created),
        },
        "relationships": {},
    }


def webhook(event_name: str, resource: dict[str, Any]) -> bytes:
    """A delivery body: ``meta`` (event name, custom data, test mode, webhook id) and the resource."""
    body = {
        "meta": {"event_name": event_name, "test_mode": True, "webhook_id": "wh-1", "custom_data": {}},
        "data": resource,
    }
    return json.dumps(body).encode()


def signature(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
