"""Helpers for the seller-console tests: organizations, sellers with roles and planted console sessions (plain
SQL, as ``signin_helpers`` does for customers), and the rows the console's actions work on."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from portal.benefits import license_keys
from portal.benefits import service as benefit_service
from portal.clock import iso, new_id
from portal.connectors.store import Secrets, encrypt_secrets
from portal.console.access import cookie_name
from portal.console.store import token_digest
from portal.customers import service as customer_service
from portal.db import Database, connect_sync
from portal.products import service as product_service
from portal.security import new_token
from portal.settings import Settings
from portal.subscriptions import service as subscription_service
from tests.signin_helpers import insert_customer, insert_org

NOW = datetime.now(UTC)


# The connection of the ``batch`` under way, per database file: its ``sql`` calls share it.
_BATCHES: dict[Path, sqlite3.Connection] = {}


def sql(settings: Settings, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """``statement``'s rows, committed: on its own connection, or inside the ``batch`` under way on its one."""
    shared = _BATCHES.get(settings.db_path)
    if shared is not None:
        return shared.execute(statement, params).fetchall()
    conn = connect_sync(settings.db_path)
    try:
        rows = conn.execute(statement, params).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


@contextlib.contextmanager
def batch(settings: Settings) -> Iterator[None]:
    """Every ``sql`` call inside runs on one connection in one transaction, committed at the end (rolled back on an
    error): the matrix's reset of some twenty rows before each case opens one connection instead of twenty, each
    with its pragmas. Re-entrant: a batch inside a batch joins it."""
    if settings.db_path in _BATCHES:
        yield
        return
    conn = connect_sync(settings.db_path)
    conn.execute("BEGIN IMMEDIATE")
    _BATCHES[settings.db_path] = conn
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    finally:
        del _BATCHES[settings.db_path]
        conn.close()


def insert_seller(settings: Settings, email: str, *, admin: bool = False) -> str:
    seller_id = new_id()
    sql(
        settings,
        "INSERT INTO seller_accounts (id, email, is_admin, created_at) VALUES (?, ?, ?, ?)",
        (seller_id, email, int(admin), iso(NOW)),
    )
    return seller_id


def add_member(settings: Settings, seller_id: str, org_id: str, role: str) -> None:
    sql(
        settings,
        "INSERT OR REPLACE INTO seller_memberships (seller_id, organization_id, role, created_at) VALUES (?, ?, ?, ?)",
        (seller_id, org_id, role, iso(NOW)),
    )


def plant_session(settings: Settings, seller_id: str) -> str:
    token = new_token(32)
    sql(
        settings,
        "INSERT INTO seller_sessions (id, token_hash, seller_id, expires_at, created_at) VALUES (?, ?, ?, ?, ?)",
        (new_id(), token_digest(settings.secret_key, token), seller_id, iso(NOW + timedelta(days=1)), iso(NOW)),
    )
    return token


def console_cookie(client: Any, settings: Settings, token: str | None) -> None:
    client.cookies.delete(cookie_name(settings))
    if token is not None:
        client.cookies.set(cookie_name(settings), token, domain=client.base_url.host, path="/console")


def audit_actions(settings: Settings, org_id: str | None = None) -> list[tuple[str, str, str, str | None]]:
    """(action, seller email, role, target), oldest first."""
    rows = sql(
        settings,
        "SELECT action, seller_email, role, target FROM seller_audit_log "
        "WHERE (? IS NULL OR organization_id = ?) ORDER BY created_at, rowid",
        (org_id, org_id),
    )
    return [tuple(row) for row in rows]


@dataclass
class Team:
    acme_id: str
    globex_id: str
    owner: str
    support: str
    stranger: str  # owner of globex only
    admin: str
    target: str  # a support member of acme the team actions work on
    token_id: str
    message_id: str
    event_id: str
    product_id: str
    inbound_id: str  # a stored Stripe event of acme's connection
    benefit_id: str = ""  # a downloadables benefit of acme listing ``file_id`` (the catalog's actions work on it)
    file_id: str = ""
    endpoint_id: str = ""  # acme's webhook endpoint (event_id is its failed event)
    customer_id: str = ""  # acme's customer Ada, the Customers section's actions work on
    commerce: Commerce = field(default_factory=lambda: Commerce("", "", "", "", "", "", "", ""))
    order_id: str = ""  # a paid order of acme made in Portal (refunded locally, its receipt resent)


