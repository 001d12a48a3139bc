"""The ``customer_sessions`` table: create, look up (one query with customer + org), touch, revoke.

Tokens are 32 random bytes, URL-safe; only HMAC-SHA256(instance secret, token) is stored. ``kind`` is
``browser`` (cookie; idle + absolute timeout) or ``api`` (Bearer on ``/v1/customer-portal/*`` and the
``?customer_session_token=`` of pre-authenticated links; absolute expiry only, as Polar).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import quote, urlencode

import msgspec

from portal.clock import iso, new_id, parse_iso
from portal.customers.reads import Customer
from portal.db import Database, Transaction
from portal.organizations.queries import Organization
from portal.security import hmac_digest, new_token

SessionKind = Literal["api", "browser"]
# Who minted a session (issue 17.1). ``seller``: ``POST /v1/customer-sessions/``, the only tokens that work as
# pre-authenticated portal links. ``code`` / ``email_change``: minted by the customer for themselves (sign-in code,
# email-change verification). ``link`` / ``email_link``: browser sessions opened by a seller link / an email link.
# ``view_as``: a seller viewing the portal as the customer, read-only (``portal.sessions.view_as``).
SessionOrigin = Literal["seller", "code", "email_change", "link", "email_link", "direct", "view_as"]
# Polar's prefix for customer-session tokens (``server/polar/customer_session/service.py``).
API_TOKEN_PREFIX = "polar_cst_"  # noqa: S105 - a public prefix, not a secret

# Refresh last_seen_at at most this often: the idle timeout needs minutes, not a write per request.
TOUCH_INTERVAL = timedelta(seconds=60)


class CustomerSession(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    kind: SessionKind
    organization_id: str
    customer_id: str
    return_url: str | None
    expires_at: str
    last_seen_at: str | None
    created_at: str
    origin: str | None = None
    parent_id: str | None = None


class SessionContext(msgspec.Struct, frozen=True, kw_only=True):
    """Who is asking: the session, its customer and the customer's organization."""

    session: CustomerSession
    customer: Customer
    organization: Organization


def token_digest(secret: str, token: str) -> str:
    return hmac_digest(secret, token, purpose="customer-session")


def customer_portal_url(base_url: str, slug: str, token: str, email: str) -> str:
    """The pre-authenticated portal link of a seller-minted token, as Polar's ``customer_portal_url``: the token
    and the customer's email, URL-encoded (``POST /v1/customer-sessions/`` and ``portal link``)."""
    return f"{base_url}/{quote(slug)}/portal?" + urlencode({"customer_session_token": token, "email": email})


