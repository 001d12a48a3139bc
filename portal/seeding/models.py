"""The seed document format: msgspec Structs, decoded strictly (unknown fields are errors).

Shape (every list optional unless noted; objects refer to each other by ``external_id`` within their
organization)::

    {"organizations": [{
        "slug": "acme", "name": "Acme Software", "default_currency": "usd", "default_locale": "en",
        "external_id"?, "avatar_url"?, "website_url"?, "support_email"?, "address"?, "receipt_prefix"?,
        "accent_color"?, "allow_plan_change"?, "allow_seats"?, "show_usage"?, "allow_email_change"?,
        "email_sender_name"?, "email_reply_to"?, "resubscribe_url"?,
        "settings"?: {...},
        "benefits": [{"external_id", "type", "description", "properties": {...}, "visibility"?,
                      "files"?: [{"name", "path" (relative to the seed dir) | "content_base64", "mime_type"}]}],
        "products": [{"external_id", "name", "description"?, "recurring_interval": null|"month"|"year"|...,
                      "prices": [{"amount", "currency"}], "benefits": [benefit external_ids]}],
        "customers": [{"external_id", "email", "name"?, "billing_name"?, "billing_address"?: Address,
                       "tax_id"?, "locale"?, "created_at"?}],
        "subscriptions": [{"external_id", "customer", "product", "status", "current_period_start",
                           "current_period_end"?, "trial_start"?, "trial_end"?, "cancel_at_period_end"?,
                           "canceled_at"?, "ends_at"?, "ended_at"?, "activations"?: [...]}],
        "orders": [{"external_id", "customer", "product", "subscription"?, "billing_reason"?, "status",
                    "created_at", "currency"?, "items"? | "amount"?, "discount_amount"?, "tax_amount"?,
                    "refunds"?: [{"amount", "created_at", "reason"?}], "activations"?: [...]}]
    }]}

Benefit ``properties`` follow Polar's ``Benefit*Properties`` (see ``portal.benefits.service``); a
downloadables benefit lists its ``files`` here and the loader fills ``properties.files`` with their ids.

Times (``Timestamp``) are ISO-8601 (``2026-03-01T10:00:00Z``; a bare date is midnight UTC) or relative to the
load time: ``now``, ``now-30d``, ``now-10d+1M``, ``now+2h`` (units ``y`` years, ``M`` months, ``w`` weeks,
``d`` days, ``h`` hours, ``m`` minutes, applied left to right), so demo subscriptions always look current.

Orders: without ``items`` an order has one item, the product at ``amount`` (default: the product's price in
the order's ``currency``, default the organization's). ``total = subtotal - discount_amount + tax_amount``.
``status`` must agree with ``refunds``: ``paid`` has none, ``partially_refunded`` refunds part of the total,
``refunded`` all of it; ``pending``/``void`` orders are never paid. Paid orders get real receipt numbers
(allocated in ``created_at`` order) and, for purchases, grant their product's benefits. Orders that belong to
a subscription (``subscription`` + ``billing_reason`` ``subscription_create``/``subscription_cycle``) do not
grant: the subscription does while it is ``active``/``trialing``.

``activations`` (on an order or subscription) add license-key activations to the key that the named
``license_keys`` benefit granted for that order or subscription.

Loading is an upsert by ``external_id`` (organizations by ``external_id``, else ``slug``): loading a
document twice leaves the same rows — paid orders are not paid again, refunds already applied are not
repeated, grants and activations are not duplicated.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from portal.customers.service import Address
from portal.fields import EmailLine, NonNegative, Positive, Quantity, SingleLine

Timestamp = str  # ISO-8601 or relative ("now-30d"); see the module docstring
ExternalId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class _Seed(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class SeedFile(_Seed, kw_only=True):
    """A downloadable file: bytes from ``path`` (relative to the seed directory) or ``content_base64``."""

    name: SingleLine
    mime_type: str = "application/octet-stream"
    path: str | None = None
    content_base64: str | None = None
    version: str | None = None


class SeedBenefit(_Seed, kw_only=True):
    external_id: ExternalId
    type: Literal[
        "custom",
        "license_keys",
        "downloadables",
        "discord",
        "github_repository",
        "meter_credit",
        "feature_flag",
    ]
    description: SingleLine
    properties: dict[str, Any] = {}
    files: list[SeedFile] = []
    metadata: dict[str, Any] = {}
    # Polar's visibility in the customer portal (custom, license_keys, meter_credit, feature_flag may be hidden);
    # None: the type's default.
    visibility: Literal["public", "private", "draft"] | None = None


class SeedPrice(_Seed, kw_only=True):
    amount: NonNegative
    currency: SingleLine
    amount_type: Literal["fixed", "free", "custom"] = "fixed"


class SeedProduct(_Seed, kw_only=True):
    external_id: ExternalId
    name: SingleLine
    description: str | None = None
    recurring_interval: Literal["day", "week", "month", "year"] | None = None
    recurring_interval_count: Annotated[int, msgspec.Meta(ge=1, le=365)] = 1
    prices: list[SeedPrice]
    benefits: list[str] = []
    visibility: Literal["public", "private", "draft"] = "public"
    is_archived: bool = False
    metadata: dict[str, Any] = {}


class SeedCustomer(_Seed, kw_only=True):
    external_id: ExternalId
    email: EmailLine
    name: SingleLine | None = None
    billing_name: SingleLine | None = None
    billing_address: Address | None = None
    tax_id: SingleLine | None = None
    locale: SingleLine | None = None
    email_verified: bool = True
    created_at: Timestamp | None = None  # default: the earliest of its orders/subscriptions
    metadata: dict[str, Any] = {}


class SeedActivation(_Seed, kw_only=True):
    benefit: str  # external_id of a license_keys benefit of the order's/subscription's product
    label: SingleLine
    meta: dict[str, Any] = {}
    created_at: Timestamp | None = None


class SeedRefund(_Seed, kw_only=True):
    amount: Positive
    created_at: Timestamp
    reason: str | None = None


class SeedOrderItem(_Seed, kw_only=True):
    label: SingleLine
    unit_amount: NonNegative
    quantity: Quantity = 1
    tax_amount: NonNegative = 0
    proration: bool = False


class SeedOrder(_Seed, kw_only=True):
    external_id: ExternalId
    customer: str
    product: str
    created_at: Timestamp
    status: Literal["pending", "paid", "refunded", "partially_refunded", "void"] = "paid"
    subscription: str | None = None
    billing_reason: Literal["purchase", "subscription_create", "subscription_cycle", "subscription_update"] | None = (
        None  # default: purchase, or subscription_cycle when ``subscription`` is set
    )
    currency: SingleLine | None = None
    items: list[SeedOrderItem] | None = None
    amount: NonNegative | None = None
    discount_amount: NonNegative = 0
    tax_amount: NonNegative | None = None  # default: the items' tax (0 without items)
    refunds: list[SeedRefund] = []
    activations: list[SeedActivation] = []
    metadata: dict[str, Any] = {}


class SeedSubscription(_Seed, kw_only=True):
    external_id: ExternalId
    customer: str
    product: str
    status: Literal["incomplete", "incomplete_expired", "trialing", "active", "past_due", "canceled", "unpaid"]
    current_period_start: Timestamp
    current_period_end: Timestamp | None = None
    currency: SingleLine | None = None
    amount: NonNegative | None = None
    started_at: Timestamp | None = None
    trial_start: Timestamp | None = None
    trial_end: Timestamp | None = None
    cancel_at_period_end: bool = False
    canceled_at: Timestamp | None = None
    ends_at: Timestamp | None = None
    ended_at: Timestamp | None = None
    customer_cancellation_reason: (
        Literal[
            "customer_service",
            "low_quality",
            "missing_features",
            "switched_service",
            "too_complex",
            "too_expensive",
            "unused",
            "other",
        ]
        | None
    ) = None
    customer_cancellation_comment: str | None = None
    activations: list[SeedActivation] = []
    metadata: dict[str, Any] = {}


class SeedOrganization(_Seed, kw_only=True):
    slug: SingleLine
    name: SingleLine
    external_id: str | None = None
    avatar_url: str | None = None
    website_url: str | None = None
    support_email: EmailLine | None = None
    address: str | None = None
    receipt_prefix: str | None = None
    default_currency: str = "usd"
    default_locale: str = "en"
    accent_color: str = "#2563eb"
    allow_plan_change: bool = True
    allow_seats: bool = False
    show_usage: bool = True
    allow_email_change: bool = False
    email_sender_name: SingleLine | None = None
    email_reply_to: EmailLine | None = None
    resubscribe_url: SingleLine | None = None
    settings: dict[str, Any] = {}
    benefits: list[SeedBenefit] = []
    products: list[SeedProduct] = []
    customers: list[SeedCustomer] = []
    subscriptions: list[SeedSubscription] = []
    orders: list[SeedOrder] = []


class SeedDemoAccount(_Seed, kw_only=True):
    """An account worth signing in with (the demo banner and the README list them; nothing is loaded from it)."""

    email: str
    organizations: list[str]  # slugs of the organizations whose customer this email is
    shows: str  # what signing in with it shows, for humans


class SeedDocument(_Seed, kw_only=True):
    organizations: list[SeedOrganization]
    description: str | None = None  # free text for humans
    demo_accounts: list[SeedDemoAccount] = []
