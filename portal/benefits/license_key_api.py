"""The license-key API the seller's software calls (``/v1/customer-portal/license-keys/validate|activate|
deactivate``, no authentication: the key is the credential) and the customer's key rotation, with Polar's
semantics and error classes (``polar/license_key/service.py``):

* validate: a key that is not ``granted`` or has expired, an unknown ``activation_id``, conditions that differ
  from the activation's, or a different ``benefit_id``/``customer_id`` answer 404; an ``increment_usage`` beyond
  ``limit_usage`` answers 400 ``BadRequest`` ("License key only has N more usages."). A valid call counts a
  validation, stamps ``last_validated_at`` and adds ``increment_usage`` to ``usage``;
* activate: inactive, expired, no activation limit, or the limit reached answer 403 ``NotPermitted``;
* deactivate: an unknown activation answers 404; success is 204.

Refusals of unknown or bogus keys are decided on a reader first (nothing written, no write lock); every check and
its write then happen inside one transaction (``BEGIN IMMEDIATE``; ``db.transact`` for validate, the busiest,
``db.write()`` for the rest), so concurrent activations can never exceed the limit and concurrent usage
increments can never exceed ``limit_usage``.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

import msgspec

from portal.benefits.license_keys import remove_activation, rotate_key
from portal.clock import iso, new_id
from portal.db import Database, SyncTransaction, Transaction
from portal.errors import DomainError, NotFound
from portal.notifications import hooks as notify
from portal.organizations.customer_actions import customer_actions
from portal.subscriptions.actions import EVENT_INSERT, event_row, record_event

ROTATABLE_STATUSES = frozenset({"granted", "disabled"})


class LicenseKeyError(DomainError):
    """A refusal with Polar's status and error name."""

    status_code = 400
    error = "BadRequest"


class KeyNotFound(LicenseKeyError):
    status_code = 404
    error = "ResourceNotFound"


class KeyNotPermitted(LicenseKeyError):
    status_code = 403
    error = "NotPermitted"


class UsageExceeded(LicenseKeyError):
    status_code = 400
    error = "BadRequest"


class RotateNotPermitted(LicenseKeyError):
    status_code = 400
    error = "RotateNotPermitted"


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """The key row after the operation and, when one is involved, the activation row."""

    key_id: str
    customer_id: str
    activation_id: str | None = None


_KEY_BY_VALUE = "SELECT * FROM license_keys WHERE organization_id = ? AND key = ?"
_ACTIVATION = "SELECT id, conditions FROM license_key_activations WHERE id = ? AND license_key_id = ?"


async def _key(tx: Transaction, organization_id: str, key: str) -> sqlite3.Row:
    row = await tx.fetchone(_KEY_BY_VALUE, (organization_id, key))
    if row is None:
        raise KeyNotFound("License key not found.")
    return row


def _expired(row: sqlite3.Row, now: datetime) -> bool:
    return row["expires_at"] is not None and row["expires_at"] <= iso(now)


async def validate(
    db: Database,
    *,
    organization_id: str,
    key: str,
    now: datetime,
    activation_id: str | None = None,
    benefit_id: str | None = None,
    customer_id: str | None = None,
    increment_usage: int | None = None,
    conditions: dict[str, Any] | None = None,
) -> Outcome:
    """The busiest write of all (software checks its key on every start): checks and counter update run as one
    ``db.transact`` body, so SQLite's write lock is held for the statements only, not across event-loop turns."""

    def refusal(row: sqlite3.Row | None, activation: sqlite3.Row | None) -> LicenseKeyError | None:
        """Polar's 404/400 for this key, or None when the validation succeeds (the same rule before and inside the
        write)."""
        if row is None:
            return KeyNotFound("License key not found.")
        if row["status"] != "granted":
            return KeyNotFound("License key is no longer active.")
        if _expired(row, now):
            return KeyNotFound("License key has expired.")
        if activation_id:
            if activation is None:
                return KeyNotFound("Activation not found.")
            required = msgspec.json.decode(activation["conditions"] or "{}")
            if required and (conditions or {}) != required:
                return KeyNotFound("License key does not match required conditions")
        if benefit_id and benefit_id != row["benefit_id"]:
            return KeyNotFound("License key does not match given benefit.")
        if customer_id and customer_id != row["customer_id"]:
            return KeyNotFound("License key does not match given user.")
        if increment_usage and row["limit_usage"]:
            remaining = row["limit_usage"] - row["usage"]
            if increment_usage > remaining:
                return UsageExceeded(f"License key only has {remaining} more usages.")
        return None

    # Refusals are answered from a reader connection: a flood of unknown or bogus keys writes nothing and never
    # waits on SQLite's writer. Only a validation that will succeed takes the write lock (and is re-checked there).
    found = await db.fetchone(_KEY_BY_VALUE, (organization_id, key))
    found_activation = None
    if found is not None and activation_id:
        found_activation = await db.fetchone(_ACTIVATION, (activation_id, found["id"]))
    error = refusal(found, found_activation)
    if error is not None:
        raise error

    def work(tx: SyncTransaction) -> Outcome:
        row = tx.fetchone(_KEY_BY_VALUE, (organization_id, key))
        activation = tx.fetchone(_ACTIVATION, (activation_id, row["id"])) if row and activation_id else None
        problem = refusal(row, activation)
        if problem is not None:
            raise problem
        assert row is not None
        tx.execute(
            """
            UPDATE license_keys SET
                validations = validations + 1,
                last_validated_at = ?,
                usage = usage + ?
            WHERE id = ?
            """,
            (iso(now), increment_usage or 0, row["id"]),
        )
        if increment_usage:
            event = event_row(
                organization_id=organization_id,
                customer_id=row["customer_id"],
                name="license_key.usage_incremented",
                subject_id=row["id"],
                now=now,
                data={"increment": increment_usage, "usage": row["usage"] + increment_usage},
            )
            tx.execute(EVENT_INSERT, event)
        return Outcome(key_id=row["id"], customer_id=row["customer_id"], activation_id=activation_id or None)

    return await db.transact(work)


