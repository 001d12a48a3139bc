"""The converters: an area's records and rows (``portal/<area>/reads.py``) -> Polar's shapes (``models``), for every
surface (the admin API, the webhook payloads, the customer-portal API). Pure: no I/O; ``loaders`` reads what a shape
nests. Where two surfaces answer a concept in shapes Polar makes differ (``customer_out`` / ``portal_customer_out``,
``grant_out`` / ``customer_grant_out``), each has its converter here, side by side, sharing the fields they agree
on."""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from portal.benefits.reads import BenefitRecord, FileRecord, GrantRecord
from portal.benefits.service import VISIBILITY_CONFIGURABLE, load_properties
from portal.customers.reads import Customer, CustomerRecord
from portal.customers.tax_ids import typed_tax_id
from portal.db import row_dict
from portal.notifications.org_settings import polar_customer_email_settings
from portal.orders import reads as order_reads
from portal.orders.reads import OrderItemRecord, OrderRecord
from portal.organizations.queries import Organization
from portal.polar.models import (
    PAID_STATUSES,
    Address,
    BenefitGrantError,
    BenefitGrantOut,
    BenefitOut,
    BenefitPublic,
    BenefitSubscriber,
    BenefitSubscriberOrganization,
    CustomerBenefitGrant,
    CustomerOrder,
    CustomerOrganization,
    CustomerOrganizationFeatureSettings,
    CustomerOrganizationPortalSettings,
    CustomerOrganizationSubscriptionSettings,
    CustomerOut,
    CustomerPortalCustomer,
    CustomerPortalCustomerSettings,
    CustomerPortalSubscriptionSettings,
    CustomerPortalUsageSettings,
    FileOut,
    LicenseKeyActivationBase,
    LicenseKeyOrder,
    LicenseKeyRead,
    LicenseKeySubscription,
    OrderItem,
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
    SubscriptionBase,
    SubscriptionBaseOut,
    SubscriptionOut,
)
from portal.products.reads import PriceRecord, ProductRecord
from portal.subscriptions.reads import SubscriptionRecord


def _json(text: str | None, default: Any) -> Any:
    """Stored JSON text, or ``default`` when there is none (or it is not JSON: a hand-edited row answers its
    neutral value, not a 500)."""
    if not text:
        return default
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        return default


# Addresses by their stored JSON: a customer's orders repeat the same few, and ``Address`` is frozen, so one object
# serves them all (a JSON decode and a convert per order otherwise). Emptied when full.
_ADDRESSES: dict[str, Address | None] = {}
_ADDRESSES_MAX = 4_096


def address_out(text: str | None) -> Address | None:
    """A stored address (JSON text) as Polar's ``Address``; None without one, or without a country."""
    if not text:
        return None
    try:
        return _ADDRESSES[text]
    except KeyError:
        pass
    data = _json(text, None)
    address = msgspec.convert(data, Address, strict=False) if isinstance(data, dict) and data.get("country") else None
    if len(_ADDRESSES) >= _ADDRESSES_MAX:
        _ADDRESSES.clear()
    _ADDRESSES[text] = address
    return address


def tax_id_out(tax_id: str | None, billing_address: str | None) -> list[str] | None:
    """Polar's ``[value, format]``; None for a tax ID stored before validation that the country refuses."""
    address = address_out(billing_address)
    typed = typed_tax_id(tax_id, address.country if address is not None else None)
    return None if typed is None else list(typed)


# --- organizations -----------------------------------------------------------------------------------------------


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


def customer_organization_out(org: Organization) -> CustomerOrganization:
    """The customer-portal API's organization (Polar's ``CustomerOrganization``)."""
    return CustomerOrganization(
        **_subscriber_organization_fields(org),
        customer_portal_settings=CustomerOrganizationPortalSettings(
            usage=CustomerPortalUsageSettings(show=org.show_usage),
            subscription=CustomerOrganizationSubscriptionSettings(
                update_seats=org.allow_seats, update_plan=org.allow_plan_change
            ),
            customer=CustomerPortalCustomerSettings(allow_email_change=org.allow_email_change),
        ),
        organization_features=CustomerOrganizationFeatureSettings(),
    )


def _subscriber_organization_fields(org: Organization) -> dict[str, Any]:
    return {
        "created_at": org.created_at,
        "modified_at": org.modified_at,
        "id": org.id,
        "name": org.name,
        "slug": org.slug,
        "avatar_url": org.avatar_url,
    }