def _org(settings: Settings, slug: str, name: str) -> str:
    """The organization ``slug`` (the demo seed's, in seeded modules), inserted if missing."""
    found = sql(settings, "SELECT id FROM organizations WHERE slug = ?", (slug,))
    return str(found[0][0]) if found else insert_org(settings, slug, name)


def make_team(settings: Settings) -> Team:
    acme_id = _org(settings, "acme", "Acme")
    globex_id = _org(settings, "globex", "Globex")
    owner = insert_seller(settings, "owner@acme.example")
    support = insert_seller(settings, "support@acme.example")
    stranger = insert_seller(settings, "owner@globex.example")
    admin = insert_seller(settings, "root@instance.example", admin=True)
    target = insert_seller(settings, "target@acme.example")
    add_member(settings, owner, acme_id, "owner")
    add_member(settings, support, acme_id, "support")
    add_member(settings, stranger, globex_id, "owner")
    add_member(settings, target, acme_id, "support")
    token_id, message_id, event_id, endpoint_id = new_id(), new_id(), new_id(), new_id()
    sql(
        settings,
        "INSERT INTO api_tokens (id, token_hash, name, scope, organization_id, created_at) "
        "VALUES (?, ?, 'ci', 'organization', ?, ?)",
        (token_id, new_token(16), acme_id, iso(NOW)),
    )
    sql(
        settings,
        "INSERT INTO email_outbox (id, organization_id, kind, to_address, status, attempts, next_attempt_at, "
        "last_error, created_at) VALUES (?, ?, 'receipt', 'ada@example.com', 'failed', 8, ?, 'mailbox full', ?)",
        (message_id, acme_id, iso(NOW), iso(NOW)),
    )
    _webhook_rows(settings, acme_id, endpoint_id, event_id)
    product_id, connection_id, inbound_id = new_id(), new_id(), new_id()
    sql(
        settings,
        "INSERT INTO products (id, organization_id, name, created_at) VALUES (?, ?, 'Console Pro', ?)",
        (product_id, acme_id, iso(NOW)),
    )
    sealed = encrypt_secrets(
        settings.secret_key, acme_id, "stripe", Secrets(api_key="sk_test_x", webhook_secret="whsec_x")
    )
    sql(
        settings,
        "INSERT INTO connector_connections (id, organization_id, processor, account_id, livemode, secrets, created_at) "
        "VALUES (?, ?, 'stripe', 'acct_console', 0, ?, ?)",
        (connection_id, acme_id, sealed, iso(NOW)),
    )
    payload = {"id": "evt_console_1", "type": "balance.available", "created": 1, "data": {"object": {}}}
    sql(
        settings,
        "INSERT INTO connector_events (id, connection_id, event_id, type, created, payload, status, reason, "
        "received_at) VALUES (?, ?, 'evt_console_1', 'balance.available', 1, ?, 'failed', 'test', ?)",
        (inbound_id, connection_id, json.dumps(payload), iso(NOW)),
    )
    benefit_id, file_id = new_id(), new_id()
    sql(
        settings,
        "INSERT INTO files (id, organization_id, name, path, mime_type, size, checksum_sha256_hex, created_at) "
        "VALUES (?, ?, 'console.zip', ?, 'application/zip', 2, ?, ?)",
        (file_id, acme_id, f"{acme_id}/{file_id}", hashlib.sha256(b"PK").hexdigest(), iso(NOW)),
    )
    sql(
        settings,
        "INSERT INTO benefits (id, organization_id, type, description, properties, created_at) "
        "VALUES (?, ?, 'downloadables', 'Console files', ?, ?)",
        (benefit_id, acme_id, json.dumps({"files": [file_id], "archived": {}}), iso(NOW)),
    )
    customer_id = _customer(settings, acme_id, "ada@acme.example", "Ada Lovelace")
    order_id = insert_paid_order(
        settings, acme_id, insert_customer(settings, acme_id, "buyer@acme.example", "Ada Lovelace")
    )
    team = Team(
        acme_id,
        globex_id,
        owner,
        support,
        stranger,
        admin,
        target,
        token_id,
        message_id,
        event_id,
        product_id,
        inbound_id,
        benefit_id,
        file_id,
        endpoint_id=endpoint_id,
        customer_id=customer_id,
        order_id=order_id,
    )
    team.commerce = make_commerce(settings, acme_id)
    return team


# A well-formed Standard Webhooks secret (base64 of 32 bytes), so the worker can sign the fixture's deliveries.
ENDPOINT_SECRET = "whsec_Y29uc29sZS1maXh0dXJlLXNlY3JldC0zMi1ieXRlcyE="


