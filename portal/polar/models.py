"""Polar's shapes as msgspec Structs, for every surface that answers them: the admin API, the webhook payloads and
the customer-portal API (built by ``convert``).

The field names, types and required fields follow the official SDK's models (``polar-sdk``:
``polar/v2026_10/outputs.py``), so ``polar.deserialize(body, outputs.X)`` parses every answer. Fields Polar has
and Portal does not model (payments, meters, discounts, seats, members…) are answered with their neutral value
(``None``, ``[]``, ``False``); a few Portal-only fields (``external_id``, ``receipt_prefix``…) ride along and are
ignored by the SDKs.

One Struct per concept, shared by the surfaces; where Polar gives a surface more fields, its variant subclasses
the shared Struct (a subclass keeps the base's fields in their place, so the JSON is the base's object plus the
new keys), and a surface's shape stands alone only where Polar's fields really differ (another order, other
types: ``CustomerPortalCustomer``, ``CustomerBenefitGrant``). Unions Polar discriminates by a nested ``type``
(benefits, grants, prices) are one Struct with ``type`` and a ``properties`` mapping: the SDK picks its variant
from the values, and msgspec needs no tagged union.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

Meta = str | int | float | bool
MetaDict = dict[str, Meta]

# --- errors ------------------------------------------------------------------------------------------------------


class ApiError(msgspec.Struct, kw_only=True):
    """Polar's error body: ``{"error": "ResourceNotFound", "detail": "…"}``."""

    error: str
    detail: str


class ValidationProblem(msgspec.Struct, kw_only=True):
    loc: list[str | int]
    msg: str
    type: str


class HTTPValidationError(msgspec.Struct, kw_only=True):
    """Polar's (FastAPI's) 422 body."""

    detail: list[ValidationProblem]


# --- organizations -----------------------------------------------------------------------------------------------


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


# The customer-portal API's organization carries more of Polar's portal settings (units, pause, the customer's
# email change) than the admin API's ``Organization``.
class CustomerOrganizationSubscriptionSettings(CustomerPortalSubscriptionSettings, kw_only=True):
    update_units: bool = False
    pause: bool = False


class CustomerPortalCustomerSettings(msgspec.Struct, kw_only=True):
    allow_email_change: bool


class CustomerOrganizationPortalSettings(OrganizationCustomerPortalSettings, kw_only=True):
    # Redefined with the customer portal's variant (a subclass keeps the field's place).
    subscription: CustomerOrganizationSubscriptionSettings
    customer: CustomerPortalCustomerSettings


class CustomerOrganizationFeatureSettings(msgspec.Struct, kw_only=True):
    member_model_enabled: bool = False
    checkout_localization_enabled: bool = False


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


class BenefitSubscriberOrganization(msgspec.Struct, kw_only=True):
    """Polar's ``Organization`` as a benefit's holder sees it (``Benefit*Subscriber.organization``)."""

    created_at: str
    modified_at: str | None
    id: str
    name: str
    slug: str
    avatar_url: str | None
    # A plan change applies its price from the next charge: no proration (Polar's "next_period").
    proration_behavior: Literal["invoice", "prorate", "next_period", "reset"] = "next_period"
    allow_customer_updates: bool = True


class CustomerOrganization(BenefitSubscriberOrganization, kw_only=True):
    """Polar's ``CustomerOrganization`` (the customer-portal API): the holder's view and the portal settings."""

    customer_portal_settings: CustomerOrganizationPortalSettings
    organization_features: CustomerOrganizationFeatureSettings


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


class CustomerPortalOAuthAccount(msgspec.Struct, kw_only=True):
    account_id: str
    account_username: str | None


class CustomerPortalCustomer(msgspec.Struct, kw_only=True):
    """Polar's ``CustomerPortalCustomer``: the signed-in customer as the customer-portal API answers it (its own
    fields in its own order, not ``CustomerOut``'s)."""

    created_at: str
    modified_at: str | None
    id: str
    email: str | None
    email_verified: bool
    name: str | None
    billing_name: str | None
    billing_address: Address | None
    tax_id: list[str] | None  # Polar's [value, format]; Portal does not classify tax ids ("unknown")
    oauth_accounts: dict[str, CustomerPortalOAuthAccount] = {}
    default_payment_method_id: str | None = None
    type: Literal["individual", "team"] | None = "individual"
    locale: str | None = None


# --- benefits ----------------------------------------------------------------------------------------------------


class BenefitBase(msgspec.Struct, kw_only=True):
    """The fields of Polar's ``Benefit*`` every surface answers (one shape; ``type`` says which ``properties`` it
    carries)."""

    id: str
    created_at: str
    modified_at: str | None
    type: str
    description: str
    selectable: bool = True
    deletable: bool = True
    is_deleted: bool
    organization_id: str


