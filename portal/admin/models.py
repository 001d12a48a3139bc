"""Polar-shaped output Structs of the admin API and the pure functions that build them from read records.

The field names, types and required fields follow the official SDK's models (``polar-sdk``:
``polar/v2026_10/outputs.py``), so ``polar.deserialize(body, outputs.X)`` parses every answer. Fields Polar has
and Portal does not model (payments, meters, discounts, seats…) are answered with their neutral value; a few
Portal-only fields (``external_id``, ``receipt_prefix``…) ride along and are ignored by the SDKs.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from portal.benefits.reads import BenefitRecord, FileRecord, GrantRecord
from portal.benefits.service import VISIBILITY_CONFIGURABLE
from portal.customers.reads import CustomerRecord
from portal.customers.tax_ids import typed_tax_id
from portal.notifications.org_settings import polar_customer_email_settings
from portal.orders.reads import OrderItemRecord, OrderRecord
from portal.organizations.queries import Organization
from portal.products.reads import PriceRecord, ProductRecord
from portal.subscriptions.reads import SubscriptionRecord


def _json(text: str | None, default: Any) -> Any:
    return default if not text else msgspec.json.decode(text)


# --- organizations ---------------------------------------------------------------------------------------


class OrganizationSubscriptionSettings(msgspec.Struct, kw_only=True):
    allow_multiple_subscriptions: bool = True
    proration_behavior: Literal["invoice", "prorate", "next_period"] = "prorate"
    benefit_revocation_grace_period: int = 0
    prevent_trial_abuse: bool = False
    allow_customer_updates: bool = True


class OrganizationCustomerEmailSettings(msgspec.Struct, kw_only=True):
    order_confirmation: bool = True
    payment_method_expiration_reminder: bool = False
    subscription_cancellation: bool = True
    subscription_confirmation: bool = True
    subscription_cycled: bool = True
    subscription_cycled_after_trial: bool = True
    subscription_past_due: bool = True
    subscription_paused: bool = False
    subscription_resumed: bool = False
    subscription_renewal_reminder: bool = False
    subscription_revoked: bool = True
    subscription_trial_conversion_reminder: bool = False
    subscription_uncanceled: bool = True
    subscription_updated: bool = True


class CustomerPortalUsageSettings(msgspec.Struct, kw_only=True):
    show: bool


class CustomerPortalSubscriptionSettings(msgspec.Struct, kw_only=True):
    update_seats: bool
    update_plan: bool


class OrganizationCustomerPortalSettings(msgspec.Struct, kw_only=True):
    usage: CustomerPortalUsageSettings
    subscription: CustomerPortalSubscriptionSettings


class OrganizationDisputeSettings(msgspec.Struct, kw_only=True):
    auto_accept_below_amount: int | None = None


class OrganizationCapabilities(msgspec.Struct, kw_only=True):
    checkout_payments: bool = False
    subscription_renewals: bool = False
    payouts: bool = False
    refunds: bool = True
    api_access: bool = True
    dashboard_access: bool = False


class OrganizationOut(msgspec.Struct, kw_only=True):
    """Polar's ``Organization`` (+ Portal's receipt and portal settings)."""

    id: str
    created_at: str
    modified_at: str | None
    name: str
    slug: str
    avatar_url: str | None
    proration_behavior: str = "prorate"
    allow_customer_updates: bool
    email: str | None
    website: str | None
    socials: list[dict[str, str]] = []
    status: str = "active"
    details_submitted_at: str | None = None
    onboarding_resubmission_requested_at: str | None = None
    sso_enforced: bool = False
    default_presentment_currency: str
    default_tax_behavior: str = "location"
    feature_settings: dict[str, Any] | None = None
    subscription_settings: OrganizationSubscriptionSettings
    customer_email_settings: OrganizationCustomerEmailSettings
    customer_portal_settings: OrganizationCustomerPortalSettings
    dispute_settings: OrganizationDisputeSettings
    embed_hosts: list[str] = []
    country: str | None = None
    account_id: str | None = None
    payout_account_id: str | None = None
    capabilities: OrganizationCapabilities
    # Portal's own fields.
    address: str | None
    receipt_prefix: str
    default_locale: str
    accent_color: str
    allow_email_change: bool
    email_sender_name: str | None
    email_reply_to: str | None
    settings: dict[str, Any]
    portal_url: str


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
        settings=_json(org.settings, {}),
        portal_url=f"{base_url}/{org.slug}/portal",
    )


# --- customers -------------------------------------------------------------------------------------------


class AddressOut(msgspec.Struct, kw_only=True):
    line1: str | None = None
    line2: str | None = None
    postal_code: str | None = None
    city: str | None = None
    state: str | None = None
    country: str


class CustomerOut(msgspec.Struct, kw_only=True):
    """Polar's ``CustomerIndividual`` (also used where Polar nests ``OrderCustomer``/``SubscriptionCustomer``)."""

    id: str
    created_at: str
    modified_at: str | None
    metadata: dict[str, Any]
    external_id: str | None
    email: str
    email_verified: bool
    type: Literal["individual"] = "individual"
    name: str | None
    billing_name: str | None
    billing_address: AddressOut | None
    tax_id: list[str] | None
    locale: str | None
    organization_id: str
    default_payment_method_id: str | None = None
    deleted_at: str | None
    first_user_event_at: str | None = None
    avatar_url: str | None = None


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
        billing_address=None if address is None else msgspec.convert(address, AddressOut),
        # Polar's [value, format]; a tax ID stored before validation that the country refuses answers None.
        tax_id=_typed(typed_tax_id(customer.tax_id, (address or {}).get("country"))),
        locale=customer.locale,
        organization_id=customer.organization_id,
        deleted_at=customer.deleted_at,
    )


