"""Issuing invoices and editing an order's bill-to (Polar's ``PATCH /orders/{id}`` + ``POST /orders/{id}/invoice``).

Rules:
* an invoice is issued for a paid (possibly refunded) order only (``OrderNotEligibleForInvoice``), and only once
  the order has a billing name and a billing address (``MissingInvoiceBillingDetails``);
* the number comes from ``organizations.next_invoice_number``, allocated inside the write transaction
  (``<receipt prefix>-INV-0001``), so two concurrent requests can never share a number;
* an issued invoice is frozen: bill-to, amounts, items and seller details are copied into it. Changing the
  order's billing details afterwards and generating again issues a *corrected* invoice with a new number that
  points at the one it replaces; the old one stays retrievable. Generating again without a change is a no-op;
* an order gets at most ``MAX_INVOICE_CORRECTIONS`` corrected invoices (``InvoiceCorrectionLimit``, answered like
  ``OrderNotEligibleForInvoice``: 409): invoice numbers are a gap-free sequence the seller files with the tax
  office, and a customer toggling billing details must not burn them without limit (issue 17.10). Limiting was
  chosen over numbering only a "final" invoice because an issued invoice must keep its number once sent;
  beyond the limit the seller corrects it by hand;
* the billing country and state of an order cannot change once set (they decided the tax), as in Polar.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from portal.clock import iso, new_id
from portal.customers.billing import BillingForm, validate_billing
from portal.customers.reads import Customer, get_customer_record
from portal.db import Database, Transaction
from portal.errors import DomainError, InvalidInput, NotFound
from portal.invoices.queries import INVOICE_COLUMNS, Invoice
from portal.orders import service as order_service
from portal.orders.reads import OrderDetail, get_order_detail
from portal.organizations.queries import seller_tax_id
from portal.scope import EVERY_ORGANIZATION, Scope
from portal.subscriptions.actions import record_event

INVOICEABLE_STATUSES = frozenset({"paid", "refunded", "partially_refunded"})


class OrderNotEligibleForInvoice(DomainError):
    """The order is not paid (Polar: 409 ``OrderNotEligibleForInvoice``)."""


class MissingInvoiceBillingDetails(DomainError):
    """The order has no billing name or address (Polar: 422 ``MissingInvoiceBillingDetails``)."""


MISSING_DETAILS = "Billing name and address are required to generate an invoice for this order."
# Corrected invoices one order may get after its first: 4 invoice numbers per paid order at most.
MAX_INVOICE_CORRECTIONS = 3


class InvoiceCorrectionLimit(OrderNotEligibleForInvoice):
    """The order's invoice was corrected ``MAX_INVOICE_CORRECTIONS`` times already (409 like its base)."""


def _address(text: str | None) -> dict[str, Any] | None:
    data = msgspec.json.decode(text) if text else None
    return data if isinstance(data, dict) and data.get("country") else None


async def _own_order(tx: Transaction, organization_id: str, customer_id: str, order_id: str) -> OrderDetail:
    order = await get_order_detail(tx, Scope.of_customer(organization_id, customer_id), order_id)
    if order is None:
        raise NotFound("order not found")
    return order


async def build_snapshot(tx: Transaction, order: OrderDetail) -> dict[str, Any]:
    """Everything the invoice prints that could change later, frozen at issue time."""
    org = await tx.fetchone(
        "SELECT name, address, support_email, avatar_url, accent_color, default_locale, settings "
        "FROM organizations WHERE id = ?",
        (order.organization_id,),
    )
    assert org is not None  # orders.organization_id is a foreign key
    customer = await get_customer_record(tx, EVERY_ORGANIZATION, order.customer_id, include_deleted=True)
    assert customer is not None  # orders.customer_id is a foreign key
    email = customer.email
    return {
        "seller": {
            "name": org["name"],
            "address": org["address"],
            "support_email": org["support_email"],
            "avatar_url": org["avatar_url"],
            "accent_color": org["accent_color"],
            "tax_id": seller_tax_id(org["settings"]),
        },
        "locale": org["default_locale"],
        "customer_email": email,
        "product_name": order.product_name,
        "receipt_number": order.receipt_number,
        "order_created_at": order.created_at,
        "paid_at": order.paid_at,
        "status": order.status,
        "currency": order.currency,
        "subtotal_amount": order.subtotal_amount,
        "discount_amount": order.discount_amount,
        "tax_amount": order.tax_amount,
        "total_amount": order.total_amount,
        "refunded_amount": order.refunded_amount,
        "items": [
            {
                "label": item.label,
                "quantity": item.quantity,
                "unit_amount": item.unit_amount,
                "amount": item.amount,
                "tax_amount": item.tax_amount,
            }
            for item in order.items
        ],
    }


async def _allocate_number(tx: Transaction, organization_id: str) -> str:
    row = await tx.fetchone(
        """
        UPDATE organizations SET next_invoice_number = next_invoice_number + 1
        WHERE id = ?
        RETURNING next_invoice_number - 1 AS number, receipt_prefix
        """,
        (organization_id,),
    )
    assert row is not None
    return f"{row['receipt_prefix']}-INV-{int(row['number']):04d}"


