"""Finding a customer from whatever the seller has in hand: an email (exact or its beginning), a name's beginning,
an order's receipt or invoice number or id, an invoice number, the customer's external id or id, a processor's id
(customer, order, payment or subscription: ``connector_links``), a subscription's id or external id, or the
beginning of a license key.

No SQL here: each kind is one indexed read of its area (``portal.<area>.reads`` with the organization's
``Scope``; the plans are checked in ``tests/test_console_customer_plans.py``), and every customer found is read back
through ``customers.reads.customers_by_ids`` with the same scope, so nothing of another organization is ever shown.
Each hit says what matched.
"""

from __future__ import annotations

import re

import msgspec

from portal import i18n
from portal.benefits import reads as benefit_reads
from portal.connectors import links as connector_links
from portal.customers import reads as customer_reads
from portal.customers.reads import Customer
from portal.db import Database
from portal.invoices import queries as invoice_queries
from portal.orders import reads as order_reads
from portal.scope import Scope
from portal.subscriptions import reads as subscription_reads

MAX_QUERY = 200
_KEY_PREFIX = re.compile(r"^[A-Za-z0-9-]{4,}$")
_NO_SPACE = re.compile(r"^\S+$")


class Match(msgspec.Struct, frozen=True, kw_only=True):
    kind: str  # a key of ``kind_labels()``
    value: str  # what matched, as the seller sees it (the receipt number, the masked key, …)


class Hit(msgspec.Struct, frozen=True, kw_only=True):
    customer: Customer
    matches: list[Match]


def kind_labels() -> dict[str, str]:
    _ = i18n.gettext
    return {
        "email": _("Email"),
        "email_prefix": _("Email starts with"),
        "name": _("Name starts with"),
        "external_id": _("External ID"),
        "customer_id": _("Customer ID"),
        "receipt_number": _("Receipt number"),
        "invoice_number": _("Invoice number"),
        "order_id": _("Order ID"),
        "order_external_id": _("Order external ID"),
        "subscription_id": _("Subscription ID"),
        "subscription_external_id": _("Subscription external ID"),
        "processor": _("Processor ID"),
        "license_key": _("License key starts with"),
    }


async def search(db: Database, organization_id: str, query: str) -> list[Hit]:
    """The organization's customers matching ``query`` in any way, each with what matched; exact matches first."""
    q = " ".join(query.split())[:MAX_QUERY]
    if not q:
        return []
    scope = Scope.of_organization(organization_id)
    found: dict[str, list[Match]] = {}

    def add(customer_id: str, kind: str, value: str) -> None:
        matches = found.setdefault(customer_id, [])
        if not any(m.kind == kind and m.value == value for m in matches):
            matches.append(Match(kind=kind, value=value))

    exact_email = await customer_reads.get_customer_by_email(db, scope, q) if "@" in q else None
    if exact_email is not None:
        add(exact_email.id, "email", exact_email.email)
    for customer in await customer_reads.search_by_external_id(db, scope, q):
        add(customer.id, "external_id", q)
    for customer in await customer_reads.customers_by_ids(db, scope, [q]):
        add(customer.id, "customer_id", q)
    for customer_id, order_id, column in await order_reads.customers_by_order_reference(db, scope, q):
        kind = {"id": "order_id", "external_id": "order_external_id"}.get(column, column)
        add(customer_id, kind, q if column != "id" else order_id)
    for customer_id, _order_id in await invoice_queries.customers_by_invoice_number(db, scope, q):
        add(customer_id, "invoice_number", q)
    for customer_id, _sub_id, column in await subscription_reads.customers_by_subscription_reference(db, scope, q):
        add(customer_id, "subscription_id" if column == "id" else "subscription_external_id", q)
    for row in await connector_links.portal_ids_for_processor_id(db, organization_id, q):
        label = f"{row['processor']} {row['kind']} {q}"
        portal_id = str(row["portal_id"])
        owners = [c.id for c in await customer_reads.customers_by_ids(db, scope, [portal_id])]
        owners += [c for c, _, _ in await order_reads.customers_by_order_reference(db, scope, portal_id)]
        owners += [c for c, _, _ in await subscription_reads.customers_by_subscription_reference(db, scope, portal_id)]
        for customer_id in owners:
            add(customer_id, "processor", label)
    if _NO_SPACE.match(q):
        for customer in await customer_reads.search_by_email_prefix(db, scope, q):
            if customer.email.lower() != q.lower():
                add(customer.id, "email_prefix", q)
    for customer in await customer_reads.search_by_name_prefix(db, scope, q):
        add(customer.id, "name", customer.name or q)
    if _KEY_PREFIX.match(q):
        for customer_id, display in await benefit_reads.customers_by_key_prefix(db, scope, q):
            add(customer_id, "license_key", display)
    if not found:
        return []
    # Read back through the organization's scope: a link or reference can only name this organization's customer.
    customers = {c.id: c for c in await customer_reads.customers_by_ids(db, scope, list(found))}
    return [Hit(customer=customers[cid], matches=matches) for cid, matches in found.items() if cid in customers]
