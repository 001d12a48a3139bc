"""The seller console's pages about what one customer bought (issue 21, Customers): a subscription
(``/console/<slug>/subscriptions/<id>``: cancel at the period end, end now, un-cancel), a license key
(``/console/<slug>/license-keys/<id>``: reveal, disable, enable, rotate, activation limit, expiry, deactivate an
activation) and a customer's benefit grants (``/console/<slug>/customers/<id>/benefits``: grant, revoke).

Support sellers and owners may do all of it (it is about customers, not settings). Every read goes through the
areas' ``reads.py`` with ``Scope.of_organization`` (another organization's id answers the 404 an unknown one does);
every action goes through the area's own service function (the customer portal's cancel and resume for
subscriptions, so a subscription billed by a processor is changed there first and the same webhooks and emails go
out) and writes its audit entry in the action's own transaction. A refused input re-renders the page with the
field named (400) and writes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath
from litestar.response import Template

from portal import i18n
from portal.benefits import grants as benefit_grants
from portal.benefits import license_keys
from portal.benefits import reads as benefit_reads
from portal.benefits.license_key_api import ROTATABLE_STATUSES
from portal.clock import iso
from portal.console import access, audit, layout
from portal.console.access import OrgAccess
from portal.customers import reads as customer_reads
from portal.db import Transaction
from portal.errors import Conflict, DomainError, InvalidInput, NotFound
from portal.fields import moment_problem
from portal.scope import Scope
from portal.subscriptions import actions as subscription_actions
from portal.subscriptions import reads as subscription_reads
from portal.subscriptions import remote
from portal.web import portal_state

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _notice(done: str | None) -> str | None:
    """What a page says after one of this module's actions (``?done=…``)."""
    _ = i18n.gettext
    return layout.done_notice(
        done,
        {
            "canceled": _("The subscription will end at the end of its current period."),
            "ended": _("The subscription has ended; its benefits are revoked."),
            "uncanceled": _("The subscription will renew again."),
            "disabled": _("The license key is disabled: it no longer validates or activates."),
            "enabled": _("The license key is enabled again."),
            "limit": _("Activation limit changed."),
            "expiry": _("Expiry changed."),
            "deactivated": _("The activation was removed."),
            "granted": _("Benefit granted."),
            "held": _("The customer already holds this benefit from you; nothing changed."),
            "revoked": _("Grant revoked."),
        },
    )


def _not_found() -> NotFoundException:
    return NotFoundException(i18n.gettext("Not found"))


def _checked_id(value: str) -> str:
    """A path id; anything that cannot be an id answers the 404 an unknown one does."""
    if not _ID.match(value):
        raise _not_found()
    return value


def _scope(access_: OrgAccess) -> Scope:
    return Scope.of_organization(access_.organization.id)


async def _record(
    tx: Transaction, access_: OrgAccess, action: str, target: str, details: dict[str, Any], now: datetime
) -> None:
    await audit.record(
        tx,
        access_.actor,
        organization_id=access_.organization.id,
        action=action,
        target=target,
        details=details,
        now=now,
    )


# --- subscription -------------------------------------------------------------------------------------------


def subscription_status_label(status: str) -> str:
    """A subscription's status in the seller's words (its page and its customer's page)."""
    _ = i18n.gettext
    labels = {
        "incomplete": _("Incomplete"),
        "incomplete_expired": _("Incomplete, expired"),
        "trialing": _("Trialing"),
        "active": _("Active"),
        "past_due": _("Past due"),
        "canceled": _("Ended"),
        "unpaid": _("Unpaid"),
    }
    return labels.get(status, status)


def _interval_label(interval: str, count: int) -> str:
    """``per month``, ``every 3 months``…"""
    _ = i18n.gettext
    if count == 1:
        single = {"day": _("per day"), "week": _("per week"), "month": _("per month"), "year": _("per year")}
        return single.get(interval, interval)
    several = {
        "day": _("every %(num)d days"),
        "week": _("every %(num)d weeks"),
        "month": _("every %(num)d months"),
        "year": _("every %(num)d years"),
    }
    return several[interval] % {"num": count} if interval in several else interval


