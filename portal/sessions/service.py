"""Sign-in rules, without HTTP: issue a login code, redeem it for a session, exchange a pre-authenticated token for
a browser session, sign out.

Every rule that needs atomicity runs inside one ``db.write()`` transaction (``BEGIN IMMEDIATE``): cancelling older
codes, counting a wrong try on a code, spending a code and creating the session. Throttles are answered before
any write (``rate_limit`` counts in memory and writes in batches), and a guess with no live code to compare it
with writes nothing: a flood of refused or throttled tries never queues on SQLite's writer.
"""

from __future__ import annotations

import contextlib
import secrets
from collections import Counter
from datetime import datetime, timedelta

import msgspec

from portal.clock import iso, new_id, parse_iso
from portal.db import Database, Transaction
from portal.organizations.queries import Organization
from portal.sessions import codes, rate_limit, store
from portal.sessions.codes import LoginCode
from portal.sessions.store import CustomerSession, SessionContext, SessionKind
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
    limiter, ts, network = rate_limit.limiter(db), _ts(now), rate_limit.network_key(ip)
    email_subject = codes.email_digest(settings.secret_key, organization.id, email)
    # A full window is refused from memory, before any write; otherwise the request is counted exactly, in the
    # transaction that stores the code (a window filled meanwhile by another process rolls it all back).
    await limiter.check(rate_limit.REQUEST_PER_IP, network, ts)
    await limiter.check(rate_limit.REQUEST_PER_EMAIL, email_subject, ts)
    customer_id: str | None = None
    async with db.write() as tx:
        await rate_limit.hit_tx(tx, rate_limit.REQUEST_PER_IP, network, ts)
        await rate_limit.hit_tx(tx, rate_limit.REQUEST_PER_EMAIL, email_subject, ts)
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
                requester_hash=codes.requester_digest(settings.secret_key, network),
            ),
        )
        if secrets.randbelow(64) == 0:
            await codes.purge_old(tx, now - _CODE_RETENTION)
    limiter.written(rate_limit.REQUEST_PER_IP, network, ts)
    limiter.written(rate_limit.REQUEST_PER_EMAIL, email_subject, ts)
    if customer_id is None:
        return None
    return IssuedCode(email=email, code=code, expires_at=expires_at)


class MailBudget(msgspec.Struct, frozen=True, kw_only=True):
    """The throttles one outgoing sign-in-like mail is charged to: ``(limit, subject)`` pairs."""

    charges: tuple[tuple[rate_limit.Limit, str], ...]

    @classmethod
    def for_email_change(
        cls, settings: Settings, *, organization_id: str, customer_id: str, email: str, ip: str
    ) -> MailBudget:
        """An email-change verification mail: per customer, per target address (sign-in's budget for that
        address in that organization) and per client network (sign-in's, IPv6 by /64)."""
        return cls(
            charges=(
                (rate_limit.EMAIL_UPDATE_REQUEST_PER_CUSTOMER, customer_id),
                (rate_limit.REQUEST_PER_EMAIL, codes.email_digest(settings.secret_key, organization_id, email)),
                (rate_limit.REQUEST_PER_IP, rate_limit.network_key(ip)),
            )
        )

    async def check(self, db: Database, now: datetime) -> None:
        """Raise ``RateLimited`` from memory if any budget is spent: a refused request never takes the writer."""
        limiter = rate_limit.limiter(db)
        for limit, subject in self.charges:
            await limiter.check(limit, subject, _ts(now))

    async def charge(self, tx: Transaction, now: datetime) -> None:
        """Count the mail exactly, in the caller's write transaction (``RateLimited`` rolls it back)."""
        for limit, subject in self.charges:
            await rate_limit.hit_tx(tx, limit, subject, _ts(now))

    def charged(self, db: Database, now: datetime) -> None:
        """After the commit: the limiter re-reads these counts on their next use."""
        limiter = rate_limit.limiter(db)
        for limit, subject in self.charges:
            limiter.written(limit, subject, _ts(now))


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
        origin="code",
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

    Polar's body is just ``{code}``: then it is compared only with the few live API codes requested from the same
    client network (``codes.MAX_NETWORK_CANDIDATES``), each of which a wrong guess costs a try, so rotating
    addresses buys nothing. Clients that also send ``organization_id`` and ``email`` are compared with that
    address's live code wherever they are (for clients whose address changes between request and sign-in).
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


async def _candidates(
    db: Database,
    settings: Settings,
    now: datetime,
    *,
    network: str,
    organization_id: str | None,
    binding: str | None,
    require_binding: bool,
    well_formed: bool,
) -> list[LoginCode]:
    """The live codes a guess may be compared with, read on a reader connection (no write lock): the code bound to
    the browser's challenge or to (organization, email), else the API codes requested from the client's network."""
    if binding is not None and organization_id is not None:
        bound = await codes.latest_live_for_challenge(db, organization_id, binding)
        return [bound] if bound is not None and _usable(bound, now) else []
    if require_binding or not well_formed:
        return []
    requested = await codes.live_for_requester(db, codes.requester_digest(settings.secret_key, network), now)
    return [
        row
        for row in requested
        if secrets.compare_digest(
            row.challenge_hash, codes.api_binding_digest(settings.secret_key, row.organization_id, row.email)
        )
    ]


