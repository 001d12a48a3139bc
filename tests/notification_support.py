"""Helpers for the email-outbox and webhook tests: fast worker settings, a shop made through the admin API, a
real HTTP receiver on loopback (``http.server`` in a thread) and polling helpers."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec

from portal.db import connect_sync
from portal.settings import Settings
from tests.admin_support import api, create_org, mint_token
from tests.serving import SERVER_POLL
from tests.signin_helpers import text_part


def fast(settings: Settings, **changes: Any) -> Settings:
    """Workers that look every 50 ms and retry after 0.2 s, 0.4 s, …"""
    values = {"worker_poll_interval": 0.05, "retry_backoff_base": 0.2, **changes}
    return msgspec.structs.replace(settings, **values)


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def rows(settings: Settings, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    conn = connect_sync(settings.db_path)
    try:
        return [dict(row) for row in conn.execute(sql, params)]
    finally:
        conn.close()


@dataclass
class Shop:
    admin: str
    token: str
    org: dict[str, Any]
    customer: dict[str, Any]
    license_benefit: dict[str, Any]
    product: dict[str, Any]
    plan: dict[str, Any]
    bigger_plan: dict[str, Any]


def make_shop(client: Any, settings: Settings, slug: str = "acme") -> Shop:
    """An organization with a license-key product, two monthly plans and one customer, all via the admin API."""
    admin = mint_token(settings)
    org = create_org(client, admin, slug, email=f"support@{slug}.example")
    token = mint_token(settings, org["id"])
    benefit = api(
        client,
        token,
        "POST",
        "/v1/benefits/",
        201,
        json={
            "type": "license_keys",
            "description": "Toolkit license",
            "properties": {"prefix": "ACME", "activations": {"limit": 2, "enable_customer_admin": True}},
        },
    )

    def product(name: str, amount: int, **fields: Any) -> dict[str, Any]:
        body = {"name": name, "prices": [{"amount_type": "fixed", "price_amount": amount, "price_currency": "usd"}]}
        return api(client, token, "POST", "/v1/products/", 201, json={**body, **fields})  # type: ignore[no-any-return]

    toolkit = product("Toolkit", 4900, benefits=[benefit["id"]])
    plan = product("Basic plan", 900, recurring_interval="month")
    bigger = product("Pro plan", 1900, recurring_interval="month")
    customer = api(client, token, "POST", "/v1/customers/", 201, json={"email": "ada@example.com", "name": "Ada"})
    return Shop(admin, token, org, customer, benefit, toolkit, plan, bigger)


def pay(client: Any, shop: Shop) -> dict[str, Any]:
    """An order of the shop's license-key product by its customer, through the admin API."""
    return api(  # type: ignore[no-any-return]
        client,
        shop.token,
        "POST",
        "/v1/orders/",
        201,
        json={"customer_id": shop.customer["id"], "product_id": shop.product["id"]},
    )


def subscribe(client: Any, shop: Shop, *, period_start: str, product: dict[str, Any] | None = None) -> dict[str, Any]:
    return api(  # type: ignore[no-any-return]
        client,
        shop.token,
        "POST",
        "/v1/subscriptions/",
        201,
        json={
            "customer_id": shop.customer["id"],
            "product_id": (product or shop.plan)["id"],
            "status": "active",
            "current_period_start": period_start,
        },
    )


def link_in(message: EmailMessage, base: str = "http://testserver.local") -> str:
    """The first single-use sign-in link of an email's text part, as a path with its query."""
    match = re.search(re.escape(base) + r"(/[a-z0-9-]+/portal/link\?token=[A-Za-z0-9_\-]+)", text_part(message))
    assert match, text_part(message)
    return match.group(1)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int


@dataclass
class Receiver:
    """A real HTTP server on loopback that records every POST and answers with ``statuses`` in turn (the last
    one repeats)."""

    statuses: list[int] = field(default_factory=lambda: [200])
    requests: list[Received] = field(default_factory=list)
    url: str = ""
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def answer(self) -> int:
        with self._cond:
            index = min(len(self.requests), len(self.statuses) - 1)
            return self.statuses[index]

    def record(self, request: Received) -> None:
        with self._cond:
            self.requests.append(request)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.requests) >= count, timeout=timeout)
            if len(self.requests) < count:
                raise AssertionError(f"expected {count} webhook requests, got {len(self.requests)}")
            return list(self.requests)


@contextmanager
def receiver(statuses: list[int] | None = None) -> Iterator[Receiver]:
    state = Receiver(statuses=statuses or [200])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            status = state.answer()
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.record(Received(self.path, headers, body, time.monotonic(), status))
            payload = b'{"ok": true}' if status < 300 else b"boom"
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/polar"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": SERVER_POLL}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