async def _subscription_page(
    request: Request[Any, Any, Any], access_: OrgAccess, subscription_id: str, status_code: int = 200, **context: Any
) -> Template:
    state = portal_state(request.app.state)
    db = state.db
    scope = _scope(access_)
    subscription = await subscription_reads.get_subscription(db, scope, _checked_id(subscription_id))
    if subscription is None:
        raise _not_found()
    customer = await customer_reads.get_customer_record(db, scope, subscription.customer_id, include_deleted=True)
    source = await remote.source_of(db, access_.organization.id, subscription.id)
    now = state.clock.now()
    return layout.page(
        access_,
        "subscription",
        "customers",
        {
            "subscription": subscription,
            "status_label": subscription_status_label(subscription.status),
            "interval_label": _interval_label(subscription.recurring_interval, subscription.recurring_interval_count),
            "reason_label": str(
                subscription_actions.CANCELLATION_REASON_LABELS.get(subscription.customer_cancellation_reason or "", "")
            ),
            "customer": customer,
            "source": source,
            "can_cancel": subscription_actions.can_cancel(subscription, now) and remote.offers(source, "cancel"),
            "can_uncancel": subscription_actions.can_uncancel(subscription, now) and remote.offers(source, "uncancel"),
            # Ending at once is offered for subscriptions made in Portal only: no connector can end one at the
            # processor, and ending it here alone would leave the processor charging the customer.
            "can_end_now": source is None and subscription_actions.can_end_now(subscription),
            "changes": await subscription_reads.recent_changes(db, scope, subscription.id),
            "errors": {},
            **context,
        },
        status_code=status_code,
    )


@get("/console/{slug:str}/subscriptions/{subscription_id:str}", name="console.subscription", include_in_schema=False)
async def subscription_page(
    request: Request[Any, Any, Any], slug: FromPath[str], subscription_id: FromPath[str], done: layout.Done = None
) -> Response[Any]:
    """A subscription: customer, product, price, status, period, cancellation, where it is billed, recent changes."""
    access_ = await access.require_org(request, slug)
    return await _subscription_page(request, access_, subscription_id, notice=_notice(done))


class CancelForm(msgspec.Struct, kw_only=True):
    when: str = ""


async def _subscription_action(
    request: Request[Any, Any, Any], slug: str, subscription_id: str, action: str, when: str | None = None
) -> Response[Any]:
    """Cancel (at the period end, or ``now``) or un-cancel, through the processor first when the subscription is
    billed by one; a refusal re-renders the page with what happened (nothing changed)."""
    access_ = await access.require_org(request, slug)
    _ = i18n.gettext
    _checked_id(subscription_id)
    if action == "cancel" and when not in ("period_end", "now"):
        return await _subscription_page(
            request,
            access_,
            subscription_id,
            400,
            errors={"when": _("Choose when the subscription ends: at the end of the period, or now.")},
        )
    state = portal_state(request.app.state)
    now = state.clock.now()
    audit_action = {"cancel": "subscription.cancel", "uncancel": "subscription.uncancel"}[action]

    async def also(tx: Transaction, processor: str | None) -> None:
        details: dict[str, Any] = {"processor": processor}
        if when is not None:
            details["when"] = when
        await _record(tx, access_, audit_action, subscription_id, details, now)

    scope = _scope(access_)
    try:
        if action == "uncancel":
            await subscription_actions.uncancel_in_scope(
                state.db, state.settings, scope, subscription_id, now=now, by_seller=True, also=also
            )
            done = "uncanceled"
        elif when == "now":
            await subscription_actions.end_now_in_scope(state.db, scope, subscription_id, now=now, also=also)
            done = "ended"
        else:
            await subscription_actions.cancel_in_scope(
                state.db, state.settings, scope, subscription_id, now=now, by_seller=True, also=also
            )
            done = "canceled"
    except NotFound:
        raise _not_found() from None
    except remote.ProcessorFailed as exc:
        problem = _(
            "%(processor)s did not accept the change (%(reason)s). Nothing was changed here; try again later."
        ) % {"processor": exc.processor, "reason": exc.message}
        return await _subscription_page(request, access_, subscription_id, 502, problem=problem)
    except remote.ActionUnavailable:
        problem = _("This subscription's processor cannot receive this change: make it in the processor's dashboard.")
        return await _subscription_page(request, access_, subscription_id, 409, problem=problem)
    except Conflict:
        problem = _("This subscription changed in the meantime: nothing was done. Here is how it is now.")
        return await _subscription_page(request, access_, subscription_id, 409, problem=problem)
    return layout.back(access_, f"/subscriptions/{subscription_id}", done)