async def _count_failure(tx: Transaction, network: str, per_org: Counter[str], ts: int) -> None:
    """One wrong guess: a failure of the network, and its comparisons charged to the organizations and instance."""
    with contextlib.suppress(rate_limit.RateLimited):
        await rate_limit.hit_tx(tx, rate_limit.AUTH_FAILURE_PER_IP, network, ts)
    for org_id, compared in per_org.items():
        with contextlib.suppress(rate_limit.RateLimited):
            await rate_limit.hit_tx(tx, rate_limit.AUTH_FAILURE_PER_ORG, org_id, ts, compared)
    with contextlib.suppress(rate_limit.RateLimited):
        await rate_limit.hit_tx(tx, rate_limit.AUTH_FAILURE_GLOBAL, rate_limit.GLOBAL, ts, sum(per_org.values()))


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
    """Every guess path ends here. Budgets, in order: the client network's failures (checked first, from memory),
    then, for each live code the guess is compared with, that code's 5 tries (exact: under the write lock) and
    its organization's and the instance's budgets of wrong comparisons (checked before comparing). A guess with
    nothing to compare with is a failure of the network only and writes nothing."""
    limiter, ts, network = rate_limit.limiter(db), _ts(now), rate_limit.network_key(ip)
    await limiter.check(rate_limit.AUTH_FAILURE_PER_IP, network, ts)
    typed = codes.normalize_code(code)
    well_formed = codes.is_well_formed(typed)
    code_hash = codes.code_digest(settings.secret_key, typed)
    candidates = await _candidates(
        db,
        settings,
        now,
        network=network,
        organization_id=organization_id,
        binding=binding,
        require_binding=require_binding,
        well_formed=well_formed,
    )
    if not candidates:
        limiter.add(rate_limit.AUTH_FAILURE_PER_IP, network, ts)
        raise InvalidCode()
    per_org = Counter(row.organization_id for row in candidates)
    for org_id in per_org:
        await limiter.check(rate_limit.AUTH_FAILURE_PER_ORG, org_id, ts)
    await limiter.check(rate_limit.AUTH_FAILURE_GLOBAL, rate_limit.GLOBAL, ts)
    result: SignedIn | None = None
    async with db.write() as tx:
        # Exact under the write lock, whatever the other processes counted (nothing is compared when full).
        await rate_limit.check_tx(tx, rate_limit.AUTH_FAILURE_PER_IP, network, ts)
        for org_id in per_org:
            await rate_limit.check_tx(tx, rate_limit.AUTH_FAILURE_PER_ORG, org_id, ts)
        await rate_limit.check_tx(tx, rate_limit.AUTH_FAILURE_GLOBAL, rate_limit.GLOBAL, ts)
        for candidate in candidates:
            row = await codes.get_live(tx, candidate.id)  # re-read: another submit may have spent or burnt it
            if row is None or not _usable(row, now):
                continue
            if result is None and well_formed and secrets.compare_digest(row.code_hash, code_hash):
                result = await _redeem(tx, settings, now, row, kind=kind, ttl_seconds=settings.session_max_age)
                if result is not None and kind == "browser":
                    await _revoke_previous(tx, settings, now, row.organization_id, previous_token)
            elif result is None:
                await codes.add_attempt(tx, row.id)
        if result is None:
            # Counted, never raised here: this try already failed; the next one meets the checks above.
            await _count_failure(tx, network, per_org, ts)
    if result is None:
        limiter.written(rate_limit.AUTH_FAILURE_PER_IP, network, ts)
        for org_id in per_org:
            limiter.written(rate_limit.AUTH_FAILURE_PER_ORG, org_id, ts)
        limiter.written(rate_limit.AUTH_FAILURE_GLOBAL, rate_limit.GLOBAL, ts)
        raise InvalidCode()
    return result


async def link_token(
    db: Database, settings: Settings, now: datetime, *, organization: Organization, customer_session_token: str
) -> SessionContext | None:
    """The token behind a pre-authenticated link, if it may open this organization's portal: live, of this
    organization, and minted by the seller (``POST /v1/customer-sessions/``). Tokens a customer minted for
    themselves (code sign-in, email change) never do: anyone could send theirs to a victim (issue 17.1)."""
    context = await store.lookup(db, secret=settings.secret_key, token=customer_session_token, now=now, kind="api")
    if context is None or context.organization.id != organization.id or context.session.origin != "seller":
        return None
    return context


async def exchange_customer_session_token(
    db: Database,
    settings: Settings,
    now: datetime,
    *,
    organization: Organization,
    customer_session_token: str,
    previous_token: str | None = None,
) -> SignedIn | None:
    """A pre-authenticated link: a seller-minted token of this organization becomes a NEW browser session that
    carries the token's ``return_url``, expires with the token at the latest, and remembers it (signing out revokes
    it). None for an unknown, expired, revoked, other-organization or customer-minted token. The caller decides
    whether replacing ``previous_token``'s customer needs the customer's consent (``pages.portal_home``)."""
    link = await link_token(db, settings, now, organization=organization, customer_session_token=customer_session_token)
    if link is None:
        return None
    async with db.write() as tx:
        token, session = await store.create_session(
            tx,
            secret=settings.secret_key,
            kind="browser",
            organization_id=organization.id,
            customer_id=link.customer.id,
            now=now,
            ttl_seconds=settings.session_max_age,
            return_url=link.session.return_url,
            origin="link",
            parent_id=link.session.id,
            not_after=parse_iso(link.session.expires_at),
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
            origin="direct",
        )
    return SignedIn(token=token, session=session)
