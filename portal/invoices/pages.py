"""Invoice pages: generate (POST, CSRF-checked, 303 to the invoice) and show invoices from the signed-in order
page, plus the cookie-less signed routes (``/r/receipts/<order>``, ``/r/invoices/<invoice>``) behind the URLs
the JSON API hands out. Invoices render from their frozen snapshot, never from today's data."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Response, Template

from portal import i18n
from portal.clock import Clock
from portal.customer_portal.links import check_document_signature
from portal.customers.reads import get_customer
from portal.db import Database
from portal.errors import NotFound
from portal.invoices import queries
from portal.invoices.pdf import pdf_response, pdf_url
from portal.invoices.queries import Invoice
from portal.invoices.service import (
    MissingInvoiceBillingDetails,
    OrderNotEligibleForInvoice,
    issue_for_customer,
)
from portal.orders.reads import order_owner
from portal.portal_pages import text
from portal.portal_pages.layout import DEFAULT_ACCENT, base_path, not_found, see_other
from portal.portal_pages.receipts import FormatParam, load_receipt, receipt_answer
from portal.scope import Scope
from portal.sessions.store import SessionContext
from portal.settings import Settings

INVOICE_TEMPLATE = "invoices/invoice.html"
_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
NO_STORE = {"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"}


async def invoice_page(
    db: Database, invoice: Invoice, request: Request[Any, Any, Any], format: str = "html"
) -> Template | Response[bytes]:
    """The invoice page (or, ``format="pdf"``, a PDF of it); an invoice that was corrected later says which one
    replaced it."""
    siblings = await queries.list_for_order(db, invoice.organization_id, invoice.customer_id, invoice.order_id)
    position = next(i for i, other in enumerate(siblings) if other.id == invoice.id)
    data = invoice.data
    locale = data.get("locale") or "en"
    accent = (data.get("seller") or {}).get("accent_color") or DEFAULT_ACCENT
    marks = {"refunded": i18n.gettext("Refunded"), "partially_refunded": i18n.gettext("Partially refunded")}
    context = {
        "invoice": invoice,
        "data": data,
        "locale": locale,
        "accent_color": accent if _COLOR.match(accent) else DEFAULT_ACCENT,
        "bill_to_address": text.address_lines(invoice.address, locale),
        "status_mark": marks.get(data.get("status", "")),
        "corrects": next((other for other in siblings if other.id == invoice.corrects_invoice_id), None),
        "superseded_by": siblings[position + 1] if position + 1 < len(siblings) else None,
    }
    if format == "pdf":
        return await pdf_response(request, INVOICE_TEMPLATE, context, f"invoice-{invoice.invoice_number}")
    return Template(template_name=INVOICE_TEMPLATE, context={**context, "pdf_url": pdf_url(request)}, headers=NO_STORE)


class InvoicePagesController(Controller):
    path = "/{slug:str}/portal/orders"
    include_in_schema = False

    @post("/{order_id:str}/invoice", name="portal.invoice.generate", status_code=303)
    async def generate(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        portal_customer: NamedDependency[SessionContext],
        order_id: FromPath[str],
    ) -> Redirect:
        ctx = portal_customer
        try:
            await issue_for_customer(db, ctx.customer, order_id, now=clock.now())
        except NotFound:
            raise not_found() from None
        except MissingInvoiceBillingDetails:
            # No dead end (issue 22): the billing form, saying why, which comes back to the invoice once saved.
            query = urlencode({"done": "invoice_needs_billing", "for_order": order_id})
            return see_other(f"{base_path(ctx.organization)}/settings?{query}")
        except OrderNotEligibleForInvoice as exc:
            raise HTTPException(status_code=409, detail=exc.message) from None
        return see_other(f"{base_path(ctx.organization)}/orders/{order_id}/invoice")

    @get("/{order_id:str}/invoice", name="portal.invoice")
    async def latest(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        portal_customer: NamedDependency[SessionContext],
        order_id: FromPath[str],
        format: FormatParam = "html",
    ) -> Template | Response[bytes]:
        ctx = portal_customer
        invoice = await queries.latest_for_order(db, ctx.organization.id, ctx.customer.id, order_id)
        if invoice is None:
            raise not_found()
        return await invoice_page(db, invoice, request, format)

    @get("/{order_id:str}/invoices/{invoice_id:str}", name="portal.invoice.one")
    async def one(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        portal_customer: NamedDependency[SessionContext],
        order_id: FromPath[str],
        invoice_id: FromPath[str],
        format: FormatParam = "html",
    ) -> Template | Response[bytes]:
        ctx = portal_customer
        invoice = await queries.get_invoice(db, ctx.organization.id, ctx.customer.id, invoice_id)
        if invoice is None or invoice.order_id != order_id:
            raise not_found()
        return await invoice_page(db, invoice, request, format)


SignatureParam = Annotated[str, QueryParameter(name="signature", max_length=200)]
GONE = "This link has expired or is not valid. Open the order again in the customer portal for a fresh one."


async def _owner_live(db: Database, organization_id: str, customer_id: str) -> bool:
    """A signed link opens only while its customer exists: one minted before the customer was deleted stops
    working at once (its signature alone would keep it valid for its hour)."""
    return await get_customer(db, Scope.of_organization(organization_id), customer_id) is not None


class SignedDocumentsController(Controller):
    """Receipts and invoices through signed links: no cookie, valid until the signature expires."""

    path = "/r"
    include_in_schema = False

    @get("/receipts/{order_id:str}", name="signed.receipt")
    async def receipt(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        order_id: FromPath[str],
        signature: SignatureParam = "",
        format: FormatParam = "html",
    ) -> Template | Response[bytes]:
        owner = await order_owner(db, order_id)
        if owner is None or not await _owner_live(db, owner.organization_id, owner.customer_id):
            raise NotFoundException(GONE)
        if not check_document_signature(
            settings,
            "receipt",
            organization_id=owner.organization_id,
            customer_id=owner.customer_id,
            document_id=order_id,
            signature=signature,
            now=clock.now(),
        ):
            raise NotFoundException(GONE)
        try:
            receipt = await load_receipt(db, owner.organization_id, owner.customer_id, order_id)
        except NotFound:
            raise NotFoundException(GONE) from None
        response = await receipt_answer(request, receipt, format)
        response.headers.update(NO_STORE)
        return response

    @get("/invoices/{invoice_id:str}", name="signed.invoice")
    async def invoice(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        invoice_id: FromPath[str],
        signature: SignatureParam = "",
        format: FormatParam = "html",
    ) -> Template | Response[bytes]:
        invoice = await queries.get_invoice_any(db, invoice_id)
        if invoice is None or not await _owner_live(db, invoice.organization_id, invoice.customer_id):
            raise NotFoundException(GONE)
        if not check_document_signature(
            settings,
            "invoice",
            organization_id=invoice.organization_id,
            customer_id=invoice.customer_id,
            document_id=invoice.id,
            signature=signature,
            now=clock.now(),
        ):
            raise NotFoundException(GONE)
        return await invoice_page(db, invoice, request, format)


ROUTES = [InvoicePagesController, SignedDocumentsController]
