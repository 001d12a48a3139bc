"""The ``login_codes`` table: one-time sign-in codes, stored only as HMACs, and the SQL that reads and spends them.

A code is 6 characters (as Polar's) from a 31-symbol alphabet without look-alikes (no 0/O, 1/I/L), drawn with
``secrets``: 31⁶ ≈ 8.9·10⁸ (≈ 29.7 bits), which is why every guess path is throttled (``rate_limit``, and the
arithmetic in SECURITY.md). ``code_hash`` is HMAC(instance secret, code); ``challenge_hash`` binds the code to
where it was requested:

* HTML flow: HMAC of a random challenge id kept in an HttpOnly cookie of the browser that asked;
* JSON flow: HMAC of (organization id, email) under a different purpose label, so a code requested in a browser
  can never be redeemed through the API without that browser's cookie, and vice versa.

``requester_hash`` is HMAC(instance secret, client network) of the request: Polar's ``authenticate`` takes just
``{code}``, and such a guess is compared only with the few live API codes requested from the same network (never
with every live code of the instance), each of which it costs a try.

Spending is ``UPDATE … SET used_at = ? WHERE id = ? AND used_at IS NULL AND canceled_at IS NULL`` inside the write
transaction: exactly one concurrent submit can win.
"""

from __future__ import annotations

import secrets
from datetime import datetime

import msgspec

from portal.clock import iso
from portal.db import Database, Transaction, row_dict
from portal.security import hmac_digest

# A–Z without I, L, O and 2–9: nothing a customer can misread from an email (0/O, 1/I/L).
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
_SEPARATORS = str.maketrans("", "", " -\t\u00a0")
MAX_ATTEMPTS = 5
# An email-less guess is compared with at most this many live codes of the guesser's network (each charged a try).
MAX_NETWORK_CANDIDATES = 5


class LoginCode(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    organization_id: str
    email: str
    customer_id: str | None
    code_hash: str
    challenge_hash: str
    expires_at: str
    attempts: int
    used_at: str | None
    canceled_at: str | None
    created_at: str
    requester_hash: str | None = None


_COLUMNS = """
    id,
    organization_id,
    email,
    customer_id,
    code_hash,
    challenge_hash,
    expires_at,
    attempts,
    used_at,
    canceled_at,
    created_at,
    requester_hash
"""


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(text: str) -> str:
    """What a person may type: any case, stray spaces or dashes. Other characters are kept (so the code is not
    well formed) rather than dropped: ``AB0CDEF`` must not become the valid-looking ``ABCDEF``."""
    return text.translate(_SEPARATORS).upper()[:64]


def is_well_formed(text: str) -> bool:
    """``text`` (normalized) is CODE_LENGTH symbols of CODE_ALPHABET: only such a guess is compared with codes."""
    return len(text) == CODE_LENGTH and all(ch in CODE_ALPHABET for ch in text)


def code_digest(secret: str, code: str) -> str:
    return hmac_digest(secret, normalize_code(code), purpose="login-code")


def challenge_digest(secret: str, challenge: str) -> str:
    return hmac_digest(secret, challenge, purpose="login-challenge")


def api_binding_digest(secret: str, organization_id: str, email: str) -> str:
    return hmac_digest(secret, f"{organization_id}\n{email.strip().lower()}", purpose="login-api-binding")


def requester_digest(secret: str, network: str) -> str:
    """The stored form of the client network a code was requested from (no addresses in ``login_codes``)."""
    return hmac_digest(secret, network, purpose="login-requester")


def email_digest(secret: str, organization_id: str, email: str) -> str:
    """Rate-limit subject for an address: personal data stays out of ``rate_limits``."""
    return hmac_digest(secret, f"{organization_id}\n{email.strip().lower()}", purpose="rate-limit-email")


async def cancel_live(tx: Transaction, organization_id: str, email: str, now: datetime) -> None:
    """A new code cancels every older unspent code for the same address in the same organization."""
    await tx.execute(
        """
        UPDATE login_codes
        SET canceled_at = ?
        WHERE organization_id = ?
          AND email = ?
          AND used_at IS NULL
          AND canceled_at IS NULL
        """,
        (iso(now), organization_id, email),
    )


async def insert(tx: Transaction, code: LoginCode) -> None:
    await tx.execute(
        f"INSERT INTO login_codes ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            code.id,
            code.organization_id,
            code.email,
            code.customer_id,
            code.code_hash,
            code.challenge_hash,
            code.expires_at,
            code.attempts,
            code.used_at,
            code.canceled_at,
            code.created_at,
            code.requester_hash,
        ),
    )


