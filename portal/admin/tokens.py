"""API tokens (``api_tokens``): mint, list, revoke, and authenticate a Bearer token.

A token is ``portal_oat_`` + 32 random bytes (URL-safe), shown once; only HMAC-SHA256(instance secret, token) is
stored, so lookup is one indexed query and a copy of the database yields no usable token. ``last_used_at`` is
written at most once a minute per token, so busy clients do not turn every read into a write.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

import msgspec

from portal.clock import iso, new_id, parse_iso
from portal.db import Database, Transaction, row_to, rows_to
from portal.errors import NotFound
from portal.security import hmac_digest, new_token

TOKEN_PREFIX = "portal_oat_"  # noqa: S105 - a public prefix, not a secret
LAST_USED_INTERVAL = timedelta(seconds=60)

TokenScope = Literal["organization", "admin"]


class ApiToken(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    scope: TokenScope
    organization_id: str | None
    created_at: str
    last_used_at: str | None = None
    revoked_at: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.scope == "admin"


_COLUMNS = """
    id,
    name,
    scope,
    organization_id,
    created_at,
    last_used_at,
    revoked_at
"""


def token_digest(secret: str, token: str) -> str:
    return hmac_digest(secret, token, purpose="api-token")


async def create_token(
    tx: Transaction,
    *,
    secret: str,
    name: str,
    organization_id: str | None,
    now: datetime,
) -> tuple[str, ApiToken]:
    """Insert a token (admin when ``organization_id`` is None); returns ``(plaintext, record)``."""
    if organization_id is not None:
        exists = await tx.fetchval("SELECT 1 FROM organizations WHERE id = ?", (organization_id,))
        if exists is None:
            raise NotFound("organization not found", "organization_id")
    token = TOKEN_PREFIX + new_token(32)
    record = ApiToken(
        id=new_id(),
        name=name,
        scope="admin" if organization_id is None else "organization",
        organization_id=organization_id,
        created_at=iso(now),
    )
    await tx.execute(
        """
        INSERT INTO api_tokens (
            id,
            token_hash,
            name,
            scope,
            organization_id,
            created_at
        ) VALUES (?, ?, ?, ?, ?, ?)
        """,
        (record.id, token_digest(secret, token), name, record.scope, organization_id, record.created_at),
    )
    return token, record


async def list_tokens(db: Database) -> list[ApiToken]:
    rows = await db.fetchall(f"SELECT {_COLUMNS} FROM api_tokens ORDER BY created_at, id")
    return rows_to(ApiToken, rows)


async def revoke_token(tx: Transaction, token_id: str, *, now: datetime) -> bool:
    """Revoke by id; False when no live token has this id."""
    cursor = await tx.execute(
        "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (iso(now), token_id)
    )
    return cursor.rowcount > 0


async def authenticate(db: Database, *, secret: str, token: str, now: datetime) -> ApiToken | None:
    """The live token for this Bearer value, or None. Records ``last_used_at`` (throttled)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = await db.fetchone(
        f"SELECT {_COLUMNS} FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL",
        (token_digest(secret, token),),
    )
    record = row_to(ApiToken, row)
    if record is None:
        return None
    if record.last_used_at is None or parse_iso(record.last_used_at) + LAST_USED_INTERVAL <= now:
        async with db.write() as tx:
            await tx.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", (iso(now), record.id))
    return record