class BenefitOut(BenefitBase, kw_only=True):
    """Polar's ``Benefit*`` (the admin API and webhooks)."""

    metadata: dict[str, Any]
    visibility: Literal["draft", "private", "public"] = "public"
    properties: dict[str, Any]
    visibility_configurable: bool = False
    external_id: str | None


class BenefitPublic(BenefitBase, kw_only=True):
    """Polar's ``Benefit*Public``, a product's benefit in the customer portal (``properties`` only for
    ``meter_credit``: units and meter id)."""

    properties: dict[str, Any] | None = None


class BenefitSubscriber(BenefitBase, kw_only=True):
    """Polar's ``Benefit*Subscriber``, a grant's benefit in the customer portal: ``properties`` holds what a
    holder of ``type`` may see."""

    organization: BenefitSubscriberOrganization
    properties: dict[str, Any]


# --- files -------------------------------------------------------------------------------------------------------


class FileBase(msgspec.Struct, kw_only=True):
    """The leading fields of Polar's ``DownloadableFileRead`` and ``FileDownload``."""

    id: str
    organization_id: str
    name: str
    path: str
    mime_type: str
    size: int
    storage_version: str | None = None
    checksum_etag: str | None = None


class FileOut(FileBase, kw_only=True):
    """Polar's ``DownloadableFileRead`` (the admin API)."""

    checksum_sha256_base64: str | None = None
    checksum_sha256_hex: str
    last_modified_at: str | None
    version: str | None
    service: Literal["downloadable"] = "downloadable"
    is_uploaded: bool = True
    created_at: str
    flagged_malicious_at: str | None = None
    size_readable: str


class S3DownloadURL(msgspec.Struct, kw_only=True):
    """Polar's name; here a signed Portal URL that streams the file from disk without a cookie."""

    url: str
    headers: dict[str, str] = {}
    expires_at: str


class FileDownload(FileBase, kw_only=True):
    """Polar's ``FileDownload`` (the customer portal's downloadables): the file and where to fetch it."""

    checksum_sha256_base64: str | None
    checksum_sha256_hex: str | None
    last_modified_at: str | None
    download: S3DownloadURL
    version: str | None
    is_uploaded: bool = True
    service: Literal["downloadable"] = "downloadable"
    size_readable: str


class DownloadableRead(msgspec.Struct, kw_only=True):
    id: str
    benefit_id: str
    file: FileDownload


# --- products ----------------------------------------------------------------------------------------------------


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


Interval = Literal["day", "week", "month", "year"]


class ProductFields(msgspec.Struct, kw_only=True):
    """The fields of a product every surface answers (without prices, benefits and the seller's metadata)."""

    id: str
    created_at: str
    modified_at: str | None
    trial_interval: Interval | None = None
    trial_interval_count: int | None = None
    name: str
    description: str | None
    visibility: Literal["draft", "private", "public"]
    recurring_interval: Interval | None
    recurring_interval_count: int | None
    meter_interval: Interval | None = None
    meter_interval_count: int | None = None
    is_recurring: bool
    is_archived: bool
    organization_id: str


class ProductBaseOut(ProductFields, kw_only=True):
    """Polar's ``OrderProduct``: a product without its prices and benefits (the admin API and webhooks)."""

    metadata: dict[str, Any]
    external_id: str | None


class ProductOut(ProductBaseOut, kw_only=True):
    """Polar's ``Product``."""

    is_deletable: bool = True
    prices: list[ProductPrice]
    benefits: list[BenefitOut]
    medias: list[dict[str, Any]] = []
    attached_custom_fields: list[dict[str, Any]] = []


class CustomerProduct(ProductFields, kw_only=True):
    """Polar's ``CustomerProduct`` fields (without the organization): a product in the customer portal."""

    prices: list[ProductPrice]
    benefits: list[BenefitPublic]
    medias: list[dict[str, Any]] = []


class CustomerProductWithOrganization(CustomerProduct, kw_only=True):
    """Polar's ``CustomerOrderProduct`` / ``CustomerSubscriptionProduct``."""

    organization: CustomerOrganization


class CustomerOrganizationData(msgspec.Struct, kw_only=True):
    organization: CustomerOrganization
    products: list[CustomerProduct]


# --- subscriptions -----------------------------------------------------------------------------------------------


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


class CustomerSubscription(SubscriptionBase, kw_only=True):
    """Polar's ``CustomerSubscription``: ``SubscriptionBase`` with what the customer portal nests."""

    product: CustomerProductWithOrganization
    prices: list[ProductPrice]
    meters: list[dict[str, Any]] = []
    pending_update: dict[str, Any] | None = None


# --- orders ------------------------------------------------------------------------------------------------------


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


