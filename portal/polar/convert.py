"""The ``*_out`` functions: an area's records (``portal/<area>/reads.py``) -> Polar's shapes (``models``). Pure: no
I/O; ``loaders`` reads what a shape nests."""

from __future__ import annotations

from typing import Any

import msgspec

from portal.benefits.reads import BenefitRecord, FileRecord, GrantRecord
from portal.benefits.service import VISIBILITY_CONFIGURABLE
from portal.customers.reads import CustomerRecord
from portal.customers.tax_ids import typed_tax_id
from portal.notifications.org_settings import polar_customer_email_settings
from portal.orders.reads import OrderItemRecord, OrderRecord
from portal.organizations.queries import Organization
from portal.polar.models import (
    PAID_STATUSES,
    Address,
    BenefitGrantOut,
    BenefitOut,
    CustomerOut,
    CustomerPortalSubscriptionSettings,
    CustomerPortalUsageSettings,
    FileOut,
    OrderItemOut,
    OrderOut,
    OrganizationCapabilities,
    OrganizationCustomerEmailSettings,
    OrganizationCustomerPortalSettings,
    OrganizationDisputeSettings,
    OrganizationOut,
    OrganizationSubscriptionSettings,
    ProductBaseOut,
    ProductOut,
    ProductPrice,
    SubscriptionBaseOut,
    SubscriptionOut,
)
from portal.products.reads import PriceRecord, ProductRecord
from portal.subscriptions.reads import SubscriptionRecord


def _json(text: str | None, default: Any) -> Any:
    return default if not text else msgspec.json.decode(text)


def organization_out(org: Organization, base_url: str) -> OrganizationOut:
    return OrganizationOut(
        id=org.id,
        created_at=org.created_at,
        modified_at=org.modified_at,
        name=org.name,
        slug=org.slug,
        avatar_url=org.avatar_url,
        allow_customer_updates=org.allow_plan_change,
        email=org.support_email,
        website=org.website_url,
        default_presentment_currency=org.default_currency,
        subscription_settings=OrganizationSubscriptionSettings(allow_customer_updates=org.allow_plan_change),
        customer_email_settings=OrganizationCustomerEmailSettings(**polar_customer_email_settings(org.settings)),
        customer_portal_settings=OrganizationCustomerPortalSettings(
            usage=CustomerPortalUsageSettings(show=org.show_usage),
            subscription=CustomerPortalSubscriptionSettings(
                update_seats=org.allow_seats, update_plan=org.allow_plan_change
            ),
        ),
        dispute_settings=OrganizationDisputeSettings(),
        capabilities=OrganizationCapabilities(),
        address=org.address,
        receipt_prefix=org.receipt_prefix,
        default_locale=org.default_locale,
        accent_color=org.accent_color,
        allow_email_change=org.allow_email_change,
        email_sender_name=org.email_sender_name,
        email_reply_to=org.email_reply_to,
        resubscribe_url=org.resubscribe_url,
        settings=_json(org.settings, {}),
        portal_url=f"{base_url}/{org.slug}/portal",
    )


def _typed(tax_id: tuple[str, str] | None) -> list[str] | None:
    return None if tax_id is None else list(tax_id)


def customer_out(customer: CustomerRecord) -> CustomerOut:
    address = _json(customer.billing_address, None)
    return CustomerOut(
        id=customer.id,
        created_at=customer.created_at,
        modified_at=customer.modified_at,
        metadata=_json(customer.metadata, {}),
        external_id=customer.external_id,
        email=customer.email,
        email_verified=customer.email_verified,
        name=customer.name,
        billing_name=customer.billing_name,
        billing_address=None if address is None else msgspec.convert(address, Address),
        # Polar's [value, format]; a tax ID stored before validation that the country refuses answers None.
        tax_id=_typed(typed_tax_id(customer.tax_id, (address or {}).get("country"))),
        locale=customer.locale,
        organization_id=customer.organization_id,
        deleted_at=customer.deleted_at,
    )


