"""A fake Stripe API on loopback for the connector tests: a threaded HTTP server answering the endpoints the
connector calls, in the shapes of the pinned API version (``portal.connectors.stripe.client.API_VERSION``), with
the objects a test puts in ``FakeStripe.objects``. It checks the Bearer key, records every request (method, path,
form fields, ``Stripe-Version``) and can be told to refuse (``fail_with``) or to drop connections (``down``)."""

from __future__ import annotations

import html
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.serving import SERVER_POLL

_LISTS = {
    "customers": "customer",
    "products": "product",
    "prices": "price",
    "subscriptions": "subscription",
    "invoices": "invoice",
    "charges": "charge",
    "refunds": "refund",
    "checkout/sessions": "checkout.session",
}


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    version: str | None
    authorization: str | None


@dataclass
class FakeStripe:
    api_key: str = "sk_test_fake_key_0123456789"
    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {k: {} for k in _LISTS})
    requests: list[Recorded] = field(default_factory=list)
    fail_with: tuple[int, str] | None = None  # (status, error type), answered to every call
    down: bool = False
    base_url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Imports: answer this many list calls, then fail every call with a 500 (None: never).
    lists_before_failing: int | None = None
    # Imports: a list (e.g. "subscriptions") whose calls after its first page wait until ``lists_released`` is set
    # (30 s at most), so a test interrupts an import at a known point: one page of that list written, no more.
    hold_after_first_page_of: str | None = None
    lists_released: threading.Event = field(default_factory=threading.Event)
    list_calls: Counter[str] = field(default_factory=Counter)
    # Each list's objects in Stripe's order, by kind, with the object count it was computed for.
    list_order: dict[str, tuple[int, list[dict[str, Any]], dict[str, int]]] = field(default_factory=dict)
    # Inbound (events in): a checkout session's line items by session id, and the invoice a PaymentIntent paid.
    line_items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    invoice_of_payment: dict[str, str] = field(default_factory=dict)

    def add(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        self.objects[kind][obj["id"]] = obj
        return obj


def _error(status: int, kind: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"type": kind, "message": message}}


def _answer(fake: FakeStripe, method: str, path: str, query: dict[str, str], form: dict[str, str]) -> tuple[int, Any]:
    if fake.fail_with is not None:
        status, kind = fake.fail_with
        return _error(status, kind, "refused by the fake")
    parts = path.strip("/").split("/")
    if parts[0] != "v1":
        return _error(404, "invalid_request_error", "unknown path")
    rest = "/".join(parts[1:])
    import_failure = _import_failure(fake, method, rest)
    if import_failure is not None:
        return import_failure
    actions_answer = _actions_out(fake, method, rest, form)
    if actions_answer is not None:
        return actions_answer
    inbound = _answer_inbound(fake, method, rest, query)
    if inbound is not None:
        return inbound
    for kind, object_name in _LISTS.items():
        if rest == kind and method == "GET":
            limit = int(query.get("limit", "10"))
            page, has_more = list_page(fake, kind, query, limit)
            return 200, {"object": "list", "data": page, "has_more": has_more, "url": f"/v1/{kind}"}
        if rest.startswith(kind + "/") and rest.count("/") == kind.count("/") + 1:
            object_id = rest.rsplit("/", 1)[1]
            obj = fake.objects[kind].get(object_id)
            if obj is None:
                return _error(404, "invalid_request_error", f"No such {object_name}: '{object_id}'")
            if method == "POST":
                for key, value in form.items():
                    if "[" not in key:
                        obj[key] = {"true": True, "false": False}.get(value, value)
            return 200, obj
    return _error(404, "invalid_request_error", f"unknown path {path}")


# --- imports (issue 19, history in): list filters and a failure part-way ------------------------------------------


