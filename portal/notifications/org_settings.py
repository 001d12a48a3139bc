"""Per-organization email switches, stored in ``organizations.settings`` under the ``emails`` key and edited
through the admin API (``PATCH /v1/organizations/{id}`` with ``{"settings": {"emails": {...}}}``).

Every switch defaults to on; ``renewal_reminder_days`` (1–30, default 3) is how many days before
``current_period_end`` the renewal reminder goes out. Unknown keys or wrong types are refused when written
(422 on ``settings.emails.<key>``); a stored value that no longer parses falls back to the defaults.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from portal.errors import DomainError, InvalidInput

SETTINGS_KEY = "emails"


class EmailSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    order_receipt: bool = True  # order paid: receipt with license keys and downloads
    order_refund: bool = True  # refund receipt
    subscription_canceled: bool = True  # canceled at period end
    subscription_uncanceled: bool = True  # resumed before the period ended
    subscription_updated: bool = True  # plan changed
    renewal_reminder: bool = True  # N days before the period ends
    subscription_payment_failed: bool = True  # a renewal payment failed (processor connectors): fix the card
    renewal_reminder_days: Annotated[int, msgspec.Meta(ge=1, le=30)] = 3


MAX_REMINDER_DAYS = 30


def email_settings(settings: dict[str, Any] | str | None) -> EmailSettings:
    """The switches of an organization from its ``settings`` (dict or JSON text)."""
    if isinstance(settings, str):
        try:
            settings = msgspec.json.decode(settings)
        except msgspec.DecodeError:
            return EmailSettings()
    raw = (settings or {}).get(SETTINGS_KEY) if isinstance(settings, dict) else None
    if not isinstance(raw, dict):
        return EmailSettings()
    try:
        return msgspec.convert(raw, EmailSettings, strict=True)
    except msgspec.ValidationError:
        return EmailSettings()


def email_settings_problems(settings: dict[str, Any] | None) -> list[DomainError]:
    """Problems with ``settings.emails`` as written through the API (empty when fine or absent)."""
    raw = (settings or {}).get(SETTINGS_KEY)
    if raw is None:
        return []
    if not isinstance(raw, dict):
        return [InvalidInput("expected an object", f"settings.{SETTINGS_KEY}")]
    try:
        msgspec.convert(raw, EmailSettings, strict=True)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `$")
        path = where.rstrip("`")
        if message.startswith("Object contains unknown field `"):
            path += "." + message.split("`")[1]
            message = "unknown field"
        return [InvalidInput(message.replace("`", ""), f"settings.{SETTINGS_KEY}{path}")]
    return []


def polar_customer_email_settings(settings: dict[str, Any] | str | None) -> dict[str, bool]:
    """The switches under the names of Polar's ``OrganizationCustomerEmailSettings`` (read-only there)."""
    switches = email_settings(settings)
    return {
        "order_confirmation": switches.order_receipt,
        "subscription_cancellation": switches.subscription_canceled,
        "subscription_uncanceled": switches.subscription_uncanceled,
        "subscription_updated": switches.subscription_updated,
        "subscription_renewal_reminder": switches.renewal_reminder,
    }