async def activate(
    db: Database,
    *,
    organization_id: str,
    key: str,
    label: str,
    now: datetime,
    conditions: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
) -> Outcome:
    if await db.fetchone(_KEY_BY_VALUE, (organization_id, key)) is None:  # a bogus key never takes the writer
        raise KeyNotFound("License key not found.")
    async with db.write() as tx:
        row = await _key(tx, organization_id, key)
        if row["status"] != "granted":
            raise KeyNotPermitted("License key is no longer active. This license key can not be activated.")
        if _expired(row, now):
            raise KeyNotPermitted("License key has expired.")
        if not row["limit_activations"]:
            raise KeyNotPermitted(
                "This license key does not support activations. "
                "Use the /validate endpoint instead to check license validity."
            )
        count = await tx.fetchval("SELECT COUNT(*) FROM license_key_activations WHERE license_key_id = ?", (row["id"],))
        if count >= row["limit_activations"]:
            raise KeyNotPermitted("License key activation limit already reached")
        activation_id = new_id()
        await tx.execute(
            """
            INSERT INTO license_key_activations (
                id,
                license_key_id,
                label,
                meta,
                conditions,
                created_at
            ) VALUES (?, ?, ?, ?, ?, ?)
            """,
            (
                activation_id,
                row["id"],
                label,
                msgspec.json.encode(meta or {}).decode(),
                msgspec.json.encode(conditions or {}).decode(),
                iso(now),
            ),
        )
        await record_event(
            tx,
            organization_id=organization_id,
            customer_id=row["customer_id"],
            name="license_key.activated",
            subject_id=row["id"],
            now=now,
            data={"activation_id": activation_id, "label": label},
        )
        await notify.license_key_activated(tx, activation_id, now=now)
        return Outcome(key_id=row["id"], customer_id=row["customer_id"], activation_id=activation_id)


async def deactivate(db: Database, *, organization_id: str, key: str, activation_id: str, now: datetime) -> None:
    if await db.fetchone(_KEY_BY_VALUE, (organization_id, key)) is None:  # a bogus key never takes the writer
        raise KeyNotFound("License key not found.")
    async with db.write() as tx:
        row = await _key(tx, organization_id, key)
        try:
            label = await remove_activation(tx, row["id"], activation_id, now=now)
        except NotFound:
            raise KeyNotFound("Activation not found.") from None
        await record_event(
            tx,
            organization_id=organization_id,
            customer_id=row["customer_id"],
            name="license_key.deactivated",
            subject_id=row["id"],
            now=now,
            data={"activation_id": activation_id, "label": label, "via": "api"},
        )


async def rotate(db: Database, *, organization_id: str, customer_id: str, license_key_id: str, now: datetime) -> None:
    """A new key string for the customer's key (same prefix); the old string stops validating at once. Status,
    usage, limits, expiry and activations are kept. Allowed, as in Polar, when the key is ``granted`` or
    ``disabled`` (a revoked key stays revoked; Polar's detail names the status), unless the seller switched the
    benefit's ``allow_customer_rotation`` off, or customer rotation for the whole organization
    (``settings.customer_actions.license_key_rotation``; both Portal's own, on by default)."""
    async with db.write() as tx:
        row = await tx.fetchone(
            """
            SELECT k.id, k.status, b.properties AS benefit_properties, o.settings AS organization_settings
            FROM license_keys k
            JOIN benefits b ON b.id = k.benefit_id
            JOIN organizations o ON o.id = k.organization_id
            WHERE k.id = ? AND k.organization_id = ? AND k.customer_id = ?
            """,
            (license_key_id, organization_id, customer_id),
        )
        if row is None:
            raise KeyNotFound("License key not found.")
        properties = msgspec.json.decode(row["benefit_properties"] or "{}")
        if row["status"] not in ROTATABLE_STATUSES:
            raise RotateNotPermitted(
                "License key cannot be rotated in its current status. "
                f"Current status: {row['status']}. "
                f"Allowed statuses: {', '.join(sorted(ROTATABLE_STATUSES))}."
            )
        if not customer_actions(row["organization_settings"]).license_key_rotation:
            raise RotateNotPermitted("The seller does not allow customers to rotate license keys.")
        if not properties.get("allow_customer_rotation", True):
            raise RotateNotPermitted("The seller does not allow rotating this license key.")
        _, shown = await rotate_key(tx, license_key_id, properties.get("prefix"), now=now)
        await record_event(
            tx,
            organization_id=organization_id,
            customer_id=customer_id,
            name="license_key.rotated",
            subject_id=license_key_id,
            now=now,
            data={"display_key": shown},
        )
