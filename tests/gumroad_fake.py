"""A fake of Gumroad's API v2 on loopback, in Gumroad's documented shapes: ``GET /v2/user``, ``GET /v2/sales``
(newest first, ``page_key`` pagination, ``next_page_key``), ``GET /v2/sales/{id}``, ``GET /v2/subscribers/{id}``,
``PUT /v2/sales/{id}/refund`` (``amount_cents``: a partial refund; none: all that is left);
every call needs the seller's access token (``Authorization: Bearer``)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.serving import SERVER_POLL

ACCESS_TOKEN = "gumroad-access-token-for-tests"


@dataclass
class FakeGumroad:
    base_url: str = ""
    page_size: int = 2
    sales: list[dict[str, Any]] = field(default_factory=list)  # oldest first; listed newest first
    subscribers: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    # The form fields of each refund call (``PUT /v2/sales/{id}/refund``), in order.
    refunds: list[dict[str, str]] = field(default_factory=list)
    down: bool = False

    def sale(
        self,
        sale_id: str,
        email: str,
        product_id: str,
        price: int,
        *,
        license_key: str | None = None,
        subscription_id: str | None = None,
        created_at: str | None = None,
    ) -> dict[str, Any]:
        sale = {
            "id": sale_id,
            "email": email,
            "seller_id": "seller_1",
            "created_at": created_at or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "product_id": product_id,
            "product_name": "Guide" if subscription_id is None else "Membership",
            "price": price,
            "gumroad_fee": price // 10,
            "currency": "usd",
            "quantity": 1,
            "refunded": False,
            "partially_refunded": False,
            "chargebacked": False,
            "subscription_id": subscription_id,
            "license_key": license_key,
            "license_id": None if license_key is None else f"lic_{sale_id}",
            "license_disabled": False,
            "order_id": 100000 + len(self.sales),
        }
        self.sales.append(sale)
        return sale

    def find(self, sale_id: str) -> dict[str, Any] | None:
        return next((sale for sale in self.sales if sale["id"] == sale_id), None)


def _handler(fake: FakeGumroad) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return None

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            fake.requests.append(parts.path)
            if fake.down:
                self._answer(503, {"success": False, "message": "down"})
                return
            if self.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
                self._answer(401, {"success": False, "message": "The access token is invalid"})
                return
            path = parts.path.rstrip("/")
            if path == "/v2/user":
                self._answer(200, {"success": True, "user": {"user_id": "seller_1", "name": "Seller"}})
            elif path == "/v2/sales":
                newest_first = list(reversed(fake.sales))
                key = (parse_qs(parts.query).get("page_key") or ["0"])[0]
                start = int(key)
                page = newest_first[start : start + fake.page_size]
                body: dict[str, Any] = {"success": True, "sales": page}
                if start + fake.page_size < len(newest_first):
                    body["next_page_key"] = str(start + fake.page_size)
                    body["next_page_url"] = f"/v2/sales?page_key={start + fake.page_size}"
                self._answer(200, body)
            elif path.startswith("/v2/sales/"):
                sale = fake.find(path.removeprefix("/v2/sales/"))
                if sale is None:
                    self._answer(404, {"success": False, "message": "The sale was not found."})
                else:
                    self._answer(200, {"success": True, "sale": sale})
            elif path.startswith("/v2/subscribers/"):
                subscriber = fake.subscribers.get(path.removeprefix("/v2/subscribers/"))
                if subscriber is None:
                    self._answer(404, {"success": False, "message": "The subscriber was not found."})
                else:
                    self._answer(200, {"success": True, "subscriber": subscriber})
            else:
                self._answer(404, {"success": False, "message": "Not found"})

        def do_PUT(self) -> None:
            parts = urlsplit(self.path)
            fake.requests.append(f"PUT {parts.path}")
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode() if length else "").items()}
            if fake.down:
                self._answer(503, {"success": False, "message": "down"})
                return
            if self.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
                self._answer(401, {"success": False, "message": "The access token is invalid"})
                return
            path = parts.path.rstrip("/")
            if not (path.startswith("/v2/sales/") and path.endswith("/refund")):
                self._answer(404, {"success": False, "message": "Not found"})
                return
            fake.refunds.append(form)
            sale = fake.find(unquote(path.removeprefix("/v2/sales/").removesuffix("/refund")))
            if sale is None:
                self._answer(404, {"success": False, "message": "The sale was not found."})
                return
            self._answer(*refund(sale, form.get("amount_cents")))

    return Handler


def refund(sale: dict[str, Any], amount_cents: str | None) -> tuple[int, dict[str, Any]]:
    """Gumroad's refund of a sale: a partial refund of ``amount_cents`` (at most what is left), else all of it;
    answers ``{"success": true, "sale": …}`` with the sale's refund flags and ``amount_refundable_in_currency``."""
    done = int(sale.get("amount_refunded_in_cents") or 0)
    left = int(sale["price"]) - done
    if sale.get("refunded") or left <= 0:
        return 200, {"success": False, "message": "The sale was already refunded."}
    amount = left if amount_cents in (None, "") else int(amount_cents or 0)
    if amount <= 0 or amount > left:
        return 200, {"success": False, "message": "The refund amount is more than what can be refunded."}
    done += amount
    sale["amount_refunded_in_cents"] = done
    sale["refunded"] = done >= int(sale["price"])
    sale["partially_refunded"] = not sale["refunded"]
    left = int(sale["price"]) - done
    sale["amount_refundable_in_currency"] = f"{left // 100}" if left % 100 == 0 else f"{left / 100:.2f}"
    return 200, {"success": True, "sale": sale}


@contextmanager
def fake_gumroad() -> Iterator[FakeGumroad]:
    fake = FakeGumroad()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": SERVER_POLL}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
