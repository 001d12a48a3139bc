"""Sign-in rules, without HTTP: issue a login code, redeem it for a session, exchange a pre-authenticated token for
a browser session, sign out.

Every rule that needs atomicity runs inside one ``db.write()`` transaction (``BEGIN IMMEDIATE``): counters,
cancelling older codes, counting a wrong try, spending a code and creating the session. Rejections that must be
remembered (a wrong try, a rate-limit hit) are committed first and raised after the transaction.
"""

from __future__ import annotations

import contextlib
import secrets
from datetime import datetime, timedelta

import msgspec

from portal.clock import iso, new_id, parse_iso
from portal.db import Database, Transaction
from portal.organizations.queries import Organization
from portal.sessions import codes, rate_limit, store
from portal.sessions.codes import LoginCode
from portal.sessions.rate_limit import RateLimited
from portal.sessions.store import CustomerSession, SessionKind
from portal.settings import Settings

# Unspent codes are deleted a day after they expire (now and then, on a request).
_CODE_RETENTION = timedelta(days=1)


class InvalidCode(Exception):
    """Wrong, expired, spent, cancelled, over-tried or unbound code: one answer for all."""

    def __init__(self) -> None:
        super().__init__("This customer session code is invalid or has expired.")


class IssuedCode(msgspec.Struct, frozen=True, kw_only=True):
    """A code to email (only when the address belongs to a customer of the organization)."""

    email: str
    code: str
    expires_at: str


class SignedIn(msgspec.Struct, frozen=True, kw_only=True):
    token: str
    session: CustomerSession


def _ts(now: datetime) -> int:
    return int(now.timestamp())


async def request_code(
    db: Database,
    settings: Settings,
    now: datetime,
    *,
    organization: Organization,
    email: str,
    challenge_hash: str,
    ip: str,
) -> IssuedCode | None:
    """Count the request, cancel older codes, store a new one; return it only if the address is a customer's.

    The same work is done for unknown addresses (a row with ``customer_id`` NULL, which can never be redeemed), so
    neither the answer nor its timing tells whether an account exists. Raises ``RateLimited``.
    """
    email = email.strip()
    code = codes.new_code()
    expires_at = iso(now + timedelta(seconds=settings.login_code_ttl))
    limited: RateLimited | None = None
    customer_id: str | None = None
    async with db.write() as tx:
        try:
            await rate_limit.hit(tx, rate_limit.REQUEST_PER_IP, ip, _ts(now))
            await rate_limit.hit(
                tx,
                rate_limit.REQUEST_PER_EMAIL,
                codes.email_digest(settings.secret_key, organization.id, email),
                _ts(now),
            )
        except RateLimited as exc:
            limited = exc
        else:
            customer_id = await tx.fetchval(
                """
                SELECT id
                FROM customers
                WHERE organization_id = ?
                  AND email = ? COLLATE NOCASE
                  AND deleted_at IS NULL
                """,
                (organization.id, email),
            )
            await codes.cancel_live(tx, organization.id, email, now)
            await codes.insert(
                tx,
                LoginCode(
                    id=new_id(),
                    organization_id=organization.id,
                    email=email,
                    customer_id=customer_id,
                    code_hash=codes.code_digest(settings.secret_key, code),
                    challenge_hash=challenge_hash,
                    expires_at=expires_at,
                    attempts=0,
                    used_at=None,
                    canceled_at=None,
                    created_at=iso(now),
                ),
            )
            if secrets.randbelow(64) == 0:
                await codes.purge_old(tx, now - _CODE_RETENTION)
    if limited is not None:
        raise limited
    if customer_id is None:
        return None
    return IssuedCode(email=email, code=code, expires_at=expires_at)


def _usable(row: LoginCode, now: datetime) -> bool:
    return parse_iso(row.expires_at) > now and row.attempts < codes.MAX_ATTEMPTS


async def _redeem(
    tx: Transaction,
    settings: Settings,
    now: datetime,
    row: LoginCode,
    *,
    kind: SessionKind,
    ttl_seconds: int,
) -> SignedIn | None:
    """Spend ``row`` (atomically) and open a session for its customer; None if that is no longer possible."""
    if row.customer_id is None or not await codes.spend(tx, row.id, now):
        return None
    live = await tx.fetchval(
        "SELECT 1 FROM customers WHERE id = ? AND organization_id = ? AND deleted_at IS NULL",
        (row.customer_id, row.organization_id),
    )
    if live is None:
        return None
    # Receiving the code proves the address, as in Polar.
    await tx.execute("UPDATE customers SET email_verified = 1 WHERE id = ? AND email_verified = 0", (row.customer_id,))
    token, session = await store.create_session(
        tx,
        secret=settings.secret_key,
        kind=kind,
        organization_id=row.organization_id,
        customer_id=row.customer_id,
        now=now,
        ttl_seconds=ttl_seconds,
    )
    return SignedIn(token=token, session=session)


async def _revoke_previous(
    tx: Transaction, settings: Settings, now: datetime, organization_id: str, token: str | None
) -> None:
    """A login replaces the browser's earlier session for this organization (the old id is never reused)."""
    if token:
        await tx.execute(
            """
            UPDATE customer_sessions
            SET revoked_at = ?
            WHERE token_hash = ?
              AND kind = 'browser'
              AND organization_id = ?
              AND revoked_at IS NULL
            """,
            (iso(now), store.token_digest(settings.secret_key, token), organization_id),
        )


