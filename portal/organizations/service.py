"""Write side of organizations: create/update with their rules (slug, receipt prefix, currency, locale, colour)
and gap-free receipt-number allocation inside the caller's write transaction."""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime
from functools import cache
from typing import Any

import msgspec
from babel import Locale, UnknownLocaleError
from babel.numbers import list_currencies

from portal.clock import iso, new_id
from portal.db import Transaction
from portal.errors import Conflict, DomainError, InvalidInput, NotFound
from portal.fields import single_line_problem
from portal.notifications.org_settings import email_settings_problems
from portal.organizations.customer_actions import customer_actions_problems

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$")
RECEIPT_PREFIX_RE = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,15}$")
ACCENT_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# First path segments the app itself uses: an organization may not shadow them.
RESERVED_SLUGS = frozenset(
    {
        "v1",
        "api",
        "admin",
        "docs",
        "schema",
        "static",
        "assets",
        "health",
        "healthz",
        "portal",
        "login",
        "console",
    }
)


class OrganizationInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A whole organization (create, or the merged state an update is checked against)."""

    slug: str
    name: str
    avatar_url: str | None = None
    website_url: str | None = None
    support_email: str | None = None
    address: str | None = None
    receipt_prefix: str | None = None  # None: upper-cased slug letters ("acme" -> "ACME")
    default_currency: str = "usd"
    default_locale: str = "en"
    accent_color: str = "#2563eb"
    allow_plan_change: bool = True
    allow_seats: bool = False
    show_usage: bool = True
    allow_email_change: bool = False
    settings: dict[str, Any] = {}
    external_id: str | None = None
    email_sender_name: str | None = None
    email_reply_to: str | None = None
    resubscribe_url: str | None = None


class OrganizationUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Fields to change; anything left UNSET keeps its value."""

    slug: str | msgspec.UnsetType = msgspec.UNSET
    name: str | msgspec.UnsetType = msgspec.UNSET
    avatar_url: str | msgspec.UnsetType | None = msgspec.UNSET
    website_url: str | msgspec.UnsetType | None = msgspec.UNSET
    support_email: str | msgspec.UnsetType | None = msgspec.UNSET
    address: str | msgspec.UnsetType | None = msgspec.UNSET
    receipt_prefix: str | msgspec.UnsetType | None = msgspec.UNSET
    default_currency: str | msgspec.UnsetType = msgspec.UNSET
    default_locale: str | msgspec.UnsetType = msgspec.UNSET
    accent_color: str | msgspec.UnsetType = msgspec.UNSET
    allow_plan_change: bool | msgspec.UnsetType = msgspec.UNSET
    allow_seats: bool | msgspec.UnsetType = msgspec.UNSET
    show_usage: bool | msgspec.UnsetType = msgspec.UNSET
    allow_email_change: bool | msgspec.UnsetType = msgspec.UNSET
    settings: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    external_id: str | msgspec.UnsetType | None = msgspec.UNSET
    email_sender_name: str | msgspec.UnsetType | None = msgspec.UNSET
    email_reply_to: str | msgspec.UnsetType | None = msgspec.UNSET
    resubscribe_url: str | msgspec.UnsetType | None = msgspec.UNSET


@cache
def _currencies() -> frozenset[str]:
    return frozenset(code.lower() for code in list_currencies())


def currency_problem(currency: str) -> str | None:
    """Why ``currency`` is unusable (we store lower-case ISO-4217 codes), or None."""
    if currency != currency.lower():
        return f"expected a lower-case ISO-4217 code, got {currency!r}"
    if currency not in _currencies():
        return f"unknown currency {currency!r}"
    return None


