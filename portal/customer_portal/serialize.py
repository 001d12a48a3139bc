"""Rows → the Polar-shaped Structs of ``models``, plus the batch loaders that assemble nested objects (an order's
product with its prices, benefits and organization; its subscription; its items) for a whole page at once."""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import msgspec

from portal.benefits.service import load_properties
from portal.customer_portal import catalog
from portal.customer_portal.models import (
    BenefitGrantError,
    BenefitPublic,
    BenefitSubscriber,
    BenefitSubscriberOrganization,
    CustomerBenefitGrant,
    CustomerOrder,
    CustomerOrganization,
    CustomerOrganizationFeatureSettings,
    CustomerPortalCustomer,
    CustomerPortalCustomerSettings,
    CustomerPortalSubscriptionSettings,
    CustomerProductWithOrganization,
    CustomerSubscription,
    LicenseKeyActivationBase,
    LicenseKeyCustomer,
    LicenseKeyOrder,
    LicenseKeyRead,
    LicenseKeySubscription,
    OrganizationCustomerPortalSettings,
    ProductBase,
)
from portal.customers.reads import Customer
from portal.customers.tax_ids import typed_tax_id
from portal.db import Database, row_dict, row_dicts
from portal.orders import reads as order_reads
from portal.organizations.queries import Organization
from portal.polar import convert
from portal.polar.models import Address, CustomerPortalUsageSettings, OrderItem, ProductPrice, SubscriptionBase
from portal.products import reads as product_reads
from portal.subscriptions import reads as subscription_reads

PAID_STATUSES = frozenset({"paid", "refunded", "partially_refunded"})


def _json(text: str | None, default: Any) -> Any:
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


# --- organization and products ---------------------------------------------------------------------------


def organization_out(org: Organization) -> CustomerOrganization:
    return CustomerOrganization(
        created_at=org.created_at,
        modified_at=org.modified_at,
        id=org.id,
        name=org.name,
        slug=org.slug,
        avatar_url=org.avatar_url,
        customer_portal_settings=OrganizationCustomerPortalSettings(
            usage=CustomerPortalUsageSettings(show=org.show_usage),
            subscription=CustomerPortalSubscriptionSettings(
                update_seats=org.allow_seats, update_plan=org.allow_plan_change
            ),
            customer=CustomerPortalCustomerSettings(allow_email_change=org.allow_email_change),
        ),
        organization_features=CustomerOrganizationFeatureSettings(),
    )


def subscriber_organization(org: Organization) -> BenefitSubscriberOrganization:
    return BenefitSubscriberOrganization(
        created_at=org.created_at,
        modified_at=org.modified_at,
        id=org.id,
        name=org.name,
        slug=org.slug,
        avatar_url=org.avatar_url,
    )


def price_out(row: sqlite3.Row) -> ProductPrice:
    """A catalog row of ``product_reads.price_rows_by_product`` as Polar's price (the one converter)."""
    return convert.price_out(msgspec.convert(row_dict(row), product_reads.PriceRecord, strict=False))


def benefit_public(row: sqlite3.Row) -> BenefitPublic:
    properties = None
    if row["type"] == "meter_credit":
        props = _json(row["properties"], {})
        properties = {"units": props.get("units", 0), "meter_id": props.get("meter_id", "")}
    return BenefitPublic(
        id=row["id"],
        created_at=row["created_at"],
        modified_at=row["modified_at"],
        type=row["type"],
        description=row["description"],
        is_deleted=row["deleted_at"] is not None,
        organization_id=row["organization_id"],
        properties=properties,
    )


def _product_fields(row: sqlite3.Row, prices: Sequence[sqlite3.Row], benefits: Sequence[sqlite3.Row]) -> dict[str, Any]:
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
        "prices": [price_out(price) for price in prices],
        "benefits": [benefit_public(benefit) for benefit in benefits],
    }


