"""Connections: one row per organization and processor (``connector_connections``), holding the processor's
secrets (API key, webhook signing secret) encrypted with AES-256-GCM.

The key is derived from the instance secret (``PORTAL_SECRET_KEY``) by HKDF-SHA256 with the purpose
``portal connector secrets v1``; the associated data binds a ciphertext to its organization and processor, so a
row copied onto another organization does not decrypt. Secrets are never logged, never answered by the API
(``Connection.__repr__`` omits them) and only decrypted where a processor call needs them.
"""

from __future__ import annotations

import base64
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from portal.clock import iso, new_id
from portal.db import Database, Transaction
from portal.errors import NotFound

_PURPOSE = b"portal connector secrets v1"
Reader = Database | Transaction


class ConnectorSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What the seller chose for a connection (admin API / CLI), used by actions out and refunds."""

    # Stripe's proration_behavior for plan changes: create_prorations | always_invoice | none.
    proration_behavior: str = "create_prorations"
    # A full refund revokes the order's benefits (license keys, downloads).
    revoke_on_full_refund: bool = True
    # "Update payment method" opens the processor's billing portal (payment-method flow only).
    payment_method_update: bool = False


class Secrets(msgspec.Struct, kw_only=True):
    api_key: str
    webhook_secret: str = ""


# cryptography is imported where secrets are sealed or opened: a worker that never talks to a processor never loads
# it (~6 MB per process; bench/README.md, "Memory").
def _key(instance_secret: str) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PURPOSE)
    return hkdf.derive(instance_secret.encode())


def _aad(organization_id: str, processor: str) -> bytes:
    return f"{organization_id}\0{processor}".encode()


def encrypt_secrets(instance_secret: str, organization_id: str, processor: str, secrets: Secrets) -> str:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    sealed = AESGCM(_key(instance_secret)).encrypt(
        nonce, msgspec.json.encode(secrets), _aad(organization_id, processor)
    )
    return base64.b64encode(nonce + sealed).decode()


def decrypt_secrets(instance_secret: str, organization_id: str, processor: str, stored: str) -> Secrets:
    """The secrets of a row; ``ValueError`` if they do not decrypt (another instance secret, a moved row)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    raw = base64.b64decode(stored)
    try:
        plain = AESGCM(_key(instance_secret)).decrypt(raw[:12], raw[12:], _aad(organization_id, processor))
    except InvalidTag:
        raise ValueError("connector secrets do not decrypt with this instance secret") from None
    return msgspec.json.decode(plain, type=Secrets)


@dataclass(frozen=True, slots=True)
class Connection:
    id: str
    organization_id: str
    organization_slug: str
    processor: str
    account_id: str | None
    livemode: bool
    settings: ConnectorSettings
    created_at: str
    modified_at: str | None
    sealed: str = field(repr=False)

    def secrets(self, instance_secret: str) -> Secrets:
        return decrypt_secrets(instance_secret, self.organization_id, self.processor, self.sealed)


_SELECT = """
SELECT c.*, o.slug AS organization_slug FROM connector_connections c
JOIN organizations o ON o.id = c.organization_id
"""


def _connection(row: sqlite3.Row) -> Connection:
    return Connection(
        id=row["id"],
        organization_id=row["organization_id"],
        organization_slug=row["organization_slug"],
        processor=row["processor"],
        account_id=row["account_id"],
        livemode=bool(row["livemode"]),
        settings=msgspec.json.decode(row["settings"], type=ConnectorSettings),
        created_at=row["created_at"],
        modified_at=row["modified_at"],
        sealed=row["secrets"],
    )


async def get_connection(reader: Reader, organization_id: str, processor: str) -> Connection | None:
    row = await reader.fetchone(
        _SELECT + "WHERE c.organization_id = ? AND c.processor = ?", (organization_id, processor)
    )
    return None if row is None else _connection(row)


async def require_connection(reader: Reader, organization_id: str, processor: str) -> Connection:
    connection = await get_connection(reader, organization_id, processor)
    if connection is None:
        raise NotFound(f"no {processor} connection for this organization")
    return connection


async def connection_by_slug(reader: Reader, slug: str, processor: str) -> Connection | None:
    row = await reader.fetchone(_SELECT + "WHERE o.slug = ? AND c.processor = ?", (slug, processor))
    return None if row is None else _connection(row)


async def list_connections(reader: Reader, organization_id: str | None = None) -> list[Connection]:
    if organization_id is None:
        rows = await reader.fetchall(_SELECT + "ORDER BY o.slug, c.processor")
    else:
        rows = await reader.fetchall(_SELECT + "WHERE c.organization_id = ? ORDER BY c.processor", (organization_id,))
    return [_connection(row) for row in rows]


async def save_connection(
    tx: Transaction,
    *,
    instance_secret: str,
    organization_id: str,
    processor: str,
    secrets: Secrets,
    account_id: str | None,
    livemode: bool,
    settings: ConnectorSettings | None,
    now: datetime,
) -> str:
    """Create or replace the organization's connection to ``processor``; returns its id. ``settings`` None keeps
    the stored ones (a new connection gets the defaults)."""
    sealed = encrypt_secrets(instance_secret, organization_id, processor, secrets)
    existing = await tx.fetchone(
        "SELECT id, settings FROM connector_connections WHERE organization_id = ? AND processor = ?",
        (organization_id, processor),
    )
    settings_json = msgspec.json.encode(settings).decode() if settings is not None else None
    if existing is None:
        connection_id = new_id()
        await tx.execute(
            """
            INSERT INTO connector_connections
                (id, organization_id, processor, account_id, livemode, secrets, settings, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """,
            (
                connection_id,
                organization_id,
                processor,
                account_id,
                livemode,
                sealed,
                settings_json or msgspec.json.encode(ConnectorSettings()).decode(),
                iso(now),
            ),
        )
        return connection_id
    await tx.execute(
        """
        UPDATE connector_connections SET account_id = ?, livemode = ?, secrets = ?, settings = COALESCE(?, settings),
            modified_at = ?
        WHERE id = ?
        """,
        (account_id, livemode, sealed, settings_json, iso(now), existing["id"]),
    )
    return str(existing["id"])


async def update_settings(tx: Transaction, connection_id: str, settings: ConnectorSettings, *, now: datetime) -> None:
    await tx.execute(
        "UPDATE connector_connections SET settings = ?, modified_at = ? WHERE id = ?",
        (msgspec.json.encode(settings).decode(), iso(now), connection_id),
    )


def public_settings(settings: ConnectorSettings) -> dict[str, Any]:
    return msgspec.to_builtins(settings)
