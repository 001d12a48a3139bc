"""Changing a customer's email address (off unless the organization sets ``allow_email_change``): the
``customer_email_updates`` rows, their throttles and the verification. One home for both surfaces: the customer
API (``/v1/customer-portal/customers/me/email-update/*``) and the portal's Billing page with the link in the
verification email (``portal.portal_pages.email_change``).

A request stores a 12-symbol token (only its HMAC is kept) valid for 30 minutes; a new request cancels older
unused ones. The verification mail is throttled like a sign-in code (``MailBudget.for_email_change``) and the
answer is the same whether or not the new address already belongs to a customer: such an address gets no mail
(issue 17.3, SECURITY.md). Wrong tokens are counted per client network and over the instance, from memory.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import msgspec

from portal.clock import iso, new_id
from portal.customers.reads import get_customer_by_email
from portal.customers.service import CustomerUpdate, update_customer
from portal.db import Database, Transaction
from portal.errors import Conflict, DomainError, InvalidInput
from portal.fields import DOTTED_EMAIL_ADDRESS_PATTERN
from portal.organizations.queries import get_by_id
from portal.scope import Scope
from portal.security import hmac_digest, new_token
from portal.sessions import rate_limit
from portal.sessions.service import MailBudget
from portal.sessions.store import SessionContext
from portal.settings import Settings
from portal.subscriptions.actions import record_event

EMAIL_UPDATE_TTL = timedelta(minutes=30)
TOKEN_LENGTH = 12
_EMAIL_RE = re.compile(DOTTED_EMAIL_ADDRESS_PATTERN)
_TOKEN_RE = re.compile(r"^[A-Z0-9]{1,200}$")

T = TypeVar("T")


class EmailChangeDisabled(DomainError):
    """The organization does not let customers change their email address."""


class InvalidEmailChangeToken(DomainError):
    """The token is unknown, used, expired, or its organization no longer allows email changes."""


class EmailChangeRequested(msgspec.Struct, frozen=True, kw_only=True):
    """A stored request. ``token`` is None when the new address already belongs to a customer: no mail goes out,
    and the caller answers exactly as if one did."""

    email: str
    token: str | None
    minutes: int


class EmailChanged(msgspec.Struct, frozen=True, kw_only=True):
    organization_id: str
    customer_id: str
    email: str


class PendingChange(msgspec.Struct, frozen=True, kw_only=True):
    organization_id: str
    customer_id: str
    email: str


def _digest(settings: Settings, token: str) -> str:
    return hmac_digest(settings.secret_key, token, purpose="email-update")


def normalize_token(token: str) -> str:
    """Tokens are typed or pasted: spaces around and lower case are forgiven."""
    return token.strip().upper()


def email_problem(email: str) -> str | None:
    """Why ``email`` cannot be a new address (the customer API's shape: one "@", a dot in the domain), or None."""
    if not email:
        return "enter an email address"
    if len(email) > 320 or not _EMAIL_RE.match(email):
        return "enter a valid email address, like name@example.com"
    return None


async def request_change(
    db: Database, settings: Settings, ctx: SessionContext, email: str, *, ip: str, now: datetime
) -> EmailChangeRequested:
    """Store a change request for the signed-in customer, charged to the mail throttles in the same write.

    Raises ``EmailChangeDisabled``, ``InvalidInput`` (field ``email``) or ``rate_limit.RateLimited`` (a spent
    budget is refused from memory, before any write)."""
    if not ctx.organization.allow_email_change:
        raise EmailChangeDisabled("Changing the email address is not enabled by this seller.")
    email = email.strip()
    if problem := email_problem(email):
        raise InvalidInput(problem, "email")
    if email.lower() == ctx.customer.email.lower():
        raise InvalidInput("this is already your email address", "email")
    # An address that is already a customer's gets the same answer and the same writes, but no mail: the answer
    # must not tell who is a customer (issue 17.3); such a change would fail at verification anyway.
    in_use = await get_customer_by_email(db, Scope.of_organization(ctx.organization.id), email) is not None
    budget = MailBudget.for_email_change(
        settings, organization_id=ctx.organization.id, customer_id=ctx.customer.id, email=email, ip=ip
    )
    # 12 characters of A-Z0-9 (~62 bits): short enough to type, far too many to guess in 30 minutes.
    token = "".join(ch for ch in new_token(24).upper() if ch.isalnum())[:TOKEN_LENGTH]
    await budget.check(db, now)
    async with db.write() as tx:
        await budget.charge(tx, now)
        await _store(tx, settings, ctx, email, token, now)
    budget.charged(db, now)
    minutes = int(EMAIL_UPDATE_TTL.total_seconds() // 60)
    return EmailChangeRequested(email=email, token=None if in_use else token, minutes=minutes)


async def guess_allowed(db: Database, ip: str, now: datetime) -> str:
    """The client's network, once its and the instance's budgets of wrong tokens allow another guess
    (``rate_limit.RateLimited`` otherwise, from memory)."""
    network = rate_limit.network_key(ip)
    limiter, ts = rate_limit.limiter(db), int(now.timestamp())
    await limiter.check(rate_limit.EMAIL_UPDATE_FAILURE_PER_IP, network, ts)
    await limiter.check(rate_limit.EMAIL_UPDATE_FAILURE_GLOBAL, rate_limit.GLOBAL, ts)
    return network


def guess_failed(db: Database, network: str, now: datetime) -> None:
    limiter, ts = rate_limit.limiter(db), int(now.timestamp())
    limiter.add(rate_limit.EMAIL_UPDATE_FAILURE_PER_IP, network, ts)
    limiter.add(rate_limit.EMAIL_UPDATE_FAILURE_GLOBAL, rate_limit.GLOBAL, ts)


async def pending(db: Database, settings: Settings, token: str, now: datetime) -> PendingChange | None:
    """The live request of ``token`` (read-only: never spends it), or None."""
    token = normalize_token(token)
    if not _TOKEN_RE.match(token):
        return None
    row = await db.fetchone(
        """
        SELECT u.organization_id, u.customer_id, u.email
        FROM customer_email_updates u
        WHERE u.token_hash = ? AND u.used_at IS NULL AND u.expires_at > ?
        """,
        (_digest(settings, token), iso(now)),
    )
    if row is None:
        return None
    organization = await get_by_id(db, row["organization_id"])
    if organization is None or not organization.allow_email_change:
        return None
    return PendingChange(organization_id=row["organization_id"], customer_id=row["customer_id"], email=row["email"])


async def check_token(
    db: Database, settings: Settings, token: str, *, ip: str, now: datetime, organization_id: str | None = None
) -> PendingChange:
    """The live request of ``token`` (of ``organization_id`` when given), a wrong guess counted against the
    client's network. Raises ``InvalidEmailChangeToken`` or ``rate_limit.RateLimited``."""
    network = await guess_allowed(db, ip, now)
    found = await pending(db, settings, token, now)
    if found is None or (organization_id is not None and found.organization_id != organization_id):
        # A wrong token is answered from a reader: a flood of them never takes the write lock.
        guess_failed(db, network, now)
        raise InvalidEmailChangeToken("Invalid or expired verification token.")
    return found


async def verify(
    db: Database,
    settings: Settings,
    token: str,
    *,
    ip: str,
    now: datetime,
    organization_id: str | None = None,
    then: Callable[[Transaction, EmailChanged], Awaitable[T]],
) -> T:
    """Spend ``token`` and change the customer's email, in one write; ``then`` runs in the same transaction (the
    API mints its session token there) and its result is returned.

    Raises ``InvalidEmailChangeToken``, ``rate_limit.RateLimited``, or ``InvalidInput`` (field ``email``) when the
    address became another customer's meanwhile (nothing is written then)."""
    await check_token(db, settings, token, ip=ip, now=now, organization_id=organization_id)
    digest = _digest(settings, normalize_token(token))
    async with db.write() as tx:
        row = await tx.fetchone(
            """
            SELECT u.id, u.organization_id, u.customer_id, u.email, o.allow_email_change
            FROM customer_email_updates u
            JOIN organizations o ON o.id = u.organization_id
            WHERE u.token_hash = ? AND u.used_at IS NULL AND u.expires_at > ?
            """,
            (digest, iso(now)),
        )
        if row is None or not row["allow_email_change"]:
            raise InvalidEmailChangeToken("Invalid or expired verification token.")
        await tx.execute("UPDATE customer_email_updates SET used_at = ? WHERE id = ?", (iso(now), row["id"]))
        try:
            await update_customer(
                tx,
                row["customer_id"],
                CustomerUpdate(email=row["email"], email_verified=True),
                now=now,
                organization_id=row["organization_id"],
            )
        except Conflict:
            raise InvalidInput("this email address is already in use", "email") from None
        changed = EmailChanged(
            organization_id=row["organization_id"], customer_id=row["customer_id"], email=row["email"]
        )
        await record_event(
            tx,
            organization_id=changed.organization_id,
            customer_id=changed.customer_id,
            name="customer.email_updated",
            subject_id=changed.customer_id,
            now=now,
            data={"email": changed.email},
        )
        return await then(tx, changed)


async def nothing_more(tx: Transaction, changed: EmailChanged) -> EmailChanged:
    """A ``then`` for ``verify`` that adds nothing to the transaction."""
    return changed


async def _store(tx: Transaction, settings: Settings, ctx: SessionContext, email: str, token: str, now: Any) -> None:
    """Record a requested change; a new request cancels older unused ones."""
    await tx.execute(
        "UPDATE customer_email_updates SET used_at = ? WHERE customer_id = ? AND used_at IS NULL",
        (iso(now), ctx.customer.id),
    )
    await tx.execute(
        """
        INSERT INTO customer_email_updates (
            id,
            organization_id,
            customer_id,
            email,
            token_hash,
            expires_at,
            created_at
        ) VALUES (?, ?, ?, ?, ?, ?, ?)
        """,
        (
            new_id(),
            ctx.organization.id,
            ctx.customer.id,
            email,
            _digest(settings, token),
            iso(now + EMAIL_UPDATE_TTL),
            iso(now),
        ),
    )
    await record_event(
        tx,
        organization_id=ctx.organization.id,
        customer_id=ctx.customer.id,
        name="customer.email_update_requested",
        subject_id=ctx.customer.id,
        now=now,
    )
