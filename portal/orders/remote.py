"""Orders that came from a payment processor (issue 21: the seller's refunds from the console). An order a
connection's events created (``connector_links`` of a kind in ``Processor.order_kinds``) has a ``Source``; the
seller's refund of it is sent to the processor first (``refund``, through its official client) and Portal records
it only once the processor accepted it (``apply_refund``); an order made in Portal is refunded locally
(``portal.orders.service.refund_order``, as the admin API does).

Counted once: the processor's answer and its later webhook describe the same refund. ``apply_refund`` keys it by
the processor's id (link kind ``refund``; Paddle's ``adjustment``, the kind its webhook mapping keys approved
refunds by) and, for the processors whose webhooks carry a cumulative refunded amount (Stripe, Polar, Lemon
Squeezy, Gumroad), refunds only what the order still lacks of the total it had before the call plus this refund:
whichever of the answer and the webhook comes first records it, the other finds nothing missing."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from portal.connectors import links
from portal.connectors.base import (
    ApplyContext,
    Processor,
    ProcessorError,
    ProcessorRefund,
    RefundReason,
    RefundTarget,
    registry,
)
from portal.connectors.store import Connection, Reader, get_connection
from portal.db import Transaction
from portal.orders import service as order_service
from portal.settings import Settings
from portal.subscriptions.remote import ProcessorFailed

log = logging.getLogger("portal.orders.remote")


@dataclass(frozen=True, slots=True)
class Source:
    """Where an order was sold: its connection, the processor (None when this Portal no longer knows it: nothing
    can be sent) and the processor's ids of the sale (link kind -> id, most telling first)."""

    connection: Connection
    processor: Processor | None
    links: dict[str, str]

    @property
    def label(self) -> str:
        return self.processor.label if self.processor is not None else self.connection.processor

    @property
    def processor_id(self) -> str:
        """The processor's id of the sale shown to the seller (e.g. ``pi_…``, a Polar order id)."""
        return next(iter(self.links.values()))


async def source_of(reader: Reader, organization_id: str, order_id: str) -> Source | None:
    """The connection an order came from, or None for an order made in Portal (admin API, seed)."""
    processors = registry()
    kinds = sorted({kind for processor in processors.values() for kind in processor.order_kinds})
    found: dict[str, dict[str, str]] = {}
    for row in await links.order_links(reader, organization_id, order_id, kinds):
        found.setdefault(row["processor"], {})[row["kind"]] = row["processor_id"]
    for name, sale_links in found.items():
        processor = processors.get(name)
        wanted = processor.order_kinds if processor is not None else tuple(sale_links)
        sale = {kind: sale_links[kind] for kind in wanted if kind in sale_links}
        if not sale:
            continue
        connection = await get_connection(reader, organization_id, name)
        if connection is not None:
            return Source(connection, processor, sale)
    return None


async def refund(
    settings: Settings, source: Source, *, amount: int, remaining: int, currency: str, reason: RefundReason
) -> ProcessorRefund:
    """Ask the processor to refund ``amount`` (in a worker thread: the clients block). ``ProcessorFailed`` when it
    refuses or cannot be reached (logged with its reason for the operator): then nothing was refunded."""
    processor = source.processor
    if processor is None:
        raise ProcessorFailed(
            f"this Portal does not know the processor {source.connection.processor!r}",
            processor=source.label,
            unavailable=False,
        )
    target = RefundTarget(
        secrets=source.connection.secrets(settings.secret_key),
        settings=settings,
        connector_settings=source.connection.settings,
        links=source.links,
        currency=currency,
        remaining=remaining,
    )
    try:
        return await asyncio.to_thread(processor.refund_order, target, amount, reason)
    except ProcessorError as exc:
        log.warning(
            "processor refund failed",
            extra={
                "processor": processor.name,
                "organization_id": source.connection.organization_id,
                "reason": exc.message,
            },
        )
        raise ProcessorFailed(exc.message, processor=processor.label, unavailable=exc.unavailable) from None


async def apply_refund(
    tx: Transaction,
    source: Source,
    order_id: str,
    made: ProcessorRefund,
    *,
    refunded_before: int,
    reason: str | None,
    now: datetime,
) -> str | None:
    """Record the processor's refund on the order, once (see the module's docstring); returns the Portal refund's
    id, or None when nothing was recorded (pending the processor's approval, or its webhook recorded it first)."""
    if made.pending:
        return None
    ctx = ApplyContext(connection=source.connection, now=now)
    if await links.get_link(tx, ctx, made.kind, made.id) is not None:
        return None
    order = await order_service.get_order_row(tx, order_id)
    missing = min(
        refunded_before + made.amount - int(order["refunded_amount"]),
        int(order["total_amount"]) - int(order["refunded_amount"]),
    )
    refund_id: str | None = None
    if missing > 0 and order["status"] in ("paid", "partially_refunded"):
        refund_id = await order_service.refund_order(
            tx,
            order_id,
            missing,
            now=now,
            reason=reason,
            revoke_grants=source.connection.settings.revoke_on_full_refund,
        )
        await links.set_link(tx, ctx, "refund", made.id, refund_id)
    if made.kind != "refund":  # e.g. Paddle's adjustment, keyed to its order as its webhook mapping keys it
        await links.set_link(tx, ctx, made.kind, made.id, order_id)
    return refund_id
