"""``GumroadProcessor``: Gumroad's pings (form-encoded POSTs: ``sale``, ``refund``, ``cancellation``,
``subscription_updated``, ``subscription_ended``, ``subscription_restarted``).

A ping has no signature, so its URL carries a per-connection secret (``?secret=…``, the connection's webhook
secret), compared in constant time; past ``MAX_BAD_SECRETS`` wrong secrets in ``BAD_SECRET_WINDOW`` seconds every
delivery to that connection is refused until the window passes (Gumroad retries hourly). Even with the right
secret nothing in the ping is trusted: the sale (``GET /v2/sales/{id}``) or the subscriber
(``GET /v2/subscribers/{id}``) is fetched from Gumroad's API with the seller's token and only that is applied.
A ping is stored once by its resource and the sale's (or subscription's) id, so a repeated ping does nothing.

Ingest only for customers: Gumroad's API takes no cancel, un-cancel or plan change, so ``capabilities`` is empty and
Portal never offers those for a subscription billed by Gumroad (issue 19's safety rule). The seller's refunds from
the console go through ``PUT /v2/sales/{id}/refund``."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import defaultdict, deque
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote

from portal.connectors.base import (
    URL_SECRET,
    Account,
    ActionTarget,
    ApplyContext,
    BadSignature,
    InboundEvent,
    NeedObject,
    Outcome,
    ProcessorError,
    ProcessorRefund,
    RefundReason,
    RefundTarget,
)
from portal.connectors.gumroad import client, mapping
from portal.connectors.names import PROCESSOR_LABELS
from portal.connectors.store import Secrets
from portal.db import Transaction
from portal.settings import Settings

WEBHOOK_EVENTS: tuple[str, ...] = (
    "sale",
    "refund",
    "cancellation",
    "subscription_updated",
    "subscription_ended",
    "subscription_restarted",
)
SALE_RESOURCES = frozenset({"sale", "refund", "dispute", "dispute_won"})
SUBSCRIPTION_RESOURCES = frozenset(
    {"cancellation", "subscription_updated", "subscription_ended", "subscription_restarted"}
)
MANAGE_BASE = "https://app.gumroad.com"
MAX_BAD_SECRETS = 20
BAD_SECRET_WINDOW = 300.0

# Wrong secrets per connection (keyed by a digest of its secret), times of the recent ones.
_bad_secrets: dict[str, deque[float]] = defaultdict(deque)


def _throttled(key: str, now: float) -> bool:
    recent = _bad_secrets[key]
    while recent and recent[0] < now - BAD_SECRET_WINDOW:
        recent.popleft()
    return len(recent) >= MAX_BAD_SECRETS


def _timestamp(value: str | None) -> int:
    if value:
        try:
            return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
        except ValueError:
            pass
    return int(datetime.now(UTC).timestamp())


class GumroadProcessor:
    name = "gumroad"
    label = PROCESSOR_LABELS[name]
    webhook_events = WEBHOOK_EVENTS
    capabilities: frozenset[str] = frozenset()
    order_kinds: tuple[str, ...] = ("sale",)

    def refund_order(self, target: RefundTarget, amount: int, reason: RefundReason) -> ProcessorRefund:
        """Refund ``amount_cents`` of the sale (Gumroad takes no reason). Gumroad answers the sale with its
        cumulative refund state: this refund's id is the sale and the refunded figure after it."""
        sale_id = target.links.get("sale")
        if not sale_id:
            raise ProcessorError("Portal does not know the Gumroad sale of this order")
        answer = client.put(
            target.secrets.api_key,
            target.settings.gumroad_api_base,
            f"/v2/sales/{quote(sale_id, safe='')}/refund",
            {"amount_cents": amount},
        )
        sale = answer.get("sale")
        if not isinstance(sale, dict):
            raise ProcessorError("Gumroad answered a refund without the sale", unavailable=True)
        refunded = mapping.refunded_amount(sale, int(sale.get("price") or 0))
        return ProcessorRefund(id=f"sale/{sale_id}@{refunded}", kind="refund", amount=amount)

    def check_credentials(self, secrets: Secrets, settings: Settings) -> Account:
        user = client.get(secrets.api_key, settings.gumroad_api_base, "/v2/user").get("user") or {}
        found = user.get("user_id") or user.get("id")
        return Account(id=str(found) if found else None, livemode=True)

    def verify_event(self, body: bytes, headers: Mapping[str, str], secrets: Secrets) -> InboundEvent:
        key = hashlib.sha256(secrets.webhook_secret.encode()).hexdigest()
        given = headers.get(URL_SECRET) or ""
        now = time.monotonic()
        if _throttled(key, now):
            raise BadSignature("too many wrong secrets for this connection: try again later")
        if not secrets.webhook_secret or not hmac.compare_digest(given.encode(), secrets.webhook_secret.encode()):
            _bad_secrets[key].append(now)
            raise BadSignature("the URL's secret is missing or wrong")
        try:
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise BadSignature("not a Gumroad ping") from None
        resource = form.get("resource_name") or "sale"
        if resource in SALE_RESOURCES and form.get("sale_id"):
            event_id = f"{resource}:{form['sale_id']}"
            if resource == "refund":
                # Each refund of a sale is its own ping (a partial one, then more): told apart by the refund
                # figures the ping carries; a redelivery of one is still a duplicate, and applying the re-fetched
                # sale is cumulative anyway.
                figures = (
                    form.get(name, "") for name in ("refunded", "partially_refunded", "amount_refunded_in_cents")
                )
                event_id += ":" + ":".join(figures)
            created = _timestamp(form.get("sale_timestamp"))
        elif resource in SUBSCRIPTION_RESOURCES and form.get("subscription_id"):
            moment = form.get("ended_at") or form.get("cancelled_at") or form.get("effective_as_of") or ""
            moment = moment or form.get("restarted_at") or form.get("created_at") or ""
            event_id = f"{resource}:{form['subscription_id']}:{moment}"
            created = _timestamp(moment or None)
        else:
            raise BadSignature("a Gumroad ping names a sale_id or a subscription_id")
        return InboundEvent(id=event_id, type=resource, created=created, payload=form)

    def cancel_subscription(self, target: ActionTarget) -> None:
        raise ProcessorError("Gumroad's API cannot cancel a subscription")

    def uncancel_subscription(self, target: ActionTarget) -> None:
        raise ProcessorError("Gumroad's API cannot undo a cancellation")

    def change_plan(self, target: ActionTarget, processor_price_id: str) -> None:
        raise ProcessorError("Gumroad's API cannot change a plan")

    def payment_method_url(self, target: ActionTarget, return_url: str) -> str:
        raise ProcessorError("Gumroad's customers update their card on Gumroad")

    def redirect_origins(self, settings: Settings) -> tuple[str, ...]:
        return ()

    def manage_url(self, subscription_id: str) -> str:
        """Gumroad's own page where a subscriber cancels or changes their membership (the subscription page
        links to it: Portal cannot send those actions to Gumroad)."""
        return f"{MANAGE_BASE}/subscriptions/{quote(subscription_id, safe='')}/manage"

    def needs(self, event: InboundEvent) -> list[tuple[str, str]]:
        """What the ping names, fetched: only Gumroad's own answer is applied."""
        if event.type in SALE_RESOURCES:
            return [("sales", str(event.payload["sale_id"]))]
        if event.type in SUBSCRIPTION_RESOURCES:
            return [("subscribers", str(event.payload["subscription_id"]))]
        return []

    async def apply(
        self, tx: Transaction, ctx: ApplyContext, event: InboundEvent, fetched: Mapping[tuple[str, str], Any]
    ) -> Outcome:
        for (kind, _id), obj in fetched.items():  # a sale's subscriber, fetched when Portal had not seen it
            if kind == "subscribers" and event.type in SALE_RESOURCES:
                outcome = await mapping.apply_subscriber(tx, ctx, obj)
                if outcome.status == "unmapped":
                    return outcome
        if event.type in SALE_RESOURCES:
            sale = fetched.get(("sales", str(event.payload["sale_id"])))
            if sale is None:
                raise NeedObject("sales", str(event.payload["sale_id"]))
            return await mapping.apply_sale(tx, ctx, sale)
        subscriber = fetched.get(("subscribers", str(event.payload["subscription_id"])))
        if subscriber is None:
            raise NeedObject("subscribers", str(event.payload["subscription_id"]))
        return await mapping.apply_subscriber(tx, ctx, subscriber)

    def fetch(self, kind: str, object_id: str, secrets: Secrets, settings: Settings) -> Any:
        if kind not in ("sales", "subscribers"):
            raise ValueError(f"Gumroad objects of kind {kind!r} are not fetched")
        answer = client.get(secrets.api_key, settings.gumroad_api_base, f"/v2/{kind}/{object_id}")
        found = answer.get(kind[:-1])  # "sale", "subscriber"
        if not isinstance(found, dict) or not found.get("id"):
            raise ProcessorError(f"Gumroad answered no {kind[:-1]} for {object_id}")
        return found
