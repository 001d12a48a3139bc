"""What a customer may do to their own license keys: deactivate an activation (when the benefit enables
customer management, ``properties.activations.enable_customer_admin``). Shared by the HTML portal and the
JSON API; scoped by organization AND customer, recorded in ``events``."""

from __future__ import annotations

from datetime import datetime

import msgspec

from portal.benefits.license_keys import remove_activation
from portal.db import Database
from portal.errors import DomainError, NotFound
from portal.sessions.store import SessionContext
from portal.subscriptions.actions import record_event


class ActivationAdminNotAllowed(DomainError):
    """The benefit does not let customers manage their activations (answer 403)."""


async def deactivate_activation(
    db: Database,
    context: SessionContext,
    license_key_id: str,
    activation_id: str,
    *,
    now: datetime,
    require_customer_admin: bool = True,
) -> None:
    """Delete one activation of the caller's license key; ``NotFound`` if either is not theirs."""
    async with db.write() as tx:
        row = await tx.fetchone(
            """
            SELECT
                a.id AS activation_id,
                a.label,
                k.id AS license_key_id,
                b.properties AS benefit_properties
            FROM license_key_activations a
            JOIN license_keys k ON k.id = a.license_key_id
            JOIN benefits b ON b.id = k.benefit_id
            WHERE a.id = ?
              AND k.id = ?
              AND k.customer_id = ?
              AND k.organization_id = ?
            """,
            (activation_id, license_key_id, context.customer.id, context.organization.id),
        )
        if row is None:
            raise NotFound("activation not found")
        activations = (msgspec.json.decode(row["benefit_properties"]) or {}).get("activations") or {}
        if require_customer_admin and not activations.get("enable_customer_admin"):
            raise ActivationAdminNotAllowed("This license key's activations are managed by the seller.")
        await remove_activation(tx, license_key_id, activation_id, now=now)
        await record_event(
            tx,
            organization_id=context.organization.id,
            customer_id=context.customer.id,
            name="license_key.deactivated",
            subject_id=license_key_id,
            now=now,
            data={"activation_id": activation_id, "label": row["label"]},
        )
