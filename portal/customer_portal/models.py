"""msgspec Structs in the shapes of Polar's customer-portal API (``polar.v2026_10.outputs`` / ``inputs`` are the
spec): every field Polar's SDK requires is present, with Polar's name; features Portal does not have (meters,
seats, members, discounts, checkouts) are present with their empty value (``None``, ``[]``, ``False``).

Unions Polar discriminates by a nested ``type`` (benefit grants, prices) are one Struct here with ``type`` and a
``properties`` mapping: the SDK picks its variant from the values, and msgspec needs no tagged union.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from portal.fields import DOTTED_EMAIL_ADDRESS_PATTERN, SingleLine
from portal.pagination import ListResource, Pagination
from portal.polar.models import (
    Address,
    CustomerPortalUsageSettings,
    OrderBase,
    OrderItem,
    ProductPrice,
    SubscriptionBase,
)

__all__ = ["ListResource", "Pagination"]

Meta = str | int | float | bool
MetaDict = dict[str, Meta]

# --- errors (documented in OpenAPI) ----------------------------------------------------------------------


class PolarErrorBody(msgspec.Struct, kw_only=True):
    """Polar's error body: ``{"error": "<ErrorName>", "detail": "…"}``."""

    error: str
    detail: str


class ValidationProblem(msgspec.Struct, kw_only=True):
    loc: list[str | int]
    msg: str
    type: str


class HTTPValidationErrorBody(msgspec.Struct, kw_only=True):
    """Polar's (FastAPI's) 422 body."""

    detail: list[ValidationProblem]


# --- shared pieces ---------------------------------------------------------------------------------------


# The customer portal's variants of the admin API's settings (portal.polar.models): Polar's customer-portal
# organization carries more fields (units, pause, the customer's email change).
class CustomerPortalSubscriptionSettings(msgspec.Struct, kw_only=True):
    update_seats: bool
    update_plan: bool
    update_units: bool = False
    pause: bool = False


class CustomerPortalCustomerSettings(msgspec.Struct, kw_only=True):
    allow_email_change: bool


class OrganizationCustomerPortalSettings(msgspec.Struct, kw_only=True):
    usage: CustomerPortalUsageSettings
    subscription: CustomerPortalSubscriptionSettings
    customer: CustomerPortalCustomerSettings


class CustomerOrganizationFeatureSettings(msgspec.Struct, kw_only=True):
    member_model_enabled: bool = False
    checkout_localization_enabled: bool = False


class CustomerOrganization(msgspec.Struct, kw_only=True):
    created_at: str
    modified_at: str | None
    id: str
    name: str
    slug: str
    avatar_url: str | None
    # A plan change applies its price from the next charge: no proration (Polar's "next_period").
    proration_behavior: Literal["invoice", "prorate", "next_period", "reset"] = "next_period"
    allow_customer_updates: bool = True
    customer_portal_settings: OrganizationCustomerPortalSettings
    organization_features: CustomerOrganizationFeatureSettings


class BenefitPublic(msgspec.Struct, kw_only=True):
    """Polar's ``Benefit*Public`` (``properties`` only for ``meter_credit``: units and meter id)."""

    id: str
    created_at: str
    modified_at: str | None
    type: str
    description: str
    selectable: bool = True
    deletable: bool = True
    is_deleted: bool = False
    organization_id: str
    properties: dict[str, Any] | None = None


class ProductBase(msgspec.Struct, kw_only=True):
    """Polar's ``CustomerProduct`` fields (without the organization)."""

    id: str
    created_at: str
    modified_at: str | None
    trial_interval: Literal["day", "week", "month", "year"] | None = None
    trial_interval_count: int | None = None
    name: str
    description: str | None
    visibility: Literal["draft", "private", "public"]
    recurring_interval: Literal["day", "week", "month", "year"] | None
    recurring_interval_count: int | None
    meter_interval: Literal["day", "week", "month", "year"] | None = None
    meter_interval_count: int | None = None
    is_recurring: bool
    is_archived: bool
    organization_id: str
    prices: list[ProductPrice]
    benefits: list[BenefitPublic]
    medias: list[dict[str, Any]] = []


