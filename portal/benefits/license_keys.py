"""License keys issued by ``license_keys`` benefits: key generation, issuing a key for a grant (limits and
expiry from the benefit's properties), status changes when grants are revoked or restored, recording
activations (the seed loader; the public validate/activate API builds on ``record_activation``), and the
changes a seller makes to one key (disable, enable, rotate, activation limit, expiry, removing an activation:
the seller console; the customer's rotation and the public deactivate share ``rotate_key`` and
``remove_activation``). Each runs in the caller's transaction; the caller records the ``events`` row."""

from __future__ import annotations

import calendar
import secrets
from datetime import datetime, timedelta
from typing import Any

import msgspec

from portal.benefits.service import LicenseKeysProperties
from portal.clock import iso, new_id
from portal.db import Transaction
from portal.errors import Conflict, InvalidInput, NotFound
from portal.notifications import hooks as notify

# The most activations a key may allow (the benefit's ``activations.limit`` has the same bound).
MAX_ACTIVATION_LIMIT = 50


def generate_key(prefix: str | None) -> str:
    """``ACME-1F0C9A2B-77D3E0C4-9B1A5E6F-0D2C4B8A``: 128 random bits as four groups of upper-case hex."""
    raw = secrets.token_hex(16).upper()
    groups = "-".join(raw[i : i + 8] for i in range(0, 32, 8))
    return f"{prefix.upper()}-{groups}" if prefix else groups


def display_key(key: str) -> str:
    """What lists show instead of the key: ``****-`` and its last six characters (Polar's style)."""
    return f"****-{key[-6:]}"


def add_interval(moment: datetime, interval: str, count: int = 1) -> datetime:
    """``moment`` plus ``count`` days/weeks/months/years; month ends clamp (Jan 31 + 1 month = Feb 28/29)."""
    if interval == "day":
        return moment + timedelta(days=count)
    if interval == "week":
        return moment + timedelta(weeks=count)
    if interval not in ("month", "year"):
        raise ValueError(f"unknown interval {interval!r}")
    months = count * (12 if interval == "year" else 1)
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    if not 1 <= year <= 9999:  # as ``moment + timedelta`` does for days and weeks: an input out of range
        raise OverflowError("date value out of range")
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


async def issue_license_key(
    tx: Transaction,
    *,
    organization_id: str,
    customer_id: str,
    benefit_id: str,
    grant_id: str,
    properties: LicenseKeysProperties,
    now: datetime,
) -> tuple[str, str]:
    """Create the key for a new grant; returns (license_key_id, display_key)."""
    key = generate_key(properties.prefix)
    expires_at = (
        None
        if properties.expires is None
        else iso(add_interval(now, properties.expires.timeframe, properties.expires.ttl))
    )
    license_key_id = new_id()
    shown = display_key(key)
    await tx.execute(
        """
        INSERT INTO license_keys (
            id,
            organization_id,
            customer_id,
            benefit_id,
            grant_id,
            key,
            display_key,
            status,
            limit_activations,
            limit_usage,
            expires_at,
            created_at
        ) VALUES (?, ?, ?, ?, ?, ?, ?, 'granted', ?, ?, ?, ?)
        """,
        (
            license_key_id,
            organization_id,
            customer_id,
            benefit_id,
            grant_id,
            key,
            shown,
            None if properties.activations is None else properties.activations.limit,
            properties.limit_usage,
            expires_at,
            iso(now),
        ),
    )
    return license_key_id, shown


async def set_grant_license_keys_status(tx: Transaction, grant_id: str, status: str, *, now: datetime) -> None:
    """Revoke (``revoked``) or restore (``granted``) the keys of a grant; ``disabled`` keys stay disabled."""
    await tx.execute(
        """
        UPDATE license_keys SET status = ?, modified_at = ?
        WHERE grant_id = ? AND status != 'disabled' AND status != ?
        """,
        (status, iso(now), grant_id, status),
    )


async def get_license_key_row(tx: Transaction, license_key_id: str) -> Any:
    row = await tx.fetchone("SELECT * FROM license_keys WHERE id = ?", (license_key_id,))
    if row is None:
        raise NotFound("license key not found")
    return row