# --- benefits and files ----------------------------------------------------------------------------------


class BenefitOut(msgspec.Struct, kw_only=True):
    """Polar's ``Benefit*`` (one shape; ``type`` says which ``properties`` it carries)."""

    id: str
    created_at: str
    modified_at: str | None
    type: str
    description: str
    selectable: bool = True
    deletable: bool = True
    is_deleted: bool
    organization_id: str
    metadata: dict[str, Any]
    visibility: Literal["draft", "private", "public"] = "public"
    properties: dict[str, Any]
    visibility_configurable: bool = False
    external_id: str | None


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


class FileOut(msgspec.Struct, kw_only=True):
    """Polar's ``DownloadableFileRead``."""

    id: str
    organization_id: str
    name: str
    path: str
    mime_type: str
    size: int
    storage_version: str | None = None
    checksum_etag: str | None = None
    checksum_sha256_base64: str | None = None
    checksum_sha256_hex: str
    last_modified_at: str | None
    version: str | None
    service: Literal["downloadable"] = "downloadable"
    is_uploaded: bool = True
    created_at: str
    flagged_malicious_at: str | None = None
    size_readable: str


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


# --- products --------------------------------------------------------------------------------------------


class PriceOut(msgspec.Struct, kw_only=True, omit_defaults=False):
    """Polar's ``ProductPriceFixed`` / ``ProductPriceCustom`` (a free price is a fixed price of 0)."""

    id: str
    created_at: str
    modified_at: str | None
    source: Literal["catalog", "ad_hoc"] = "catalog"
    amount_type: Literal["fixed", "custom"]
    price_currency: str
    tax_behavior: str | None = None
    is_archived: bool
    product_id: str
    price_amount: int | None = None
    minimum_amount: int | None = None
    maximum_amount: int | None = None
    preset_amount: int | None = None


