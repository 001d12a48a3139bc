"""Read queries for organizations (by slug, by id), returning ``Organization`` structs."""

from __future__ import annotations

import msgspec

from portal.db import Database, row_dict, row_to
from portal.organizations.customer_actions import customer_actions


class Organization(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    slug: str
    name: str
    avatar_url: str | None = None
    website_url: str | None = None
    support_email: str | None = None
    address: str | None = None
    receipt_prefix: str
    default_currency: str
    default_locale: str
    accent_color: str
    allow_plan_change: bool
    allow_seats: bool
    show_usage: bool
    allow_email_change: bool
    settings: str = "{}"
    # The From line's display name and the Reply-To of this organization's emails (migration 13; None: the
    # PORTAL_MAIL_FROM name, and the support email).
    email_sender_name: str | None = None
    email_reply_to: str | None = None
    # The seller's page where an ended subscription can be taken again (migration 19; None: not offered).
    resubscribe_url: str | None = None
    created_at: str
    modified_at: str | None = None
    # Bumped by triggers on every change to products, prices, benefits and their links (migration 7): the key of
    # the per-process product cache (portal.polar.catalog). Not part of any API output.
    catalog_version: int = 0

    @property
    def seller_tax_id(self) -> str | None:
        """The seller's VAT/tax ID for receipts and invoices (``settings.invoice.tax_id``, set in the console)."""
        return seller_tax_id(self.settings)

    @property
    def allow_cancel(self) -> bool:
        """Customers may cancel their subscriptions (``settings.customer_actions.cancel``, default on)."""
        return customer_actions(self.settings).cancel

    @property
    def allow_key_rotation(self) -> bool:
        """Customers may rotate their license keys (``settings.customer_actions.license_key_rotation``, default on)."""
        return customer_actions(self.settings).license_key_rotation


_COLUMNS = """
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
    email_sender_name,
    email_reply_to,
    resubscribe_url,
    created_at,
    modified_at,
    catalog_version
"""


async def get_by_slug(db: Database, slug: str) -> Organization | None:
    row = await db.fetchone(f"SELECT {_COLUMNS} FROM organizations WHERE slug = ?", (slug,))
    return row_to(Organization, row)


async def get_by_id(db: Database, organization_id: str) -> Organization | None:
    row = await db.fetchone(f"SELECT {_COLUMNS} FROM organizations WHERE id = ?", (organization_id,))
    return row_to(Organization, row)


# Where the seller's invoice details live in ``organizations.settings`` (written by the console's settings page).
INVOICE_SETTINGS_KEY = "invoice"


def seller_tax_id(settings: str | None) -> str | None:
    """``settings.invoice.tax_id`` of an organization's settings JSON, or None."""
    try:
        value = msgspec.json.decode(settings or "{}")
    except msgspec.DecodeError:
        return None
    invoice = value.get(INVOICE_SETTINGS_KEY) if isinstance(value, dict) else None
    tax_id = invoice.get("tax_id") if isinstance(invoice, dict) else None
    return tax_id if isinstance(tax_id, str) and tax_id else None


def reply_to(org: Organization) -> str | None:
    """Where replies to this organization's emails go: its reply-to address, else its support email."""
    return org.email_reply_to or org.support_email


async def list_public(db: Database) -> list[Organization]:
    rows = await db.fetchall(f"SELECT {_COLUMNS} FROM organizations ORDER BY name")
    return [Organization(**row_dict(row)) for row in rows]