def _webhook_rows(settings: Settings, acme_id: str, endpoint_id: str, event_id: str) -> None:
    """Acme's webhook endpoint, its failed event and one logged attempt (each inserted if missing)."""
    sql(
        settings,
        "INSERT OR IGNORE INTO webhook_endpoints (id, organization_id, url, name, secret, events, created_at) "
        "VALUES (?, ?, 'https://hooks.acme.example/in', 'CRM', ?, ?, ?)",
        (endpoint_id, acme_id, ENDPOINT_SECRET, json.dumps(["order.paid"]), iso(NOW)),
    )
    sql(
        settings,
        "INSERT OR IGNORE INTO webhook_events (id, endpoint_id, organization_id, type, payload, status, attempts, "
        "next_attempt_at, last_http_code, last_error, created_at) "
        "VALUES (?, ?, ?, 'order.paid', '{}', 'failed', 10, ?, 500, 'server error', ?)",
        (event_id, endpoint_id, acme_id, iso(NOW), iso(NOW)),
    )
    sql(
        settings,
        "INSERT OR IGNORE INTO webhook_deliveries (id, event_id, endpoint_id, attempt, succeeded, http_code, response, "
        "duration_ms, created_at) VALUES (?, ?, ?, 10, 0, 500, 'server error', 123, ?)",
        (f"dlv-{event_id}", event_id, endpoint_id, iso(NOW)),
    )


def _customer(settings: Settings, org_id: str, email: str, name: str) -> str:
    found = sql(settings, "SELECT id FROM customers WHERE organization_id = ? AND email = ?", (org_id, email))
    if found:
        return str(found[0][0])
    customer_id = new_id()
    sql(
        settings,
        "INSERT INTO customers (id, organization_id, email, name, created_at) VALUES (?, ?, ?, ?, ?)",
        (customer_id, org_id, email, name, iso(NOW)),
    )
    return customer_id


def insert_paid_order(
    settings: Settings,
    org_id: str,
    customer_id: str,
    *,
    total: int = 4900,
    tax: int = 900,
    receipt: str = "CONSOLE-0001",
) -> str:
    """A paid order made in Portal (one item, tax included in the total), with its receipt number."""
    order_id, item_id = new_id(), new_id()
    sql(
        settings,
        "INSERT INTO orders (id, organization_id, customer_id, status, billing_reason, subtotal_amount, tax_amount, "
        "total_amount, currency, billing_name, receipt_number, paid_at, created_at) "
        "VALUES (?, ?, ?, 'paid', 'purchase', ?, ?, ?, 'usd', 'Ada Lovelace', ?, ?, ?)",
        (order_id, org_id, customer_id, total - tax, tax, total, receipt, iso(NOW), iso(NOW)),
    )
    sql(
        settings,
        "INSERT INTO order_items (id, order_id, label, quantity, unit_amount, amount, tax_amount, position, "
        "created_at) VALUES (?, ?, 'Console Pro licence', 1, ?, ?, ?, 0, ?)",
        (item_id, order_id, total - tax, total - tax, tax, iso(NOW)),
    )
    return order_id


def reset_targets(settings: Settings, team: Team) -> None:
    """Put back what the previous case's action changed (the matrix runs every action as every role)."""
    with batch(settings):
        _reset_targets(settings, team)


def _reset_targets(settings: Settings, team: Team) -> None:
    add_member(settings, team.target, team.acme_id, "support")
    sql(settings, "UPDATE api_tokens SET revoked_at = NULL WHERE id = ?", (team.token_id,))
    sql(settings, "UPDATE email_outbox SET status = 'failed' WHERE id = ?", (team.message_id,))
    _webhook_rows(settings, team.acme_id, team.endpoint_id, team.event_id)  # a deleted endpoint comes back
    sql(settings, "UPDATE webhook_events SET status = 'failed' WHERE id = ?", (team.event_id,))
    sql(settings, "UPDATE benefits SET deleted_at = NULL WHERE id = ?", (team.benefit_id,))
    sql(settings, "UPDATE customers SET email = 'ada@acme.example' WHERE id = ?", (team.customer_id,))
    reset_commerce(settings, team.commerce)
    sql(settings, "DELETE FROM refunds WHERE order_id = ?", (team.order_id,))
    sql(
        settings,
        "UPDATE orders SET status = 'paid', refunded_amount = 0, refunded_tax_amount = 0 WHERE id = ?",
        (team.order_id,),
    )