class CustomerOrder(OrderBase, kw_only=True):
    """Polar's ``CustomerOrder``: ``OrderBase`` with what the customer portal nests."""

    next_payment_attempt_at: str | None = None
    product: CustomerProductWithOrganization | None
    subscription: SubscriptionBase | None
    items: list[OrderItem]
    description: str
    refundable_amount: int
    refundable_tax_amount: int


class CustomerOrderWire(CustomerOrder, kw_only=True):
    """A ``CustomerOrder`` as a page of orders puts it on the wire: the documented model's fields, in its order (a
    subclass keeps them, so the JSON is the same object), with the embedded product as its JSON encoding made once
    per cached product (``catalog.cached_products_encoded``): the ten orders of a page embed the same few products,
    60% of the answer's bytes. A single order is a plain ``CustomerOrder``; both are built by
    ``convert.build_order``. tests/test_order_serialization.py checks every field by name, and the list against the
    single orders."""

    # Encoded inline by msgspec; the annotation differs from the model's only in being pre-encoded.
    product: msgspec.Raw | None  # type: ignore[assignment]


class CustomerOrderReceipt(msgspec.Struct, kw_only=True):
    url: str


class CustomerOrderInvoice(msgspec.Struct, kw_only=True):
    url: str


PAID_STATUSES = frozenset({"paid", "refunded", "partially_refunded"})


# --- benefit grants ----------------------------------------------------------------------------------------------


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


class BenefitGrantError(msgspec.Struct, kw_only=True):
    message: str
    type: str
    timestamp: str


class CustomerBenefitGrant(msgspec.Struct, kw_only=True):
    """Polar's ``CustomerBenefitGrant*`` (one per benefit type; ``benefit.type`` tells which): its own order of
    fields, a typed ``error`` and the customer portal's customer, not ``BenefitGrantOut``'s."""

    created_at: str
    modified_at: str | None
    id: str
    granted_at: str | None
    revoked_at: str | None
    customer_id: str
    member_id: str | None = None
    benefit_id: str
    subscription_id: str | None
    order_id: str | None
    is_granted: bool
    is_revoked: bool
    error: BenefitGrantError | None = None
    customer: CustomerPortalCustomer
    benefit: BenefitSubscriber
    properties: dict[str, Any]


# --- license keys ------------------------------------------------------------------------------------------------


class LicenseKeyActivationBase(msgspec.Struct, kw_only=True):
    id: str
    license_key_id: str
    label: str
    meta: MetaDict
    created_at: str
    modified_at: str | None


class LicenseKeyRead(msgspec.Struct, kw_only=True):
    """Polar's ``LicenseKeyRead`` (its ``customer`` is Polar's ``Customer``: ``CustomerOut``)."""

    id: str
    created_at: str
    modified_at: str | None
    organization_id: str
    customer_id: str
    customer: CustomerOut
    member_id: str | None = None
    member: dict[str, Any] | None = None
    benefit_id: str
    key: str
    display_key: str
    status: Literal["granted", "revoked", "disabled"]
    limit_activations: int | None
    usage: int
    limit_usage: int | None
    validations: int
    last_validated_at: str | None
    expires_at: str | None


class LicenseKeyWithActivations(LicenseKeyRead, kw_only=True):
    activations: list[LicenseKeyActivationBase]


class LicenseKeyOut(LicenseKeyRead, kw_only=True):
    """The admin API's ``LicenseKeyRead``, with ``order_id``/``subscription_id``: the sale whose grant holds the
    key."""

    order_id: str | None
    subscription_id: str | None


class LicenseKeyWithActivationsOut(LicenseKeyOut, kw_only=True):
    activations: list[LicenseKeyActivationBase]


class LicenseKeySubscription(msgspec.Struct, kw_only=True):
    """API 2027-01: the subscription whose grant holds the key."""

    id: str
    status: str
    current_period_start: str
    current_period_end: str
    cancel_at_period_end: bool
    ends_at: str | None


class LicenseKeyOrder(msgspec.Struct, kw_only=True):
    """API 2027-01: the one-time order whose grant holds the key."""

    id: str
    created_at: str
    status: str
    paid: bool


class GrantedLicenseKey(LicenseKeyRead, kw_only=True):
    """What validate and activate answer: API 2027-01 adds where the key comes from (a subscription, or a one-time
    order); earlier versions' clients ignore the four fields."""

    subscription_id: str | None = None
    subscription: LicenseKeySubscription | None = None
    order_id: str | None = None
    order: LicenseKeyOrder | None = None


class ValidatedLicenseKey(GrantedLicenseKey, kw_only=True):
    activation: LicenseKeyActivationBase | None = None


class LicenseKeyActivationCreated(LicenseKeyActivationBase, kw_only=True):
    license_key: GrantedLicenseKey


# --- sessions ----------------------------------------------------------------------------------------------------


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


class CustomerEmailUpdateVerifyResponse(msgspec.Struct, kw_only=True):
    token: str