def subscriber_organization(org: Organization) -> BenefitSubscriberOrganization:
    return BenefitSubscriberOrganization(**_subscriber_organization_fields(org))


# --- customers ---------------------------------------------------------------------------------------------------


def _customer_fields(customer: Customer | CustomerRecord) -> dict[str, Any]:
    """What Polar's ``Customer`` answers of either read shape of a customer (the page shape, the whole record)."""
    return {
        "id": customer.id,
        "created_at": customer.created_at,
        "modified_at": customer.modified_at,
        "external_id": customer.external_id,
        "email": customer.email,
        "email_verified": customer.email_verified,
        "name": customer.name,
        "billing_name": customer.billing_name,
        "billing_address": address_out(customer.billing_address),
        "tax_id": tax_id_out(customer.tax_id, customer.billing_address),
        "locale": customer.locale,
        "organization_id": customer.organization_id,
    }


def customer_out(customer: CustomerRecord) -> CustomerOut:
    """Polar's ``Customer`` (the admin API, webhooks)."""
    return CustomerOut(
        **_customer_fields(customer), metadata=_json(customer.metadata, {}), deleted_at=customer.deleted_at
    )


def key_holder_out(customer: Customer) -> CustomerOut:
    """A license key's ``customer`` in the customer-portal API: Polar's ``Customer`` without the seller's metadata
    (validate and activate are public: anyone holding the key calls them)."""
    return CustomerOut(**_customer_fields(customer), metadata={}, deleted_at=None)


def portal_customer_out(customer: Customer) -> CustomerPortalCustomer:
    """The signed-in customer (Polar's ``CustomerPortalCustomer``: ``Customer``'s fields but the seller-side ids)."""
    fields = _customer_fields(customer)
    del fields["external_id"], fields["organization_id"]
    return CustomerPortalCustomer(**fields)


# --- benefits and files ------------------------------------------------------------------------------------------


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


def benefit_public(row: sqlite3.Row) -> BenefitPublic:
    """A catalog row of ``product_reads.benefit_rows_by_product`` as a product's benefit in the customer portal."""
    properties = None
    if row["type"] == "meter_credit":
        props = _json(row["properties"], {})
        properties = {"units": props.get("units", 0), "meter_id": props.get("meter_id", "")}
    return BenefitPublic(**_benefit_base_fields(row, ""), properties=properties)


def _benefit_base_fields(row: sqlite3.Row, prefix: str) -> dict[str, Any]:
    """``BenefitBase``'s fields from a row holding the benefit's columns, named with ``prefix`` (a grant row names
    them ``benefit_…``)."""
    return {
        "id": row[f"{prefix}id"],
        "created_at": row[f"{prefix}created_at"],
        "modified_at": row[f"{prefix}modified_at"],
        "type": row[f"{prefix}type"],
        "description": row[f"{prefix}description"],
        "is_deleted": row[f"{prefix}deleted_at"] is not None,
        "organization_id": row["organization_id"],
    }


def sha256_base64(hex_digest: str | None) -> str | None:
    if not hex_digest:
        return None
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