async def latest_live_for_challenge(
    tx: Database | Transaction, organization_id: str, challenge_hash: str
) -> LoginCode | None:
    row = await tx.fetchone(
        f"""
        SELECT {_COLUMNS}
        FROM login_codes
        WHERE challenge_hash = ?
          AND organization_id = ?
          AND used_at IS NULL
          AND canceled_at IS NULL
        ORDER BY created_at DESC
        LIMIT 1
        """,
        (challenge_hash, organization_id),
    )
    return None if row is None else msgspec.convert(row_dict(row), LoginCode, strict=False)


async def live_for_requester(db: Database, requester_hash: str, now: datetime) -> list[LoginCode]:
    """The newest live, unexpired, not over-tried codes requested from one client network (a reader query)."""
    rows = await db.fetchall(
        f"""
        SELECT {_COLUMNS}
        FROM login_codes
        WHERE requester_hash = ?
          AND used_at IS NULL
          AND canceled_at IS NULL
          AND expires_at > ?
          AND attempts < ?
        ORDER BY created_at DESC
        LIMIT ?
        """,
        (requester_hash, iso(now), MAX_ATTEMPTS, MAX_NETWORK_CANDIDATES),
    )
    return [msgspec.convert(row_dict(row), LoginCode, strict=False) for row in rows]


async def get_live(tx: Transaction, code_id: str) -> LoginCode | None:
    """One code, re-read inside the write transaction (its tries and state are exact there)."""
    row = await tx.fetchone(
        f"SELECT {_COLUMNS} FROM login_codes WHERE id = ? AND used_at IS NULL AND canceled_at IS NULL", (code_id,)
    )
    return None if row is None else msgspec.convert(row_dict(row), LoginCode, strict=False)


async def email_for_challenge(db: Database, organization_id: str, challenge_hash: str) -> str | None:
    """The address a challenge asked a code for (shown on the code page; exists for unknown addresses too)."""
    value = await db.fetchval(
        """
        SELECT email
        FROM login_codes
        WHERE challenge_hash = ?
          AND organization_id = ?
        ORDER BY created_at DESC
        LIMIT 1
        """,
        (challenge_hash, organization_id),
    )
    return None if value is None else str(value)


async def add_attempt(tx: Transaction, code_id: str) -> None:
    await tx.execute("UPDATE login_codes SET attempts = attempts + 1 WHERE id = ?", (code_id,))


async def spend(tx: Transaction, code_id: str, now: datetime) -> bool:
    """Mark the code used; ``False`` when another submit (or a newer code) got there first."""
    cursor = await tx.execute(
        """
        UPDATE login_codes
        SET used_at = ?
        WHERE id = ?
          AND used_at IS NULL
          AND canceled_at IS NULL
        """,
        (iso(now), code_id),
    )
    return cursor.rowcount == 1


async def purge_old(tx: Transaction, before: datetime) -> None:
    await tx.execute("DELETE FROM login_codes WHERE expires_at < ?", (iso(before),))


class ChallengeState(msgspec.Struct, frozen=True, kw_only=True):
    """What became of the latest code asked for by one browser's challenge (the code page explains it)."""

    email: str
    # live: still redeemable (a wrong try leaves ``tries_left``); used, replaced (a newer code was asked for the
    # same address), too_many (out of tries), expired.
    state: str
    tries_left: int
    expires_at: str


async def challenge_state(
    db: Database, organization_id: str, challenge_hash: str, now: datetime
) -> ChallengeState | None:
    """The state of this challenge's latest code, whatever it is (None when the challenge asked for nothing).

    Only the browser holding the challenge cookie learns this, about the code it asked for itself: it says nothing
    about whether the address belongs to a customer (codes of unknown addresses age and burn the same way)."""
    row = await db.fetchone(
        """
        SELECT email, expires_at, attempts, used_at, canceled_at
        FROM login_codes
        WHERE challenge_hash = ?
          AND organization_id = ?
        ORDER BY created_at DESC
        LIMIT 1
        """,
        (challenge_hash, organization_id),
    )
    if row is None:
        return None
    if row["used_at"] is not None:
        state = "used"
    elif row["canceled_at"] is not None:
        state = "replaced"
    elif row["attempts"] >= MAX_ATTEMPTS:
        state = "too_many"
    elif row["expires_at"] <= iso(now):
        state = "expired"
    else:
        state = "live"
    return ChallengeState(
        email=str(row["email"]),
        state=state,
        tries_left=max(0, MAX_ATTEMPTS - int(row["attempts"])),
        expires_at=str(row["expires_at"]),
    )