class CustomerProductWithOrganization(ProductBase, kw_only=True):
    """Polar's ``CustomerOrderProduct`` / ``CustomerSubscriptionProduct``."""

    organization: CustomerOrganization


class CustomerOrganizationData(msgspec.Struct, kw_only=True):
    organization: CustomerOrganization
    products: list[ProductBase]


# --- customer --------------------------------------------------------------------------------------------


class CustomerPortalOAuthAccount(msgspec.Struct, kw_only=True):
    account_id: str
    account_username: str | None


class CustomerPortalCustomer(msgspec.Struct, kw_only=True):
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


class AddressInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    line1: SingleLine | None = None
    line2: SingleLine | None = None
    postal_code: SingleLine | None = None
    city: SingleLine | None = None
    state: SingleLine | None = None
    country: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z]{2}$")]


class CustomerPortalCustomerUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    billing_name: SingleLine | msgspec.UnsetType | None = msgspec.UNSET
    billing_address: AddressInput | msgspec.UnsetType | None = msgspec.UNSET
    tax_id: str | msgspec.UnsetType | None = msgspec.UNSET
    default_payment_method_id: str | msgspec.UnsetType | None = msgspec.UNSET


EmailText = Annotated[str, msgspec.Meta(min_length=3, max_length=320, pattern=DOTTED_EMAIL_ADDRESS_PATTERN)]


class CustomerEmailUpdateRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    email: EmailText


class CustomerEmailUpdateVerifyRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class CustomerEmailUpdateVerifyResponse(msgspec.Struct, kw_only=True):
    token: str


# --- orders ----------------------------------------------------------------------------------------------


class CustomerOrder(OrderBase, kw_only=True):
    """Polar's ``CustomerOrder``: ``OrderBase`` with what the customer portal nests."""

    next_payment_attempt_at: str | None = None
    product: CustomerProductWithOrganization | None
    subscription: SubscriptionBase | None
    items: list[OrderItem]
    description: str
    refundable_amount: int
    refundable_tax_amount: int


class CustomerOrderUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    billing_name: SingleLine | msgspec.UnsetType | None = msgspec.UNSET
    billing_address: AddressInput | msgspec.UnsetType | None = msgspec.UNSET


class CustomerOrderReceipt(msgspec.Struct, kw_only=True):
    url: str


class CustomerOrderInvoice(msgspec.Struct, kw_only=True):
    url: str


# --- subscriptions ---------------------------------------------------------------------------------------


class CustomerSubscription(SubscriptionBase, kw_only=True):
    product: CustomerProductWithOrganization
    prices: list[ProductPrice]
    meters: list[dict[str, Any]] = []
    pending_update: dict[str, Any] | None = None


CancellationReason = Literal[
    "customer_service",
    "low_quality",
    "missing_features",
    "switched_service",
    "too_complex",
    "too_expensive",
    "unused",
    "other",
]


class CustomerSubscriptionUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The union of Polar's ``CustomerSubscriptionUpdate*`` bodies; exactly one kind of change per request.

    Supported: ``product_id`` (plan change) and ``cancel_at_period_end`` (+ reason/comment). ``seats``,
    ``units``, ``pause_at_period_end``, ``resume`` and ``pending_update`` answer 403/409 like Polar does for an
    organization that disables them."""

    product_id: str | msgspec.UnsetType = msgspec.UNSET
    cancel_at_period_end: bool | msgspec.UnsetType | None = msgspec.UNSET
    cancellation_reason: CancellationReason | None = None
    cancellation_comment: Annotated[str, msgspec.Meta(max_length=2000)] | None = None
    seats: int | msgspec.UnsetType = msgspec.UNSET
    units: int | msgspec.UnsetType = msgspec.UNSET
    proration_behavior: str | msgspec.UnsetType | None = msgspec.UNSET
    pause_at_period_end: bool | msgspec.UnsetType = msgspec.UNSET
    resume: bool | msgspec.UnsetType = msgspec.UNSET
    pending_update: msgspec.UnsetType | None = msgspec.UNSET


# --- benefit grants --------------------------------------------------------------------------------------


class BenefitSubscriberOrganization(msgspec.Struct, kw_only=True):
    created_at: str
    modified_at: str | None
    id: str
    name: str
    slug: str
    avatar_url: str | None
    proration_behavior: Literal["invoice", "prorate", "next_period", "reset"] = "next_period"
    allow_customer_updates: bool = True


class BenefitSubscriber(msgspec.Struct, kw_only=True):
    """Polar's ``Benefit*Subscriber``: ``properties`` holds what a holder of ``type`` may see."""

    id: str
    created_at: str
    modified_at: str | None
    type: str
    description: str
    selectable: bool = True
    deletable: bool = True
    is_deleted: bool = False
    organization_id: str
    organization: BenefitSubscriberOrganization
    properties: dict[str, Any]


class BenefitGrantError(msgspec.Struct, kw_only=True):
    message: str
    type: str
    timestamp: str


class CustomerBenefitGrant(msgspec.Struct, kw_only=True):
    """Polar's ``CustomerBenefitGrant*`` (one per benefit type; ``benefit.type`` tells which)."""

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


class CustomerBenefitGrantUpdate(msgspec.Struct, kw_only=True):
    """Polar's ``CustomerBenefitGrant*Update``: ``benefit_type`` plus type-specific ``properties``."""

    benefit_type: str
    properties: dict[str, Any] | None = None


# --- license keys ----------------------------------------------------------------------------------------


class LicenseKeyCustomer(msgspec.Struct, kw_only=True):
    id: str
    created_at: str
    modified_at: str | None
    metadata: MetaDict = {}
    external_id: str | None = None
    email: str | None
    email_verified: bool
    type: Literal["individual", "team"] = "individual"
    name: str | None
    billing_name: str | None
    billing_address: Address | None
    tax_id: list[str] | None
    locale: str | None = None
    organization_id: str
    default_payment_method_id: str | None = None
    deleted_at: str | None = None
    first_user_event_at: str | None = None
    avatar_url: str | None = None


class LicenseKeyActivationBase(msgspec.Struct, kw_only=True):
    id: str
    license_key_id: str
    label: str
    meta: MetaDict
    created_at: str
    modified_at: str | None


class LicenseKeyRead(msgspec.Struct, kw_only=True):
    id: str
    created_at: str
    modified_at: str | None
    organization_id: str
    customer_id: str
    customer: LicenseKeyCustomer
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


Conditions = dict[str, Meta]


class LicenseKeyValidate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    key: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    organization_id: str
    activation_id: str | None = None
    benefit_id: str | None = None
    customer_id: str | None = None
    increment_usage: Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000)] | None = None
    conditions: Conditions = {}


class LicenseKeyActivate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    key: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    organization_id: str
    label: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    conditions: Conditions = {}
    meta: MetaDict = {}


class LicenseKeyDeactivate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    key: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    organization_id: str
    activation_id: str


# --- downloadables ---------------------------------------------------------------------------------------


class S3DownloadURL(msgspec.Struct, kw_only=True):
    """Polar's name; here a signed Portal URL that streams the file from disk without a cookie."""

    url: str
    headers: dict[str, str] = {}
    expires_at: str


class FileDownload(msgspec.Struct, kw_only=True):
    id: str
    organization_id: str
    name: str
    path: str
    mime_type: str
    size: int
    storage_version: str | None = None
    checksum_etag: str | None = None
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
