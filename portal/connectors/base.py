"""The processor interface every connector implements (Stripe, Polar, Lemon Squeezy, Paddle, Gumroad) and
``registry()``, where the admin API, the console, the CLI commands and the webhook endpoint look processors up
(their names and labels live in ``portal.connectors.names``).

A processor is stateless: each call gets the connection's decrypted ``Secrets`` and the ``Settings`` (e.g. its
API base). Calls to the processor's API are blocking (its official SDK) and run in a worker thread; they raise
``ProcessorError`` with a message fit for the operator or customer, never the secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from portal.connectors.store import Connection, ConnectorSettings, Secrets
from portal.db import Transaction
from portal.settings import Settings


class ProcessorError(Exception):
    """The processor refused a call or could not be reached; ``message`` says which, for people."""

    def __init__(self, message: str, *, unavailable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.unavailable = unavailable


class BadSignature(Exception):
    """An inbound webhook whose signature, timestamp or body does not verify (answered 400, nothing stored)."""


@dataclass(frozen=True, slots=True)
class Account:
    """What checking the credentials learned about the processor account."""

    id: str | None
    livemode: bool


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """A verified webhook event: the processor's id, type, creation time (unix seconds) and its JSON payload."""

    id: str
    type: str
    created: int
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What applying an event did: ``applied``, ``ignored`` (nothing to do), or ``unmapped`` (a processor price
    with no Portal product: kept, applied again once the mapping exists). ``price_id`` names the price."""

    status: str
    reason: str | None = None
    price_id: str | None = None


@dataclass(frozen=True, slots=True)
class ApplyContext:
    """Where an event is applied: the connection, the time, and whether it is history (an import: no emails, no
    outgoing webhooks, the processor's own dates kept)."""

    connection: Connection
    now: datetime
    history: bool = False
    # The version (Unix seconds, the processor's clock) of the state applied: the event's ``created`` for a live
    # event (and for the objects fetched for it); None: ``now``'s (an import). See ``stripe.mapping`` on ordering.
    version: int | None = None


# What a customer can do in Portal to a subscription billed by a processor, when the processor can receive it
# (``Processor.capabilities``). A subscription whose processor lacks one never offers it (issue 19, safety rule).
Action = Literal["cancel", "uncancel", "change_plan", "payment_method_update"]


@dataclass(frozen=True, slots=True)
class ActionTarget:
    """One processor subscription a customer acts on: the connection's secrets and settings, the processor's
    subscription id and (when Portal has linked it) the processor's customer id."""

    secrets: Secrets
    settings: Settings
    connector_settings: ConnectorSettings
    subscription_id: str
    customer_id: str | None = None


# Why a seller refunds (the console's choice), named as Stripe names them; each processor maps them to its own.
RefundReason = Literal["requested_by_customer", "duplicate", "fraudulent", "other"]
REFUND_REASONS: tuple[str, ...] = ("requested_by_customer", "duplicate", "fraudulent", "other")


@dataclass(frozen=True, slots=True)
class RefundTarget:
    """One processor sale a seller refunds from the console: the connection's secrets and settings, and the
    processor's ids of the Portal order (``links``: link kind -> processor id, e.g. ``{"payment_intent": "pi_…"}``,
    only the kinds in ``Processor.order_kinds``)."""

    secrets: Secrets
    settings: Settings
    connector_settings: ConnectorSettings
    links: Mapping[str, str]
    currency: str
    # What Portal has left to refund of the order (minor units): a refund of all of it is a "full" one.
    remaining: int


@dataclass(frozen=True, slots=True)
class ProcessorRefund:
    """What the processor answered to a refund: its id for it (``kind``: the link kind it is keyed under, the one
    its webhook mapping keys it by, if any), the amount of this refund in minor units, and ``pending`` when the
    processor has yet to approve it (Paddle: ``pending_approval``; applied by its webhook once approved)."""

    id: str
    kind: str
    amount: int
    pending: bool = False


class Processor(Protocol):
    name: str
    label: str
    # The ``connector_links`` kinds whose Portal id is an order this processor's events created, most telling
    # first (the console shows the first one found as the order's processor id).
    order_kinds: tuple[str, ...]
    # The event types to select in the processor's dashboard (printed by `portal connect`).
    webhook_events: tuple[str, ...]
    # The customer actions the processor's API can receive (see ``Action``).
    capabilities: frozenset[str]

    def check_credentials(self, secrets: Secrets, settings: Settings) -> Account:
        """Call the processor's API with the key; ``ProcessorError`` if it is refused or unreachable."""
        ...

    def verify_event(self, body: bytes, headers: Mapping[str, str], secrets: Secrets) -> InboundEvent:
        """The event of a webhook delivery; ``BadSignature`` unless it verifies."""
        ...

    # Customer actions out (blocking, run in a worker thread; ``ProcessorError`` if refused or unreachable). Only
    # called for the actions named in ``capabilities``.
    def cancel_subscription(self, target: ActionTarget) -> None:
        """Cancel at the end of the current period."""
        ...

    def uncancel_subscription(self, target: ActionTarget) -> None:
        """Undo a cancellation scheduled for the period end."""
        ...

    def change_plan(self, target: ActionTarget, processor_price_id: str) -> None:
        """Move the subscription to the processor's price, with the seller's proration setting."""
        ...

    def payment_method_url(self, target: ActionTarget, return_url: str) -> str:
        """A page of the processor where the customer updates their payment method, then returns to
        ``return_url``."""
        ...

    def refund_order(self, target: RefundTarget, amount: int, reason: RefundReason) -> ProcessorRefund:
        """Refund ``amount`` (minor units) of the sale through the processor's API (blocking; ``ProcessorError``
        when it refuses, e.g. more than is left, or cannot be reached: then nothing was refunded)."""
        ...

    def redirect_origins(self, settings: Settings) -> tuple[str, ...]:
        """The origins ``payment_method_url`` may point to: the page with the form allows them in its CSP
        ``form-action`` (a form's redirect is checked against it) and Portal refuses any other."""
        ...

    async def apply(
        self, tx: Transaction, ctx: ApplyContext, event: InboundEvent, fetched: Mapping[tuple[str, str], Any]
    ) -> Outcome:
        """Apply a verified event inside ``tx``. ``fetched`` holds the objects fetched so far for it (by kind and
        id); when the event needs another, ``apply`` raises ``NeedObject`` and is called again once it is fetched.
        ``MappingError`` or a ``DomainError``: the event fails with that reason."""
        ...

    def needs(self, event: InboundEvent) -> list[tuple[str, str]]:
        """Objects ``apply`` will surely ask for (``NeedObject``), fetched before its transaction starts."""
        ...

    def fetch(self, kind: str, object_id: str, secrets: Secrets, settings: Settings) -> Any:
        """Fetch an object's current state from the processor's API (blocking; ``ProcessorError``)."""
        ...


class NeedObject(Exception):
    """Applying an event needs a processor object Portal has not seen (``kind``: the processor's API collection,
    e.g. ``customers``); the caller fetches it and applies the event again."""

    def __init__(self, kind: str, object_id: str) -> None:
        super().__init__(f"needs {kind} {object_id}")
        self.kind = kind
        self.object_id = object_id


class MappingError(Exception):
    """An object that cannot be applied as it is; the reason is for the operator (the event is stored failed)."""


# The header name under which the webhook endpoint hands a processor the ``?secret=`` of the delivery's URL.
URL_SECRET = "x-portal-url-secret"  # noqa: S105 - a header name, not a secret


def webhook_path(processor: str, organization_slug: str) -> str:
    return f"/v1/integrations/{processor}/{organization_slug}/webhook"


# Processors registered at run time (``register``): tests use it for a processor without some capability.
_REGISTERED: dict[str, Processor] = {}


def register(processor: Processor) -> None:
    _REGISTERED[processor.name] = processor


def unregister(name: str) -> None:
    _REGISTERED.pop(name, None)


def registry() -> dict[str, Processor]:
    """Every processor Portal knows, by name (imported lazily: the CLI needs no SDK until it is used)."""
    from portal.connectors.gumroad.processor import GumroadProcessor
    from portal.connectors.lemonsqueezy.processor import LemonSqueezyProcessor
    from portal.connectors.paddle.processor import PaddleProcessor
    from portal.connectors.polar.processor import PolarProcessor
    from portal.connectors.stripe.processor import StripeProcessor

    found: dict[str, Processor] = {
        "stripe": StripeProcessor(),
        "polar": PolarProcessor(),
        "lemonsqueezy": LemonSqueezyProcessor(),
        "paddle": PaddleProcessor(),
        "gumroad": GumroadProcessor(),
    }
    return {**found, **_REGISTERED}


def get_processor(name: str) -> Processor | None:
    return registry().get(name)