async def generate_invoice(
    db: Database, organization_id: str, customer_id: str, order_id: str, *, now: datetime
) -> tuple[Invoice, bool]:
    """The order's current invoice, issuing it (or a corrected one) when needed; ``(invoice, issued_now)``."""
    async with db.write() as tx:
        order = await _own_order(tx, organization_id, customer_id, order_id)
        if order.status not in INVOICEABLE_STATUSES or order.paid_at is None:
            raise OrderNotEligibleForInvoice("This order is not paid, so an invoice cannot be generated.")
        address = _address(order.billing_address)
        if not (order.billing_name or "").strip() or address is None:
            raise MissingInvoiceBillingDetails(MISSING_DETAILS)
        latest_row = await tx.fetchone(
            f"SELECT {INVOICE_COLUMNS} FROM invoices i WHERE i.order_id = ? ORDER BY i.issued_at DESC, i.rowid DESC",
            (order_id,),
        )
        latest = None if latest_row is None else msgspec.convert(dict(latest_row), Invoice)
        if (
            latest is not None
            and latest.billing_name == order.billing_name
            and latest.address == address
            and latest.tax_id == order.tax_id
        ):
            return latest, False
        if latest is not None:
            issued = await tx.fetchval("SELECT COUNT(*) FROM invoices WHERE order_id = ?", (order_id,))
            if int(issued) > MAX_INVOICE_CORRECTIONS:
                raise InvoiceCorrectionLimit(
                    f"This order's invoice was already corrected {MAX_INVOICE_CORRECTIONS} times, the most allowed. "
                    "Contact the seller to correct it again."
                )
        invoice = Invoice(
            id=new_id(),
            organization_id=organization_id,
            customer_id=customer_id,
            order_id=order_id,
            invoice_number=await _allocate_number(tx, organization_id),
            billing_name=order.billing_name or "",  # checked not blank above
            billing_address=msgspec.json.encode(address).decode(),
            tax_id=order.tax_id,
            snapshot=msgspec.json.encode(await build_snapshot(tx, order)).decode(),
            corrects_invoice_id=None if latest is None else latest.id,
            issued_at=iso(now),
        )
        await tx.execute(
            """
            INSERT INTO invoices (
                id,
                organization_id,
                customer_id,
                order_id,
                invoice_number,
                billing_name,
                billing_address,
                tax_id,
                snapshot,
                corrects_invoice_id,
                issued_at
            ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            (
                invoice.id,
                invoice.organization_id,
                invoice.customer_id,
                invoice.order_id,
                invoice.invoice_number,
                invoice.billing_name,
                invoice.billing_address,
                invoice.tax_id,
                invoice.snapshot,
                invoice.corrects_invoice_id,
                invoice.issued_at,
            ),
        )
        await order_service.set_invoice_number(tx, order_id, invoice.invoice_number, now=now)
        await record_event(
            tx,
            organization_id=organization_id,
            customer_id=customer_id,
            name="invoice.corrected" if latest is not None else "invoice.issued",
            subject_id=order_id,
            now=now,
            data={
                "invoice_id": invoice.id,
                "invoice_number": invoice.invoice_number,
                "corrects": None if latest is None else latest.invoice_number,
            },
        )
        return invoice, True


_UNSET: Any = msgspec.UNSET


async def update_order_billing(
    db: Database,
    organization_id: str,
    customer_id: str,
    order_id: str,
    *,
    billing_name: str | msgspec.UnsetType | None = _UNSET,
    billing_address: dict[str, Any] | msgspec.UnsetType | None = _UNSET,
    now: datetime,
) -> None:
    """Change the order's bill-to (name, address). Validation is the billing form's (per-field
    ``InvalidInput`` with ``billing_address.<field>``); the country and state cannot change once set."""
    async with db.write() as tx:
        order = await _own_order(tx, organization_id, customer_id, order_id)
        current = _address(order.billing_address) or {}
        name = order.billing_name if billing_name is msgspec.UNSET else billing_name
        address = current if billing_address is msgspec.UNSET else (billing_address or {})
        if current.get("country") and (address.get("country") or "").upper() != current["country"].upper():
            raise InvalidInput("the billing country cannot be changed", "billing_address.country")
        if current.get("state") and (address.get("state") or "") != current["state"]:
            raise InvalidInput("the billing state cannot be changed", "billing_address.state")
        form = BillingForm(
            billing_name=name or "",
            line1=address.get("line1") or "",
            line2=address.get("line2") or "",
            postal_code=address.get("postal_code") or "",
            city=address.get("city") or "",
            state=address.get("state") or "",
            country=address.get("country") or "",
            tax_id=order.tax_id or "",
        )
        update, errors = validate_billing(form)
        if errors:
            field, message = next(iter(errors.items()))
            raise InvalidInput(message, field if field == "billing_name" else f"billing_address.{field}")
        new_address = update.billing_address
        await order_service.set_billing(
            tx,
            order_id,
            None if update.billing_name is msgspec.UNSET else update.billing_name,  # validate_billing sets it
            None if not isinstance(new_address, msgspec.Struct) else msgspec.json.encode(new_address).decode(),
            now=now,
        )
        await record_event(
            tx,
            organization_id=organization_id,
            customer_id=customer_id,
            name="order.billing_updated",
            subject_id=order_id,
            now=now,
        )


async def issue_for_customer(db: Database, customer: Customer, order_id: str, *, now: datetime) -> None:
    """Generate the order's invoice; an order without billing details gets the customer's (the portal's billing
    form) first. Raises ``MissingInvoiceBillingDetails`` when neither has them, ``NotFound``,
    ``OrderNotEligibleForInvoice``."""
    org_id, customer_id = customer.organization_id, customer.id
    try:
        await generate_invoice(db, org_id, customer_id, order_id, now=now)
    except MissingInvoiceBillingDetails:
        if not (customer.billing_name and customer.billing_address_dict):
            raise
        await update_order_billing(
            db,
            org_id,
            customer_id,
            order_id,
            billing_name=customer.billing_name,
            billing_address=customer.billing_address_dict,
            now=now,
        )
        await generate_invoice(db, org_id, customer_id, order_id, now=now)
