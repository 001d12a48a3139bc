"""Which self-service actions an organization's customers may take beyond the two switches that have their own
columns (``allow_plan_change``, ``allow_email_change``): cancelling a subscription and rotating a license key.
Stored in ``organizations.settings`` under ``customer_actions`` (set in the console's settings page, or through
the admin API's ``settings``); both default to on, which is what Portal always did.

The rules that enforce them live with the actions (``portal.subscriptions.actions.cancel_subscription``,
``portal.benefits.license_key_api.rotate``), so the portal pages and the customer-portal API refuse alike; the
pages also hide the buttons (``Organization.allow_cancel``, ``Organization.allow_key_rotation``).
"""

from __future__ import annotations

from typing import Any

import msgspec

from portal.errors import DomainError, InvalidInput

SETTINGS_KEY = "customer_actions"


class CustomerActions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    cancel: bool = True  # cancel a subscription at the end of its period (pages and API)
    license_key_rotation: bool = True  # replace a license key's string (pages and API)


def customer_actions(settings: dict[str, Any] | str | None) -> CustomerActions:
    """The switches of an organization from its ``settings`` (dict or JSON text); defaults when absent or unreadable."""
    if isinstance(settings, str):
        try:
            settings = msgspec.json.decode(settings)
        except msgspec.DecodeError:
            return CustomerActions()
    raw = settings.get(SETTINGS_KEY) if isinstance(settings, dict) else None
    if not isinstance(raw, dict):
        return CustomerActions()
    try:
        return msgspec.convert(raw, CustomerActions, strict=True)
    except msgspec.ValidationError:
        return CustomerActions()


def customer_actions_problems(settings: dict[str, Any] | None) -> list[DomainError]:
    """Problems with ``settings.customer_actions`` as written through the API (empty when fine or absent)."""
    raw = (settings or {}).get(SETTINGS_KEY)
    if raw is None:
        return []
    if not isinstance(raw, dict):
        return [InvalidInput("expected an object", f"settings.{SETTINGS_KEY}")]
    for key, value in raw.items():
        if key not in CustomerActions.__struct_fields__:
            return [InvalidInput("unknown field", f"settings.{SETTINGS_KEY}.{key}")]
        if not isinstance(value, bool):
            return [InvalidInput("Expected `bool`", f"settings.{SETTINGS_KEY}.{key}")]
    return []