# --- a customer's subscription, license key and grants (the console's commerce pages) ------------------------


@dataclass
class Commerce:
    customer_id: str
    subscription_id: str  # active, monthly, made in Portal (no processor)
    grant_id: str  # the subscription's grant of the license-key benefit
    license_key_id: str  # that grant's key, with one activation
    activation_id: str
    key_benefit_id: str  # license keys, 3 activations
    support_benefit_id: str  # a custom benefit nobody holds yet (the grant form's choice)
    key: str  # the key's string as issued


def make_commerce(settings: Settings, org_id: str) -> Commerce:
    """A customer of ``org_id`` with an active Portal-made subscription to "Console Plan", whose license-key benefit
    issued a key with one activation, and a second (custom) benefit to grant by hand; made through the services."""

    async def work() -> Commerce:
        db = await Database(settings.db_path, readers=1).open()
        try:
            async with db.write() as tx:
                key_benefit = await benefit_service.create_benefit(
                    tx,
                    org_id,
                    benefit_service.BenefitInput(
                        type="license_keys",
                        description="Console Key",
                        properties={"prefix": "CON", "activations": {"limit": 3, "enable_customer_admin": False}},
                    ),
                    now=NOW,
                )
                support_benefit = await benefit_service.create_benefit(
                    tx,
                    org_id,
                    benefit_service.BenefitInput(
                        type="custom", description="Priority support", properties={"note": "Write to us."}
                    ),
                    now=NOW,
                )
                product = await product_service.create_product(
                    tx,
                    org_id,
                    product_service.ProductInput(
                        name="Console Plan",
                        recurring_interval="month",
                        prices=[product_service.PriceInput(amount=1500, currency="usd")],
                    ),
                    now=NOW,
                )
                await product_service.set_product_benefits(tx, product, [key_benefit], now=NOW)
                customer = await customer_service.create_customer(
                    tx, org_id, customer_service.CustomerInput(email="buyer@console.example", name="Bo Buyer"), now=NOW
                )
                subscription = await subscription_service.create_subscription(
                    tx,
                    org_id,
                    subscription_service.SubscriptionInput(
                        customer_id=customer,
                        product_id=product,
                        status="active",
                        current_period_start=NOW - timedelta(days=3),
                    ),
                    now=NOW,
                )
                (key_id,) = await license_keys.grant_license_key_ids(tx, order_id=None, subscription_id=subscription)
                activation = await license_keys.record_activation(
                    tx, key_id, label="Bo's laptop", meta={"os": "linux"}, now=NOW
                )
                row = await tx.fetchone("SELECT key, grant_id FROM license_keys WHERE id = ?", (key_id,))
            return Commerce(
                customer, subscription, row["grant_id"], key_id, activation, key_benefit, support_benefit, row["key"]
            )
        finally:
            await db.close()

    return asyncio.run(work())


def reset_commerce(settings: Settings, commerce: Commerce, route: str | None = None) -> None:
    """Put the commerce objects back as ``make_commerce`` left them (``route``: the state that route's action needs,
    e.g. a subscription scheduled to cancel for un-cancel)."""
    with batch(settings):
        _reset_commerce(settings, commerce, route)


def _reset_commerce(settings: Settings, commerce: Commerce, route: str | None) -> None:
    if not commerce.subscription_id:
        return
    canceling = route == "console.subscription_uncancel"
    sql(
        settings,
        "UPDATE subscriptions SET status = 'active', ended_at = NULL, cancel_at_period_end = ?, "
        "canceled_at = CASE WHEN ? THEN created_at END, ends_at = CASE WHEN ? THEN current_period_end END "
        "WHERE id = ?",
        (canceling, canceling, canceling, commerce.subscription_id),
    )
    sql(settings, "UPDATE benefit_grants SET revoked_at = NULL WHERE id = ?", (commerce.grant_id,))
    status = "disabled" if route == "console.license_key_enable" else "granted"
    sql(
        settings,
        "UPDATE license_keys SET status = ?, limit_activations = 3, expires_at = NULL WHERE id = ?",
        (status, commerce.license_key_id),
    )
    sql(
        settings,
        "INSERT OR IGNORE INTO license_key_activations (id, license_key_id, label, meta, created_at) "
        "VALUES (?, ?, 'Bo''s laptop', '{\"os\": \"linux\"}', ?)",
        (commerce.activation_id, commerce.license_key_id, iso(NOW)),
    )