async def record_activation(
    tx: Transaction,
    license_key_id: str,
    *,
    label: str,
    meta: dict[str, Any],
    now: datetime,
) -> str:
    """Add an activation to a granted, unexpired key within its activation limit; returns its id."""
    row = await get_license_key_row(tx, license_key_id)
    if row["status"] != "granted":
        raise Conflict("license key is not granted", "status")
    if row["expires_at"] is not None and row["expires_at"] <= iso(now):
        raise Conflict("license key has expired", "expires_at")
    if row["limit_activations"] is None:
        raise InvalidInput("this license key does not support activations", "license_key_id")
    if not label.strip():
        raise InvalidInput("must not be empty", "label")
    count = await tx.fetchval(
        "SELECT COUNT(*) FROM license_key_activations WHERE license_key_id = ?", (license_key_id,)
    )
    if count >= row["limit_activations"]:
        raise Conflict("license key activation limit reached", "limit_activations")
    activation_id = new_id()
    await tx.execute(
        """
        INSERT INTO license_key_activations (id, license_key_id, label, meta, created_at)
        VALUES (?, ?, ?, ?, ?)
        """,
        (activation_id, license_key_id, label.strip(), msgspec.json.encode(meta).decode(), iso(now)),
    )
    return activation_id


# --- keys moved from another platform (processor connections, portal import) ------------------------------------


async def adopt_license_key(
    tx: Transaction,
    license_key_id: str,
    *,
    key: str,
    status: str,
    limit_activations: int | None,
    expires_at: datetime | str | None,
    now: datetime,
    usage: int | None = None,
    limit_usage: int | msgspec.UnsetType | None = msgspec.UNSET,
    validations: int | None = None,
    last_validated_at: str | None = None,
) -> None:
    """Make a key Portal issued carry a key another platform already shipped (a processor connection or an
    import): the same string, status, activation limit and expiry, and where the platform knows them the usage, usage
    limit and validations (left out: kept), so a customer's key keeps validating through Portal. ``Conflict`` on
    ``key`` when another key of the organization already has that string. A key Portal revoked (its grant was, e.g.
    by a full refund) stays revoked whatever the platform says, so the order of the two makes no difference."""
    if status not in ("granted", "revoked", "disabled"):
        raise InvalidInput(f"unknown license key status {status!r}", "status")
    row = await get_license_key_row(tx, license_key_id)
    if row["status"] == "revoked":
        status = "revoked"
    taken = await tx.fetchval(
        "SELECT id FROM license_keys WHERE organization_id = ? AND key = ? AND id != ?",
        (row["organization_id"], key, license_key_id),
    )
    if taken is not None:
        raise Conflict("another license key of this organization has this key", "key")
    keep_limit_usage = isinstance(limit_usage, msgspec.UnsetType)
    await tx.execute(
        """
        UPDATE license_keys SET key = ?, display_key = ?, status = ?, usage = COALESCE(?, usage),
            limit_usage = CASE WHEN ? THEN limit_usage ELSE ? END,
            limit_activations = ?, validations = MAX(validations, COALESCE(?, 0)),
            last_validated_at = COALESCE(?, last_validated_at),
            expires_at = ?, modified_at = ?
        WHERE id = ?
        """,
        (
            key,
            display_key(key),
            status,
            usage,
            keep_limit_usage,
            None if keep_limit_usage else limit_usage,
            limit_activations,
            validations,
            last_validated_at,
            iso(expires_at) if isinstance(expires_at, datetime) else expires_at,
            iso(now),
            license_key_id,
        ),
    )


async def import_activation(
    tx: Transaction, license_key_id: str, *, activation_id: str, label: str, created_at: datetime
) -> bool:
    """Keep an activation made on another platform under its own id (the instance id apps already send back, as
    Lemon Squeezy's do); True if it was new. No limit check: the platform allowed it."""
    existing = await tx.fetchval("SELECT license_key_id FROM license_key_activations WHERE id = ?", (activation_id,))
    if existing is not None:
        return False
    await tx.execute(
        "INSERT INTO license_key_activations (id, license_key_id, label, meta, created_at) VALUES (?, ?, ?, '{}', ?)",
        (activation_id, license_key_id, label.strip() or "imported", iso(created_at)),
    )
    return True