def locale_problem(locale: str) -> str | None:
    try:
        Locale.parse(locale.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return f"unknown locale {locale!r}"
    return None


def email_problem(email: str) -> str | None:
    if len(email) > 320 or not EMAIL_RE.match(email):
        return f"not an email address: {email!r}"
    return None


def sender_name_problem(name: str) -> str | None:
    """A From display name: 1-100 printable characters, no line breaks (a header-injection attempt otherwise)."""
    if not name.strip() or len(name) > 100:
        return "expected 1-100 characters"
    if any(not char.isprintable() for char in name):
        return "must not contain line breaks or control characters"
    return None


def default_receipt_prefix(slug: str) -> str:
    """``acme`` -> ``ACME``; ``lumen-studio-2`` -> ``LUMENSTUDIO2`` (at most 12 characters)."""
    return re.sub(r"[^A-Z0-9]", "", slug.upper())[:12] or "R"


def check_organization(data: OrganizationInput) -> list[DomainError]:
    """Every rule an organization breaks (empty: fine). Services raise the first; the seed loader lists all."""
    problems: list[DomainError] = []
    if not SLUG_RE.match(data.slug):
        problems.append(InvalidInput("expected lower-case letters, digits and dashes (1-48 chars)", "slug"))
    elif data.slug in RESERVED_SLUGS:
        problems.append(InvalidInput(f"{data.slug!r} is reserved", "slug"))
    if not data.name.strip():
        problems.append(InvalidInput("must not be empty", "name"))
    elif (message := single_line_problem(data.name)) is not None:  # it is in every email's subject
        problems.append(InvalidInput(message, "name"))
    if data.receipt_prefix is not None and not RECEIPT_PREFIX_RE.match(data.receipt_prefix):
        problems.append(InvalidInput("expected upper-case letters, digits and dashes (1-16)", "receipt_prefix"))
    if (message := currency_problem(data.default_currency)) is not None:
        problems.append(InvalidInput(message, "default_currency"))
    if (message := locale_problem(data.default_locale)) is not None:
        problems.append(InvalidInput(message, "default_locale"))
    if not ACCENT_COLOR_RE.match(data.accent_color):
        problems.append(InvalidInput("expected a #rrggbb colour", "accent_color"))
    if data.support_email is not None and (message := email_problem(data.support_email)):
        problems.append(InvalidInput(message, "support_email"))
    if data.email_reply_to is not None and (message := email_problem(data.email_reply_to)):
        problems.append(InvalidInput(message, "email_reply_to"))
    if data.email_sender_name is not None and (message := sender_name_problem(data.email_sender_name)):
        problems.append(InvalidInput(message, "email_sender_name"))
    for field in ("avatar_url", "website_url"):
        url = getattr(data, field)
        if url is not None and not url.startswith(("https://", "http://", "/")):
            problems.append(InvalidInput("expected an http(s) URL", field))
    if data.resubscribe_url is not None and not re.match(r"^https?://[^\s/]+[^\s]{0,1990}$", data.resubscribe_url):
        problems.append(InvalidInput("expected an absolute http(s) URL", "resubscribe_url"))
    problems.extend(email_settings_problems(data.settings))
    problems.extend(customer_actions_problems(data.settings))
    return problems


def _raise_first(problems: list[DomainError]) -> None:
    if problems:
        raise problems[0]


async def _check_unique(tx: Transaction, data: OrganizationInput, organization_id: str | None) -> None:
    other = await tx.fetchval(
        "SELECT id FROM organizations WHERE slug = ? AND id IS NOT ?", (data.slug, organization_id)
    )
    if other is not None:
        raise Conflict(f"an organization with slug {data.slug!r} exists", "slug")
    if data.external_id is not None:
        other = await tx.fetchval(
            "SELECT id FROM organizations WHERE external_id = ? AND id IS NOT ?",
            (data.external_id, organization_id),
        )
        if other is not None:
            raise Conflict("an organization with this external_id exists", "external_id")


async def create_organization(tx: Transaction, data: OrganizationInput, *, now: datetime) -> str:
    """Insert an organization; returns its id."""
    _raise_first(check_organization(data))
    await _check_unique(tx, data, None)
    organization_id = new_id()
    await tx.execute(
        """
        INSERT INTO organizations (
            id,
            slug,
            name,
            avatar_url,
            website_url,
            support_email,
            address,
            receipt_prefix,
            default_currency,
            default_locale,
            accent_color,
            allow_plan_change,
            allow_seats,
            show_usage,
            allow_email_change,
            settings,
            external_id,
            email_sender_name,
            email_reply_to,
            resubscribe_url,
            created_at
        ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        (
            organization_id,
            data.slug,
            data.name.strip(),
            data.avatar_url,
            data.website_url,
            data.support_email,
            data.address,
            data.receipt_prefix or default_receipt_prefix(data.slug),
            data.default_currency,
            data.default_locale,
            data.accent_color,
            data.allow_plan_change,
            data.allow_seats,
            data.show_usage,
            data.allow_email_change,
            msgspec.json.encode(data.settings).decode(),
            data.external_id,
            data.email_sender_name.strip() if data.email_sender_name else None,
            data.email_reply_to,
            data.resubscribe_url,
            iso(now),
        ),
    )
    return organization_id


async def get_organization_row(tx: Transaction, organization_id: str) -> sqlite3.Row:
    row = await tx.fetchone("SELECT * FROM organizations WHERE id = ?", (organization_id,))
    if row is None:
        raise NotFound("organization not found")
    return row


async def find_organization_id(
    tx: Transaction, *, slug: str | None = None, external_id: str | None = None
) -> str | None:
    """The id of the organization with this external_id (preferred) or slug, or None."""
    if external_id is not None:
        found = await tx.fetchval("SELECT id FROM organizations WHERE external_id = ?", (external_id,))
        if found is not None:
            return found
    if slug is not None:
        return await tx.fetchval("SELECT id FROM organizations WHERE slug = ?", (slug,))
    return None


def _input_from_row(row: sqlite3.Row) -> OrganizationInput:
    return OrganizationInput(
        slug=row["slug"],
        name=row["name"],
        avatar_url=row["avatar_url"],
        website_url=row["website_url"],
        support_email=row["support_email"],
        address=row["address"],
        receipt_prefix=row["receipt_prefix"],
        default_currency=row["default_currency"],
        default_locale=row["default_locale"],
        accent_color=row["accent_color"],
        allow_plan_change=bool(row["allow_plan_change"]),
        allow_seats=bool(row["allow_seats"]),
        show_usage=bool(row["show_usage"]),
        allow_email_change=bool(row["allow_email_change"]),
        settings=msgspec.json.decode(row["settings"]),
        external_id=row["external_id"],
        email_sender_name=row["email_sender_name"],
        email_reply_to=row["email_reply_to"],
        resubscribe_url=row["resubscribe_url"],
    )


async def update_organization(
    tx: Transaction,
    organization_id: str,
    changes: OrganizationUpdate | OrganizationInput,
    *,
    now: datetime,
) -> None:
    """Apply ``changes`` (UNSET fields kept; a full ``OrganizationInput`` replaces everything).

    The receipt counter is never touched, and a prefix left as None keeps the current one, so receipts
    already issued stay valid."""
    current = _input_from_row(await get_organization_row(tx, organization_id))
    merged = msgspec.structs.replace(
        current,
        **{
            field: value
            for field in changes.__struct_fields__
            if (value := getattr(changes, field)) is not msgspec.UNSET
        },
    )
    if merged.receipt_prefix is None:
        merged = msgspec.structs.replace(merged, receipt_prefix=current.receipt_prefix)
    _raise_first(check_organization(merged))
    await _check_unique(tx, merged, organization_id)
    await tx.execute(
        """
        UPDATE organizations SET
            slug = ?,
            name = ?,
            avatar_url = ?,
            website_url = ?,
            support_email = ?,
            address = ?,
            receipt_prefix = ?,
            default_currency = ?,
            default_locale = ?,
            accent_color = ?,
            allow_plan_change = ?,
            allow_seats = ?,
            show_usage = ?,
            allow_email_change = ?,
            settings = ?,
            external_id = ?,
            email_sender_name = ?,
            email_reply_to = ?,
            resubscribe_url = ?,
            modified_at = ?
        WHERE id = ?
        """,
        (
            merged.slug,
            merged.name.strip(),
            merged.avatar_url,
            merged.website_url,
            merged.support_email,
            merged.address,
            merged.receipt_prefix,
            merged.default_currency,
            merged.default_locale,
            merged.accent_color,
            merged.allow_plan_change,
            merged.allow_seats,
            merged.show_usage,
            merged.allow_email_change,
            msgspec.json.encode(merged.settings).decode(),
            merged.external_id,
            merged.email_sender_name.strip() if merged.email_sender_name else None,
            merged.email_reply_to,
            merged.resubscribe_url,
            iso(now),
            organization_id,
        ),
    )


async def allocate_receipt_number(tx: Transaction, organization_id: str) -> str:
    """Take the organization's next receipt number, e.g. ``ACME-0007``.

    Gap-free: the counter moves inside the caller's write transaction, so a rollback returns the number."""
    row = await tx.fetchone(
        """
        UPDATE organizations
        SET next_receipt_number = next_receipt_number + 1
        WHERE id = ?
        RETURNING next_receipt_number - 1 AS number, receipt_prefix
        """,
        (organization_id,),
    )
    if row is None:
        raise NotFound("organization not found")
    return f"{row['receipt_prefix']}-{int(row['number']):04d}"
