"""A fake Paddle Billing API on loopback for the connector tests: a threaded HTTP server answering what the connector
calls (``/event-types``, entities by id, cursor-paginated lists with ``after``/``per_page`` and
``meta.pagination``, ``POST /subscriptions/{id}/cancel``, ``PATCH /subscriptions/{id}``, ``POST /adjustments``:
refunds, full or partial by line item, created ``pending_approval`` as on a live account unless told otherwise),
with the entities a test puts in ``FakePaddle.entities``, errors in Paddle's shape
(``{"error": {type, code, detail, documentation_url}}``). It checks the Bearer key, records requests, and can refuse
(``fail_with``), drop connections (``down``) or fail after some list calls (``lists_before_failing``). Also builds
entities and signed deliveries in Paddle's shapes."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.serving import SERVER_POLL

KINDS = ("customers", "subscriptions", "transactions", "adjustments")


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class FakePaddle:
    api_key: str = "pdl_sdbx_apikey_fake"
    entities: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {k: {} for k in KINDS})
    requests: list[Recorded] = field(default_factory=list)
    fail_with: int | None = None
    down: bool = False
    lists_before_failing: int | None = None
    # The status a created refund adjustment starts in (Paddle: "pending_approval" until it reviews it).
    adjustment_status: str = "pending_approval"
    base_url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, entity: dict[str, Any]) -> dict[str, Any]:
        self.entities[kind][entity["id"]] = entity
        return entity


def _error(status: int, code: str, detail: str) -> tuple[int, Any]:
    kind = "api_error" if status >= 500 else "request_error"
    return status, {
        "error": {"type": kind, "code": code, "detail": detail, "documentation_url": "https://developer.paddle.com"},
        "meta": {"request_id": "req"},
    }


def _answer(fake: FakePaddle, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
    if fake.fail_with is not None:
        return _error(fake.fail_with, "refused", "refused by the fake")
    parts = path.strip("/").split("/")
    if parts == ["event-types"]:
        return 200, {"data": [], "meta": {"request_id": "req"}}
    kind = parts[0]
    if kind not in fake.entities:
        return _error(404, "not_found", "unknown path")
    if parts == ["adjustments"] and method == "POST":
        return _create_adjustment(fake, body or {})
    if len(parts) == 1 and method == "GET":
        if fake.lists_before_failing is not None:
            if fake.lists_before_failing <= 0:
                return _error(500, "internal_error", "the fake fails now")
            fake.lists_before_failing -= 1
        items = sorted(fake.entities[kind].values(), key=lambda e: e["id"])
        if "status" in query:
            items = [e for e in items if e.get("status") in query["status"].split(",")]
        after = query.get("after")
        if after:
            items = [e for e in items if e["id"] > after]
        size = int(query.get("per_page", "50"))
        page, more = items[:size], len(items) > size
        next_url = f"{fake.base_url}/{kind}?after={page[-1]['id']}&per_page={size}" if page else None
        meta = {"pagination": {"per_page": size, "next": next_url, "has_more": more, "estimated_total": len(items)}}
        return 200, {"data": page, "meta": meta}
    entity = fake.entities[kind].get(parts[1]) if len(parts) >= 2 else None
    if entity is None:
        return _error(404, "entity_not_found", "not found")
    if method == "GET" and len(parts) == 2:
        return 200, {"data": entity}
    if kind != "subscriptions":
        return _error(405, "method_not_allowed", "not allowed")
    if method == "POST" and parts[2:] == ["cancel"]:
        if entity["status"] == "canceled":
            return _error(400, "subscription_locked_processing", "the subscription is canceled")
        ends = entity["current_billing_period"]["ends_at"]
        entity["scheduled_change"] = {"action": "cancel", "effective_at": ends, "resume_at": None}
        return 200, {"data": entity}
    if method == "PATCH" and len(parts) == 2:
        if "scheduled_change" in body and body["scheduled_change"] is None:
            entity["scheduled_change"] = None
        if "items" in body:
            entity["items"] = [{"price": {"id": i["price_id"]}, "quantity": i["quantity"]} for i in body["items"]]
        return 200, {"data": entity}
    return _error(405, "method_not_allowed", "not allowed")


def _create_adjustment(fake: FakePaddle, body: dict[str, Any]) -> tuple[int, Any]:
    """``POST /adjustments`` as Paddle documents it: ``action``, ``transaction_id``, ``reason`` (required), ``type``
    ``full`` (the grand total left) or ``partial`` with ``items`` (``item_id`` of ``details.line_items``, ``type``,
    ``amount`` as a string of minor units); answers 201 with the adjustment."""
    if body.get("action") != "refund" or not str(body.get("reason") or "").strip():
        return _error(400, "bad_request", "action and reason are required")
    transaction = fake.entities["transactions"].get(str(body.get("transaction_id")))
    if transaction is None:
        return _error(404, "entity_not_found", "transaction not found")
    if transaction["status"] != "completed":
        return _error(400, "adjustment_transaction_invalid_status_for_refund", "the transaction is not completed")
    lines = {line["id"]: line for line in transaction["details"]["line_items"]}
    done = [a for a in fake.entities["adjustments"].values() if a["transaction_id"] == transaction["id"]]
    if any(a["status"] == "pending_approval" for a in done):
        return _error(400, "adjustment_pending_refund_request", "there is a pending refund request")
    adjusted: dict[str, int] = {}
    for previous in done:
        if previous["status"] != "rejected":
            for item in previous["items"]:
                adjusted[item["item_id"]] = adjusted.get(item["item_id"], 0) + int(item["amount"])
    kind = body.get("type", "partial")
    items: list[dict[str, Any]] = []
    if kind == "full":
        for item_id, line in lines.items():
            left = int(line["totals"]["total"]) - adjusted.get(item_id, 0)
            if left > 0:
                items.append({"item_id": item_id, "type": "full", "amount": str(left)})
        if not items:
            return _error(400, "adjustment_transaction_item_has_already_been_fully_adjusted", "nothing is left")
    elif kind == "partial":
        for item in body.get("items") or []:
            line = lines.get(item.get("item_id"))
            if line is None:
                return _error(400, "adjustment_transaction_item_invalid", "unknown transaction item")
            amount = int(item.get("amount") or 0)
            left = int(line["totals"]["total"]) - adjusted.get(line["id"], 0)
            if amount <= 0 or amount > left:
                return _error(400, "adjustment_amount_above_remaining_allowed", f"over remaining allowed {left}")
            items.append({"item_id": line["id"], "type": item.get("type", "partial"), "amount": str(amount)})
        if not items:
            return _error(400, "bad_request", "a partial adjustment needs items")
    else:
        return _error(400, "bad_request", "type must be full or partial")
    total = sum(int(item["amount"]) for item in items)
    made = adjustment(
        f"adj_fake{len(fake.entities['adjustments']) + 1:04d}",
        transaction_id=transaction["id"],
        amount=total,
        status=fake.adjustment_status,
        updated=int(time.time()),
    )
    made |= {"type": kind, "reason": body["reason"], "customer_id": transaction["customer_id"], "items": items}
    fake.entities["adjustments"][made["id"]] = made
    return 201, {"data": made, "meta": {"request_id": "req"}}


class _Handler(BaseHTTPRequestHandler):
    fake: FakePaddle

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
            if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                status, answer = _error(401, "authentication_malformed", "bad key")
            else:
                status, answer = _answer(fake, self.command, parts.path, query, body)
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PATCH = do_POST = do_DELETE = _handle


@contextmanager
def fake_paddle() -> Iterator[FakePaddle]:
    fake = FakePaddle()
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


# --- entities and deliveries in Paddle's shapes ------------------------------------------------------------------


def ts(stamp: int) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def customer(customer_id: str, *, email: str, name: str, updated: int) -> dict[str, Any]:
    return {
        "id": customer_id,
        "name": name,
        "email": email,
        "marketing_consent": False,
        "status": "active",
        "custom_data": None,
        "locale": "en",
        "created_at": ts(updated),
        "updated_at": ts(updated),
        "import_meta": None,
    }


def price(price_id: str, amount: int, *, interval: str | None = None) -> dict[str, Any]:
    return {
        "id": price_id,
        "product_id": "pro_" + price_id[4:],
        "description": f"Price {price_id}",
        "type": "standard",
        "name": None,
        "billing_cycle": None if interval is None else {"interval": interval, "frequency": 1},
        "trial_period": None,
        "tax_mode": "account_setting",
        "unit_price": {"amount": str(amount), "currency_code": "USD"},
        "unit_price_overrides": [],
        "quantity": {"minimum": 1, "maximum": 1},
        "status": "active",
        "custom_data": None,
    }


def transaction(
    txn_id: str,
    *,
    customer_id: str,
    item: dict[str, Any],
    total: int,
    created: int,
    subscription_id: str | None = None,
    origin: str = "web",
    status: str = "completed",
) -> dict[str, Any]:
    return {
        "id": txn_id,
        "status": status,
        "customer_id": customer_id,
        "address_id": "add_1",
        "business_id": None,
        "custom_data": None,
        "currency_code": "USD",
        "origin": origin,
        "subscription_id": subscription_id,
        "invoice_id": None,
        "invoice_number": None,
        "collection_mode": "automatic",
        "discount_id": None,
        "billing_details": None,
        "billing_period": None,
        "items": [{"price": item, "quantity": 1, "proration": None}],
        "details": {
            "tax_rates_used": [],
            "totals": {
                "subtotal": str(total),
                "discount": "0",
                "tax": "0",
                "total": str(total),
                "credit": "0",
                "balance": "0",
                "grand_total": str(total),
                "fee": None,
                "earnings": None,
                "currency_code": "USD",
            },
            "line_items": [
                {
                    "id": "txnitm_" + txn_id.removeprefix("txn_"),
                    "price_id": item["id"],
                    "quantity": 1,
                    "proration": None,
                    "tax_rate": "0",
                    "unit_totals": {"subtotal": str(total), "discount": "0", "tax": "0", "total": str(total)},
                    "totals": {"subtotal": str(total), "discount": "0", "tax": "0", "total": str(total)},
                    "product": {"id": item["product_id"], "name": item["description"]},
                }
            ],
        },
        "payments": [],
        "checkout": {"url": None},
        "created_at": ts(created),
        "updated_at": ts(created),
        "billed_at": ts(created),
    }


def subscription(
    sub_id: str,
    *,
    customer_id: str,
    item: dict[str, Any],
    status: str,
    created: int,
    updated: int,
    period_start: int,
    period_end: int,
    scheduled_cancel: bool = False,
) -> dict[str, Any]:
    return {
        "id": sub_id,
        "status": status,
        "customer_id": customer_id,
        "address_id": "add_1",
        "business_id": None,
        "currency_code": "USD",
        "created_at": ts(created),
        "updated_at": ts(updated),
        "started_at": ts(created),
        "first_billed_at": ts(created),
        "next_billed_at": ts(period_end),
        "paused_at": None,
        "canceled_at": ts(updated) if status == "canceled" else None,
        "collection_mode": "automatic",
        "billing_details": None,
        "current_billing_period": {"starts_at": ts(period_start), "ends_at": ts(period_end)},
        "billing_cycle": {"interval": "month", "frequency": 1},
        "scheduled_change": (
            {"action": "cancel", "effective_at": ts(period_end), "resume_at": None} if scheduled_cancel else None
        ),
        "items": [
            {
                "status": "active",
                "quantity": 1,
                "recurring": True,
                "created_at": ts(created),
                "updated_at": ts(updated),
                "previously_billed_at": ts(period_start),
                "next_billed_at": ts(period_end),
                "trial_dates": None,
                "price": item,
            }
        ],
        "custom_data": None,
        "management_urls": {"update_payment_method": None, "cancel": "https://x"},
        "discount": None,
        "import_meta": None,
    }


def adjustment(adj_id: str, *, transaction_id: str, amount: int, status: str, updated: int) -> dict[str, Any]:
    return {
        "id": adj_id,
        "action": "refund",
        "type": "partial",
        "transaction_id": transaction_id,
        "subscription_id": None,
        "customer_id": "ctm_1",
        "reason": "requested by customer",
        "credit_applied_to_balance": None,
        "currency_code": "USD",
        "status": status,
        "items": [],
        "totals": {
            "subtotal": str(amount),
            "tax": "0",
            "total": str(amount),
            "fee": "0",
            "earnings": "0",
            "currency_code": "USD",
        },
        "payout_totals": None,
        "created_at": ts(updated),
        "updated_at": ts(updated),
    }


def event(event_id: str, event_type: str, data: dict[str, Any], occurred: int) -> bytes:
    body = {
        "event_id": event_id,
        "event_type": event_type,
        "occurred_at": ts(occurred),
        "notification_id": "ntf_" + event_id[4:],
        "data": data,
    }
    return json.dumps(body).encode()


def signature(body: bytes, *secrets: str, timestamp: int | None = None) -> str:
    """``ts=…;h1=…`` with one ``h1`` per secret (Paddle signs with both during a secret rotation)."""
    stamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{stamp}:".encode() + body
    hashes = ";".join(f"h1={hmac.new(s.encode(), signed, hashlib.sha256).hexdigest()}" for s in secrets)
    return f"ts={stamp};{hashes}"