async def adopt_activation(
    tx: Transaction, license_key_id: str, *, label: str, meta: dict[str, Any], created_at: str
) -> str:
    """An activation the key already had on another platform under a new Portal id (for platforms whose apps send
    back the key, not an instance id, as Polar's do), kept with its date, outside the limit checks: it counts
    toward the limit as it did there; returns its Portal id."""
    activation_id = new_id()
    await tx.execute(
        "INSERT INTO license_key_activations (id, license_key_id, label, meta, created_at) VALUES (?, ?, ?, ?, ?)",
        (activation_id, license_key_id, label.strip() or "activation", msgspec.json.encode(meta).decode(), created_at),
    )
    return activation_id


async def grant_license_key_ids(tx: Transaction, *, order_id: str | None, subscription_id: str | None) -> list[str]:
    """The license keys of the grants an order (a purchase) or a subscription gave, oldest first."""
    column, value = ("order_id", order_id) if order_id is not None else ("subscription_id", subscription_id)
    if value is None:
        return []
    rows = await tx.fetchall(
        f"""SELECT k.id FROM license_keys k JOIN benefit_grants g ON g.id = k.grant_id
        WHERE g.{column} = ? ORDER BY k.created_at, k.id""",
        (value,),
    )
    return [str(row["id"]) for row in rows]


async def license_key_of(tx: Transaction, *, order_id: str | None, subscription_id: str | None) -> str | None:
    """The first license key granted for an order or a subscription, or None."""
    found = await grant_license_key_ids(tx, order_id=order_id, subscription_id=subscription_id)
    return found[0] if found else None


async def customer_license_key_ids(tx: Transaction, customer_id: str) -> list[str]:
    """A customer's license keys, oldest first."""
    rows = await tx.fetchall(
        "SELECT id FROM license_keys WHERE customer_id = ? ORDER BY created_at, id", (customer_id,)
    )
    return [str(row["id"]) for row in rows]


# --- a seller's changes to one key (the seller console) ----------------------------------------------------------


async def _grant_is_live(tx: Transaction, grant_id: str | None) -> bool:
    if grant_id is None:
        return True
    revoked_at = await tx.fetchval("SELECT revoked_at FROM benefit_grants WHERE id = ?", (grant_id,))
    return revoked_at is None


async def disable_license_key(tx: Transaction, license_key_id: str, *, now: datetime) -> None:
    """Stop a granted key from validating or activating (``disabled``); its grant stays. A disabled key stays
    disabled when its grant is revoked and restored (``set_grant_license_keys_status``). ``Conflict`` unless the key
    is ``granted``."""
    row = await get_license_key_row(tx, license_key_id)
    if row["status"] != "granted":
        raise Conflict("only a granted license key can be disabled", "status")
    await tx.execute(
        "UPDATE license_keys SET status = 'disabled', modified_at = ? WHERE id = ?", (iso(now), license_key_id)
    )


async def enable_license_key(tx: Transaction, license_key_id: str, *, now: datetime) -> None:
    """Make a disabled key ``granted`` again. ``Conflict`` unless it is disabled and its grant is live: a key whose
    grant was revoked (a refund, an ended subscription) comes back only with its grant."""
    row = await get_license_key_row(tx, license_key_id)
    if row["status"] != "disabled":
        raise Conflict("only a disabled license key can be enabled", "status")
    if not await _grant_is_live(tx, row["grant_id"]):
        raise Conflict("the benefit grant of this license key is revoked", "status")
    await tx.execute(
        "UPDATE license_keys SET status = 'granted', modified_at = ? WHERE id = ?", (iso(now), license_key_id)
    )


async def rotate_key(tx: Transaction, license_key_id: str, prefix: str | None, *, now: datetime) -> tuple[str, str]:
    """A new key string (same ``prefix``) for the key, also shown on its grant; the old string stops validating at
    once. Status, usage, limits, expiry and activations are kept. Returns (key, display_key). The callers check who
    may rotate (the customer: ``license_key_api.rotate``; the seller console: ``granted`` or ``disabled`` keys)."""
    new_key = generate_key(prefix)
    shown = display_key(new_key)
    await tx.execute(
        "UPDATE license_keys SET key = ?, display_key = ?, modified_at = ? WHERE id = ?",
        (new_key, shown, iso(now), license_key_id),
    )
    await tx.execute(
        """
        UPDATE benefit_grants
        SET properties = json_set(properties, '$.display_key', ?), modified_at = ?
        WHERE id = (SELECT grant_id FROM license_keys WHERE id = ?)
        """,
        (shown, iso(now), license_key_id),
    )
    return new_key, shown