def benefit_out(benefit: BenefitRecord) -> BenefitOut:
    properties = _json(benefit.properties, {})
    if benefit.type == "discord":
        # Polar requires both ids; a self-hosted invite link may have neither.
        properties["guild_id"] = properties.get("guild_id") or ""
        properties["role_id"] = properties.get("role_id") or ""
    return BenefitOut(
        id=benefit.id,
        created_at=benefit.created_at,
        modified_at=benefit.modified_at,
        type=benefit.type,
        description=benefit.description,
        is_deleted=benefit.deleted_at is not None,
        organization_id=benefit.organization_id,
        metadata=_json(benefit.metadata, {}),
        visibility=benefit.visibility,  # type: ignore[arg-type]  # the column's CHECK keeps it one of the three
        properties=properties,
        visibility_configurable=benefit.type in VISIBILITY_CONFIGURABLE,
        external_id=benefit.external_id,
    )


def size_readable(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def file_out(record: FileRecord) -> FileOut:
    import base64

    return FileOut(
        id=record.id,
        organization_id=record.organization_id,
        name=record.name,
        path=record.path,
        mime_type=record.mime_type,
        size=record.size,
        checksum_sha256_base64=base64.b64encode(bytes.fromhex(record.checksum_sha256_hex)).decode(),
        checksum_sha256_hex=record.checksum_sha256_hex,
        last_modified_at=record.modified_at or record.created_at,
        version=record.version,
        created_at=record.created_at,
        size_readable=size_readable(record.size),
    )


def price_out(price: PriceRecord) -> ProductPrice:
    custom = price.amount_type == "custom"
    return ProductPrice(
        id=price.id,
        created_at=price.created_at,
        modified_at=price.modified_at,
        price_currency=price.price_currency,
        is_archived=price.is_archived,
        product_id=price.product_id,
        amount_type="custom" if custom else "fixed",
        # A custom price's amount is its preset (the payer may change it); a fixed price's is the price.
        price_amount=None if custom else price.price_amount,
        minimum_amount=0 if custom else None,
        preset_amount=price.price_amount if custom else None,
    )


def _product_fields(product: ProductRecord) -> dict[str, Any]:
    return {
        "id": product.id,
        "created_at": product.created_at,
        "modified_at": product.modified_at,
        "name": product.name,
        "description": product.description,
        "visibility": product.visibility,
        "recurring_interval": product.recurring_interval if product.is_recurring else None,
        "recurring_interval_count": product.recurring_interval_count if product.is_recurring else None,
        "is_recurring": product.is_recurring,
        "is_archived": product.is_archived,
        "organization_id": product.organization_id,
        "metadata": _json(product.metadata, {}),
        "external_id": product.external_id,
    }


def product_base_out(product: ProductRecord) -> ProductBaseOut:
    return ProductBaseOut(**_product_fields(product))


def product_out(product: ProductRecord, prices: list[PriceRecord], benefits: list[BenefitRecord]) -> ProductOut:
    return ProductOut(
        **_product_fields(product),
        prices=[price_out(price) for price in prices],
        benefits=[benefit_out(benefit) for benefit in benefits],
    )


def _subscription_fields(sub: SubscriptionRecord) -> dict[str, Any]:
    return {
        "id": sub.id,
        "created_at": sub.created_at,
        "modified_at": sub.modified_at,
        "metadata": _json(sub.metadata, {}),
        "amount": sub.amount,
        "currency": sub.currency,
        "recurring_interval": sub.recurring_interval,
        "recurring_interval_count": sub.recurring_interval_count,
        "status": sub.status,
        "current_period_start": sub.current_period_start,
        "current_period_end": sub.current_period_end or sub.current_period_start,
        "trial_start": sub.trial_start,
        "trial_end": sub.trial_end,
        "cancel_at_period_end": sub.cancel_at_period_end,
        "canceled_at": sub.canceled_at,
        "started_at": sub.started_at,
        "ends_at": sub.ends_at,
        "ended_at": sub.ended_at,
        "customer_id": sub.customer_id,
        "product_id": sub.product_id,
        "customer_cancellation_reason": sub.customer_cancellation_reason,
        "customer_cancellation_comment": sub.customer_cancellation_comment,
        "external_id": sub.external_id,
        "price_id": sub.price_id,
    }


def subscription_base_out(sub: SubscriptionRecord) -> SubscriptionBaseOut:
    return SubscriptionBaseOut(**_subscription_fields(sub))


def subscription_out(
    sub: SubscriptionRecord, customer: CustomerRecord, product: ProductOut, price: PriceRecord | None
) -> SubscriptionOut:
    return SubscriptionOut(
        **_subscription_fields(sub),
        customer=customer_out(customer),
        product=product,
        prices=[] if price is None else [price_out(price)],
    )


def order_out(
    order: OrderRecord,
    items: list[OrderItemRecord],
    customer: CustomerRecord,
    product: ProductRecord | None,
    subscription: SubscriptionRecord | None,
) -> OrderOut:
    paid = order.status in PAID_STATUSES
    address = _json(order.billing_address, None)
    refundable = order.total_amount - order.refunded_amount if paid else 0
    return OrderOut(
        id=order.id,
        created_at=order.created_at,
        modified_at=order.modified_at,
        status=order.status,  # type: ignore[arg-type]
        paid=paid,
        subtotal_amount=order.subtotal_amount,
        discount_amount=order.discount_amount,
        net_amount=order.subtotal_amount - order.discount_amount,
        tax_amount=order.tax_amount,
        total_amount=order.total_amount,
        due_amount=order.total_amount if order.status == "pending" else 0,
        refunded_amount=order.refunded_amount,
        refunded_tax_amount=order.refunded_tax_amount,
        currency=order.currency,
        billing_reason=order.billing_reason,
        billing_name=order.billing_name,
        billing_address=None if address is None else msgspec.convert(address, Address),
        invoice_number=order.invoice_number,
        is_invoice_generated=order.invoice_number is not None,
        receipt_number=order.receipt_number,
        customer_id=order.customer_id,
        product_id=order.product_id,
        subscription_id=order.subscription_id,
        metadata=_json(order.metadata, {}),
        customer=customer_out(customer),
        product=None if product is None else product_base_out(product),
        subscription=None if subscription is None else subscription_base_out(subscription),
        items=[
            OrderItemOut(
                id=item.id,
                created_at=item.created_at,
                modified_at=item.modified_at,
                label=item.label,
                amount=item.amount,
                tax_amount=item.tax_amount,
                proration=item.proration,
                product_price_id=item.product_price_id,
                quantity=item.quantity,
                unit_amount=item.unit_amount,
            )
            for item in items
        ],
        description=product.name if product is not None else (items[0].label if items else "Order"),
        refundable_amount=refundable,
        refundable_tax_amount=order.tax_amount - order.refunded_tax_amount if paid else 0,
        paid_at=order.paid_at,
        external_id=order.external_id,
        tax_id=order.tax_id,
    )


def grant_out(grant: GrantRecord, customer: CustomerRecord, benefit: BenefitRecord) -> BenefitGrantOut:
    return BenefitGrantOut(
        id=grant.id,
        created_at=grant.created_at,
        modified_at=grant.modified_at,
        granted_at=grant.granted_at,
        is_granted=grant.granted_at is not None and grant.revoked_at is None,
        revoked_at=grant.revoked_at,
        is_revoked=grant.revoked_at is not None,
        subscription_id=grant.subscription_id,
        order_id=grant.order_id,
        customer_id=grant.customer_id,
        benefit_id=grant.benefit_id,
        customer=customer_out(customer),
        benefit=benefit_out(benefit),
        properties=_json(grant.properties, {}),
    )