async def load_products(
    db: Database, organization: Organization, product_ids: Sequence[str | None]
) -> dict[str, CustomerProductWithOrganization]:
    """The products (with active prices, live benefits and the organization), from the per-process catalog cache
    (``portal.customer_portal.catalog``), reading what is not cached yet in three queries. Shared objects: callers
    must not change them."""
    return await catalog.cached_products(db, organization, product_ids, _read_products)


async def _read_products(
    db: Database, organization: Organization, product_ids: Sequence[str]
) -> dict[str, CustomerProductWithOrganization]:
    rows = await product_reads.product_rows_by_id(db, product_ids)
    ids = list(rows)
    prices = await product_reads.price_rows_by_product(db, ids)
    benefits = await product_reads.benefit_rows_by_product(db, ids)
    org = organization_out(organization)
    return {
        pid: CustomerProductWithOrganization(
            **_product_fields(row, prices.get(pid, []), benefits.get(pid, [])), organization=org
        )
        for pid, row in rows.items()
    }


async def public_products(db: Database, organization: Organization) -> list[ProductBase]:
    rows = await product_reads.public_product_rows(db, organization.id)
    ids = [row["id"] for row in rows]
    prices = await product_reads.price_rows_by_product(db, ids)
    benefits = await product_reads.benefit_rows_by_product(db, ids)
    return [ProductBase(**_product_fields(row, prices.get(row["id"], []), benefits.get(row["id"], []))) for row in rows]


# --- customer --------------------------------------------------------------------------------------------


def customer_out(customer: Customer) -> CustomerPortalCustomer:
    return CustomerPortalCustomer(
        created_at=customer.created_at,
        modified_at=customer.modified_at,
        id=customer.id,
        email=customer.email,
        email_verified=customer.email_verified,
        name=customer.name,
        billing_name=customer.billing_name,
        billing_address=address_out(customer.billing_address),
        tax_id=tax_id_out(customer.tax_id, customer.billing_address),
        locale=customer.locale,
    )


def license_key_customer(customer: Customer) -> LicenseKeyCustomer:
    return LicenseKeyCustomer(
        id=customer.id,
        created_at=customer.created_at,
        modified_at=customer.modified_at,
        external_id=customer.external_id,
        email=customer.email,
        email_verified=customer.email_verified,
        name=customer.name,
        billing_name=customer.billing_name,
        billing_address=address_out(customer.billing_address),
        tax_id=tax_id_out(customer.tax_id, customer.billing_address),
        locale=customer.locale,
        organization_id=customer.organization_id,
    )


# --- subscriptions ---------------------------------------------------------------------------------------


def _subscription_fields(row: Mapping[str, Any]) -> dict[str, Any]:
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
    return SubscriptionBase(**_subscription_fields(row))


async def subscriptions_out(
    db: Database, organization: Organization, rows: Sequence[sqlite3.Row]
) -> list[CustomerSubscription]:
    products = await load_products(db, organization, [row["product_id"] for row in rows])
    dicts = row_dicts(rows)  # by name, a dict is faster than sqlite3.Row (see orders_out)
    return [
        CustomerSubscription(
            **_subscription_fields(row),
            product=products[row["product_id"]],
            prices=[p for p in products[row["product_id"]].prices if p.id == row["price_id"]]
            or products[row["product_id"]].prices[:1],
        )
        for row in dicts
    ]


# --- orders ----------------------------------------------------------------------------------------------


_ORDER_ITEMS = msgspec.json.Decoder(list[OrderItem])


class CustomerOrderWire(CustomerOrder, kw_only=True):
    """A ``CustomerOrder`` as a page of orders puts it on the wire: the documented model's fields, in its order (a
    subclass keeps them, so the JSON is the same object), with the embedded product as its JSON encoding made once
    per cached product (``catalog.cached_products_encoded``): the ten orders of a page embed the same few products,
    60% of the answer's bytes. A single order is a plain ``CustomerOrder``; both are built by ``build_order``.
    tests/test_order_serialization.py checks every field by name, and the list against the single orders."""

    # Encoded inline by msgspec; the annotation differs from the model's only in being pre-encoded.
    product: msgspec.Raw | None  # type: ignore[assignment]