def price_out(price: PriceRecord) -> PriceOut:
    custom = price.amount_type == "custom"
    return PriceOut(
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


class ProductBaseOut(msgspec.Struct, kw_only=True):
    """Polar's ``OrderProduct``: a product without its prices and benefits."""

    id: str
    created_at: str
    modified_at: str | None
    trial_interval: str | None = None
    trial_interval_count: int | None = None
    name: str
    description: str | None
    visibility: Literal["draft", "private", "public"]
    recurring_interval: Literal["day", "week", "month", "year"] | None
    recurring_interval_count: int | None
    meter_interval: str | None = None
    meter_interval_count: int | None = None
    is_recurring: bool
    is_archived: bool
    organization_id: str
    metadata: dict[str, Any]
    external_id: str | None


class ProductOut(ProductBaseOut, kw_only=True):
    """Polar's ``Product``."""

    is_deletable: bool = True
    prices: list[PriceOut]
    benefits: list[BenefitOut]
    medias: list[dict[str, Any]] = []
    attached_custom_fields: list[dict[str, Any]] = []


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


# --- subscriptions ---------------------------------------------------------------------------------------


class SubscriptionBaseOut(msgspec.Struct, kw_only=True):
    """Polar's ``OrderSubscription``: a subscription without nested objects."""

    id: str
    created_at: str
    modified_at: str | None
    metadata: dict[str, Any]
    amount: int
    currency: str
    recurring_interval: Literal["day", "week", "month", "year"]
    recurring_interval_count: int
    status: str
    current_period_start: str
    current_period_end: str
    current_meter_period_start: str | None = None
    current_meter_period_end: str | None = None
    trial_start: str | None
    trial_end: str | None
    cancel_at_period_end: bool
    canceled_at: str | None
    started_at: str | None
    ends_at: str | None
    ended_at: str | None
    past_due_at: str | None = None
    pause_at_period_end: bool = False
    paused_at: str | None = None
    resumes_at: str | None = None
    customer_id: str
    product_id: str
    discount_id: str | None = None
    checkout_id: str | None = None
    seats: int | None = None
    units: int | None = None
    customer_cancellation_reason: str | None
    customer_cancellation_comment: str | None
    external_id: str | None
    price_id: str | None


class SubscriptionOut(SubscriptionBaseOut, kw_only=True):
    """Polar's ``Subscription``."""

    custom_field_data: dict[str, Any] = {}
    customer: CustomerOut
    product: ProductOut
    discount: None = None
    prices: list[PriceOut]
    meters: list[dict[str, Any]] = []
    pending_update: None = None


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


# --- orders ----------------------------------------------------------------------------------------------


class OrderItemOut(msgspec.Struct, kw_only=True):
    """Polar's ``OrderItemSchema`` (+ ``quantity``/``unit_amount``)."""

    id: str
    created_at: str
    modified_at: str | None
    label: str
    amount: int
    tax_amount: int
    proration: bool
    product_price_id: str | None
    start_timestamp: str | None = None
    end_timestamp: str | None = None
    quantity: int
    unit_amount: int


class OrderOut(msgspec.Struct, kw_only=True):
    """Polar's ``Order``."""

    id: str
    created_at: str
    modified_at: str | None
    status: Literal["pending", "paid", "refunded", "partially_refunded", "void"]
    paid: bool
    subtotal_amount: int
    discount_amount: int
    net_amount: int
    tax_amount: int
    total_amount: int
    applied_balance_amount: int = 0
    due_amount: int
    refunded_amount: int
    refunded_tax_amount: int
    currency: str
    billing_reason: str
    billing_name: str | None
    billing_address: AddressOut | None
    invoice_number: str | None
    is_invoice_generated: bool
    receipt_number: str | None
    seats: int | None = None
    units: int | None = None
    customer_id: str
    product_id: str | None
    discount_id: str | None = None
    subscription_id: str | None
    checkout_id: str | None = None
    metadata: dict[str, Any]
    custom_field_data: dict[str, Any] = {}
    platform_fee_amount: int = 0
    platform_fee_currency: str | None = None
    customer: CustomerOut
    product: ProductBaseOut | None
    discount: None = None
    subscription: SubscriptionBaseOut | None
    items: list[OrderItemOut]
    description: str
    refundable_amount: int
    refundable_tax_amount: int
    paid_at: str | None
    external_id: str | None
    tax_id: str | None


PAID_STATUSES = frozenset({"paid", "refunded", "partially_refunded"})


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
        billing_address=None if address is None else msgspec.convert(address, AddressOut),
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


# --- benefit grants --------------------------------------------------------------------------------------


class BenefitGrantOut(msgspec.Struct, kw_only=True):
    """Polar's ``BenefitGrant``."""

    id: str
    created_at: str
    modified_at: str | None
    granted_at: str | None
    is_granted: bool
    revoked_at: str | None
    is_revoked: bool
    subscription_id: str | None
    order_id: str | None
    customer_id: str
    benefit_id: str
    error: dict[str, Any] | None = None
    customer: CustomerOut
    benefit: BenefitOut
    properties: dict[str, Any]


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


# --- customer sessions -----------------------------------------------------------------------------------


class CustomerSessionOut(msgspec.Struct, kw_only=True):
    """Polar's ``CustomerSession``."""

    id: str
    created_at: str
    modified_at: str | None
    token: str
    expires_at: str
    return_url: str | None
    customer_portal_url: str
    customer_id: str
    customer: CustomerOut
