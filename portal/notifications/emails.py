"""Transactional emails: what each one says (a JSON snapshot taken in the transaction of the change) and how it
is rendered when the worker sends it (``templates/emails/<kind>.txt|html``, with sign-in links minted then).

Kinds, and the organization switch (``portal.notifications.org_settings``) that turns each off:
``receipt`` (order_receipt), ``refund`` (order_refund), ``subscription_canceled``, ``subscription_uncanceled``,
``subscription_updated`` (plan changed), ``renewal_reminder``. The snapshot keeps what the email reports as it
was at that moment (a later refund does not rewrite an earlier receipt); ``links`` maps link names to portal
paths, each turned into a single-use sign-in link (``portal.sessions.email_links``) at send time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

import msgspec
from babel import Locale, UnknownLocaleError
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from portal import i18n
from portal.clock import iso
from portal.db import Transaction
from portal.i18n import gettext as _
from portal.mail import MailMessage
from portal.notifications import outbox
from portal.notifications.branding import email_branding
from portal.notifications.org_settings import email_settings
from portal.notifications.outbox import OutboxMessage
from portal.orders.reads import OrderDetail, get_order_detail, get_refund
from portal.organizations.queries import Organization
from portal.resources import templates_dir
from portal.scope import EVERY_ORGANIZATION
from portal.sessions import email_links
from portal.settings import Settings
from portal.templating import install_i18n

# A customer's or organization's columns: a database row, or (previews) a dict with the same keys.
Fields = sqlite3.Row | Mapping[str, Any]

# kind -> the switch in EmailSettings that allows it
SWITCHES: dict[str, str] = {
    "receipt": "order_receipt",
    "refund": "order_refund",
    "subscription_canceled": "subscription_canceled",
    "subscription_uncanceled": "subscription_uncanceled",
    "subscription_updated": "subscription_updated",
    "renewal_reminder": "renewal_reminder",
    "payment_failed": "subscription_payment_failed",
}

# Subjects in the email's language (``render`` activates it); ``_`` is portal.i18n's gettext.
SUBJECTS: dict[str, Callable[[dict[str, Any]], str]] = {
    "receipt": lambda c: (
        _("Your receipt from %(name)s (%(number)s)")
        % {"name": c["organization"]["name"], "number": c["order"]["receipt_number"]}
    ),
    "refund": lambda c: (
        _("Refund for your order %(number)s from %(name)s")
        % {"number": c["order"]["receipt_number"], "name": c["organization"]["name"]}
    ),
    "subscription_canceled": lambda c: (
        _("Your %(product)s subscription is canceled") % {"product": c["subscription"]["product_name"]}
    ),
    "subscription_uncanceled": lambda c: (
        _("Your %(product)s subscription will continue") % {"product": c["subscription"]["product_name"]}
    ),
    "subscription_updated": lambda c: (
        _("Your plan changed to %(product)s") % {"product": c["subscription"]["product_name"]}
    ),
    "renewal_reminder": lambda c: (
        _("Your %(product)s subscription renews soon") % {"product": c["subscription"]["product_name"]}
    ),
    "payment_failed": lambda c: (
        _("Payment for your %(product)s subscription failed") % {"product": c["subscription"]["product_name"]}
    ),
    "sign_in_link": lambda c: _("Your sign-in link for %(name)s") % {"name": c["organization"]["name"]},
}


# --- snapshots (inside the caller's write transaction) ------------------------------------------------------


def _locale(customer: Fields, organization: Fields) -> str:
    for candidate in (customer["locale"], organization["default_locale"]):
        if candidate:
            try:
                Locale.parse(candidate.replace("-", "_"))
            except (ValueError, UnknownLocaleError):
                continue
            return str(candidate).replace("-", "_")
    return "en"


async def _parties(tx: Transaction, customer_id: str) -> tuple[sqlite3.Row, sqlite3.Row] | None:
    """The (live) customer and their organization, or None when the customer is gone."""
    customer = await tx.fetchone(
        "SELECT id, organization_id, email, name, locale FROM customers WHERE id = ? AND deleted_at IS NULL",
        (customer_id,),
    )
    if customer is None:
        return None
    organization = await tx.fetchone(
        "SELECT id, slug, name, support_email, avatar_url, accent_color, default_locale, settings, email_sender_name, "
        "email_reply_to FROM organizations WHERE id = ?",
        (customer["organization_id"],),
    )
    assert organization is not None
    return customer, organization


def _common(customer: Fields, organization: Fields, links: dict[str, str]) -> dict[str, Any]:
    base = f"/{organization['slug']}/portal"
    return {
        "organization": {
            "name": organization["name"],
            "slug": organization["slug"],
            "support_email": organization["support_email"],
            "avatar_url": organization["avatar_url"],
            "accent_color": organization["accent_color"],
            "sender_name": organization["email_sender_name"],
            "reply_to": organization["email_reply_to"] or organization["support_email"],
        },
        "customer": {"name": customer["name"], "email": customer["email"]},
        "locale": _locale(customer, organization),
        "links": {name: base + path for name, path in links.items()},
    }


async def _enqueue(
    tx: Transaction,
    kind: str,
    customer: sqlite3.Row,
    organization: sqlite3.Row,
    context: dict[str, Any],
    *,
    now: datetime,
    dedupe_key: str | None = None,
) -> str | None:
    if not getattr(email_settings(organization["settings"]), SWITCHES[kind]):
        return None
    return await outbox.enqueue(
        tx,
        kind=kind,
        to_address=customer["email"],
        context=context,
        now=now,
        organization_id=organization["id"],
        customer_id=customer["id"],
        dedupe_key=dedupe_key,
    )


async def _order_summary(tx: Transaction, order_id: str) -> tuple[OrderDetail, dict[str, Any]]:
    order = await get_order_detail(tx, EVERY_ORGANIZATION, order_id)
    assert order is not None
    return order, order_snapshot(order)


def order_snapshot(order: OrderDetail) -> dict[str, Any]:
    """What the receipt and refund emails say about an order (kept in the outbox row as it was then)."""
    return {
        "id": order.id,
        "receipt_number": order.receipt_number or "",
        "paid_at": order.paid_at,
        "currency": order.currency,
        "subtotal_amount": order.subtotal_amount,
        "discount_amount": order.discount_amount,
        "tax_amount": order.tax_amount,
        "total_amount": order.total_amount,
        "refunded_amount": order.refunded_amount,
        "items": [
            {"label": item.label, "quantity": item.quantity, "unit_amount": item.unit_amount, "amount": item.amount}
            for item in order.items
        ],
    }


_ORDER_GRANTS = """
SELECT
    g.id,
    g.properties,
    b.type,
    b.description