async def authenticate_browser(
    db: Database,
    settings: Settings,
    now: datetime,
    *,
    organization: Organization,
    challenge: str | None,
    code: str,
    ip: str,
    previous_token: str | None = None,
) -> SignedIn:
    """Redeem ``code`` for the code bound to this browser's ``challenge``; a new browser session on success.

    Raises ``InvalidCode`` (the wrong try is counted on the code and on the client address) or ``RateLimited``.
    """
    return await _authenticate(
        db,
        settings,
        now,
        code=code,
        ip=ip,
        organization_id=organization.id,
        binding=codes.challenge_digest(settings.secret_key, challenge) if challenge else None,
        kind="browser",
        require_binding=True,
        previous_token=previous_token,
    )


async def authenticate_api(
    db: Database,
    settings: Settings,
    now: datetime,
    *,
    code: str,
    ip: str,
    organization_id: str | None = None,
    email: str | None = None,
) -> SignedIn:
    """Redeem a code requested through the JSON API for a customer-session token (kind ``api``).

    Polar's body is just ``{code}``: then the code is found by its hash among codes requested through the API and
    is bound through that code's own organization and email. Clients that also send ``organization_id`` and
    ``email`` get the per-code try counter as well.
    """
    binding = (
        codes.api_binding_digest(settings.secret_key, organization_id, email) if organization_id and email else None
    )
    return await _authenticate(
        db,
        settings,
        now,
        code=code,
        ip=ip,
        organization_id=organization_id,
        binding=binding,
        kind="api",
        require_binding=False,
        previous_token=None,
    )


async def _authenticate(
    db: Database,
    settings: Settings,
    now: datetime,
    *,
    code: str,
    ip: str,
    organization_id: str | None,
    binding: str | None,
    kind: SessionKind,
    require_binding: bool,
    previous_token: str | None,
) -> SignedIn:
    code_hash = codes.code_digest(settings.secret_key, code)
    well_formed = codes.is_well_formed(codes.normalize_code(code))
    result: SignedIn | None = None
    limited: RateLimited | None = None
    async with db.write() as tx:
        try:
            await rate_limit.check(tx, rate_limit.AUTH_FAILURE_PER_IP, ip, _ts(now))
        except RateLimited as exc:
            limited = exc
        else:
            row: LoginCode | None = None
            if binding is not None and organization_id is not None:
                candidate = await codes.latest_live_for_challenge(tx, organization_id, binding)
                if candidate is not None and _usable(candidate, now):
                    if well_formed and secrets.compare_digest(candidate.code_hash, code_hash):
                        row = candidate
                    else:
                        await codes.add_attempt(tx, candidate.id)
            elif not require_binding and well_formed:
                for candidate in await codes.live_by_code_hash(tx, code_hash):
                    api_bound = codes.api_binding_digest(
                        settings.secret_key, candidate.organization_id, candidate.email
                    )
                    if secrets.compare_digest(candidate.challenge_hash, api_bound) and _usable(candidate, now):
                        row = candidate
                        break
            if row is not None:
                ttl = settings.session_max_age
                result = await _redeem(tx, settings, now, row, kind=kind, ttl_seconds=ttl)
                if result is not None and kind == "browser":
                    await _revoke_previous(tx, settings, now, row.organization_id, previous_token)
            if result is None:
                # Counted, never raised here: this try already failed; the next one meets ``check`` above.
                with contextlib.suppress(RateLimited):
                    await rate_limit.hit(tx, rate_limit.AUTH_FAILURE_PER_IP, ip, _ts(now))
    if limited is not None:
        raise limited
    if result is None:
        raise InvalidCode()
    return result


async def exchange_customer_session_token(
    db: Database,
    settings: Settings,
    now: datetime,
    *,
    organization: Organization,
    customer_session_token: str,
    previous_token: str | None = None,
) -> SignedIn | None:
    """A pre-authenticated link: a live ``api`` token of this organization becomes a NEW browser session (carrying
    the token's ``return_url``). None for an unknown, expired, revoked or other-organization token."""
    context = await store.lookup(db, secret=settings.secret_key, token=customer_session_token, now=now, kind="api")
    if context is None or context.organization.id != organization.id:
        return None
    async with db.write() as tx:
        token, session = await store.create_session(
            tx,
            secret=settings.secret_key,
            kind="browser",
            organization_id=organization.id,
            customer_id=context.customer.id,
            now=now,
            ttl_seconds=settings.session_max_age,
            return_url=context.session.return_url,
        )
        await _revoke_previous(tx, settings, now, organization.id, previous_token)
    return SignedIn(token=token, session=session)


async def sign_out(db: Database, settings: Settings, now: datetime, *, token: str | None) -> None:
    if token:
        await store.revoke_token(db, secret=settings.secret_key, token=token, now=now)


async def create_browser_session(
    db: Database,
    settings: Settings,
    now: datetime,
    *,
    organization_id: str,
    customer_id: str,
    return_url: str | None = None,
) -> SignedIn:
    """Open a browser session directly (tests, tools); the cookie value is ``SignedIn.token``."""
    async with db.write() as tx:
        token, session = await store.create_session(
            tx,
            secret=settings.secret_key,
            kind="browser",
            organization_id=organization_id,
            customer_id=customer_id,
            now=now,
            ttl_seconds=settings.session_max_age,
            return_url=return_url,
        )
    return SignedIn(token=token, session=session)
