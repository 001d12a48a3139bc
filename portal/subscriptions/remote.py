"""Subscriptions billed by a payment processor (issue 19, "Actions out"; processor-neutral: Stripe now, Polar,
Lemon Squeezy, Paddle next). A subscription that came from a connection (``connector_links`` kind
``subscription``) has a ``Source``; a customer's cancel, un-cancel or plan change is sent to the processor first
(``push``) and Portal changes only once the processor accepted it, so a customer who cancels in Portal is not
charged again by the processor.

The safety rule: an action the source's processor cannot receive (``Processor.capabilities``) is never offered
(``offers``) and is refused (``ActionUnavailable``); the page tells the customer how to reach the seller instead.
A processor that refuses at run time (a key without write permission, an unknown price) or cannot be reached is
``ProcessorFailed``: the customer is told, nothing changes in Portal."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from portal.connectors import links
from portal.connectors.base import Action, ActionTarget, Processor, ProcessorError, get_processor
from portal.connectors.store import Connection, Reader
from portal.errors import DomainError
from portal.settings import Settings

log = logging.getLogger("portal.subscriptions.remote")


class ActionUnavailable(DomainError):
    """The subscription's processor cannot receive this action (or the seller did not enable it)."""


class ProcessorFailed(DomainError):
    """The processor refused the action or could not be reached; nothing was changed."""

    def __init__(self, message: str, *, processor: str, unavailable: bool) -> None:
        super().__init__(message)
        self.processor = processor
        self.unavailable = unavailable


@dataclass(frozen=True, slots=True)
class Source:
    """Where a subscription is billed: its connection, the processor (None when this Portal no longer knows the
    connection's processor: nothing can be sent) and the processor's subscription id."""

    connection: Connection
    processor: Processor | None
    processor_subscription_id: str

    @property
    def label(self) -> str:
        return self.processor.label if self.processor is not None else self.connection.processor

    @property
    def manage_url(self) -> str | None:
        """The processor's own page where the customer manages this subscription, when it has one (a processor's
        optional ``manage_url(subscription_id)``): shown where Portal cannot take an action itself."""
        manage = getattr(self.processor, "manage_url", None)
        if not callable(manage):
            return None
        found = manage(self.processor_subscription_id)
        return found if isinstance(found, str) else None

    def offers(self, action: Action) -> bool:
        if self.processor is None or action not in self.processor.capabilities:
            return False
        if action == "payment_method_update":
            return self.connection.settings.payment_method_update
        return True


async def source_of(reader: Reader, organization_id: str, subscription_id: str) -> Source | None:
    """The processor a subscription is billed by, or None for a subscription made in Portal (admin API)."""
    linked = await links.linked_connection(reader, organization_id, "subscription", subscription_id)
    if linked is None:
        return None
    connection, processor_subscription_id = linked
    return Source(connection, get_processor(connection.processor), processor_subscription_id)


def offers(source: Source | None, action: Action) -> bool:
    """Whether Portal may offer ``action`` for a subscription with this source (always, when made in Portal)."""
    return source is None or source.offers(action)


def require(source: Source | None, action: Action) -> None:
    if not offers(source, action):
        assert source is not None
        raise ActionUnavailable(f"this subscription is billed by {source.label}, which cannot receive this action")


async def plan_prices(reader: Reader, source: Source | None, product_ids: list[str]) -> dict[str, str] | None:
    """The processor price of each Portal product a plan change could go to; None when the subscription is not
    billed by a processor (every option is fine). A product without a mapped price is not a valid option."""
    if source is None:
        return None
    return await links.processor_prices(reader, source.connection.id, product_ids)


async def _target(reader: Reader, settings: Settings, source: Source, customer_id: str) -> ActionTarget:
    return ActionTarget(
        secrets=source.connection.secrets(settings.secret_key),
        settings=settings,
        connector_settings=source.connection.settings,
        subscription_id=source.processor_subscription_id,
        customer_id=await links.processor_id_for(reader, source.connection.id, "customer", customer_id),
    )


async def push(
    reader: Reader,
    settings: Settings,
    source: Source,
    action: Action,
    *,
    customer_id: str,
    processor_price_id: str | None = None,
    return_url: str | None = None,
) -> str | None:
    """Send ``action`` to the processor (in a worker thread: the SDKs block). Returns the payment-method URL for
    ``payment_method_update``. ``ActionUnavailable`` if the processor lacks it, ``ProcessorFailed`` if refused or
    unreachable (logged with the processor's reason for the operator; the customer gets a plain message)."""
    require(source, action)
    processor = source.processor
    assert processor is not None
    target = await _target(reader, settings, source, customer_id)
    try:
        if action == "cancel":
            await asyncio.to_thread(processor.cancel_subscription, target)
        elif action == "uncancel":
            await asyncio.to_thread(processor.uncancel_subscription, target)
        elif action == "change_plan":
            assert processor_price_id is not None
            await asyncio.to_thread(processor.change_plan, target, processor_price_id)
        else:
            assert return_url is not None
            return await asyncio.to_thread(processor.payment_method_url, target, return_url)
    except ProcessorError as exc:
        log.warning(
            "processor action failed",
            extra={
                "processor": processor.name,
                "action": action,
                "organization_id": source.connection.organization_id,
                "reason": exc.message,
            },
        )
        raise ProcessorFailed(exc.message, processor=processor.label, unavailable=exc.unavailable) from None
    return None


def redirect_origins(settings: Settings, source: Source | None) -> tuple[str, ...]:
    """Where "Update payment method" may send the customer (the page's CSP ``form-action`` allows these)."""
    if source is None or source.processor is None or not source.offers("payment_method_update"):
        return ()
    return source.processor.redirect_origins(settings)
