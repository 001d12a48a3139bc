"""Seller sign-in rules, without HTTP: email a one-time code, redeem it for a console session, sign out.

The code machinery is the customers' (``portal.sessions.codes``: alphabet, length, normalisation, HMACs, five tries
per code, the browser-challenge binding) and so are the throttles (``portal.sessions.rate_limit``): code requests
per client network and per address, wrong guesses per network and over the instance. A console code is bound to
the browser that asked for it (the challenge cookie), so it can be compared with exactly one live code. Unknown
addresses get the same answer and the same work (a row that can never be redeemed), as for customers.
"""

from __future__ import annotations

import contextlib
import secrets
from datetime import datetime, timedelta

import msgspec

from portal.clock import iso, new_id, parse_iso
from portal.console import audit, store
from portal.console.store import Seller, SellerCode
from portal.db import Database
from portal.sessions import codes, rate_limit
from portal.settings import Settings

# Throttle subject of an address: the customers' HMAC under the console's own scope (no organization id).
_SCOPE = "console"


class InvalidCode(Exception):
    """Wrong, expired, spent, cancelled, over-tried or unbound code: one answer for all."""


class IssuedCode(msgspec.Struct, frozen=True, kw_only=True):
    email: str
    code: str
    expires_at: str


class SignedIn(msgspec.Struct, frozen=True, kw_only=True):
    token: str
    seller: Seller


def _ts(now: datetime) -> int:
    return int(now.timestamp())


async def request_code(
    db: Database, settings: Settings, now: datetime, *, email: str, challenge_hash: str, ip: str
) -> IssuedCode | None:
    """Count the request and store a code; return it (to email) only if the address is a seller's.

    Raises ``RateLimited`` (20 requests per network per 15 minutes, 5 codes per address per hour)."""
    email = email.strip()
    code = codes.new_code()
    limiter, ts, network = rate_limit.limiter(db), _ts(now), rate_limit.network_key(ip)
    email_subject = codes.email_digest(settings.secret_key, _SCOPE, email)
    await limiter.check(rate_limit.REQUEST_PER_IP, network, ts)
    await limiter.check(rate_limit.REQUEST_PER_EMAIL, email_subject, ts)
    expires_at = iso(now + timedelta(seconds=settings.login_code_ttl))
    async with db.write() as tx:
        await rate_limit.hit_tx(tx, rate_limit.REQUEST_PER_IP, network, ts)
        await rate_limit.hit_tx(tx, rate_limit.REQUEST_PER_EMAIL, email_subject, ts)
        seller = await store.seller_by_email(tx, email)
        await store.insert_code(
            tx,
            SellerCode(
                id=new_id(),
                email=email,
                seller_id=None if seller is None else seller.id,
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
            await store.purge_codes(tx, now - timedelta(days=1))
    limiter.written(rate_limit.REQUEST_PER_IP, network, ts)
    limiter.written(rate_limit.REQUEST_PER_EMAIL, email_subject, ts)
    if seller is None:
        return None
    return IssuedCode(email=seller.email, code=code, expires_at=expires_at)


async def authenticate(
    db: Database, settings: Settings, now: datetime, *, challenge: str | None, code: str, ip: str
) -> SignedIn:
    """Redeem ``code`` against the live code bound to this browser's challenge: a new console session.

    Raises ``InvalidCode`` (the try counted on the code and the network) or ``RateLimited``."""
    limiter, ts, network = rate_limit.limiter(db), _ts(now), rate_limit.network_key(ip)
    await limiter.check(rate_limit.AUTH_FAILURE_PER_IP, network, ts)
    await limiter.check(rate_limit.AUTH_FAILURE_GLOBAL, rate_limit.GLOBAL, ts)
    typed = codes.normalize_code(code)
    well_formed = codes.is_well_formed(typed)
    candidate = (
        await store.live_code_for_challenge(db, codes.challenge_digest(settings.secret_key, challenge))
        if challenge
        else None
    )
    if candidate is None:
        limiter.add(rate_limit.AUTH_FAILURE_PER_IP, network, ts)
        raise InvalidCode()
    result: SignedIn | None = None
    async with db.write() as tx:
        await rate_limit.check_tx(tx, rate_limit.AUTH_FAILURE_PER_IP, network, ts)
        row = await store.live_code_for_challenge(tx, candidate.challenge_hash)
        usable = (
            row is not None
            and row.id == candidate.id
            and parse_iso(row.expires_at) > now
            and row.attempts < codes.MAX_ATTEMPTS
        )
        if row is not None and usable:
            matches = well_formed and secrets.compare_digest(
                row.code_hash, codes.code_digest(settings.secret_key, typed)
            )
            if matches and row.seller_id is not None and await store.spend_code(tx, row.id, now):
                token = await store.create_session(
                    tx, settings.secret_key, row.seller_id, now, settings.session_max_age
                )
                seller = await store.seller_by_email(tx, row.email)
                if seller is not None:
                    result = SignedIn(token=token, seller=seller)
                    actor = audit.Actor(
                        seller_id=seller.id,
                        email=seller.email,
                        role="admin" if seller.is_admin else "seller",
                        client_ip=ip,
                    )
                    await audit.record(tx, actor, organization_id=None, action="session.sign_in", now=now)
            else:
                await store.add_attempt(tx, row.id)
        if result is None:
            with contextlib.suppress(rate_limit.RateLimited):
                await rate_limit.hit_tx(tx, rate_limit.AUTH_FAILURE_PER_IP, network, ts)
            with contextlib.suppress(rate_limit.RateLimited):
                await rate_limit.hit_tx(tx, rate_limit.AUTH_FAILURE_GLOBAL, rate_limit.GLOBAL, ts)
    if result is None:
        limiter.written(rate_limit.AUTH_FAILURE_PER_IP, network, ts)
        limiter.written(rate_limit.AUTH_FAILURE_GLOBAL, rate_limit.GLOBAL, ts)
        raise InvalidCode()
    return result
