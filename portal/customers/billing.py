"""Billing details a customer edits in the portal (name, address with country, tax id): form validation with
per-field messages, and saving them. Orders paid afterwards snapshot these; earlier receipts keep theirs.

Polar's rules for the customer's own edits hold on the HTML page and on ``PATCH /v1/customer-portal/customers/me``
alike: a tax ID is validated against the billing country (``portal.customers.tax_ids``, in the customer service),
and a billing address, once set, can be changed but not removed."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

import msgspec
from babel import Locale

from portal.customers.reads import Customer
from portal.customers.service import Address, CustomerUpdate, update_customer
from portal.customers.tax_ids import typed_tax_id
from portal.db import Database
from portal.errors import InvalidInput
from portal.i18n import current_locale
from portal.i18n import gettext as _
from portal.sessions.store import SessionContext
from portal.subscriptions.actions import record_event

# CLDR territory codes that are not countries one can live in.
NOT_COUNTRIES = frozenset({"ZZ", "EU", "EZ", "UN", "QO", "XA", "XB"})
LIMITS = {
    "billing_name": 200,
    "line1": 200,
    "line2": 200,
    "postal_code": 20,
    "city": 100,
    "state": 100,
    "tax_id": 40,
}


class BillingForm(msgspec.Struct, kw_only=True):
    """The form as posted; every field is text (empty = not given)."""

    billing_name: str = ""
    line1: str = ""
    line2: str = ""
    postal_code: str = ""
    city: str = ""
    state: str = ""
    country: str = ""
    tax_id: str = ""

    @classmethod
    def from_customer(cls, billing_name: str | None, address: dict[str, str] | None, tax_id: str | None) -> BillingForm:
        address = address or {}
        return cls(
            billing_name=billing_name or "",
            line1=address.get("line1") or "",
            line2=address.get("line2") or "",
            postal_code=address.get("postal_code") or "",
            city=address.get("city") or "",
            state=address.get("state") or "",
            country=address.get("country") or "",
            tax_id=tax_id or "",
        )


@lru_cache(maxsize=4)
def countries(locale: str = "en") -> list[tuple[str, str]]:
    """(ISO-3166 alpha-2 code, name) pairs sorted by name, from Babel's CLDR data."""
    try:
        territories = Locale.parse(locale.replace("-", "_")).territories
    except (ValueError, TypeError):
        territories = Locale("en").territories
    pairs = [
        (code, name)
        for code, name in territories.items()
        if len(code) == 2 and code.isalpha() and code not in NOT_COUNTRIES
    ]
    return sorted(pairs, key=lambda pair: pair[1])


def validate_billing(
    form: BillingForm, *, has_address: bool = False, check_tax_id: bool = True
) -> tuple[CustomerUpdate, dict[str, str]]:
    """The customer update for a valid form, and ``{field: message}`` for every problem (empty when valid).

    An address needs a country, line 1 and a city; a country alone is enough for tax purposes only if no other
    address line is given. ``has_address``: the customer has one stored, which clearing every field cannot remove.
    ``check_tax_id``: word a tax ID the country refuses for the page, next to the form's other problems (the
    customer service checks it again when saving, in Polar's words, which the API answers)."""
    values = {field: getattr(form, field).strip() for field in form.__struct_fields__}
    errors: dict[str, str] = {}
    for field, limit in LIMITS.items():
        if len(values[field]) > limit:
            errors[field] = _("Use at most %(limit)d characters.") % {"limit": limit}
    country = values["country"].upper()
    codes = {code for code, _ in countries()}
    address_fields = ("line1", "line2", "postal_code", "city", "state")
    address_given = any(values[field] for field in address_fields)
    if country and country not in codes:
        errors["country"] = _("Choose a country from the list.")
    if address_given and not country:
        errors["country"] = _("Choose the country of this address.")
    if has_address and not country and not address_given:
        errors["country"] = _("A billing address can be changed but not removed.")
    if address_given and not values["line1"]:
        errors.setdefault("line1", _("Enter the street address."))
    if address_given and not values["city"]:
        errors.setdefault("city", _("Enter the city."))
    tax_id_checkable = check_tax_id and values["tax_id"] and not {"tax_id", "country"} & errors.keys()
    if tax_id_checkable and typed_tax_id(values["tax_id"], country or None) is None:
        errors["tax_id"] = _invalid_tax_id(country or None)
    address = None
    if country:
        address = Address(
            line1=values["line1"] or None,
            line2=values["line2"] or None,
            postal_code=values["postal_code"] or None,
            city=values["city"] or None,
            state=values["state"] or None,
            country=country,
        )
    update = CustomerUpdate(
        billing_name=values["billing_name"] or None,
        billing_address=address,
        tax_id=values["tax_id"] or None,
    )
    return update, errors


def stored_problems(customer: Customer) -> dict[str, str]:
    """Problems of what is stored, shown when the page opens: a tax ID saved before tax IDs were validated that
    is not valid for the billing country (the API answers no tax ID for it until the customer corrects it)."""
    country = (customer.billing_address_dict or {}).get("country")
    if customer.tax_id and typed_tax_id(customer.tax_id, country) is None:
        return {"tax_id": _invalid_tax_id(country)}
    return {}


def _invalid_tax_id(country: str | None) -> str:
    if not country:
        return _("Choose your country: a tax ID is checked against it.")
    name = dict(countries(current_locale())).get(country, country)
    return _("This is not a valid tax ID for %(country)s.") % {"country": name}


async def save_billing(
    db: Database, context: SessionContext, form: BillingForm, *, now: datetime, api: bool = False
) -> dict[str, str]:
    """Validate and save; returns field errors (nothing is written when there are any).

    ``api``: answer the customer service's own words and field (Polar's: ``billing_address``, ``tax_id``) for a
    refused tax ID instead of the page's translated sentence."""
    has_address = context.customer.billing_address is not None
    update, errors = validate_billing(form, has_address=has_address, check_tax_id=not api)
    if errors:
        return errors
    try:
        # A short, hot write: its statements at once on the loop, not a hop each (bench/README.md, floods).
        async with db.write_inline() as tx:
            await update_customer(tx, context.customer.id, update, now=now, organization_id=context.organization.id)
            await record_event(
                tx,
                organization_id=context.organization.id,
                customer_id=context.customer.id,
                name="customer.billing_updated",
                subject_id=context.customer.id,
                now=now,
            )
    except InvalidInput as exc:
        if api:
            return {exc.field or "billing_name": exc.message}
        if exc.field in ("tax_id", "billing_address"):
            return {"tax_id": _invalid_tax_id(update.billing_address.country if update.billing_address else None)}
        field = (exc.field or "billing_name").removeprefix("billing_address.")
        return {field: exc.message}
    return {}
