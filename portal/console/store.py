"""SQL of the console's own tables (migration 17): ``seller_accounts``, ``seller_memberships``,
``seller_login_codes``, ``seller_sessions``. The audit log's SQL is in ``portal.console.audit``.

Codes and session tokens are stored only as HMACs (``portal.sessions.codes.code_digest`` and ``token_digest``
below), as the customers' are.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

import msgspec

from portal.clock import iso, new_id
from portal.db import Database, Transaction, row_dict
from portal.security import hmac_digest, new_token

Role = Literal["owner", "support"]
ROLES: tuple[Role, ...] = ("owner", "support")


class Seller(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    email: str
    is_admin: bool
    created_at: str


class Membership(msgspec.Struct, frozen=True, kw_only=True):
    """A seller's role in one organization (the team page lists these)."""

    seller_id: str
    email: str
    organization_id: str
    role: Role
    created_at: str


class SellerCode(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    email: str
    seller_id: str | None
    code_hash: str
    challenge_hash: str
    expires_at: str
    attempts: int
    used_at: str | None
    canceled_at: str | None
    created_at: str


def token_digest(secret: str, token: str) -> str:
    return hmac_digest(secret, token, purpose="console-session")


def _seller(row: object) -> Seller:
    return msgspec.convert(row_dict(row), Seller, strict=False)  # type: ignore[arg-type]


# --- accounts and memberships -------------------------------------------------------------------------------


async def seller_by_email(db: Database | Transaction, email: str) -> Seller | None:
    row = await db.fetchone(
        "SELECT id, email, is_admin, created_at FROM seller_accounts WHERE email = ? COLLATE NOCASE", (email.strip(),)
    )
    return None if row is None else _seller(row)


async def ensure_seller(tx: Transaction, email: str, now: datetime, *, admin: bool = False) -> Seller:
    """The account of ``email``, created if new; ``admin`` makes (never unmakes) it an instance admin."""
    existing = await seller_by_email(tx, email)
    if existing is None:
        await tx.execute(
            "INSERT INTO seller_accounts (id, email, is_admin, created_at) VALUES (?, ?, ?, ?)",
            (new_id(), email.strip(), int(admin), iso(now)),
        )
    elif admin and not existing.is_admin:
        await tx.execute("UPDATE seller_accounts SET is_admin = 1 WHERE id = ?", (existing.id,))
    seller = await seller_by_email(tx, email)
    assert seller is not None
    return seller


async def set_membership(
    tx: Transaction, seller_id: str, organization_id: str, role: str, now: datetime, *, invited_by: str | None
) -> bool:
    """Give ``seller_id`` ``role`` in the organization; True when the membership is new."""
    cursor = await tx.execute(
        """
        INSERT INTO seller_memberships (seller_id, organization_id, role, invited_by, created_at)
        VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (seller_id, organization_id) DO NOTHING
        """,
        (seller_id, organization_id, role, invited_by, iso(now)),
    )
    if cursor.rowcount == 1:
        return True
    await tx.execute(
        "UPDATE seller_memberships SET role = ? WHERE seller_id = ? AND organization_id = ?",
        (role, seller_id, organization_id),
    )
    return False


async def remove_membership(tx: Transaction, seller_id: str, organization_id: str) -> bool:
    cursor = await tx.execute(
        "DELETE FROM seller_memberships WHERE seller_id = ? AND organization_id = ?", (seller_id, organization_id)
    )
    return bool(cursor.rowcount == 1)


async def role_in(db: Database | Transaction, seller_id: str, organization_id: str) -> Role | None:
    value = await db.fetchval(
        "SELECT role FROM seller_memberships WHERE seller_id = ? AND organization_id = ?", (seller_id, organization_id)
    )
    return None if value is None else value


async def members(db: Database | Transaction, organization_id: str) -> list[Membership]:
    rows = await db.fetchall(
        """
        SELECT m.seller_id, a.email, m.organization_id, m.role, m.created_at
        FROM seller_memberships AS m
        JOIN seller_accounts AS a ON a.id = m.seller_id
        WHERE m.organization_id = ?
        ORDER BY a.email
        """,
        (organization_id,),
    )
    return [msgspec.convert(row_dict(row), Membership, strict=False) for row in rows]


async def count_owners(tx: Transaction, organization_id: str) -> int:
    return int(
        await tx.fetchval(
            "SELECT COUNT(*) FROM seller_memberships WHERE organization_id = ? AND role = 'owner'", (organization_id,)
        )
    )


async def organization_ids_of(db: Database, seller_id: str) -> dict[str, Role]:
    rows = await db.fetchall("SELECT organization_id, role FROM seller_memberships WHERE seller_id = ?", (seller_id,))
    return {str(row["organization_id"]): row["role"] for row in rows}


# --- sign-in codes ------------------------------------------------------------------------------------------

_CODE_COLUMNS = (
    "id, email, seller_id, code_hash, challenge_hash, expires_at, attempts, used_at, canceled_at, created_at"
)


async def insert_code(tx: Transaction, code: SellerCode) -> None:
    """Store ``code``; it cancels the older unspent codes of the same address (only the newest one works)."""
    await tx.execute(
        "UPDATE seller_login_codes SET canceled_at = ? WHERE email = ? AND used_at IS NULL AND canceled_at IS NULL",
        (code.created_at, code.email),
    )
    await tx.execute(
        f"INSERT INTO seller_login_codes ({_CODE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            code.id,
            code.email,
            code.seller_id,
            code.code_hash,
            code.challenge_hash,
            code.expires_at,
            code.attempts,
            code.used_at,
            code.canceled_at,
            code.created_at,
        ),
    )


