"""Billing details a customer edits in the portal (name, address with country, tax id): form validation with
per-field messages, and saving them. Orders paid afterwards snapshot these; earlier receipts keep theirs."""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache

import msgspec
from babel import Locale

from portal.customers.service import Address, CustomerUpdate, update_customer
from portal.db import Database
from portal.errors import InvalidInput
from portal.i18n import gettext as _
from portal.sessions.store import SessionContext
from portal.subscriptions.actions import record_event

TAX_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 .\-/]{1,39}$")
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


def validate_billing(form: BillingForm) -> tuple[CustomerUpdate, dict[str, str]]:
    """The customer update for a valid form, and ``{field: message}`` for every problem (empty when valid).

    An address needs a country, line 1 and a city; a country alone is enough for tax purposes only if no other
    address line is given. Clearing every address field removes the address."""
    values = {field: getattr(form, field).strip() for field in form.__struct_fields__}
    errors: dict[str, str] = {}
    for field, limit in LIMITS.items():
        if len(values[field]) > limit:
            errors[field] = _("Use at most %(limit)d characters.") % {"limit": limit}
    country = values["country"].upper()
    codes = {code for code, _ in countries()}
    address_fields = ("line1", "line2", "postal_code", "city", "state")
    has_address = any(values[field] for field in address_fields)
    if country and country not in codes:
        errors["country"] = _("Choose a country from the list.")
    if has_address and not country:
        errors["country"] = _("Choose the country of this address.")
    if has_address and not values["line1"]:
        errors.setdefault("line1", _("Enter the street address."))
    if has_address and not values["city"]:
        errors.setdefault("city", _("Enter the city."))
    if values["tax_id"] and not TAX_ID_RE.match(values["tax_id"]):
        errors.setdefault("tax_id", _("Use letters, digits, spaces, dots, dashes or slashes (2–40 characters)."))
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


async def save_billing(db: Database, context: SessionContext, form: BillingForm, *, now: datetime) -> dict[str, str]:
    """Validate and save; returns field errors (nothing is written when there are any)."""
    update, errors = validate_billing(form)
    if errors:
        return errors
    try:
        async with db.write() as tx:
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
        field = (exc.field or "billing_name").removeprefix("billing_address.")
        return {field: exc.message}
    return {}
