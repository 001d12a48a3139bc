"""The branding previews of the console's settings page: the customer sign-in page, a portal page (the orders list),
a receipt, the sign-in email and the order-receipt email. Each is rendered by the real page's or email's own
template and code path (``portal_pages.layout.render``, ``portal_pages.receipts.receipt_template``,
``sessions.emails.login_code_email``, ``notifications.emails.receipt_preview``) with the organization as it would
be with the unsaved name and accent colour, and sample data that belongs to nobody: no customer, order or key of
the organization is read, and nothing is stored or sent.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.enums import MediaType
from litestar.response import Template

from portal import i18n
from portal.clock import iso
from portal.customers.reads import Customer
from portal.notifications.emails import receipt_preview
from portal.orders.reads import OrderDetail, OrderItem, OrderSummary
from portal.organizations.queries import Organization
from portal.portal_pages import text
from portal.portal_pages.layout import render, safe_organization
from portal.portal_pages.receipts import Receipt, receipt_template
from portal.sessions.emails import login_code_email
from portal.sessions.store import CustomerSession, SessionContext
from portal.settings import Settings
from portal.web import CSP

KINDS = ("signin", "portal", "receipt", "email", "receipt_email")

# Preview pages are shown in frames of the settings page (same origin only), never anywhere else.
HEADERS = {
    "Content-Security-Policy": CSP.replace("frame-ancestors 'none'", "frame-ancestors 'self'"),
    "X-Frame-Options": "SAMEORIGIN",
}

_SAMPLE_EMAIL = "sample.customer@example.net"
_SAMPLE_ADDRESS = {"line1": "1 Sample Street", "postal_code": "10115", "city": "Berlin", "country": "DE"}


def _sample_customer(org: Organization, now: datetime) -> Customer:
    return Customer(
        id="preview-customer",
        organization_id=org.id,
        email=_SAMPLE_EMAIL,
        name="Alex Example",
        created_at=iso(now),
    )


def _sample_orders(org: Organization, now: datetime) -> list[OrderDetail]:
    """Three paid orders of made-up products, newest first (amounts in the organization's currency)."""
    _ = i18n.gettext
    products = [(_("Sample product"), 4900), (_("Sample subscription, monthly"), 1200), (_("Sample add-on"), 900)]
    orders = []
    for index, (name, amount) in enumerate(products):
        created = iso(now - timedelta(days=index * 30))
        tax = amount * 19 // 100
        orders.append(
            OrderDetail(
                id=f"preview-order-{index + 1}",
                organization_id=org.id,
                customer_id="preview-customer",
                status="paid",
                billing_reason="purchase",
                subtotal_amount=amount,
                discount_amount=0,
                tax_amount=tax,
                total_amount=amount + tax,
                refunded_amount=0,
                refunded_tax_amount=0,
                currency=org.default_currency,
                billing_name="Alex Example",
                billing_address=msgspec.json.encode(_SAMPLE_ADDRESS).decode(),
                tax_id=None,
                receipt_number=f"{org.receipt_prefix}-{1003 - index:04d}",
                invoice_number=None,
                created_at=created,
                paid_at=created,
                product_id=None,
                product_name=name,
                subscription_id=None,
                items=[
                    OrderItem(
                        id=f"preview-item-{index + 1}",
                        label=name,
                        quantity=1,
                        unit_amount=amount,
                        amount=amount,
                        tax_amount=tax,
                        proration=False,
                    )
                ],
            )
        )
    return orders


def render_preview(
    request: Request[Any, Any, Any],
    kind: str,
    org: Organization,
    *,
    settings: Settings,
    seller_email: str,
    now: datetime,
) -> Response[Any]:
    """One preview (``kind`` in ``KINDS``) for ``org`` as given (its unsaved branding already applied)."""
    locale = i18n.current_locale()
    if kind == "signin":
        return Template(
            template_name="portal/sign_in.html",
            context={"organization": safe_organization(org), "email": "", "message": None},
            headers=HEADERS,
            media_type=MediaType.HTML,
        )
    if kind == "email":
        message = login_code_email(
            settings,
            organization=org,
            to=seller_email,
            code="ABC234",
            expires_at=iso(now + timedelta(minutes=15)),
            now=now,
            locale=locale,
        )
        return Response(message.html or "", media_type=MediaType.HTML, headers=HEADERS)
    orders = _sample_orders(org, now)
    customer = _sample_customer(org, now)
    if kind == "portal":
        session = CustomerSession(
            id="preview-session",
            kind="browser",
            organization_id=org.id,
            customer_id=customer.id,
            return_url=None,
            expires_at=iso(now + timedelta(hours=1)),
            last_seen_at=None,
            created_at=iso(now),
        )
        summaries = [
            OrderSummary(
                id=order.id,
                status=order.status,
                total_amount=order.total_amount,
                currency=order.currency,
                created_at=order.created_at,
                product_name=order.product_name,
            )
            for order in orders
        ]
        page = render(
            "portal/orders.html",
            request,
            SessionContext(session=session, customer=customer, organization=org),
            active="orders",
            orders=summaries,
            total=len(summaries),
            page=1,
            pages=1,
        )
        page.headers.update(HEADERS)
        return page
    if kind == "receipt":
        order = orders[0]
        receipt = receipt_template(
            Receipt(
                organization=safe_organization(org),
                order=order,
                customer_email=customer.email,
                bill_to_name=order.billing_name,
                bill_to_address=text.address_lines(_SAMPLE_ADDRESS, locale),
                bill_to_tax_id=None,
                locale=locale,
            )
        )
        receipt.headers.update(HEADERS)
        return receipt
    message = receipt_preview(
        org,
        customer={"name": customer.name, "email": customer.email},
        order=orders[0],
        license_keys=[{"benefit": i18n.gettext("Sample license"), "key": "SAMPLE-0000-0000-0000"}],
        public_base_url=settings.public_base_url,
        locale=locale,
    )
    return Response(message.html or "", media_type=MediaType.HTML, headers=HEADERS)