async def create_session(
    tx: Transaction,
    *,
    secret: str,
    kind: SessionKind,
    organization_id: str,
    customer_id: str,
    now: datetime,
    ttl_seconds: int,
    return_url: str | None = None,
    origin: SessionOrigin | None = None,
    parent_id: str | None = None,
    not_after: datetime | None = None,
    viewer_session_id: str | None = None,
) -> tuple[str, CustomerSession]:
    """Insert a new session and return ``(token, session)``; the token is never stored. ``api`` tokens carry
    Polar's ``polar_cst_`` prefix. ``not_after`` caps the expiry (a link's session never outlives its token)."""
    token = (API_TOKEN_PREFIX if kind == "api" else "") + new_token(32)
    expires = now + timedelta(seconds=ttl_seconds)
    if not_after is not None:
        expires = min(expires, not_after)
    session = CustomerSession(
        id=new_id(),
        kind=kind,
        organization_id=organization_id,
        customer_id=customer_id,
        return_url=return_url,
        expires_at=iso(expires),
        last_seen_at=iso(now),
        created_at=iso(now),
        origin=origin,
        parent_id=parent_id,
    )
    await tx.execute(
        """
        INSERT INTO customer_sessions (
            id,
            token_hash,
            kind,
            organization_id,
            customer_id,
            return_url,
            expires_at,
            last_seen_at,
            created_at,
            origin,
            parent_id,
            viewer_session_id
        ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        (
            session.id,
            token_digest(secret, token),
            kind,
            organization_id,
            customer_id,
            return_url,
            session.expires_at,
            session.last_seen_at,
            session.created_at,
            origin,
            parent_id,
            viewer_session_id,
        ),
    )
    return token, session


_LOOKUP = """
SELECT
    s.id AS s_id,
    s.kind AS s_kind,
    s.organization_id AS s_organization_id,
    s.customer_id AS s_customer_id,
    s.return_url AS s_return_url,
    s.expires_at AS s_expires_at,
    s.last_seen_at AS s_last_seen_at,
    s.created_at AS s_created_at,
    s.origin AS s_origin,
    s.parent_id AS s_parent_id,
    c.id AS c_id,
    c.organization_id AS c_organization_id,
    c.email AS c_email,
    c.email_verified AS c_email_verified,
    c.name AS c_name,
    c.external_id AS c_external_id,
    c.billing_name AS c_billing_name,
    c.billing_address AS c_billing_address,
    c.tax_id AS c_tax_id,
    c.locale AS c_locale,
    c.created_at AS c_created_at,
    c.modified_at AS c_modified_at,
    o.id AS o_id,
    o.slug AS o_slug,
    o.name AS o_name,
    o.avatar_url AS o_avatar_url,
    o.website_url AS o_website_url,
    o.support_email AS o_support_email,
    o.address AS o_address,
    o.receipt_prefix AS o_receipt_prefix,
    o.default_currency AS o_default_currency,
    o.default_locale AS o_default_locale,
    o.accent_color AS o_accent_color,
    o.allow_plan_change AS o_allow_plan_change,
    o.allow_seats AS o_allow_seats,
    o.show_usage AS o_show_usage,
    o.allow_email_change AS o_allow_email_change,
    o.settings AS o_settings,
    o.email_sender_name AS o_email_sender_name,
    o.email_reply_to AS o_email_reply_to,
    o.resubscribe_url AS o_resubscribe_url,
    o.created_at AS o_created_at,
    o.modified_at AS o_modified_at,
    o.catalog_version AS o_catalog_version
FROM customer_sessions s
JOIN customers c ON c.id = s.customer_id AND c.deleted_at IS NULL
JOIN organizations o ON o.id = s.organization_id AND o.id = c.organization_id
WHERE s.token_hash = ?
  AND s.revoked_at IS NULL
  AND s.expires_at > ?
"""


def _column_groups(sql: str) -> dict[str, tuple[int, int, tuple[str, ...]]]:
    """``{"s_": (start, stop, field names), "c_": …, "o_": …}`` from the ``AS x_name`` aliases of ``_LOOKUP``, in
    column order: rows are split by position, not by scanning every key for its prefix (this runs per request)."""
    aliases = re.findall(r"\bAS ([sco]_)(\w+)", sql)
    groups: dict[str, tuple[int, int, tuple[str, ...]]] = {}
    for prefix in ("s_", "c_", "o_"):
        positions = [i for i, (p, _) in enumerate(aliases) if p == prefix]
        if not positions or positions != list(range(positions[0], positions[-1] + 1)):
            raise RuntimeError(f"_LOOKUP: the {prefix}* columns must be present and adjacent")
        groups[prefix] = (positions[0], positions[-1] + 1, tuple(aliases[i][1] for i in positions))
    return groups


_GROUPS = _column_groups(_LOOKUP)


def _split(values: tuple[object, ...], prefix: str) -> dict[str, object]:
    start, stop, names = _GROUPS[prefix]
    return dict(zip(names, values[start:stop], strict=True))


async def lookup(
    db: Database,
    *,
    secret: str,
    token: str,
    now: datetime,
    kind: SessionKind | None = None,
    idle_timeout_seconds: int | None = None,
) -> SessionContext | None:
    """The live session for ``token`` (one indexed query), or None: unknown, revoked, expired, idle, wrong kind."""
    if not token or len(token) > 200:
        return None
    row = await db.fetchone(_LOOKUP, (token_digest(secret, token), iso(now)))
    if row is None:
        return None
    context = _context_of(tuple(row))
    session = context.session
    if kind is not None and session.kind != kind:
        return None
    if (
        idle_timeout_seconds is not None
        and session.last_seen_at is not None
        and parse_iso(session.last_seen_at) + timedelta(seconds=idle_timeout_seconds) <= now
    ):
        return None
    return context


# The contexts built from lookup rows, by the row's values: a signed-in customer's requests read the same row (until
# the once-a-minute refresh or a change to the customer or seller), and the three structs are frozen, so the same
# context serves them all instead of three ``msgspec.convert``s per request. Keyed by every column, so any change
# is a new entry; emptied when full.
_CONTEXTS: dict[tuple[object, ...], SessionContext] = {}
_CONTEXTS_MAX = 1_024  # ~4 KB each (the key row and three structs)


def _context_of(data: tuple[object, ...]) -> SessionContext:
    context = _CONTEXTS.get(data)
    if context is None:
        context = SessionContext(
            session=msgspec.convert(_split(data, "s_"), CustomerSession, strict=False),
            customer=msgspec.convert(_split(data, "c_"), Customer, strict=False),
            organization=msgspec.convert(_split(data, "o_"), Organization, strict=False),
        )
        if len(_CONTEXTS) >= _CONTEXTS_MAX:
            _CONTEXTS.clear()
        _CONTEXTS[data] = context
    return context


# Sessions this process refreshed (or is refreshing), and when. Without it, every request of a busy session that
# arrives while the first refresh is on its way sees the old ``last_seen_at`` and writes too: a burst of writes
# (and, across worker processes, of waits on SQLite's lock) once a minute per busy session.
_TOUCHED: dict[str, datetime] = {}
_TOUCHED_MAX = 10_000


def needs_touch(session: CustomerSession, now: datetime) -> bool:
    if session.last_seen_at is not None and parse_iso(session.last_seen_at) + TOUCH_INTERVAL > now:
        return False
    touched = _TOUCHED.get(session.id)
    return touched is None or touched + TOUCH_INTERVAL <= now


async def touch(db: Database, session_id: str, now: datetime) -> None:
    """Record activity (at most once a minute per session and process, see ``needs_touch``): one short
    ``db.transact``."""
    if len(_TOUCHED) >= _TOUCHED_MAX:
        for stale in [sid for sid, when in _TOUCHED.items() if when + TOUCH_INTERVAL <= now] or list(_TOUCHED):
            del _TOUCHED[stale]
    _TOUCHED[session_id] = now
    stamp = iso(now)
    try:
        await db.transact(
            lambda tx: tx.execute("UPDATE customer_sessions SET last_seen_at = ? WHERE id = ?", (stamp, session_id))
        )
    except BaseException:
        _TOUCHED.pop(session_id, None)
        raise


async def revoke(tx: Transaction, session_id: str, now: datetime) -> None:
    await tx.execute(
        "UPDATE customer_sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        (iso(now), session_id),
    )


async def revoke_token(db: Database, *, secret: str, token: str, now: datetime) -> None:
    """Revoke the session of ``token`` and, for a browser session opened by a link, the link's token too (signing
    out ends what the link granted: the link no longer opens the portal)."""
    digest = token_digest(secret, token)
    async with db.write() as tx:
        await tx.execute(
            """
            UPDATE customer_sessions SET revoked_at = ?
            WHERE revoked_at IS NULL
              AND (token_hash = ?
                   OR id = (SELECT parent_id FROM customer_sessions WHERE token_hash = ? AND kind = 'browser'))
            """,
            (iso(now), digest, digest),
        )


async def has_earlier_session(db: Database, customer_id: str, before: str) -> bool:
    """Whether the customer had a browser session (any way in) before ``before`` (ISO time): a returning customer
    ("Welcome back"), as opposed to one seeing their portal for the first time."""
    found = await db.fetchval(
        "SELECT 1 FROM customer_sessions WHERE customer_id = ? AND kind = 'browser' AND created_at < ? "
        "AND viewer_session_id IS NULL LIMIT 1",  # a seller viewing as the customer is not the customer's visit
        (customer_id, before),
    )
    return found is not None


# --- the seller console: a customer's sessions --------------------------------------------------------------


class SessionSummary(msgspec.Struct, frozen=True, kw_only=True):
    """A live session of a customer as the console lists it (never its token: only the HMAC is stored)."""

    id: str
    kind: SessionKind
    origin: str | None
    created_at: str
    last_seen_at: str | None
    expires_at: str
    viewer_session_id: str | None = None


async def live_sessions_of_customer(
    db: Database, organization_id: str, customer_id: str, now: datetime
) -> list[SessionSummary]:
    """The customer's unrevoked, unexpired sessions (browser and API tokens), newest first
    (``customer_sessions_customer``)."""
    rows = await db.fetchall(
        """
        SELECT id, kind, origin, created_at, last_seen_at, expires_at, viewer_session_id FROM customer_sessions
        WHERE customer_id = ? AND organization_id = ? AND revoked_at IS NULL AND expires_at > ?
        ORDER BY created_at DESC
        LIMIT 100
        """,
        (customer_id, organization_id, iso(now)),
    )
    return [msgspec.convert(dict(row), SessionSummary, strict=False) for row in rows]


async def sign_ins_of_customer(
    db: Database, organization_id: str, customer_id: str, limit: int = 50
) -> list[SessionSummary]:
    """The customer's newest browser sessions, live or not (the timeline's sign-ins), seller views left out."""
    rows = await db.fetchall(
        """
        SELECT id, kind, origin, created_at, last_seen_at, expires_at, viewer_session_id FROM customer_sessions
        WHERE customer_id = ? AND organization_id = ? AND kind = 'browser' AND viewer_session_id IS NULL
        ORDER BY created_at DESC
        LIMIT ?
        """,
        (customer_id, organization_id, limit),
    )
    return [msgspec.convert(dict(row), SessionSummary, strict=False) for row in rows]


async def revoke_customer_sessions(tx: Transaction, organization_id: str, customer_id: str, now: datetime) -> int:
    """Revoke every live session of the customer, browser sessions and API tokens alike (seller-minted links
    included); the number revoked."""
    cursor = await tx.execute(
        "UPDATE customer_sessions SET revoked_at = ? WHERE customer_id = ? AND organization_id = ? "
        "AND revoked_at IS NULL AND expires_at > ?",
        (iso(now), customer_id, organization_id, iso(now)),
    )
    return int(cursor.rowcount)


async def viewer_is_live(db: Database, session_id: str, now: datetime) -> bool:
    """Whether the seller's console session a view-as session is bound to (``viewer_session_id``) is still live:
    signing out of the console (or its expiry) ends every view it opened."""
    found = await db.fetchval(
        """
        SELECT 1 FROM customer_sessions s
        JOIN seller_sessions v ON v.id = s.viewer_session_id
        WHERE s.id = ? AND v.revoked_at IS NULL AND v.expires_at > ?
        """,
        (session_id, iso(now)),
    )
    return found is not None