@post(
    "/console/{slug:str}/subscriptions/{subscription_id:str}/cancel",
    name="console.subscription_cancel",
    include_in_schema=False,
    status_code=303,
)
async def subscription_cancel(
    request: Request[Any, Any, Any],
    slug: FromPath[str],
    subscription_id: FromPath[str],
    data: Annotated[CancelForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    return await _subscription_action(request, slug, subscription_id, "cancel", data.when)


@post(
    "/console/{slug:str}/subscriptions/{subscription_id:str}/uncancel",
    name="console.subscription_uncancel",
    include_in_schema=False,
    status_code=303,
)
async def subscription_uncancel(
    request: Request[Any, Any, Any], slug: FromPath[str], subscription_id: FromPath[str]
) -> Response[Any]:
    return await _subscription_action(request, slug, subscription_id, "uncancel")


# --- license key --------------------------------------------------------------------------------------------


def license_key_status_labels() -> dict[str, str]:
    """A license key's status in the seller's words (its page and its customer's page)."""
    _ = i18n.gettext
    return {"granted": _("Granted"), "disabled": _("Disabled"), "revoked": _("Revoked")}


async def _license_key_page(
    request: Request[Any, Any, Any], access_: OrgAccess, license_key_id: str, status_code: int = 200, **context: Any
) -> Template:
    state = portal_state(request.app.state)
    db = state.db
    scope = _scope(access_)
    row = await benefit_reads.get_license_key_row(db, scope, _checked_id(license_key_id))
    if row is None:
        raise _not_found()
    activations = [
        {
            "id": a["id"],
            "label": a["label"],
            "meta": msgspec.json.decode(a["meta"] or "{}"),
            "created_at": a["created_at"],
        }
        for a in await benefit_reads.activation_rows(db, row["id"])
    ]
    now = state.clock.now()
    expires_at = row["expires_at"]
    return layout.page(
        access_,
        "license_key",
        "customers",
        {
            "key": row,
            "benefit": await benefit_reads.get_benefit_record(db, scope, row["benefit_id"], include_deleted=True),
            "customer": await customer_reads.get_customer_record(db, scope, row["customer_id"], include_deleted=True),
            "activations": activations,
            "expired": expires_at is not None and expires_at <= iso(now),
            "can_rotate": row["status"] in ROTATABLE_STATUSES,
            "status_labels": license_key_status_labels(),
            "changes": await subscription_reads.recent_changes(db, scope, row["id"]),
            "errors": {},
            "values": {
                "limit_activations": "" if row["limit_activations"] is None else str(row["limit_activations"]),
                "expires_at": (expires_at or "")[:10],
                **context.pop("values", {}),
            },
            "revealed": None,
            "rotated": None,
            **context,
        },
        status_code=status_code,
    )


@get("/console/{slug:str}/license-keys/{license_key_id:str}", name="console.license_key", include_in_schema=False)
async def license_key_page(
    request: Request[Any, Any, Any], slug: FromPath[str], license_key_id: FromPath[str], done: layout.Done = None
) -> Response[Any]:
    """A license key (masked), its status, benefit, customer, limits, usage, expiry and activations."""
    access_ = await access.require_org(request, slug)
    return await _license_key_page(request, access_, license_key_id, notice=_notice(done))


class _Refused(Exception):
    """A key action refused with a message for the page (and the field it concerns, or None: a page-level problem)."""

    def __init__(self, message: str, field: str | None, status_code: int) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status_code = status_code


# One change of a key, run in the action's transaction on the key's row (``LICENSE_KEY_COLUMNS``): returns what the
# page needs (e.g. the new key) and the details recorded on the ``events`` row and the audit entry.
KeyWork = Callable[[Transaction, Any, datetime], Awaitable[tuple[Any, dict[str, Any]]]]


async def _key_write(
    request: Request[Any, Any, Any],
    access_: OrgAccess,
    license_key_id: str,
    action: str,
    work: KeyWork,
) -> tuple[Any, Any]:
    """Run ``work(tx, row, now)`` on the organization's key in one transaction with its ``events`` row and audit
    entry; returns (the key row before, what ``work`` returned). 404 for a key that is not the organization's."""
    state = portal_state(request.app.state)
    now = state.clock.now()
    scope = _scope(access_)
    async with state.db.write() as tx:
        row = await benefit_reads.get_license_key_row(tx, scope, _checked_id(license_key_id))
        if row is None:
            raise _not_found()
        result, details = await work(tx, row, now)
        await subscription_actions.record_event(
            tx,
            organization_id=access_.organization.id,
            customer_id=row["customer_id"],
            name=f"license_key.{action}",
            subject_id=row["id"],
            now=now,
            data={"by": "seller", **details},
        )
        await _record(tx, access_, f"license_key.{action}", row["id"], details, now)
    return row, result


async def _key_action(
    request: Request[Any, Any, Any],
    slug: str,
    license_key_id: str,
    action: str,
    done: str,
    work: KeyWork,
    submitted: dict[str, str] | None = None,
) -> Response[Any]:
    """One key action, then 303 back to the key's page; a refusal re-renders it (the field named, the value sent
    kept) with nothing written."""
    access_ = await access.require_org(request, slug)
    try:
        await _key_write(request, access_, license_key_id, action, work)
    except _Refused as refused:
        context: dict[str, Any] = (
            {"errors": {refused.field: refused.message}, "values": submitted or {}}
            if refused.field
            else {"problem": refused.message}
        )
        return await _license_key_page(request, access_, license_key_id, refused.status_code, **context)
    return layout.back(access_, f"/license-keys/{license_key_id}", done)


def _conflict(message: str) -> _Refused:
    return _Refused(message, None, 409)


@post(
    "/console/{slug:str}/license-keys/{license_key_id:str}/disable",
    name="console.license_key_disable",
    include_in_schema=False,
    status_code=303,
)
async def license_key_disable(
    request: Request[Any, Any, Any], slug: FromPath[str], license_key_id: FromPath[str]
) -> Response[Any]:
    async def work(tx: Transaction, row: Any, now: datetime) -> tuple[None, dict[str, Any]]:
        try:
            await license_keys.disable_license_key(tx, row["id"], now=now)
        except Conflict:
            raise _conflict(i18n.gettext("Only a granted key can be disabled.")) from None
        return None, {}

    return await _key_action(request, slug, license_key_id, "disabled", "disabled", work)


@post(
    "/console/{slug:str}/license-keys/{license_key_id:str}/enable",
    name="console.license_key_enable",
    include_in_schema=False,
    status_code=303,
)
async def license_key_enable(
    request: Request[Any, Any, Any], slug: FromPath[str], license_key_id: FromPath[str]
) -> Response[Any]:
    async def work(tx: Transaction, row: Any, now: datetime) -> tuple[None, dict[str, Any]]:
        try:
            await license_keys.enable_license_key(tx, row["id"], now=now)
        except Conflict:
            raise _conflict(
                i18n.gettext(
                    "Only a disabled key whose benefit grant is live can be enabled: grant the benefit again instead."
                )
            ) from None
        return None, {}

    return await _key_action(request, slug, license_key_id, "enabled", "enabled", work)


@post(
    "/console/{slug:str}/license-keys/{license_key_id:str}/reveal",
    name="console.license_key_reveal",
    include_in_schema=False,
    status_code=200,
)
async def license_key_reveal(
    request: Request[Any, Any, Any], slug: FromPath[str], license_key_id: FromPath[str]
) -> Response[Any]:
    """Show the whole key on this page, once (a support chore: read it to the customer); audited, as looking at a
    credential is."""
    access_ = await access.require_org(request, slug)
    state = portal_state(request.app.state)
    now = state.clock.now()
    async with state.db.write() as tx:
        row = await benefit_reads.get_license_key_row(tx, _scope(access_), _checked_id(license_key_id))
        if row is None:
            raise _not_found()
        # Looking is not a change of the key: no ``events`` row, only the audit entry.
        await _record(tx, access_, "license_key.reveal", row["id"], {}, now)
    return await _license_key_page(request, access_, license_key_id, revealed=row["key"])


@post(
    "/console/{slug:str}/license-keys/{license_key_id:str}/rotate",
    name="console.license_key_rotate",
    include_in_schema=False,
    status_code=200,
)
async def license_key_rotate(
    request: Request[Any, Any, Any], slug: FromPath[str], license_key_id: FromPath[str]
) -> Response[Any]:
    """A new key string, shown once here; the old one stops validating at once (the customer's portal shows the
    new key). The seller may rotate whether or not customers may (the benefit's ``allow_customer_rotation``)."""
    access_ = await access.require_org(request, slug)

    async def work(tx: Transaction, row: Any, now: datetime) -> tuple[str, dict[str, Any]]:
        if row["status"] not in ROTATABLE_STATUSES:
            raise _conflict(i18n.gettext("A revoked key cannot be rotated: grant the benefit again instead."))
        prefix = msgspec.json.decode(row["benefit_properties"] or "{}").get("prefix")
        new_key, shown = await license_keys.rotate_key(tx, row["id"], prefix, now=now)
        return new_key, {"display_key": shown, "previous_display_key": row["display_key"]}

    try:
        _, new_key = await _key_write(request, access_, license_key_id, "rotated", work)
    except _Refused as refused:
        return await _license_key_page(request, access_, license_key_id, refused.status_code, problem=refused.message)
    return await _license_key_page(request, access_, license_key_id, rotated=new_key)


class LimitForm(msgspec.Struct, kw_only=True):
    limit_activations: str = ""


@post(
    "/console/{slug:str}/license-keys/{license_key_id:str}/limit",
    name="console.license_key_limit",
    include_in_schema=False,
    status_code=303,
)
async def license_key_limit(
    request: Request[Any, Any, Any],
    slug: FromPath[str],
    license_key_id: FromPath[str],
    data: Annotated[LimitForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    """Change how many activations the key allows; never below the activations it has (deactivate some first)."""
    text = data.limit_activations.strip()[:10]
    _ = i18n.gettext
    bounds = _("Enter a whole number from 1 to %(max)d.") % {"max": license_keys.MAX_ACTIVATION_LIMIT}

    async def work(tx: Transaction, row: Any, now: datetime) -> tuple[None, dict[str, Any]]:
        if not text.isdigit():
            raise _Refused(bounds, "limit_activations", 400)
        try:
            await license_keys.set_activation_limit(tx, row["id"], int(text), now=now)
        except InvalidInput:
            count = await license_keys.activation_count(tx, row["id"])
            if 1 <= int(text) <= license_keys.MAX_ACTIVATION_LIMIT:
                message = _(
                    "The key has %(count)d activations: deactivate some below before setting a lower limit."
                ) % {"count": count}
            else:
                message = bounds
            raise _Refused(message, "limit_activations", 400) from None
        return None, {"from": row["limit_activations"], "to": int(text)}

    return await _key_action(request, slug, license_key_id, "limit_changed", "limit", work, {"limit_activations": text})


class ExpiryForm(msgspec.Struct, kw_only=True):
    expires_at: str = ""


def _expiry(text: str) -> datetime | None:
    """The start (00:00 UTC) of a ``YYYY-MM-DD`` day, None for an empty field; ``ValueError`` otherwise."""
    if not text:
        return None
    if not _DATE.match(text):
        raise ValueError(text)
    moment = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    if moment_problem(moment) is not None or moment.year < 2000:
        raise ValueError(text)
    return moment


@post(
    "/console/{slug:str}/license-keys/{license_key_id:str}/expiry",
    name="console.license_key_expiry",
    include_in_schema=False,
    status_code=303,
)
async def license_key_expiry(
    request: Request[Any, Any, Any],
    slug: FromPath[str],
    license_key_id: FromPath[str],
    data: Annotated[ExpiryForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    """Set the day the key expires (at 00:00 UTC), or no expiry (an empty field)."""
    text = data.expires_at.strip()[:10]

    async def work(tx: Transaction, row: Any, now: datetime) -> tuple[None, dict[str, Any]]:
        try:
            moment = _expiry(text)
        except ValueError:
            raise _Refused(
                i18n.gettext("Enter a date as YYYY-MM-DD (from the year 2000), or leave it empty for no expiry."),
                "expires_at",
                400,
            ) from None
        await license_keys.set_expiry(tx, row["id"], moment, now=now)
        return None, {"from": row["expires_at"], "to": None if moment is None else moment.isoformat()}

    return await _key_action(request, slug, license_key_id, "expiry_changed", "expiry", work, {"expires_at": text})


@post(
    "/console/{slug:str}/license-keys/{license_key_id:str}/activations/{activation_id:str}/deactivate",
    name="console.license_key_deactivate",
    include_in_schema=False,
    status_code=303,
)
async def license_key_deactivate(
    request: Request[Any, Any, Any], slug: FromPath[str], license_key_id: FromPath[str], activation_id: FromPath[str]
) -> Response[Any]:
    """Remove one activation (the customer's software on that device must activate again); frees a place."""

    async def work(tx: Transaction, row: Any, now: datetime) -> tuple[None, dict[str, Any]]:
        try:
            label = await license_keys.remove_activation(tx, row["id"], _checked_id(activation_id), now=now)
        except NotFound:
            raise _not_found() from None
        return None, {"activation_id": activation_id, "label": label}

    return await _key_action(request, slug, license_key_id, "deactivated", "deactivated", work)


# --- a customer's benefit grants ----------------------------------------------------------------------------


async def _benefits_page(
    request: Request[Any, Any, Any], access_: OrgAccess, customer_id: str, status_code: int = 200, **context: Any
) -> Template:
    db = portal_state(request.app.state).db
    scope = _scope(access_)
    customer = await customer_reads.get_customer(db, scope, _checked_id(customer_id))
    if customer is None:
        raise _not_found()
    grants = await benefit_reads.list_customer_grants(db, Scope.of_customer(access_.organization.id, customer.id))
    benefits = await benefit_reads.list_benefit_records(db, scope, type=None, page=1, limit=100)
    return layout.page(
        access_,
        "customer_benefits",
        "customers",
        {
            "customer": customer,
            "grants": grants,
            "benefits": sorted(benefits.records, key=lambda b: b.description.lower()),
            "errors": {},
            "chosen": "",
            **context,
        },
        status_code=status_code,
    )


@get(
    "/console/{slug:str}/customers/{customer_id:str}/benefits",
    name="console.customer_benefits",
    include_in_schema=False,
)
async def customer_benefits(
    request: Request[Any, Any, Any], slug: FromPath[str], customer_id: FromPath[str], done: layout.Done = None
) -> Response[Any]:
    """The customer's grants, live and revoked, where each came from, and a form to grant one more."""
    access_ = await access.require_org(request, slug)
    return await _benefits_page(request, access_, customer_id, notice=_notice(done))


class GrantForm(msgspec.Struct, kw_only=True):
    benefit_id: str = ""


@post(
    "/console/{slug:str}/customers/{customer_id:str}/benefits/grant",
    name="console.customer_benefit_grant",
    include_in_schema=False,
    status_code=303,
)
async def customer_benefit_grant(
    request: Request[Any, Any, Any],
    slug: FromPath[str],
    customer_id: FromPath[str],
    data: Annotated[GrantForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    """Give the customer one of the organization's benefits by hand (no order, no subscription)."""
    access_ = await access.require_org(request, slug)
    _checked_id(customer_id)
    state = portal_state(request.app.state)
    now = state.clock.now()
    benefit_id = data.benefit_id.strip()[:64]
    try:
        async with state.db.write() as tx:
            if await customer_reads.get_customer(tx, _scope(access_), customer_id) is None:
                raise _not_found()
            grant_id, changed = await benefit_grants.grant_manually(
                tx,
                organization_id=access_.organization.id,
                customer_id=customer_id,
                benefit_id=benefit_id,
                now=now,
            )
            await _record(tx, access_, "benefit.grant", grant_id, {"benefit_id": benefit_id, "new": changed}, now)
    except DomainError as exc:
        if exc.field != "benefit_id":  # the customer was checked in the same transaction: not reached
            raise _not_found() from None
        error = i18n.gettext("Choose one of this organization's benefits.")
        return await _benefits_page(request, access_, customer_id, 400, errors={"benefit_id": error}, chosen=benefit_id)
    return layout.back(access_, f"/customers/{customer_id}/benefits", "granted" if changed else "held")


@post(
    "/console/{slug:str}/customers/{customer_id:str}/benefits/{grant_id:str}/revoke",
    name="console.customer_benefit_revoke",
    include_in_schema=False,
    status_code=303,
)
async def customer_benefit_revoke(
    request: Request[Any, Any, Any], slug: FromPath[str], customer_id: FromPath[str], grant_id: FromPath[str]
) -> Response[Any]:
    """Revoke one grant (its license keys stop validating; ``benefit_grant.revoked`` goes out)."""
    access_ = await access.require_org(request, slug)
    state = portal_state(request.app.state)
    now = state.clock.now()
    scope = Scope.of_customer(access_.organization.id, _checked_id(customer_id))
    async with state.db.write() as tx:
        grant = await benefit_reads.get_grant_record(tx, scope, _checked_id(grant_id))
        if grant is None:
            raise _not_found()
        was_live = await benefit_grants.revoke_grant(tx, grant.id, now=now)
        await _record(
            tx,
            access_,
            "benefit.revoke",
            grant.id,
            {
                "benefit_id": grant.benefit_id,
                "order_id": grant.order_id,
                "subscription_id": grant.subscription_id,
                "was_live": was_live,
            },
            now,
        )
    return layout.back(access_, f"/customers/{customer_id}/benefits", "revoked")


ROUTES = [
    subscription_page,
    subscription_cancel,
    subscription_uncancel,
    license_key_page,
    license_key_disable,
    license_key_enable,
    license_key_reveal,
    license_key_rotate,
    license_key_limit,
    license_key_expiry,
    license_key_deactivate,
    customer_benefits,
    customer_benefit_grant,
    customer_benefit_revoke,
]