async def activation_count(tx: Transaction, license_key_id: str) -> int:
    return int(
        await tx.fetchval("SELECT COUNT(*) FROM license_key_activations WHERE license_key_id = ?", (license_key_id,))
    )


async def set_activation_limit(tx: Transaction, license_key_id: str, limit: int | None, *, now: datetime) -> None:
    """Change how many activations the key allows (1 to ``MAX_ACTIVATION_LIMIT``; None: the key takes no
    activations, only for a key without any). ``InvalidInput`` on ``limit_activations`` below the key's current number
    of activations: deactivate some first (none is removed behind the customer's back)."""
    await get_license_key_row(tx, license_key_id)
    if limit is not None and not 1 <= limit <= MAX_ACTIVATION_LIMIT:
        raise InvalidInput(f"must be between 1 and {MAX_ACTIVATION_LIMIT}", "limit_activations")
    current = await activation_count(tx, license_key_id)
    if current and (limit is None or limit < current):
        raise InvalidInput(f"the key has {current} activations: deactivate some first", "limit_activations")
    await tx.execute(
        "UPDATE license_keys SET limit_activations = ?, modified_at = ? WHERE id = ?",
        (limit, iso(now), license_key_id),
    )


async def set_license_key_status(tx: Transaction, license_key_id: str, status: str, *, now: datetime) -> None:
    """``granted`` <-> ``disabled`` (``enable_license_key`` / ``disable_license_key``); the same status is a no-op.
    ``InvalidInput`` on ``status`` for ``revoked`` or a revoked key: a key is revoked and restored with its grant."""
    row = await get_license_key_row(tx, license_key_id)
    if row["status"] == status:
        return
    if status == "disabled" and row["status"] == "granted":
        await disable_license_key(tx, license_key_id, now=now)
    elif status == "granted" and row["status"] == "disabled":
        await enable_license_key(tx, license_key_id, now=now)
    else:
        raise InvalidInput("a license key is revoked and restored with its benefit grant", "status")


async def set_usage(
    tx: Transaction,
    license_key_id: str,
    *,
    usage: int | None,
    limit_usage: int | msgspec.UnsetType | None,
    now: datetime,
) -> None:
    """Set the key's usage count (None: kept) and usage limit (None: no limit; ``UNSET``: kept)."""
    await get_license_key_row(tx, license_key_id)
    keep_limit = isinstance(limit_usage, msgspec.UnsetType)
    await tx.execute(
        """
        UPDATE license_keys SET usage = COALESCE(?, usage),
            limit_usage = CASE WHEN ? THEN limit_usage ELSE ? END, modified_at = ?
        WHERE id = ?
        """,
        (usage, keep_limit, None if keep_limit else limit_usage, iso(now), license_key_id),
    )


async def set_expiry(tx: Transaction, license_key_id: str, expires_at: datetime | None, *, now: datetime) -> None:
    """Set when the key expires (None: never). A moment in the past makes it expired at once."""
    await get_license_key_row(tx, license_key_id)
    await tx.execute(
        "UPDATE license_keys SET expires_at = ?, modified_at = ? WHERE id = ?",
        (None if expires_at is None else iso(expires_at), iso(now), license_key_id),
    )


async def remove_activation(tx: Transaction, license_key_id: str, activation_id: str, *, now: datetime) -> str:
    """Delete one activation of the key (``license_key.deactivated`` is sent first: its payload describes it);
    returns its label. ``NotFound`` when the activation is not the key's."""
    label = await tx.fetchval(
        "SELECT label FROM license_key_activations WHERE id = ? AND license_key_id = ?",
        (activation_id, license_key_id),
    )
    if label is None:
        raise NotFound("activation not found", "activation_id")
    await notify.license_key_deactivated(tx, activation_id, now=now)
    await tx.execute("DELETE FROM license_key_activations WHERE id = ?", (activation_id,))
    return str(label)