def file_out(record: FileRecord) -> FileOut:
    return FileOut(
        id=record.id,
        organization_id=record.organization_id,
        name=record.name,
        path=record.path,
        mime_type=record.mime_type,
        size=record.size,
        checksum_sha256_base64=sha256_base64(record.checksum_sha256_hex),
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


def price_row_out(row: sqlite3.Row) -> ProductPrice:
    """A catalog row of ``product_reads.price_rows_by_product`` as Polar's price (through ``price_out``)."""
    return price_out(msgspec.convert(row_dict(row), PriceRecord, strict=False))


# --- products ----------------------------------------------------------------------------------------------------


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


def customer_product_fields(row: sqlite3.Row, prices: list[sqlite3.Row], benefits: list[sqlite3.Row]) -> dict[str, Any]:
    """A catalog row of ``product_reads`` with its price and benefit rows, as the fields of the customer portal's
    ``CustomerProduct``."""
    return {
        "id": row["id"],
        "created_at": row["created_at"],
        "modified_at": row["modified_at"],
        "name": row["name"],
        "description": row["description"],
        "visibility": row["visibility"],
        "recurring_interval": row["recurring_interval"] if row["is_recurring"] else None,
        "recurring_interval_count": row["recurring_interval_count"] if row["is_recurring"] else None,
        "is_recurring": bool(row["is_recurring"]),
        "is_archived": bool(row["is_archived"]),
        "organization_id": row["organization_id"],
        "prices": [price_row_out(price) for price in prices],
        "benefits": [benefit_public(benefit) for benefit in benefits],
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


def subscription_row_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """A subscription row (by name) as ``SubscriptionBase``'s fields: the customer portal's subscriptions."""
    return {
        "created_at": row["created_at"],
        "modified_at": row["modified_at"],
        "id": row["id"],
        "amount": row["amount"],
        "currency": row["currency"],
        "recurring_interval": row["recurring_interval"],
        "recurring_interval_count": row["recurring_interval_count"],
        "status": row["status"],
        "current_period_start": row["current_period_start"],
        # Polar always has a period end; an ended subscription's last period ends when it ended.
        "current_period_end": row["current_period_end"] or row["ended_at"] or row["current_period_start"],
        "trial_start": row["trial_start"],
        "trial_end": row["trial_end"],
        "cancel_at_period_end": bool(row["cancel_at_period_end"]),
        "canceled_at": row["canceled_at"],
        "started_at": row["started_at"],
        "ends_at": row["ends_at"],
        "ended_at": row["ended_at"],
        "customer_id": row["customer_id"],
        "product_id": row["product_id"],
        "customer_cancellation_reason": row["customer_cancellation_reason"],
        "customer_cancellation_comment": row["customer_cancellation_comment"],
    }


def subscription_base(row: Mapping[str, Any]) -> SubscriptionBase:
    return SubscriptionBase(**subscription_row_fields(row))


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


# --- orders ------------------------------------------------------------------------------------------------------


def order_out(
    order: OrderRecord,
    items: list[OrderItemRecord],
    customer: CustomerRecord,
    product: ProductRecord | None,
    subscription: SubscriptionRecord | None,
) -> OrderOut:
    paid = order.status in PAID_STATUSES
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
        billing_address=address_out(order.billing_address),
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


_ORDER_ITEMS = msgspec.json.Decoder(list[OrderItem])

OrderT = TypeVar("OrderT", bound=CustomerOrder)


def build_order(
    model: type[OrderT],
    row: order_reads.OrderRow,
    product: Any,
    product_name: str | None,
    subscription: SubscriptionBase | None,
) -> OrderT:
    """One customer-portal order as ``model`` (``CustomerOrder``, or ``CustomerOrderWire`` with ``product``
    pre-encoded)."""
    paid = row.status in PAID_STATUSES
    net = row.subtotal_amount - row.discount_amount
    items = _ORDER_ITEMS.decode(row.items_json or "[]")
    return model(
        id=row.id,
        created_at=row.created_at,
        modified_at=row.modified_at,
        status=row.status,
        paid=paid,
        subtotal_amount=row.subtotal_amount,
        discount_amount=row.discount_amount,
        net_amount=net,
        tax_amount=row.tax_amount,
        total_amount=row.total_amount,
        applied_balance_amount=0,
        due_amount=0 if paid or row.status == "void" else row.total_amount,
        refunded_amount=row.refunded_amount,
        refunded_tax_amount=row.refunded_tax_amount,
        currency=row.currency,
        billing_reason=row.billing_reason,
        billing_name=row.billing_name,
        billing_address=address_out(row.billing_address),
        invoice_number=row.invoice_number,
        is_invoice_generated=row.is_invoice_generated,
        receipt_number=row.receipt_number,
        seats=None,
        units=None,
        customer_id=row.customer_id,
        product_id=row.product_id,
        discount_id=None,
        subscription_id=row.subscription_id,
        checkout_id=None,
        next_payment_attempt_at=None,
        product=product,
        subscription=subscription,
        items=items,
        description=product_name or (items[0].label if items else "Order"),
        refundable_amount=max(0, net - row.refunded_amount) if paid else 0,
        refundable_tax_amount=max(0, row.tax_amount - row.refunded_tax_amount) if paid else 0,
    )


# --- benefit grants ----------------------------------------------------------------------------------------------


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


def subscriber_properties(benefit_type: str, properties_json: str) -> dict[str, Any]:
    """What a holder of the benefit sees (Polar's ``Benefit*SubscriberProperties``, plus Portal's invite
    links, which stand in for the Discord/GitHub OAuth flows Portal does not run)."""
    props = msgspec.to_builtins(load_properties(benefit_type, properties_json))
    if benefit_type == "downloadables":
        archived = props.get("archived") or {}
        return {"active_files": [f for f in props.get("files", []) if not archived.get(f)]}
    if benefit_type == "discord":
        return {"guild_id": props.get("guild_id") or "", "invite_url": props.get("invite_url")}
    if benefit_type == "github_repository":
        return {
            "repository_owner": props["repository_owner"],
            "repository_name": props["repository_name"],
            "invite_url": props.get("invite_url"),
        }
    if benefit_type == "meter_credit":
        return {"units": props["units"], "rollover": props.get("rollover", False), "meter_id": props["meter_id"]}
    return props


def _grant_error(text: str | None) -> BenefitGrantError | None:
    data = _json(text, None)
    try:
        return msgspec.convert(data, BenefitGrantError, strict=False) if isinstance(data, dict) else None
    except msgspec.ValidationError:
        return None


def customer_grant_out(row: sqlite3.Row, customer: Customer, organization: Organization) -> CustomerBenefitGrant:
    """A grant row of ``benefit_reads`` (with its benefit's columns) as the customer portal's grant."""
    return CustomerBenefitGrant(
        created_at=row["created_at"],
        modified_at=row["modified_at"],
        id=row["id"],
        granted_at=row["granted_at"],
        revoked_at=row["revoked_at"],
        customer_id=row["customer_id"],
        benefit_id=row["benefit_id"],
        subscription_id=row["subscription_id"],
        order_id=row["order_id"],
        is_granted=row["granted_at"] is not None and row["revoked_at"] is None,
        is_revoked=row["revoked_at"] is not None,
        error=_grant_error(row["error"]),
        customer=portal_customer_out(customer),
        benefit=BenefitSubscriber(
            **_benefit_base_fields(row, "benefit_"),
            organization=subscriber_organization(organization),
            properties=subscriber_properties(row["benefit_type"], row["benefit_properties"]),
        ),
        properties=_json(row["properties"], {}),
    )


# --- license keys ------------------------------------------------------------------------------------------------


def activation_out(row: sqlite3.Row) -> LicenseKeyActivationBase:
    return LicenseKeyActivationBase(
        id=row["id"],
        license_key_id=row["license_key_id"],
        label=row["label"],
        meta=_json(row["meta"], {}),
        created_at=row["created_at"],
        modified_at=row["modified_at"],
    )


def license_key_source(row: sqlite3.Row | None) -> dict[str, Any]:
    """API 2027-01's ``subscription``/``order`` of a granted key: the subscription when a subscription granted
    it, else the one-time order (Polar: ``order`` is only ever a one-time order)."""
    if row is not None and row["s_id"] is not None:
        subscription = LicenseKeySubscription(
            id=row["s_id"],
            status=row["s_status"],
            current_period_start=row["s_current_period_start"],
            # As for subscriptions: Polar always has a period end; an ended one's last period ends when it ended.
            current_period_end=row["s_current_period_end"] or row["s_ended_at"] or row["s_current_period_start"],
            cancel_at_period_end=bool(row["s_cancel_at_period_end"]),
            ends_at=row["s_ends_at"],
        )
        return {"subscription_id": subscription.id, "subscription": subscription, "order_id": None, "order": None}
    if row is not None and row["o_id"] is not None:
        order = LicenseKeyOrder(
            id=row["o_id"],
            created_at=row["o_created_at"],
            status=row["o_status"],
            paid=row["o_status"] in PAID_STATUSES,
        )
        return {"subscription_id": None, "subscription": None, "order_id": order.id, "order": order}
    return {"subscription_id": None, "subscription": None, "order_id": None, "order": None}


def license_key_fields(row: sqlite3.Row, customer: CustomerOut) -> dict[str, Any]:
    """A license-key row of ``benefit_reads`` as ``LicenseKeyRead``'s fields, with its holder already converted
    (``customer_out`` for the admin API, ``key_holder_out`` for the customer portal)."""
    return {
        "id": row["id"],
        "created_at": row["created_at"],
        "modified_at": row["modified_at"],
        "organization_id": row["organization_id"],
        "customer_id": row["customer_id"],
        "customer": customer,
        "benefit_id": row["benefit_id"],
        "key": row["key"],
        "display_key": row["display_key"],
        "status": row["status"],
        "limit_activations": row["limit_activations"],
        "usage": row["usage"],
        "limit_usage": row["limit_usage"],
        "validations": row["validations"],
        "last_validated_at": row["last_validated_at"],
        "expires_at": row["expires_at"],
    }


def license_key_out(row: sqlite3.Row, customer: Customer) -> LicenseKeyRead:
    """A key as the customer portal answers it."""
    return LicenseKeyRead(**license_key_fields(row, key_holder_out(customer)))