async def live_code_for_challenge(db: Database | Transaction, challenge_hash: str) -> SellerCode | None:
    row = await db.fetchone(
        f"""
        SELECT {_CODE_COLUMNS}
        FROM seller_login_codes
        WHERE challenge_hash = ? AND used_at IS NULL AND canceled_at IS NULL
        ORDER BY created_at DESC
        LIMIT 1
        """,
        (challenge_hash,),
    )
    return None if row is None else msgspec.convert(row_dict(row), SellerCode, strict=False)


async def email_for_challenge(db: Database, challenge_hash: str) -> str | None:
    value = await db.fetchval(
        "SELECT email FROM seller_login_codes WHERE challenge_hash = ? ORDER BY created_at DESC LIMIT 1",
        (challenge_hash,),
    )
    return None if value is None else str(value)


async def add_attempt(tx: Transaction, code_id: str) -> None:
    await tx.execute("UPDATE seller_login_codes SET attempts = attempts + 1 WHERE id = ?", (code_id,))


async def spend_code(tx: Transaction, code_id: str, now: datetime) -> bool:
    cursor = await tx.execute(
        "UPDATE seller_login_codes SET used_at = ? WHERE id = ? AND used_at IS NULL AND canceled_at IS NULL",
        (iso(now), code_id),
    )
    return bool(cursor.rowcount == 1)


async def purge_codes(tx: Transaction, before: datetime) -> None:
    await tx.execute("DELETE FROM seller_login_codes WHERE expires_at < ?", (iso(before),))


# --- sessions -----------------------------------------------------------------------------------------------


async def create_session(tx: Transaction, secret: str, seller_id: str, now: datetime, ttl_seconds: int) -> str:
    """A new session for ``seller_id``; returns the cookie value (only its HMAC is stored)."""
    token = new_token(32)
    await tx.execute(
        """
        INSERT INTO seller_sessions (id, token_hash, seller_id, expires_at, revoked_at, created_at)
        VALUES (?, ?, ?, ?, NULL, ?)
        """,
        (new_id(), token_digest(secret, token), seller_id, iso(now + timedelta(seconds=ttl_seconds)), iso(now)),
    )
    return token


async def seller_for_token(db: Database, secret: str, token: str, now: datetime) -> Seller | None:
    row = await db.fetchone(
        """
        SELECT a.id, a.email, a.is_admin, a.created_at
        FROM seller_sessions AS s
        JOIN seller_accounts AS a ON a.id = s.seller_id
        WHERE s.token_hash = ? AND s.revoked_at IS NULL AND s.expires_at > ?
        """,
        (token_digest(secret, token), iso(now)),
    )
    return None if row is None else _seller(row)


async def session_id_for_token(db: Database, secret: str, token: str, now: datetime) -> str | None:
    """The id of the live console session of ``token`` (what a view-as session is bound to), or None."""
    found = await db.fetchval(
        "SELECT id FROM seller_sessions WHERE token_hash = ? AND revoked_at IS NULL AND expires_at > ?",
        (token_digest(secret, token), iso(now)),
    )
    return None if found is None else str(found)


async def revoke_session(tx: Transaction, secret: str, token: str, now: datetime) -> None:
    await tx.execute(
        "UPDATE seller_sessions SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL",
        (iso(now), token_digest(secret, token)),
    )
