"""The customer-portal API's request bodies, in the shapes of Polar's ``polar.v2026_10.inputs``: unknown fields are
refused (Polar's 422), text that can reach an email header or a log line is ``SingleLine``. What the API answers is
``portal.polar.models``."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from portal.fields import DOTTED_EMAIL_ADDRESS_PATTERN, SingleLine
from portal.polar.models import Meta, MetaDict
from portal.subscriptions.service import CancellationReason


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


class CustomerOrderUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    billing_name: SingleLine | msgspec.UnsetType | None = msgspec.UNSET
    billing_address: AddressInput | msgspec.UnsetType | None = msgspec.UNSET


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


class CustomerBenefitGrantUpdate(msgspec.Struct, kw_only=True):
    """Polar's ``CustomerBenefitGrant*Update``: ``benefit_type`` plus type-specific ``properties``."""

    benefit_type: str
    properties: dict[str, Any] | None = None


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