def newest_first(fake: FakeStripe, kind: str) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Stripe's list order (newest first, then id) and each id's position, computed once per number of objects:
    the backfill benchmark lists 10,000 invoices a page at a time, and sorting them for every page made the fake
    the bottleneck."""
    objects = fake.objects[kind]
    cached = fake.list_order.get(kind)
    if cached is None or cached[0] != len(objects):
        ordered = sorted(objects.values(), key=lambda o: (-int(o.get("created", 0)), o["id"]))
        cached = (len(objects), ordered, {o["id"]: index for index, o in enumerate(ordered)})
        fake.list_order[kind] = cached
    return cached[1], cached[2]


def list_page(fake: FakeStripe, kind: str, query: dict[str, str], limit: int) -> tuple[list[dict[str, Any]], bool]:
    """One page of a list: the objects after ``starting_after`` passing the filters the importer sends
    (``created[gte]``, ``status``; ``all``: every status), and whether more follow."""
    ordered, positions = newest_first(fake, kind)
    after = query.get("starting_after")
    start = 0 if not after else positions.get(after, len(ordered) - 1) + 1
    since = int(query["created[gte]"]) if "created[gte]" in query else None
    status = query.get("status")
    page: list[dict[str, Any]] = []
    for obj in ordered[start:]:
        if since is not None and int(obj.get("created", 0)) < since:
            continue
        if status is not None and status != "all" and obj.get("status") != status:
            continue
        if len(page) == limit:
            return page, True
        page.append(obj)
    return page, False


def _import_failure(fake: FakeStripe, method: str, rest: str) -> tuple[int, Any] | None:
    if method == "GET" and rest in _LISTS:
        fake.list_calls[rest] += 1
        if rest == fake.hold_after_first_page_of and fake.list_calls[rest] > 1:
            fake.lists_released.wait(30)
    if fake.lists_before_failing is None or method != "GET" or rest not in _LISTS:
        return None
    if fake.lists_before_failing <= 0:
        return _error(500, "api_error", "the fake failed part-way")
    fake.lists_before_failing -= 1
    return None


# --- actions out (issue 19): subscription item swap and the billing portal ---------------------------------------


def _nested(form: dict[str, str], prefix: str) -> dict[str, str]:
    """The fields of one nested form parameter, e.g. ``items[0]`` → {"id": …, "price": …}."""
    return {key[len(prefix) + 1 : -1]: value for key, value in form.items() if key.startswith(prefix + "[")}


def _actions_out(fake: FakeStripe, method: str, rest: str, form: dict[str, str]) -> tuple[int, Any] | None:
    """Answers for the calls of ``portal.connectors.stripe.actions`` Stripe's generic update does not cover: a
    subscription update swapping an item's price, creating a billing-portal session, and creating a refund. None:
    not one of these."""
    if method == "POST" and rest == "refunds":
        return _create_refund(fake, form)
    if method == "POST" and rest.startswith("subscriptions/") and rest.count("/") == 1:
        subscription = fake.objects["subscriptions"].get(rest.split("/")[1])
        if subscription is None or "items[0][id]" not in form:
            return None
        item = _nested(form, "items[0]")
        prices = fake.objects["prices"]
        if item.get("price") not in prices:
            return _error(400, "invalid_request_error", f"No such price: '{item.get('price')}'")
        for existing in subscription["items"]["data"]:
            if existing["id"] == item.get("id"):
                existing["price"] = prices[item["price"]]
                subscription["plan"] = prices[item["price"]]
                break
        else:
            return _error(400, "invalid_request_error", f"No such subscription item: '{item.get('id')}'")
        subscription["proration_behavior_used"] = form.get("proration_behavior")
        return 200, subscription
    if method == "POST" and rest == "billing_portal/sessions":
        customer = form.get("customer")
        if customer not in fake.objects["customers"]:
            return _error(400, "invalid_request_error", f"No such customer: '{customer}'")
        session_id = f"bps_fake{len(fake.objects.setdefault('billing_portal/sessions', {})) + 1}"
        flow_type = form.get("flow_data[type]")
        session = {
            "id": session_id,
            "object": "billing_portal.session",
            "configuration": "bpc_fake",
            "created": 1796000000,
            "customer": customer,
            "customer_account": None,
            "flow": None
            if flow_type is None
            else {
                "type": flow_type,
                "after_completion": {
                    "type": form.get("flow_data[after_completion][type]", "portal_homepage"),
                    "redirect": {"return_url": form.get("flow_data[after_completion][redirect][return_url]")},
                    "hosted_confirmation": None,
                },
                "subscription_cancel": None,
                "subscription_update": None,
                "subscription_update_confirm": None,
            },
            "livemode": False,
            "locale": None,
            "on_behalf_of": None,
            "return_url": form.get("return_url"),
            "url": f"{fake.base_url}/p/session/test_{session_id}",
        }
        fake.objects["billing_portal/sessions"][session_id] = session
        return 200, session
    return None


def _create_refund(fake: FakeStripe, form: dict[str, str]) -> tuple[int, Any]:
    """``POST /v1/refunds``: ``payment_intent`` or ``charge``, ``amount`` (default: what is left), ``reason``,
    ``metadata[...]``. The charge's ``amount_refunded``/``refunded`` follow, and its ``refunds`` list, as Stripe's."""
    charges = fake.objects["charges"].values()
    if "charge" in form:
        charge = fake.objects["charges"].get(form["charge"])
    else:
        charge = next((c for c in charges if c.get("payment_intent") == form.get("payment_intent")), None)
    if charge is None:
        which = form.get("charge") or form.get("payment_intent")
        return _error(400, "invalid_request_error", f"No such payment_intent: '{which}'")
    left = int(charge["amount"]) - int(charge["amount_refunded"])
    amount = int(form.get("amount") or left)
    if left <= 0:
        return _error(400, "invalid_request_error", f"Charge {charge['id']} has already been refunded.")
    if amount <= 0 or amount > left:
        return _error(
            400,
            "invalid_request_error",
            f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
        )
    if form.get("reason") not in (None, "duplicate", "fraudulent", "requested_by_customer"):
        return _error(400, "invalid_request_error", "Invalid reason")
    refund_id = f"re_fake{len(fake.objects['refunds']) + 1:04d}"
    refund = {
        "id": refund_id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": f"txn_{refund_id}",
        "charge": charge["id"],
        "created": int(time.time()),
        "currency": charge["currency"],
        "destination_details": {"card": {"reference_status": "pending", "type": "refund"}, "type": "card"},
        "metadata": _nested(form, "metadata"),
        "payment_intent": charge.get("payment_intent"),
        "reason": form.get("reason"),
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }
    fake.objects["refunds"][refund_id] = refund
    charge["amount_refunded"] = int(charge["amount_refunded"]) + amount
    charge["refunded"] = charge["amount_refunded"] >= int(charge["amount"])
    listed = charge.setdefault("refunds", {"object": "list", "data": [], "has_more": False, "url": "/v1/refunds"})
    listed["data"].insert(0, refund)
    return 200, refund


def billing_portal_page(fake: FakeStripe, path: str) -> bytes:
    """The page a billing-portal session URL opens: its flow and a link back to its return URL."""
    session = fake.objects.get("billing_portal/sessions", {}).get(path.rsplit("test_", 1)[-1])
    if session is None:
        return b""
    flow = (session["flow"] or {}).get("type", "")
    back = html.escape(session["return_url"] or "")
    return (
        f"<!doctype html><title>Fake billing portal</title><h1>Billing portal: {html.escape(flow)}</h1>"
        f'<a id="return" href="{back}">Return</a>'
    ).encode()


def _list(data: list[dict[str, Any]], url: str) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": False, "url": url}


def _answer_inbound(fake: FakeStripe, method: str, rest: str, query: dict[str, str]) -> tuple[int, Any] | None:
    """What the inbound connector fetches besides plain objects: a checkout session's line items, the sessions
    and invoice payments of a PaymentIntent (filtered lists, ``expand`` honoured). None: not one of these."""
    if method != "GET":
        return None
    parts = rest.split("/")
    if len(parts) == 4 and parts[:2] == ["checkout", "sessions"] and parts[3] == "line_items":
        if parts[2] not in fake.objects["checkout/sessions"]:
            return _error(404, "invalid_request_error", f"No such checkout.session: '{parts[2]}'")
        return 200, _list(fake.line_items.get(parts[2], []), f"/v1/checkout/sessions/{parts[2]}/line_items")
    if rest == "checkout/sessions" and "payment_intent" in query:
        found = [
            dict(session, line_items=_list(fake.line_items.get(session["id"], []), "/v1/line_items"))
            if "data.line_items" in query.values()
            else session
            for session in fake.objects["checkout/sessions"].values()
            if session.get("payment_intent") == query["payment_intent"]
        ]
        return 200, _list(found, "/v1/checkout/sessions")
    if rest == "invoice_payments":
        intent = query.get("payment[payment_intent]")
        invoice_id = fake.invoice_of_payment.get(intent or "")
        if invoice_id is None or invoice_id not in fake.objects["invoices"]:
            return 200, _list([], "/v1/invoice_payments")
        invoice = fake.objects["invoices"][invoice_id]
        payment = {
            "id": f"inpay_{invoice_id}",
            "object": "invoice_payment",
            "amount_paid": invoice.get("amount_paid"),
            "amount_requested": invoice.get("amount_due"),
            "created": invoice.get("created"),
            "currency": invoice.get("currency"),
            "invoice": invoice if "data.invoice" in query.values() else invoice_id,
            "is_default": True,
            "livemode": False,
            "payment": {"type": "payment_intent", "payment_intent": intent},
            "status": "paid",
            "status_transitions": {"canceled_at": None, "paid_at": invoice.get("created")},
        }
        return 200, _list([payment], "/v1/invoice_payments")
    return None


@contextmanager
def fake_stripe(fake: FakeStripe | None = None) -> Iterator[FakeStripe]:
    fake = fake or FakeStripe()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _handle(self, method: str) -> None:
            if fake.down:
                self.connection.close()
                return
            url = urlsplit(self.path)
            if url.path.startswith("/p/session/"):
                self._billing_portal_page(url.path)
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            query = dict(parse_qsl(url.query))
            form = dict(parse_qsl(body))
            with fake.lock:
                fake.requests.append(
                    Recorded(
                        method,
                        url.path,
                        query,
                        form,
                        self.headers.get("Stripe-Version"),
                        self.headers.get("Authorization"),
                    )
                )
                if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    status, answer = _error(401, "invalid_request_error", "Invalid API Key provided")
                else:
                    status, answer = _answer(fake, method, url.path, query, form)
                data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", "req_fake")
            self.end_headers()
            self.wfile.write(data)

        def _billing_portal_page(self, path: str) -> None:
            data = billing_portal_page(fake, path)
            self.send_response(200 if data else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_DELETE(self) -> None:
            self._handle("DELETE")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": SERVER_POLL}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
