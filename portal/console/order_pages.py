"""The console's order page, ``/console/<slug>/orders/<order_id>`` (issue 21): what the customer bought (items,
discount, tax, total), its refunds (amount, reason, when, through which processor), status, billing details, the
receipt and invoice (signed links the seller opens without the customer's session), and where the order came from
(a processor connection and the processor's id, or Portal itself). Actions: resend the receipt email, and refund
all or part of what is left, through the processor the order came from (``portal.orders.remote``) or locally.

Support sellers may act here: refunds and receipts are about customers, not settings. Every action records its
audit entry in the transaction that writes its effect; a refund through a processor is written right after the
processor accepted it, and nothing is written when it refused.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath

from portal import i18n
from portal.connectors import links as connector_links
from portal.connectors.base import REFUND_REASONS, RefundReason, registry
from portal.console import access, audit, layout
from portal.console.access import OrgAccess
from portal.customer_portal.links import document_url
from portal.customers.reads import get_customer
from portal.errors import DomainError
from portal.invoices import queries as invoice_queries
from portal.money import minor_unit_digits, to_decimal
from portal.notifications import emails
from portal.orders import remote
from portal.orders import service as order_service
from portal.orders.reads import OrderDetail, get_order_detail
from portal.portal_pages import text
from portal.scope import Scope
from portal.subscriptions.remote import ProcessorFailed
from portal.web import portal_state

_AMOUNT = re.compile(r"^\d{1,15}(?:[.,]\d{1,3})?$")


def _notice(done: str | None) -> str | None:
    _ = i18n.gettext
    return layout.done_notice(
        done,
        {
            "resent": _("The receipt is queued to be sent again."),
            "refunded": _("Refund recorded."),
            "refund_pending": _("The processor received the refund; it counts here once the processor approves it."),
        },
    )


def reason_labels() -> dict[str, str]:
    _ = i18n.gettext
    return {
        "requested_by_customer": _("Requested by the customer"),
        "duplicate": _("Duplicate payment"),
        "fraudulent": _("Fraudulent payment"),
        "other": _("Other"),
    }


class RefundForm(msgspec.Struct, kw_only=True):
    amount: str = ""
    reason: str = "requested_by_customer"


async def _order(request: Request[Any, Any, Any], access_: OrgAccess, order_id: str) -> OrderDetail:
    """The organization's order, or the 404 another organization's (or a missing) order gets."""
    db = portal_state(request.app.state).db
    order = await get_order_detail(db, Scope.of_organization(access_.organization.id), order_id)
    if order is None:
        raise NotFoundException(i18n.gettext("Not found"))
    return order


def _major(amount: int, currency: str) -> str:
    return f"{to_decimal(amount, currency):f}"


async def _page(
    request: Request[Any, Any, Any],
    access_: OrgAccess,
    order: OrderDetail,
    *,
    status_code: int = 200,
    **context: Any,
) -> Response[Any]:
    state = portal_state(request.app.state)
    db, settings, now = state.db, state.settings, state.clock.now()
    org_id = access_.organization.id
    customer = await get_customer(db, Scope.of_organization(org_id), order.customer_id)
    source = await remote.source_of(db, org_id, order.id)
    via = await connector_links.refund_links(db, org_id, [refund.id for refund in order.refunds])
    labels = {name: processor.label for name, processor in registry().items()}
    receipt_url = invoice_url = None
    if customer is not None and order.has_receipt:
        receipt_url = document_url(
            settings, "receipt", organization_id=org_id, customer_id=order.customer_id, document_id=order.id, now=now
        )
    invoice = await invoice_queries.latest_for_order(db, org_id, order.customer_id, order.id)
    if customer is not None and invoice is not None:
        invoice_url = document_url(
            settings, "invoice", organization_id=org_id, customer_id=order.customer_id, document_id=invoice.id, now=now
        )
    refundable = order.net_amount if order.status in ("paid", "partially_refunded") else 0
    form = context.pop("form", None) or RefundForm(amount=_major(refundable, order.currency))
    return layout.page(
        access_,
        "order",
        # The order belongs to a customer: the customers section is the one shown current.
        "customers",
        {
            "order": order,
            "customer": customer,
            "source": source,
            "refund_via": {
                refund_id: (labels.get(processor, processor), processor_id)
                for refund_id, (processor, processor_id) in via.items()
            },
            "billing_lines": text.address_lines(order.billing_address_dict, i18n.current_locale()),
            "receipt_url": receipt_url,
            "invoice_url": invoice_url,
            "invoice_number": invoice.invoice_number if invoice is not None else None,
            "refundable": refundable,
            "reason_labels": reason_labels(),
            "form": form,
            "errors": {},
            **context,
        },
        status_code=status_code,
    )


@get("/console/{slug:str}/orders/{order_id:str}", name="console.order", include_in_schema=False)
async def order_page(
    request: Request[Any, Any, Any], slug: FromPath[str], order_id: FromPath[str], done: layout.Done = None
) -> Response[Any]:
    access_ = await access.require_org(request, slug)
    order = await _order(request, access_, order_id)
    return await _page(request, access_, order, notice=_notice(done))


@post(
    "/console/{slug:str}/orders/{order_id:str}/resend-receipt",
    name="console.order_resend_receipt",
    include_in_schema=False,
    status_code=303,
)
async def resend_receipt(
    request: Request[Any, Any, Any], slug: FromPath[str], order_id: FromPath[str]
) -> Response[Any]:
    """Queue the order's receipt email again, through the outbox the first one went through."""
    access_ = await access.require_org(request, slug)
    order = await _order(request, access_, order_id)
    _ = i18n.gettext
    if not order.has_receipt:
        return await _page(request, access_, order, status_code=409, problem=_("This order has no receipt yet."))
    state = portal_state(request.app.state)
    now = state.clock.now()
    async with state.db.write() as tx:
        message_id = await emails.enqueue_receipt(tx, order.id, now=now, again=True)
        if message_id is not None:
            await audit.record(
                tx,
                access_.actor,
                organization_id=access_.organization.id,
                action="order.resend_receipt",
                target=order.id,
                details={"message_id": message_id},
                now=now,
            )
    if message_id is None:
        problem = _("Receipt emails are turned off in this organization's settings, or the customer is gone.")
        return await _page(request, access_, order, status_code=409, problem=problem)
    return layout.back(access_, f"/orders/{order.id}", "resent")


