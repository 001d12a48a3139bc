"""HTML receipts: ``/<slug>/portal/orders/<id>/receipt``, a standalone printable page.

``load_receipt`` + ``receipt_template`` are the reusable part: the JSON API serves the same page through a
signed URL (no cookie) by calling them with the org and customer the signature names."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.enums import MediaType
from litestar.params import FromPath, QueryParameter
from litestar.response import Response, Template

from portal import i18n
from portal.customers.reads import get_customer_record
from portal.db import Database
from portal.errors import NotFound
from portal.i18n import lazy_gettext as _l
from portal.invoices.pdf import pdf_response, pdf_url
from portal.orders.reads import OrderDetail, get_order_detail
from portal.organizations.queries import Organization, get_by_id
from portal.portal_pages import text
from portal.portal_pages.layout import not_found, safe_organization
from portal.scope import Scope
from portal.sessions.store import SessionContext

RECEIPT_TEMPLATE = "receipts/receipt.html"
# ``?format=pdf``: the same page as a PDF download (portal/invoices/pdf.py); anything else is the HTML page.
FormatParam = Annotated[str, QueryParameter(name="format", max_length=10)]


class Receipt(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the receipt page shows, resolved ahead of rendering."""

    organization: Organization
    order: OrderDetail
    customer_email: str
    bill_to_name: str | None
    bill_to_address: list[str]
    bill_to_tax_id: str | None
    locale: str

    @property
    def mark(self) -> str | None:
        label = {"refunded": _l("Refunded"), "partially_refunded": _l("Partially refunded")}.get(self.order.status)
        return None if label is None else str(label)


async def load_receipt(db: Database, organization_id: str, customer_id: str, order_id: str) -> Receipt:
    """The receipt of a paid (possibly refunded) order of this customer; ``NotFound`` otherwise.

    Bill-to comes from the snapshot taken when the order was paid, never from today's customer record."""
    order = await get_order_detail(db, Scope.of_customer(organization_id, customer_id), order_id)
    if order is None or order.receipt_number is None or order.paid_at is None:
        raise NotFound("receipt not found")
    organization = await get_by_id(db, organization_id)
    customer = await get_customer_record(db, Scope.of_organization(organization_id), customer_id, include_deleted=True)
    if organization is None or customer is None:
        raise NotFound("receipt not found")
    email = customer.email
    # ?locale= > the customer's saved language > Accept-Language > the organization's default.
    locale = i18n.refine(saved=customer.locale or "", org_default=organization.default_locale)
    return Receipt(
        organization=safe_organization(organization),
        order=order,
        customer_email=email,
        bill_to_name=order.billing_name,
        bill_to_address=text.address_lines(order.billing_address_dict, locale),
        bill_to_tax_id=order.tax_id,
        locale=locale,
    )


def receipt_context(receipt: Receipt, pdf_url: str | None = None) -> dict[str, Any]:
    return {
        "receipt": receipt,
        "order": receipt.order,
        "organization": receipt.organization,
        "locale": receipt.locale,
        "ui": text,
        "pdf_url": pdf_url,
    }


def receipt_template(receipt: Receipt, pdf_url: str | None = None) -> Template:
    """The receipt page as a Litestar response (status 200, HTML); ``pdf_url`` is its "Download PDF" link."""
    return Template(
        template_name=RECEIPT_TEMPLATE, context=receipt_context(receipt, pdf_url), media_type=MediaType.HTML
    )


async def receipt_answer(request: Request[Any, Any, Any], receipt: Receipt, format: str) -> Template | Response[bytes]:
    """The receipt as its HTML page, or (``?format=pdf``) as a PDF of that same page."""
    if format == "pdf":
        context = receipt_context(receipt)
        return await pdf_response(request, RECEIPT_TEMPLATE, context, f"receipt-{receipt.order.receipt_number}")
    return receipt_template(receipt, pdf_url(request))


class ReceiptsController(Controller):
    path = "/{slug:str}/portal/orders"
    include_in_schema = False

    @get("/{order_id:str}/receipt", name="portal.receipt")
    async def receipt(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        portal_customer: NamedDependency[SessionContext],
        order_id: FromPath[str],
        format: FormatParam = "html",
    ) -> Template | Response[bytes]:
        try:
            receipt = await load_receipt(db, portal_customer.organization.id, portal_customer.customer.id, order_id)
        except NotFound:
            raise not_found() from None
        return await receipt_answer(request, receipt, format)