OrderT = TypeVar("OrderT", bound=CustomerOrder)


def build_order(
    model: type[OrderT],
    row: order_reads.OrderRow,
    product: Any,
    product_name: str | None,
    subscription: SubscriptionBase | None,
) -> OrderT:
    """One order as ``model`` (``CustomerOrder``, or ``CustomerOrderWire`` with ``product`` pre-encoded)."""
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


async def _order_subscriptions(db: Database, orders: Sequence[order_reads.OrderRow]) -> dict[str, SubscriptionBase]:
    by_id = await subscription_reads.subscription_rows_by_id(db, [order.subscription_id for order in orders])
    return dict(zip(by_id, map(subscription_base, row_dicts(list(by_id.values()))), strict=True))


async def orders_out(db: Database, organization: Organization, rows: Sequence[sqlite3.Row]) -> list[CustomerOrder]:
    """Orders with items, product and subscription, in a fixed number of queries (one order's answer)."""
    orders = order_reads.order_rows(rows)
    products = await load_products(db, organization, [order.product_id for order in orders])
    subscriptions = await _order_subscriptions(db, orders)
    out = []
    for row in orders:
        product = products.get(row.product_id) if row.product_id else None
        name = product.name if product is not None else None
        subscription = subscriptions.get(row.subscription_id) if row.subscription_id else None
        out.append(build_order(CustomerOrder, row, product, name, subscription))
    return out


async def orders_wire(db: Database, organization: Organization, rows: Sequence[sqlite3.Row]) -> list[CustomerOrderWire]:
    """A page of orders as ``CustomerOrderWire``s (see above), in a fixed number of queries. The rows are read by
    position (``order_reads.order_rows``): ``sqlite3.Row["name"]`` compares the name with each column in turn, and a
    dict per row costs more than the rest of the order (bench/README.md)."""
    orders = order_reads.order_rows(rows)
    product_ids = [order.product_id for order in orders]
    products = await catalog.cached_products_encoded(db, organization, product_ids, _read_products)
    subscriptions = await _order_subscriptions(db, orders)
    out = []
    for row in orders:
        product, encoded = products.get(row.product_id, _NO_PRODUCT) if row.product_id else _NO_PRODUCT
        name = product.name if product is not None else None
        subscription = subscriptions.get(row.subscription_id) if row.subscription_id else None
        out.append(build_order(CustomerOrderWire, row, encoded, name, subscription))
    return out


_NO_PRODUCT: tuple[None, None] = (None, None)


# --- benefit grants --------------------------------------------------------------------------------------


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


def grant_out(row: sqlite3.Row, customer: Customer, organization: Organization) -> CustomerBenefitGrant:
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
        customer=customer_out(customer),
        benefit=BenefitSubscriber(
            id=row["benefit_id"],
            created_at=row["benefit_created_at"],
            modified_at=row["benefit_modified_at"],
            type=row["benefit_type"],
            description=row["benefit_description"],
            is_deleted=row["benefit_deleted_at"] is not None,
            organization_id=row["organization_id"],
            organization=subscriber_organization(organization),
            properties=subscriber_properties(row["benefit_type"], row["benefit_properties"]),
        ),
        properties=_json(row["properties"], {}),
    )


# --- license keys ----------------------------------------------------------------------------------------


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


def license_key_fields(row: sqlite3.Row, customer: Customer) -> dict[str, Any]:
    return {
        "id": row["id"],
        "created_at": row["created_at"],
        "modified_at": row["modified_at"],
        "organization_id": row["organization_id"],
        "customer_id": row["customer_id"],
        "customer": license_key_customer(customer),
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
    return LicenseKeyRead(**license_key_fields(row, customer))


def sha256_base64(hex_digest: str | None) -> str | None:
    if not hex_digest:
        return None
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()
