"""Write side of customers: create/update with the per-organization uniqueness rules (email, case-insensitive;
external_id) and billing details (name, address, tax id) that orders snapshot when paid."""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime
from typing import Any

import msgspec

from portal.clock import iso, new_id
from portal.customers.tax_ids import InvalidTaxID, validate_tax_id
from portal.db import Transaction
from portal.errors import Conflict, DomainError, InvalidInput, NotFound
from portal.fields import SingleLine
from portal.notifications import hooks as notify
from portal.organizations.service import email_problem, locale_problem

COUNTRY_RE = re.compile(r"^[A-Z]{2}$")


class Address(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A billing address, Polar's ``Address`` shape (``country`` is ISO-3166 alpha-2, upper case)."""

    line1: SingleLine | None = None
    line2: SingleLine | None = None
    postal_code: SingleLine | None = None
    city: SingleLine | None = None
    state: SingleLine | None = None
    country: SingleLine


class CustomerInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    email: str
    name: str | None = None
    external_id: str | None = None
    billing_name: str | None = None
    billing_address: Address | None = None
    tax_id: str | None = None
    locale: str | None = None
    email_verified: bool = False
    metadata: dict[str, Any] = {}


class CustomerUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Fields to change; anything left UNSET keeps its value."""

    email: str | msgspec.UnsetType = msgspec.UNSET
    name: str | msgspec.UnsetType | None = msgspec.UNSET
    external_id: str | msgspec.UnsetType | None = msgspec.UNSET
    billing_name: str | msgspec.UnsetType | None = msgspec.UNSET
    billing_address: Address | msgspec.UnsetType | None = msgspec.UNSET
    tax_id: str | msgspec.UnsetType | None = msgspec.UNSET
    locale: str | msgspec.UnsetType | None = msgspec.UNSET
    email_verified: bool | msgspec.UnsetType = msgspec.UNSET
    metadata: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET


def check_customer(data: CustomerInput) -> list[DomainError]:
    problems: list[DomainError] = []
    if (message := email_problem(data.email.strip())) is not None:
        problems.append(InvalidInput(message, "email"))
    if data.billing_address is not None and not COUNTRY_RE.match(data.billing_address.country):
        problems.append(InvalidInput("expected an upper-case ISO-3166 code", "billing_address.country"))
    if data.locale is not None and (message := locale_problem(data.locale)):
        problems.append(InvalidInput(message, "locale"))
    if data.external_id is not None and not data.external_id.strip():
        problems.append(InvalidInput("must not be empty", "external_id"))
    return problems


async def _check_unique(tx: Transaction, organization_id: str, data: CustomerInput, customer_id: str | None) -> None:
    other = await tx.fetchval(
        """
        SELECT id FROM customers
        WHERE organization_id = ?
          AND email = ? COLLATE NOCASE
          AND deleted_at IS NULL
          AND id IS NOT ?
        """,
        (organization_id, data.email.strip(), customer_id),
    )
    if other is not None:
        raise Conflict("a customer with this email exists", "email")
    if data.external_id is not None:
        other = await tx.fetchval(
            """
            SELECT id FROM customers
            WHERE organization_id = ? AND external_id = ? AND id IS NOT ?
            """,
            (organization_id, data.external_id, customer_id),
        )
        if other is not None:
            raise Conflict("a customer with this external_id exists", "external_id")


def checked_tax_id(tax_id: str | None, address: Address | None) -> str | None:
    """The tax ID to store: validated against the billing country and compacted (Polar's rule and messages).
    ``InvalidInput`` at ``billing_address`` without a country, at ``tax_id`` when no format of the country accepts
    it."""
    if not tax_id:
        return None
    if address is None:
        raise InvalidInput("Country is required to validate tax ID.", "billing_address")
    try:
        value, _format = validate_tax_id(tax_id, address.country)
    except InvalidTaxID:
        raise InvalidInput("Invalid tax ID.", "tax_id") from None
    return value


def _address_json(address: Address | None) -> str | None:
    return None if address is None else msgspec.json.encode(address).decode()


async def create_customer(tx: Transaction, organization_id: str, data: CustomerInput, *, now: datetime) -> str:
    """Insert a customer; returns its id. Duplicate email/external_id in the org -> ``Conflict``."""
    problems = check_customer(data)
    if problems:
        raise problems[0]
    await _check_unique(tx, organization_id, data, None)
    data = msgspec.structs.replace(data, tax_id=checked_tax_id(data.tax_id, data.billing_address))
    customer_id = new_id()
    await tx.execute(
        """
        INSERT INTO customers (
            id,
            organization_id,
            email,
            email_verified,
            name,
            external_id,
            billing_name,
            billing_address,
            tax_id,
            locale,
            metadata,
            created_at
        ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        (
            customer_id,
            organization_id,
            data.email.strip(),
            data.email_verified,
            data.name,
            data.external_id,
            data.billing_name,
            _address_json(data.billing_address),
            data.tax_id,
            data.locale,
            msgspec.json.encode(data.metadata).decode(),
            iso(now),
        ),
    )
    return customer_id


async def get_customer_row(tx: Transaction, customer_id: str, *, organization_id: str | None = None) -> sqlite3.Row:
    """The customer's row; ``NotFound`` if missing, deleted, or in another organization."""
    row = await tx.fetchone("SELECT * FROM customers WHERE id = ? AND deleted_at IS NULL", (customer_id,))
    if row is None or (organization_id is not None and row["organization_id"] != organization_id):
        raise NotFound("customer not found")
    return row


async def find_customer_id(
    tx: Transaction,
    organization_id: str,
    *,
    external_id: str | None = None,
    email: str | None = None,
) -> str | None:
    if external_id is not None:
        return await tx.fetchval(
            "SELECT id FROM customers WHERE organization_id = ? AND external_id = ?",
            (organization_id, external_id),
        )
    if email is not None:
        return await tx.fetchval(
            """
            SELECT id FROM customers
            WHERE organization_id = ? AND email = ? COLLATE NOCASE AND deleted_at IS NULL
            """,
            (organization_id, email.strip()),
        )
    return None


def _input_from_row(row: sqlite3.Row) -> CustomerInput:
    address = row["billing_address"]
    return CustomerInput(
        email=row["email"],
        name=row["name"],
        external_id=row["external_id"],
        billing_name=row["billing_name"],
        billing_address=None if address is None else msgspec.json.decode(address, type=Address),
        tax_id=row["tax_id"],
        locale=row["locale"],
        email_verified=bool(row["email_verified"]),
        metadata=msgspec.json.decode(row["metadata"]),
    )


async def update_customer(
    tx: Transaction,
    customer_id: str,
    changes: CustomerUpdate | CustomerInput,
    *,
    now: datetime,
    organization_id: str | None = None,
) -> None:
    """Apply ``changes`` (UNSET fields kept; a full ``CustomerInput`` replaces everything).

    A changed email loses its verified flag unless the change itself says otherwise. The tax ID is validated
    against the billing country whenever either changes (a stored one is re-validated when the country changes);
    a change that touches neither leaves a tax ID stored before validation existed as it is."""
    row = await get_customer_row(tx, customer_id, organization_id=organization_id)
    current = _input_from_row(row)
    values = {
        field: value for field in changes.__struct_fields__ if (value := getattr(changes, field)) is not msgspec.UNSET
    }
    merged = msgspec.structs.replace(current, **values)
    if (
        merged.email.strip().lower() != current.email.lower()
        and isinstance(changes, CustomerUpdate)
        and changes.email_verified is msgspec.UNSET
    ):
        merged = msgspec.structs.replace(merged, email_verified=False)
    problems = check_customer(merged)
    if problems:
        raise problems[0]
    await _check_unique(tx, row["organization_id"], merged, customer_id)
    if isinstance(changes, CustomerInput) or "tax_id" in values or "billing_address" in values:
        merged = msgspec.structs.replace(merged, tax_id=checked_tax_id(merged.tax_id, merged.billing_address))
    await tx.execute(
        """
        UPDATE customers SET
            email = ?,
            email_verified = ?,
            name = ?,
            external_id = ?,
            billing_name = ?,
            billing_address = ?,
            tax_id = ?,
            locale = ?,
            metadata = ?,
            modified_at = ?
        WHERE id = ?
        """,
        (
            merged.email.strip(),
            merged.email_verified,
            merged.name,
            merged.external_id,
            merged.billing_name,
            _address_json(merged.billing_address),
            merged.tax_id,
            merged.locale,
            msgspec.json.encode(merged.metadata).decode(),
            iso(now),
            customer_id,
        ),
    )
    await notify.customer_updated(tx, customer_id, now=now)
