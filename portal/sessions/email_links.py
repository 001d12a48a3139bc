"""Single-use sign-in links in transactional emails ("View your receipt"): minted when the email is sent, valid
for 24 hours, spent atomically by the first successful POST of the "Continue" page.

Mail scanners and link previewers fetch every link in a message; a GET therefore only shows the page (it never
signs in or spends the link), and the POST — which needs the page's CSRF token — does both: it spends the link
(``UPDATE … WHERE used_at IS NULL … RETURNING`` inside the write transaction, so two POSTs cannot both win) and
opens a NEW browser session. Only HMAC-SHA256(instance secret, token) is stored.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlencode

import msgspec

from portal.clock import iso, new_id
from portal.db import Database, Transaction, row_dict
from portal.security import hmac_digest, new_token
from portal.sessions import store
from portal.sessions.service import SignedIn
from portal.settings import Settings

LINK_TTL = timedelta(hours=24)
# Links are deleted a while after they expire (now and then, when new ones are minted).
_RETENTION = timedelta(days=7)


class EmailLink(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    organization_id: str
    customer_id: str
    target_path: str
    expires_at: str
    used_at: str | None


def link_digest(secret: str, token: str) -> str:
    return hmac_digest(secret, token, purpose="email-link")


def link_url(settings: Settings, slug: str, token: str) -> str:
    """The address in the email: the Continue page, token in the query (never logged: the request log drops it)."""
    return f"{settings.public_base_url}/{slug}/portal/link?{urlencode({'token': token})}"


async def mint(
    tx: Transaction,
    settings: Settings,
    *,
    organization_id: str,
    customer_id: str,
    target_path: str,
    now: datetime,
    outbox_id: str | None = None,
) -> str:
    """Store a new link (hashed) to ``target_path`` for ``customer_id``; returns the token for the email."""
    token = new_token(32)
    await tx.execute(
        """
        INSERT INTO email_links (
            id,
            token_hash,
            organization_id,
            customer_id,
            target_path,
            outbox_id,
            expires_at,
            created_at
        ) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        """,
        (
            new_id(),
            link_digest(settings.secret_key, token),
            organization_id,
            customer_id,
            target_path,
            outbox_id,
            iso(now + LINK_TTL),
            iso(now),
        ),
    )
    return token


async def purge_expired(tx: Transaction, now: datetime) -> None:
    await tx.execute("DELETE FROM email_links WHERE expires_at < ?", (iso(now - _RETENTION),))


async def peek(
    db: Database, settings: Settings, *, organization_id: str, token: str, now: datetime
) -> EmailLink | None:
    """The live (unused, unexpired) link of this organization, without spending it (the GET page)."""
    row = await db.fetchone(
        """
        SELECT id, organization_id, customer_id, target_path, expires_at, used_at
        FROM email_links
        WHERE token_hash = ?
          AND organization_id = ?
          AND used_at IS NULL
          AND expires_at > ?
        """,
        (link_digest(settings.secret_key, token), organization_id, iso(now)),
    )
    return None if row is None else msgspec.convert(row_dict(row), EmailLink)


async def redeem(
    db: Database,
    settings: Settings,
    *,
    organization_id: str,
    token: str,
    now: datetime,
    previous_token: str | None = None,
) -> tuple[SignedIn, str] | None:
    """Spend the link and open a browser session for its customer: ``(signed_in, target_path)``, or None when
    the link is unknown, of another organization, expired, already used, or its customer is gone."""
    async with db.write() as tx:
        row = await tx.fetchone(
            """
            UPDATE email_links SET used_at = ?
            WHERE token_hash = ?
              AND organization_id = ?
              AND used_at IS NULL
              AND expires_at > ?
            RETURNING customer_id, target_path
            """,
            (iso(now), link_digest(settings.secret_key, token), organization_id, iso(now)),
        )
        if row is None:
            return None
        live = await tx.fetchval(
            "SELECT 1 FROM customers WHERE id = ? AND organization_id = ? AND deleted_at IS NULL",
            (row["customer_id"], organization_id),
        )
        if live is None:
            return None
        # The link came by email: the address is proven, as with a login code.
        await tx.execute(
            "UPDATE customers SET email_verified = 1 WHERE id = ? AND email_verified = 0", (row["customer_id"],)
        )
        session_token, session = await store.create_session(
            tx,
            secret=settings.secret_key,
            kind="browser",
            organization_id=organization_id,
            customer_id=row["customer_id"],
            now=now,
            ttl_seconds=settings.session_max_age,
            origin="email_link",
        )
        if previous_token:
            await tx.execute(
                """
                UPDATE customer_sessions SET revoked_at = ?
                WHERE token_hash = ? AND kind = 'browser' AND organization_id = ? AND revoked_at IS NULL
                """,
                (iso(now), store.token_digest(settings.secret_key, previous_token), organization_id),
            )
    return SignedIn(token=session_token, session=session), row["target_path"]


async def known_target(db: Database, settings: Settings, *, organization_id: str, token: str) -> tuple[str, str] | None:
    """``(customer_id, target_path)`` of a link of this organization in any state (used, expired, still kept):
    after the customer signs in again, they land where the email pointed."""
    row = await db.fetchone(
        "SELECT customer_id, target_path FROM email_links WHERE token_hash = ? AND organization_id = ?",
        (link_digest(settings.secret_key, token), organization_id),
    )
    return None if row is None else (str(row["customer_id"]), str(row["target_path"]))


async def void_for_customer(tx: Transaction, organization_id: str, customer_id: str, now: datetime) -> int:
    """Spend every unused link of the customer (their email address changed: links mailed to the old address must
    not sign anyone in any more); the number voided."""
    cursor = await tx.execute(
        "UPDATE email_links SET used_at = ? WHERE customer_id = ? AND organization_id = ? AND used_at IS NULL "
        "AND expires_at > ?",
        (iso(now), customer_id, organization_id, iso(now)),
    )
    return int(cursor.rowcount)