FROM benefit_grants g
JOIN benefits b ON b.id = g.benefit_id AND b.visibility = 'public'  -- Polar's emails list public benefits only
WHERE g.revoked_at IS NULL
  AND (g.order_id = ? OR (? IS NOT NULL AND g.subscription_id = ?))
ORDER BY g.created_at, b.description
"""


async def _granted(tx: Transaction, order: OrderDetail) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """The license keys (whole: the email goes to their owner) and downloadable files the order granted; a
    subscription's first order also reports the subscription's grants."""
    subscription_id = order.subscription_id if order.billing_reason == "subscription_create" else None
    keys: list[dict[str, str]] = []
    downloads: list[dict[str, Any]] = []
    for grant in await tx.fetchall(_ORDER_GRANTS, (order.id, subscription_id, subscription_id)):
        if grant["type"] == "license_keys":
            for key in await tx.fetchall(
                "SELECT key FROM license_keys WHERE grant_id = ? AND status = 'granted'", (grant["id"],)
            ):
                keys.append({"benefit": grant["description"], "key": key["key"]})
        elif grant["type"] == "downloadables":
            file_ids = (msgspec.json.decode(grant["properties"] or "{}") or {}).get("files") or []
            names = []
            for file_id in file_ids:
                name = await tx.fetchval("SELECT name FROM files WHERE id = ?", (file_id,))
                if name:
                    names.append(name)
            if names:
                downloads.append({"benefit": grant["description"], "files": names})
    return keys, downloads


async def enqueue_receipt(tx: Transaction, order_id: str, *, now: datetime, again: bool = False) -> str | None:
    """Order paid: the receipt (summary, link to the receipt page, license keys, downloads), queued once per order;
    ``again`` (the seller's "Resend receipt") queues another. None when the seller turned receipt emails off."""
    order, summary = await _order_summary(tx, order_id)
    parties = await _parties(tx, order.customer_id)
    if parties is None:
        return None
    customer, organization = parties
    keys, downloads = await _granted(tx, order)
    links = {"receipt": f"/orders/{order_id}/receipt", "order": f"/orders/{order_id}"}
    if keys or downloads:
        links["benefits"] = "/benefits"
    context = _common(customer, organization, links) | {
        "order": summary,
        "license_keys": keys,
        "downloads": downloads,
    }
    dedupe_key = None if again else f"receipt:{order_id}"
    return await _enqueue(tx, "receipt", customer, organization, context, now=now, dedupe_key=dedupe_key)


async def enqueue_refund(tx: Transaction, order_id: str, refund_id: str, *, now: datetime) -> str | None:
    """Order refunded (fully or partly): the refund receipt."""
    order, summary = await _order_summary(tx, order_id)
    refund = await get_refund(tx, order_id, refund_id)
    parties = await _parties(tx, order.customer_id)
    if parties is None or refund is None:
        return None
    customer, organization = parties
    context = _common(customer, organization, {"order": f"/orders/{order_id}"}) | {
        "order": summary,
        "refund": {
            "amount": refund.amount,
            "tax_amount": refund.tax_amount,
            "reason": refund.reason,
            "created_at": refund.created_at,
        },
        "fully_refunded": order.status == "refunded",
    }
    return await _enqueue(tx, "refund", customer, organization, context, now=now, dedupe_key=f"refund:{refund_id}")


async def _subscription_summary(tx: Transaction, subscription_id: str) -> tuple[sqlite3.Row, dict[str, Any]]:
    row = await tx.fetchone(
        """
        SELECT s.*, p.name AS product_name
        FROM subscriptions s
        JOIN products p ON p.id = s.product_id
        WHERE s.id = ?
        """,
        (subscription_id,),
    )
    assert row is not None
    return row, {
        "id": row["id"],
        "product_name": row["product_name"],
        "amount": row["amount"],
        "currency": row["currency"],
        "recurring_interval": row["recurring_interval"],
        "recurring_interval_count": row["recurring_interval_count"],
        "current_period_end": row["current_period_end"],
        "ends_at": row["ends_at"] or row["current_period_end"],
        "status": row["status"],
    }


async def enqueue_subscription(
    tx: Transaction,
    kind: str,
    subscription_id: str,
    *,
    now: datetime,
    previous_product_name: str | None = None,
    dedupe_key: str | None = None,
) -> str | None:
    """A subscription email: ``subscription_canceled``, ``subscription_uncanceled``, ``subscription_updated``
    (plan changed from ``previous_product_name``) or ``renewal_reminder``."""
    row, summary = await _subscription_summary(tx, subscription_id)
    parties = await _parties(tx, row["customer_id"])
    if parties is None:
        return None
    customer, organization = parties
    context = _common(customer, organization, {"subscription": f"/subscriptions/{subscription_id}"}) | {
        "subscription": summary,
        "previous_product_name": previous_product_name,
    }
    return await _enqueue(tx, kind, customer, organization, context, now=now, dedupe_key=dedupe_key)


async def enqueue_payment_failed(
    tx: Transaction,
    subscription_id: str,
    *,
    now: datetime,
    next_attempt: datetime | None = None,
    dedupe_key: str | None = None,
) -> str | None:
    """A renewal payment failed (a processor's ``invoice.payment_failed``): the link opens the subscription's page,
    where the customer updates their payment method (the processor's billing portal, where the seller allows it)."""
    row, summary = await _subscription_summary(tx, subscription_id)
    parties = await _parties(tx, row["customer_id"])
    if parties is None:
        return None
    customer, organization = parties
    context = _common(customer, organization, {"subscription": f"/subscriptions/{subscription_id}"}) | {
        "subscription": summary,
        "next_attempt": None if next_attempt is None else iso(next_attempt),
    }
    return await _enqueue(tx, "payment_failed", customer, organization, context, now=now, dedupe_key=dedupe_key)


async def enqueue_sign_in_link(tx: Transaction, customer_id: str, *, now: datetime) -> str | None:
    """A sign-in link the seller sends from the console (``sign_in_link``): no organization switch (a seller asked
    for it, for this customer); the link is the outbox's single-use, 24-hour email link to the portal's overview,
    minted at send time like every email link (never a token stored in the queued row)."""
    parties = await _parties(tx, customer_id)
    if parties is None:
        return None
    customer, organization = parties
    context = _common(customer, organization, {"portal": ""})
    return await outbox.enqueue(
        tx,
        kind="sign_in_link",
        to_address=customer["email"],
        context=context,
        now=now,
        organization_id=organization["id"],
        customer_id=customer["id"],
    )


# --- rendering (at send time) -------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _environment() -> Environment:
    # Escaping for .html only: the text part must read "R&D Tools", not "R&amp;D Tools".
    env = Environment(
        loader=FileSystemLoader(templates_dir()),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    from portal.portal_pages import text  # here, not at import time (portal_pages imports the notifications)

    # The portal's display helpers (``ui.price_per``: "$120.00 / year" in the email's language).
    env.globals["ui"] = text
    return install_i18n(env)


def receipt_preview(
    organization: Organization,
    *,
    customer: Mapping[str, Any],
    order: OrderDetail,
    license_keys: list[dict[str, str]],
    public_base_url: str,
    locale: str,
) -> MailMessage:
    """The order-receipt email of ``order`` as ``organization`` (possibly with unsaved branding) would send it:
    the snapshot ``enqueue_receipt`` takes and the same templates, with plain portal links (nothing minted,
    nothing queued). The console's branding preview shows it with sample data."""
    row = msgspec.structs.asdict(organization) | {"default_locale": locale}
    links = {"receipt": f"/orders/{order.id}/receipt", "order": f"/orders/{order.id}", "benefits": "/benefits"}
    context = _common({**customer, "locale": locale}, row, links) | {
        "order": order_snapshot(order),
        "license_keys": license_keys,
        "downloads": [],
    }
    message = OutboxMessage(
        id="preview",
        organization_id=organization.id,
        customer_id=None,
        kind="receipt",
        to_address=str(customer["email"]),
        context=msgspec.json.encode(context).decode(),
        dedupe_key=None,
        status="pending",
        attempts=0,
        next_attempt_at=order.created_at,
        last_error=None,
        sent_at=None,
        created_at=order.created_at,
        modified_at=None,
    )
    return render(message, {name: public_base_url + path for name, path in context["links"].items()})


def render(message: OutboxMessage, urls: dict[str, str]) -> MailMessage:
    """The email of an outbox row; ``urls`` are the absolute sign-in links for the snapshot's ``links``."""
    context = msgspec.json.decode(message.context)
    # Branding at send time, from the snapshot (a snapshot taken before accent_color was kept gets the default).
    values = context | {"urls": urls} | email_branding(context.get("organization") or {})
    env = _environment()
    with i18n.use_locale(context.get("locale")):
        text = env.get_template(f"emails/{message.kind}.txt").render(values).rstrip() + "\n"
        html = env.get_template(f"emails/{message.kind}.html").render(values)
        subject = SUBJECTS[message.kind](context)
    return MailMessage(
        to=message.to_address,
        subject=subject,
        text=text,
        html=html,
        console_note=f"Mail to {message.to_address}: {subject}",
        sender_name=context.get("organization", {}).get("sender_name"),
        reply_to=context.get("organization", {}).get("reply_to"),
    )


async def prepare(tx: Transaction, settings: Settings, message: OutboxMessage, now: datetime) -> MailMessage:
    """Mint the message's sign-in links (inside the claim's transaction) and render it."""
    context = msgspec.json.decode(message.context)
    urls: dict[str, str] = {}
    slug = context.get("organization", {}).get("slug")
    for name, path in (context.get("links") or {}).items():
        if message.customer_id is None or message.organization_id is None or not slug:
            urls[name] = f"{settings.public_base_url}{path}"
            continue
        token = await email_links.mint(
            tx,
            settings,
            organization_id=message.organization_id,
            customer_id=message.customer_id,
            target_path=path,
            now=now,
            outbox_id=message.id,
        )
        urls[name] = email_links.link_url(settings, slug, token)
    return render(message, urls)