def _parse_amount(raw: str, currency: str) -> int | None:
    """A typed amount in major units ("12.50", "12,50") as minor units; None when it is not one."""
    value = raw.strip().replace(" ", "")
    if not _AMOUNT.match(value):
        return None
    try:
        amount = Decimal(value.replace(",", "."))
    except InvalidOperation:
        return None
    minor = amount.scaleb(minor_unit_digits(currency))
    if minor != minor.to_integral_value():
        return None
    return int(minor)


@post(
    "/console/{slug:str}/orders/{order_id:str}/refund",
    name="console.order_refund",
    include_in_schema=False,
    status_code=303,
)
async def refund(
    request: Request[Any, Any, Any],
    slug: FromPath[str],
    order_id: FromPath[str],
    data: Annotated[RefundForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    """Refund all or part of what is left: through the order's processor when it came from one (Portal records
    it once the processor accepted), else locally through the orders service, as the admin API does."""
    access_ = await access.require_org(request, slug)
    order = await _order(request, access_, order_id)
    _ = i18n.gettext
    state = portal_state(request.app.state)
    refundable = order.net_amount if order.status in ("paid", "partially_refunded") else 0
    form = RefundForm(amount=data.amount.strip()[:32], reason=data.reason)
    errors: dict[str, str] = {}
    amount = _parse_amount(data.amount, order.currency)
    if refundable <= 0:
        errors["amount"] = _("Nothing is left to refund on this order.")
    elif amount is None:
        errors["amount"] = _("Enter an amount such as 12.50.")
    elif amount <= 0:
        errors["amount"] = _("Enter an amount above zero.")
    elif amount > refundable:
        errors["amount"] = _("At most %(amount)s is left to refund.") % {
            "amount": _major(refundable, order.currency) + " " + order.currency.upper()
        }
    if data.reason not in REFUND_REASONS:
        errors["reason"] = _("Choose a reason from the list.")
    if errors or amount is None:
        return await _page(request, access_, order, status_code=400, errors=errors, form=form)
    reason: RefundReason = data.reason  # type: ignore[assignment]  # checked against REFUND_REASONS above
    source = await remote.source_of(state.db, access_.organization.id, order.id)
    if source is None:
        return await _refund_locally(request, access_, order, amount, reason, form)
    try:
        made = await remote.refund(
            state.settings, source, amount=amount, remaining=refundable, currency=order.currency, reason=reason
        )
    except ProcessorFailed as exc:
        problem = _("%(processor)s did not refund the order: %(reason)s. Nothing was changed here.") % {
            "processor": exc.processor,
            "reason": exc.message.rstrip("."),
        }
        return await _page(
            request, access_, order, status_code=502 if exc.unavailable else 409, problem=problem, form=form
        )
    now = state.clock.now()
    async with state.db.write() as tx:
        await remote.apply_refund(
            tx, source, order.id, made, refunded_before=order.refunded_amount, reason=reason, now=now
        )
        await audit.record(
            tx,
            access_.actor,
            organization_id=access_.organization.id,
            action="order.refund",
            target=order.id,
            details={
                "amount": made.amount,
                "currency": order.currency,
                "processor": source.connection.processor,
                "processor_refund_id": made.id,
                "pending": made.pending,
                "reason": reason,
            },
            now=now,
        )
    return layout.back(access_, f"/orders/{order.id}", "refund_pending" if made.pending else "refunded")


async def _refund_locally(
    request: Request[Any, Any, Any],
    access_: OrgAccess,
    order: OrderDetail,
    amount: int,
    reason: RefundReason,
    form: RefundForm,
) -> Response[Any]:
    state = portal_state(request.app.state)
    now = state.clock.now()
    try:
        async with state.db.write() as tx:
            refund_id = await order_service.refund_order(tx, order.id, amount, now=now, reason=reason)
            await audit.record(
                tx,
                access_.actor,
                organization_id=access_.organization.id,
                action="order.refund",
                target=order.id,
                details={
                    "amount": amount,
                    "currency": order.currency,
                    "processor": None,
                    "refund_id": refund_id,
                    "reason": reason,
                },
                now=now,
            )
    except DomainError as exc:
        # A concurrent refund took what was left since the page was read: nothing was written.
        return await _page(request, access_, order, status_code=409, errors={"amount": exc.message}, form=form)
    return layout.back(access_, f"/orders/{order.id}", "refunded")


ROUTES = [order_page, resend_receipt, refund]
