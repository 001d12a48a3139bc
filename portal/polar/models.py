"""Polar's shapes as msgspec Structs, answered by the admin API and the webhook payloads (built by ``convert``).

The field names, types and required fields follow the official SDK's models (``polar-sdk``:
``polar/v2026_10/outputs.py``), so ``polar.deserialize(body, outputs.X)`` parses every answer. Fields Polar has
and Portal does not model (payments, meters, discounts, seats…) are answered with their neutral value; a few
Portal-only fields (``external_id``, ``receipt_prefix``…) ride along and are ignored by the SDKs.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec


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
    resubscribe_url: str | None
    settings: dict[str, Any]
    portal_url: str


class Address(msgspec.Struct, kw_only=True, omit_defaults=False, frozen=True):
    """Polar's ``Address`` (every surface: customers, orders, invoices' bill-to)."""

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
    billing_address: Address | None
    tax_id: list[str] | None
    locale: str | None
    organization_id: str
    default_payment_method_id: str | None = None
    deleted_at: str | None
    first_user_event_at: str | None = None
    avatar_url: str | None = None


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


class ProductPrice(msgspec.Struct, kw_only=True, omit_defaults=False):
    """Polar's ``ProductPriceFixed`` / ``ProductPriceCustom`` (a free price is a fixed price of 0)."""

    created_at: str
    modified_at: str | None
    id: str
    source: Literal["catalog", "ad_hoc"] = "catalog"
    amount_type: Literal["fixed", "custom"]
    price_currency: str
    tax_behavior: Literal["location", "inclusive", "exclusive"] | None = None
    is_archived: bool
    product_id: str
    price_amount: int | None = None
    minimum_amount: int | None = None
    maximum_amount: int | None = None
    preset_amount: int | None = None


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
    prices: list[ProductPrice]
    benefits: list[BenefitOut]
    medias: list[dict[str, Any]] = []
    attached_custom_fields: list[dict[str, Any]] = []


class SubscriptionBase(msgspec.Struct, kw_only=True):
    """Polar's ``CustomerOrderSubscription`` (a subscription without product, prices and meters): what every surface
    answers of a subscription; the admin API's ``SubscriptionBaseOut`` adds its seller-side fields."""

    created_at: str
    modified_at: str | None
    id: str
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


class SubscriptionBaseOut(SubscriptionBase, kw_only=True):
    """Polar's ``OrderSubscription``: ``SubscriptionBase`` and the fields the seller sees."""

    metadata: dict[str, Any]
    external_id: str | None
    price_id: str | None


class SubscriptionOut(SubscriptionBaseOut, kw_only=True):
    """Polar's ``Subscription``."""

    custom_field_data: dict[str, Any] = {}
    customer: CustomerOut
    product: ProductOut
    discount: None = None
    prices: list[ProductPrice]
    meters: list[dict[str, Any]] = []
    pending_update: None = None


class OrderItem(msgspec.Struct, kw_only=True):
    """Polar's ``OrderItemSchema``, as the customer portal answers it (and ``orders.items_json`` stores it)."""

    created_at: str
    modified_at: str | None
    id: str
    label: str
    amount: int
    tax_amount: int
    proration: bool
    product_price_id: str | None
    start_timestamp: str | None = None
    end_timestamp: str | None = None


class OrderItemOut(OrderItem, kw_only=True):
    """Polar's ``OrderItemSchema`` (+ ``quantity``/``unit_amount``), as the admin API and webhooks answer it."""

    quantity: int
    unit_amount: int


class OrderBase(msgspec.Struct, kw_only=True):
    """The fields every surface's order shares, in Polar's order (``OrderOut``, ``CustomerOrder`` extend it)."""

    id: str
    created_at: str
    modified_at: str | None
    status: str
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
    billing_address: Address | None
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


class OrderOut(OrderBase, kw_only=True):
    """Polar's ``Order``."""

    # Redefined with the statuses Polar names (a subclass keeps the field's place).
    status: Literal["pending", "paid", "refunded", "partially_refunded", "void"]
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
