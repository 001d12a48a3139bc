"""Numbered, append-only schema migrations, recorded in ``schema_migrations``.

Never edit a migration that has shipped: append a new one. Each migration runs in its own
``BEGIN IMMEDIATE … COMMIT`` script, so a failure leaves the previous version intact. A database whose recorded
version is newer than the newest one here is refused (an older binary must not write to a newer schema).

Conventions: ids are UUIDv4 text; times are UTC ISO-8601 text (``2026-11-25T12:00:00.000000Z``, so string order is
time order); money is integer minor units with an ISO-4217 ``currency``; JSON columns end in ``_json`` or are
named ``properties``/``meta``/``billing_address``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


class SchemaTooNewError(RuntimeError):
    """The database was migrated by a newer Portal than this one."""


INITIAL_SCHEMA = """
CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    avatar_url TEXT,
    website_url TEXT,
    support_email TEXT,
    address TEXT,                      -- free text, printed on receipts
    receipt_prefix TEXT NOT NULL,      -- e.g. ACME -> ACME-0007
    next_receipt_number INTEGER NOT NULL DEFAULT 1,
    next_invoice_number INTEGER NOT NULL DEFAULT 1,
    default_currency TEXT NOT NULL DEFAULT 'usd',
    default_locale TEXT NOT NULL DEFAULT 'en',
    accent_color TEXT NOT NULL DEFAULT '#2563eb',
    allow_plan_change INTEGER NOT NULL DEFAULT 1,
    allow_seats INTEGER NOT NULL DEFAULT 0,
    show_usage INTEGER NOT NULL DEFAULT 1,
    allow_email_change INTEGER NOT NULL DEFAULT 0,
    settings TEXT NOT NULL DEFAULT '{}',   -- json: further portal/email settings
    external_id TEXT UNIQUE,
    created_at TEXT NOT NULL,
    modified_at TEXT
);

CREATE TABLE customers (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    email_verified INTEGER NOT NULL DEFAULT 0,
    name TEXT,
    external_id TEXT,
    billing_name TEXT,
    billing_address TEXT,              -- json Address or NULL
    tax_id TEXT,
    locale TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    modified_at TEXT,
    deleted_at TEXT
);
CREATE UNIQUE INDEX customers_org_email ON customers(organization_id, email COLLATE NOCASE)
    WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX customers_org_external_id ON customers(organization_id, external_id)
    WHERE external_id IS NOT NULL;

CREATE TABLE products (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT,
    is_recurring INTEGER NOT NULL DEFAULT 0,
    recurring_interval TEXT CHECK (recurring_interval IN ('day', 'week', 'month', 'year')),
    recurring_interval_count INTEGER NOT NULL DEFAULT 1,
    is_archived INTEGER NOT NULL DEFAULT 0,
    visibility TEXT NOT NULL DEFAULT 'public' CHECK (visibility IN ('public', 'private', 'draft')),
    external_id TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    modified_at TEXT
);
CREATE INDEX products_org ON products(organization_id);
CREATE UNIQUE INDEX products_org_external_id ON products(organization_id, external_id)
    WHERE external_id IS NOT NULL;

CREATE TABLE product_prices (
    id TEXT PRIMARY KEY,
    product_id TEXT NOT NULL REFERENCES products(id) ON DELETE CASCADE,
    amount_type TEXT NOT NULL DEFAULT 'fixed' CHECK (amount_type IN ('fixed', 'free', 'custom')),
    price_amount INTEGER NOT NULL DEFAULT 0 CHECK (price_amount >= 0),
    price_currency TEXT NOT NULL,
    is_archived INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    modified_at TEXT
);
CREATE INDEX product_prices_product ON product_prices(product_id);

CREATE TABLE benefits (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    type TEXT NOT NULL CHECK (type IN ('custom', 'license_keys', 'downloadables', 'discord',
                                       'github_repository', 'meter_credit', 'feature_flag')),
    description TEXT NOT NULL,
    properties TEXT NOT NULL DEFAULT '{}',   -- json, shape per type
    external_id TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    modified_at TEXT,
    deleted_at TEXT
);
CREATE INDEX benefits_org ON benefits(organization_id);
CREATE UNIQUE INDEX benefits_org_external_id ON benefits(organization_id, external_id)
    WHERE external_id IS NOT NULL;

CREATE TABLE product_benefits (
    product_id TEXT NOT NULL REFERENCES products(id) ON DELETE CASCADE,
    benefit_id TEXT NOT NULL REFERENCES benefits(id) ON DELETE CASCADE,
    position INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (product_id, benefit_id)
);
CREATE INDEX product_benefits_benefit ON product_benefits(benefit_id);

CREATE TABLE subscriptions (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    product_id TEXT NOT NULL REFERENCES products(id),
    price_id TEXT REFERENCES product_prices(id),
    status TEXT NOT NULL CHECK (status IN ('incomplete', 'incomplete_expired', 'trialing', 'active',
                                           'past_due', 'canceled', 'unpaid')),
    amount INTEGER NOT NULL CHECK (amount >= 0),
    currency TEXT NOT NULL,
    recurring_interval TEXT NOT NULL CHECK (recurring_interval IN ('day', 'week', 'month', 'year')),
    recurring_interval_count INTEGER NOT NULL DEFAULT 1,
    current_period_start TEXT NOT NULL,
    current_period_end TEXT,
    trial_start TEXT,
    trial_end TEXT,
    cancel_at_period_end INTEGER NOT NULL DEFAULT 0,
    canceled_at TEXT,
    started_at TEXT,
    ends_at TEXT,
    ended_at TEXT,
    customer_cancellation_reason TEXT,
    customer_cancellation_comment TEXT,
    external_id TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    modified_at TEXT
);
CREATE INDEX subscriptions_customer ON subscriptions(customer_id, created_at);
CREATE INDEX subscriptions_org_status ON subscriptions(organization_id, status);
CREATE UNIQUE INDEX subscriptions_org_external_id ON subscriptions(organization_id, external_id)
    WHERE external_id IS NOT NULL;

CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    product_id TEXT REFERENCES products(id),
    subscription_id TEXT REFERENCES subscriptions(id),
    status TEXT NOT NULL CHECK (status IN ('pending', 'paid', 'refunded', 'partially_refunded', 'void')),
    billing_reason TEXT NOT NULL CHECK (billing_reason IN ('purchase', 'subscription_create',
                                        'subscription_cycle', 'subscription_update')),
    subtotal_amount INTEGER NOT NULL CHECK (subtotal_amount >= 0),
    discount_amount INTEGER NOT NULL DEFAULT 0 CHECK (discount_amount >= 0),
    tax_amount INTEGER NOT NULL DEFAULT 0 CHECK (tax_amount >= 0),
    total_amount INTEGER NOT NULL CHECK (total_amount >= 0),
    refunded_amount INTEGER NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0),
    refunded_tax_amount INTEGER NOT NULL DEFAULT 0 CHECK (refunded_tax_amount >= 0),
    currency TEXT NOT NULL,
    billing_name TEXT,                 -- snapshot at payment time
    billing_address TEXT,              -- json snapshot at payment time
    tax_id TEXT,                       -- snapshot at payment time
    receipt_number TEXT,               -- allocated when paid, inside the write transaction
    invoice_number TEXT,
    paid_at TEXT,
    external_id TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    modified_at TEXT
);
CREATE INDEX orders_customer_created ON orders(customer_id, created_at DESC);
CREATE INDEX orders_subscription ON orders(subscription_id);
CREATE INDEX orders_org_created ON orders(organization_id, created_at DESC);
CREATE UNIQUE INDEX orders_org_receipt ON orders(organization_id, receipt_number)
    WHERE receipt_number IS NOT NULL;
CREATE UNIQUE INDEX orders_org_invoice ON orders(organization_id, invoice_number)
    WHERE invoice_number IS NOT NULL;
CREATE UNIQUE INDEX orders_org_external_id ON orders(organization_id, external_id)
    WHERE external_id IS NOT NULL;

CREATE TABLE order_items (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    quantity INTEGER NOT NULL DEFAULT 1 CHECK (quantity >= 1),
    unit_amount INTEGER NOT NULL CHECK (unit_amount >= 0),
    amount INTEGER NOT NULL CHECK (amount >= 0),
    tax_amount INTEGER NOT NULL DEFAULT 0,
    proration INTEGER NOT NULL DEFAULT 0,
    product_price_id TEXT REFERENCES product_prices(id),
    position INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    modified_at TEXT
);
CREATE INDEX order_items_order ON order_items(order_id, position);

CREATE TABLE refunds (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    amount INTEGER NOT NULL CHECK (amount > 0),
    tax_amount INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX refunds_order ON refunds(order_id, created_at);

CREATE TABLE files (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    path TEXT NOT NULL,                -- relative to <data dir>/files
    mime_type TEXT NOT NULL,
    size INTEGER NOT NULL CHECK (size >= 0),
    checksum_sha256_hex TEXT NOT NULL,
    version TEXT,
    created_at TEXT NOT NULL,
    modified_at TEXT
);
CREATE INDEX files_org ON files(organization_id);

CREATE TABLE benefit_grants (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    benefit_id TEXT NOT NULL REFERENCES benefits(id) ON DELETE CASCADE,
    order_id TEXT REFERENCES orders(id),
    subscription_id TEXT REFERENCES subscriptions(id),
    granted_at TEXT,
    revoked_at TEXT,
    properties TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    created_at TEXT NOT NULL,
    modified_at TEXT
);
CREATE INDEX benefit_grants_customer ON benefit_grants(customer_id, created_at);
CREATE INDEX benefit_grants_benefit ON benefit_grants(benefit_id);
CREATE INDEX benefit_grants_order ON benefit_grants(order_id);
CREATE INDEX benefit_grants_subscription ON benefit_grants(subscription_id);

CREATE TABLE license_keys (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    benefit_id TEXT NOT NULL REFERENCES benefits(id) ON DELETE CASCADE,
    grant_id TEXT REFERENCES benefit_grants(id) ON DELETE SET NULL,
    key TEXT NOT NULL,
    display_key TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('granted', 'revoked', 'disabled')),
    limit_activations INTEGER,
    usage INTEGER NOT NULL DEFAULT 0,
    limit_usage INTEGER,
    validations INTEGER NOT NULL DEFAULT 0,
    last_validated_at TEXT,
    expires_at TEXT,
    created_at TEXT NOT NULL,
    modified_at TEXT
);
CREATE UNIQUE INDEX license_keys_org_key ON license_keys(organization_id, key);
CREATE INDEX license_keys_customer ON license_keys(customer_id);
CREATE INDEX license_keys_grant ON license_keys(grant_id);

CREATE TABLE license_key_activations (
    id TEXT PRIMARY KEY,
    license_key_id TEXT NOT NULL REFERENCES license_keys(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    modified_at TEXT
);
CREATE INDEX license_key_activations_key ON license_key_activations(license_key_id, created_at);

CREATE TABLE login_codes (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    email TEXT NOT NULL COLLATE NOCASE,
    customer_id TEXT REFERENCES customers(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,           -- HMAC-SHA256(secret, challenge || code)
    challenge_hash TEXT NOT NULL,      -- HMAC of the challenge cookie/id the code is bound to
    expires_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    used_at TEXT,
    canceled_at TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX login_codes_challenge ON login_codes(challenge_hash);
CREATE INDEX login_codes_org_email ON login_codes(organization_id, email, created_at);

CREATE TABLE customer_sessions (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,   -- HMAC-SHA256(secret, token)
    kind TEXT NOT NULL CHECK (kind IN ('api', 'browser')),
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    return_url TEXT,
    csrf_secret TEXT,
    expires_at TEXT NOT NULL,
    last_seen_at TEXT,
    revoked_at TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX customer_sessions_customer ON customer_sessions(customer_id);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    scope TEXT NOT NULL CHECK (scope IN ('organization', 'admin')),
    organization_id TEXT REFERENCES organizations(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT,
    CHECK ((scope = 'admin') = (organization_id IS NULL))
);

CREATE TABLE rate_limits (
    key TEXT NOT NULL,
    window_start INTEGER NOT NULL,     -- unix seconds, start of the fixed window
    count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key, window_start)
) WITHOUT ROWID;

CREATE TABLE events (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    customer_id TEXT REFERENCES customers(id) ON DELETE SET NULL,
    name TEXT NOT NULL,                -- e.g. subscription.canceled, license_key.activated, file.downloaded
    subject_id TEXT,
    data TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL
);
CREATE INDEX events_org_created ON events(organization_id, created_at);
CREATE INDEX events_customer ON events(customer_id, created_at);

-- Append-only audit: events are never updated or deleted through the app.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
"""


CUSTOMER_PORTAL_API_SCHEMA = """
-- Invoices issued for orders (customer-portal API and pages). Frozen once issued: the bill-to snapshot and the
-- amounts are copied in; a later billing change issues a corrected invoice that points at the one it replaces.
CREATE TABLE invoices (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    order_id TEXT NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    invoice_number TEXT NOT NULL,
    billing_name TEXT NOT NULL,
    billing_address TEXT NOT NULL,     -- json Address
    tax_id TEXT,
    snapshot TEXT NOT NULL,            -- json: amounts, currency, items, seller details at issue time
    corrects_invoice_id TEXT REFERENCES invoices(id),
    issued_at TEXT NOT NULL
);
CREATE UNIQUE INDEX invoices_org_number ON invoices(organization_id, invoice_number);
CREATE INDEX invoices_order ON invoices(order_id, issued_at);

-- Email changes requested through the customer-portal API: the new address gets a single-use token.
CREATE TABLE customer_email_updates (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,   -- HMAC-SHA256(secret, token)
    expires_at TEXT NOT NULL,
    used_at TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX customer_email_updates_customer ON customer_email_updates(customer_id, created_at);

-- Polar's activation conditions: validate with an activation_id must send the same conditions.
ALTER TABLE license_key_activations ADD COLUMN conditions TEXT NOT NULL DEFAULT '{}';
"""


SIGN_IN_INDEXES = """
-- Polar's authenticate takes just {code}: find a live code by its HMAC. Expired codes are purged by expiry.
CREATE INDEX login_codes_code_hash ON login_codes(code_hash);
CREATE INDEX login_codes_expires ON login_codes(expires_at);
-- Old rate-limit windows are pruned by age.
CREATE INDEX rate_limits_window ON rate_limits(window_start);
"""


NOTIFICATIONS_SCHEMA = """
-- Transactional emails, enqueued in the same write transaction as the change they report and sent by the
-- background worker (retries with backoff). ``context`` is a JSON snapshot rendered at send time; sign-in links
-- are minted then, so no usable link token is ever stored in clear. Due rows: status pending/sending (a sending
-- row whose lease, ``next_attempt_at``, has passed belongs to a worker that died and is claimed again).
CREATE TABLE email_outbox (
    id TEXT PRIMARY KEY,
    organization_id TEXT REFERENCES organizations(id) ON DELETE CASCADE,
    customer_id TEXT REFERENCES customers(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,                -- receipt | refund | subscription_canceled | ... (templates/emails/<kind>.*)
    to_address TEXT NOT NULL,
    context TEXT NOT NULL DEFAULT '{}',
    dedupe_key TEXT UNIQUE,            -- e.g. renewal:<subscription id>:<period end>: enqueued at most once
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'canceled')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT,
    sent_at TEXT,
    created_at TEXT NOT NULL,
    modified_at TEXT
);
CREATE INDEX email_outbox_due ON email_outbox(next_attempt_at) WHERE status IN ('pending', 'sending');
CREATE INDEX email_outbox_created ON email_outbox(created_at);

-- Single-use sign-in links carried by transactional emails (HMAC of the token only; 24 h).
CREATE TABLE email_links (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    target_path TEXT NOT NULL,         -- where the link lands once signed in, e.g. /acme/portal/orders/<id>/receipt
    outbox_id TEXT REFERENCES email_outbox(id) ON DELETE SET NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX email_links_expires ON email_links(expires_at);

-- Webhooks to the seller's app (Standard Webhooks signatures). The secret is needed in clear to sign.
CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    name TEXT,
    secret TEXT NOT NULL,              -- whsec_<base64 key>
    events TEXT NOT NULL DEFAULT '[]', -- json list of event types
    enabled INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    modified_at TEXT
);
CREATE INDEX webhook_endpoints_org ON webhook_endpoints(organization_id);

-- One event per endpoint; its id is the ``webhook-id`` header, the same on every retry. ``payload`` is the exact
-- body, built in the transaction of the change.
CREATE TABLE webhook_events (
    id TEXT PRIMARY KEY,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    type TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sending', 'succeeded', 'failed', 'skipped')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_http_code INTEGER,
    last_error TEXT,
    created_at TEXT NOT NULL,
    modified_at TEXT
);
CREATE INDEX webhook_events_due ON webhook_events(next_attempt_at) WHERE status IN ('pending', 'sending');
CREATE INDEX webhook_events_endpoint ON webhook_events(endpoint_id, created_at);

-- The delivery log: one row per attempt.
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL REFERENCES webhook_events(id) ON DELETE CASCADE,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    succeeded INTEGER NOT NULL,
    http_code INTEGER,
    response TEXT,                     -- the first 2 KB of the answer, or the connection error
    duration_ms INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries(endpoint_id, created_at);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries(event_id, created_at);

-- The renewal-reminder scan: live subscriptions by period end.
CREATE INDEX subscriptions_renewal ON subscriptions(current_period_end)
    WHERE status IN ('active', 'trialing') AND cancel_at_period_end = 0;
"""


CUSTOMER_FIRST_INDEXES = """
-- Without ANALYZE statistics SQLite picks the index matching the most equality columns. For
-- "customer_id = ? AND organization_id = ?" both (customer_id, created_at) and (organization_id, …) match one, and
-- it took the organization's: a customer's order count read all 700,000 orders of a large seller (2.5 s). These
-- lead with the customer AND hold the organization, so they match both columns (bench/README.md,
-- tests/test_query_plans.py); they replace the customer-only ones, whose every use they also serve. Subscriptions
-- also hold the status, or "organization_id = ? AND status IN (…)" (all live subscriptions of the seller) ties.
CREATE INDEX orders_customer_org_created ON orders(customer_id, organization_id, created_at DESC);
DROP INDEX orders_customer_created;
CREATE INDEX subscriptions_customer_org_status ON subscriptions(customer_id, organization_id, status, created_at);
DROP INDEX subscriptions_customer;
"""

# The order lists sort by ``created_at DESC, id`` (a stable order for pages): with ``id`` in the index the rows come
# out of it in that order, instead of all of the customer's orders being read and sorted for every page.
ORDERED_ORDER_INDEX = """
CREATE INDEX orders_customer_org_created_id ON orders(customer_id, organization_id, created_at DESC, id);
DROP INDEX orders_customer_org_created;
"""

# ``organizations.catalog_version`` changes whenever anything the customer portal shows of a product changes: the
# product, its prices, its benefits or their links. Processes cache the catalog per organization and version
# (``portal.customer_portal.catalog``); triggers keep the version right whatever writes (admin API, seeding, SQL).
CATALOG_VERSION = """
ALTER TABLE organizations ADD COLUMN catalog_version INTEGER NOT NULL DEFAULT 0;
CREATE TRIGGER catalog_product_insert AFTER INSERT ON products BEGIN
    UPDATE organizations SET catalog_version = catalog_version + 1 WHERE id = NEW.organization_id;
END;
CREATE TRIGGER catalog_product_update AFTER UPDATE ON products BEGIN
    UPDATE organizations SET catalog_version = catalog_version + 1
    WHERE id IN (OLD.organization_id, NEW.organization_id);
END;
CREATE TRIGGER catalog_product_delete AFTER DELETE ON products BEGIN
    UPDATE organizations SET catalog_version = catalog_version + 1 WHERE id = OLD.organization_id;
END;
CREATE TRIGGER catalog_price_insert AFTER INSERT ON product_prices BEGIN
    UPDATE organizations SET catalog_version = catalog_version + 1
    WHERE id = (SELECT organization_id FROM products WHERE id = NEW.product_id);
END;
CREATE TRIGGER catalog_price_update AFTER UPDATE ON product_prices BEGIN
    UPDATE organizations SET catalog_version = catalog_version + 1
    WHERE id IN (SELECT organization_id FROM products WHERE id IN (OLD.product_id, NEW.product_id));
END;
CREATE TRIGGER catalog_price_delete AFTER DELETE ON product_prices BEGIN
    UPDATE organizations SET catalog_version = catalog_version + 1
    WHERE id = (SELECT organization_id FROM products WHERE id = OLD.product_id);
END;
CREATE TRIGGER catalog_benefit_insert AFTER INSERT ON benefits BEGIN
    UPDATE organizations SET catalog_version = catalog_version + 1 WHERE id = NEW.organization_id;
END;
CREATE TRIGGER catalog_benefit_update AFTER UPDATE ON benefits BEGIN
    UPDATE organizations SET catalog_version = catalog_version + 1
    WHERE id IN (OLD.organization_id, NEW.organization_id);
END;
CREATE TRIGGER catalog_benefit_delete AFTER DELETE ON benefits BEGIN
    UPDATE organizations SET catalog_version = catalog_version + 1 WHERE id = OLD.organization_id;
END;
CREATE TRIGGER catalog_link_insert AFTER INSERT ON product_benefits BEGIN
    UPDATE organizations SET catalog_version = catalog_version + 1
    WHERE id = (SELECT organization_id FROM products WHERE id = NEW.product_id);
END;
CREATE TRIGGER catalog_link_update AFTER UPDATE ON product_benefits BEGIN
    UPDATE organizations SET catalog_version = catalog_version + 1
    WHERE id IN (SELECT organization_id FROM products WHERE id IN (OLD.product_id, NEW.product_id));
END;
CREATE TRIGGER catalog_link_delete AFTER DELETE ON product_benefits BEGIN
    UPDATE organizations SET catalog_version = catalog_version + 1
    WHERE id = (SELECT organization_id FROM products WHERE id = OLD.product_id);
END;
"""

# An order's items are read in ``position, created_at`` order (receipts, the API's ``items``). With only
# ``(order_id, position)`` SQLite sorted every order's items in a temporary B-tree, per order of every page of
# ``GET /v1/customer-portal/orders/`` (figures: bench/README.md's speed-mechanisms table). The wider index serves
# every use of the old one.
ORDERED_ITEM_INDEX = """
CREATE INDEX order_items_order_position ON order_items(order_id, position, created_at);
DROP INDEX order_items_order;
"""


# ``orders.items_json``: an order's items as the JSON array of Polar's ``OrderItem`` objects, kept by triggers on
# ``order_items`` whoever writes them (the items of an order are written with it, and never change in Portal). A page
# of ten orders in ``GET /v1/customer-portal/orders/`` read each order's items through a correlated subquery that
# built this array, SQLite work on every page (figures: bench/README.md's speed-mechanisms table); now it reads a
# column.
# NULL (an order without items) reads as ``[]``. The subquery is the one the API used, so the text is identical.
_ORDER_ITEMS_JSON_OF = """(
        SELECT json_group_array(json_object(
            'created_at', item.created_at,
            'modified_at', item.modified_at,
            'id', item.id,
            'label', item.label,
            'amount', item.amount,
            'tax_amount', item.tax_amount,
            'proration', json(CASE WHEN item.proration THEN 'true' ELSE 'false' END),
            'product_price_id', item.product_price_id
        ))
        FROM (SELECT * FROM order_items oi WHERE oi.order_id = {order} ORDER BY oi.position, oi.created_at) item
    )"""
ORDER_ITEMS_JSON = f"""
ALTER TABLE orders ADD COLUMN items_json TEXT;
CREATE TRIGGER order_items_json_insert AFTER INSERT ON order_items BEGIN
    UPDATE orders SET items_json = {_ORDER_ITEMS_JSON_OF.format(order="NEW.order_id")} WHERE id = NEW.order_id;
END;
CREATE TRIGGER order_items_json_update AFTER UPDATE ON order_items BEGIN
    UPDATE orders SET items_json = {_ORDER_ITEMS_JSON_OF.format(order="orders.id")}
    WHERE id IN (OLD.order_id, NEW.order_id);
END;
CREATE TRIGGER order_items_json_delete AFTER DELETE ON order_items BEGIN
    UPDATE orders SET items_json = {_ORDER_ITEMS_JSON_OF.format(order="OLD.order_id")} WHERE id = OLD.order_id;
END;
UPDATE orders SET items_json = {_ORDER_ITEMS_JSON_OF.format(order="orders.id")}
WHERE EXISTS (SELECT 1 FROM order_items WHERE order_id = orders.id);
"""

# The client network (HMAC) a login code was requested from: an email-less guess is compared only with codes asked
# for from the guesser's own network (portal/sessions/service.py).
LOGIN_CODE_REQUESTER = """
ALTER TABLE login_codes ADD COLUMN requester_hash TEXT;
CREATE INDEX login_codes_requester ON login_codes(requester_hash, created_at) WHERE requester_hash IS NOT NULL;
"""


# Where a customer-session token came from (issue 17.1): only ``seller`` tokens (``POST /v1/customer-sessions/``)
# open the portal as links; ``code`` and ``email_change`` tokens were minted by the customer for themselves and
# work only as Bearer tokens. Rows from before this migration stay NULL: never a link (seller tokens live an hour).
# ``parent_id``: the token a link's browser session was opened from (signing out revokes it too).
SESSION_ORIGIN = """
ALTER TABLE customer_sessions ADD COLUMN origin TEXT;
ALTER TABLE customer_sessions ADD COLUMN parent_id TEXT;
"""


# Payment-processor connectors (issue 19/20, portal/connectors/): one connection per organization and processor with
# its secrets encrypted (AES-GCM, portal/connectors/store.py); every inbound event stored once by the processor's id;
# processor price -> Portal product; processor object -> Portal row links with the version last applied (ordering).
CONNECTORS_SCHEMA = """
CREATE TABLE connector_connections (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    processor TEXT NOT NULL,
    account_id TEXT,
    livemode INTEGER NOT NULL DEFAULT 0,
    secrets TEXT NOT NULL,
    settings TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    modified_at TEXT,
    UNIQUE (organization_id, processor)
);
CREATE TABLE connector_events (
    id TEXT PRIMARY KEY,
    connection_id TEXT NOT NULL REFERENCES connector_connections(id) ON DELETE CASCADE,
    event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    created INTEGER NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    price_id TEXT,
    received_at TEXT NOT NULL,
    applied_at TEXT,
    UNIQUE (connection_id, event_id)
);
CREATE INDEX connector_events_recent ON connector_events(connection_id, received_at);
CREATE INDEX connector_events_pending ON connector_events(connection_id, status, price_id);
CREATE TABLE connector_prices (
    connection_id TEXT NOT NULL REFERENCES connector_connections(id) ON DELETE CASCADE,
    processor_price_id TEXT NOT NULL,
    product_id TEXT NOT NULL REFERENCES products(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (connection_id, processor_price_id)
);
CREATE TABLE connector_links (
    connection_id TEXT NOT NULL REFERENCES connector_connections(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    processor_id TEXT NOT NULL,
    portal_id TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (connection_id, kind, processor_id)
);
CREATE INDEX connector_links_portal ON connector_links(kind, portal_id);
CREATE TABLE connector_checkpoints (
    connection_id TEXT NOT NULL REFERENCES connector_connections(id) ON DELETE CASCADE,
    stream TEXT NOT NULL,
    cursor TEXT,
    done INTEGER NOT NULL DEFAULT 0,
    modified_at TEXT NOT NULL,
    PRIMARY KEY (connection_id, stream)
);
"""


# Per-organization email sender (issue 22): the display name on the From line (the address stays
# PORTAL_MAIL_FROM's, which the mail server is allowed to send as) and the Reply-To address (NULL: the support
# email). The console's Settings page shows them.
ORGANIZATION_EMAIL_SENDER = """
ALTER TABLE organizations ADD COLUMN email_sender_name TEXT;
ALTER TABLE organizations ADD COLUMN email_reply_to TEXT;
"""


# Issue 23, Polar's own rules. Customer rotation of license keys is on by default, as in Polar: the property was
# off by default before and stored with every license-key benefit, so a stored false only ever meant "the
# default"; it becomes true (a seller switches it off again per benefit). Benefits get Polar's visibility (what
# the customer portal shows; products have had theirs since the first schema).
POLAR_RULES = """
UPDATE benefits
SET properties = json_set(properties, '$.allow_customer_rotation', json('true'))
WHERE type = 'license_keys' AND json_extract(properties, '$.allow_customer_rotation') = 0;
ALTER TABLE benefits ADD COLUMN visibility TEXT NOT NULL DEFAULT 'public'
    CHECK (visibility IN ('public', 'private', 'draft'));
"""


# Where a customer whose subscription ended can subscribe again (issue 22): the seller's checkout or pricing page,
# http(s) only; NULL offers nothing. Set through the admin API and the seed.
ORGANIZATION_RESUBSCRIBE_URL = """
ALTER TABLE organizations ADD COLUMN resubscribe_url TEXT;
"""


# Issue 21, the seller console: seller accounts (instance admins, or members of organizations with a role), their
# one-time sign-in codes and sessions (stored as HMACs, like the customers'), and the audit log of every seller
# action. Console codes are not per organization (a seller signs in once, then opens any organization of theirs),
# so they have their own table rather than a nullable ``login_codes.organization_id``.
SELLER_CONSOLE = """
CREATE TABLE seller_accounts (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    is_admin INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    created_at TEXT NOT NULL
);
CREATE TABLE seller_memberships (
    seller_id TEXT NOT NULL REFERENCES seller_accounts(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('owner', 'support')),
    invited_by TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (seller_id, organization_id)
);
CREATE INDEX seller_memberships_org ON seller_memberships(organization_id, role);
CREATE TABLE seller_login_codes (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL COLLATE NOCASE,
    seller_id TEXT REFERENCES seller_accounts(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    challenge_hash TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    used_at TEXT,
    canceled_at TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX seller_login_codes_challenge ON seller_login_codes(challenge_hash, created_at);
CREATE INDEX seller_login_codes_email ON seller_login_codes(email, created_at);
CREATE TABLE seller_sessions (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    seller_id TEXT NOT NULL REFERENCES seller_accounts(id) ON DELETE CASCADE,
    expires_at TEXT NOT NULL,
    revoked_at TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX seller_sessions_seller ON seller_sessions(seller_id);
-- Kept when a seller or organization is deleted: who did what is the point of an audit log.
CREATE TABLE seller_audit_log (
    id TEXT PRIMARY KEY,
    seller_id TEXT,
    seller_email TEXT NOT NULL,
    role TEXT NOT NULL,
    organization_id TEXT,
    action TEXT NOT NULL,
    target TEXT,
    details TEXT NOT NULL DEFAULT '{}',
    client_ip TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX seller_audit_log_org ON seller_audit_log(organization_id, created_at);
-- The console's per-organization lists, newest first: webhook events and the email outbox.
CREATE INDEX webhook_events_org ON webhook_events(organization_id, created_at);
CREATE INDEX email_outbox_org ON email_outbox(organization_id, status, created_at);
-- The console's home: 12 months of an organization's sales read from the index alone (covering), new customers.
CREATE INDEX orders_org_month ON orders(organization_id, created_at, status, currency, total_amount, refunded_amount);
CREATE INDEX customers_org_created ON customers(organization_id, created_at);
"""


# Issue 21, the console's Customers section: search by a name prefix (email prefixes use ``customers_org_email``),
# the emails sent to one customer, the audit entries about one customer (``target`` is its id), a customer's
# email links (voided when a seller changes the address), and read-only
# "view the portal as this customer" sessions: ``viewer_session_id`` is the seller's console session
# (``seller_sessions.id``) a view-as session is bound to (it ends with it); NULL for every customer's own session.
CONSOLE_CUSTOMERS = """
CREATE INDEX customers_org_name ON customers(organization_id, name COLLATE NOCASE)
    WHERE deleted_at IS NULL AND name IS NOT NULL;
CREATE INDEX email_outbox_customer ON email_outbox(customer_id, created_at);
CREATE INDEX seller_audit_log_target ON seller_audit_log(organization_id, target, created_at);
CREATE INDEX email_links_customer ON email_links(customer_id);
ALTER TABLE customer_sessions ADD COLUMN viewer_session_id TEXT;
"""


# The seller console's subscription and license-key pages list the newest events about one subject: without this,
# the read walks every event of the organization (events_org_created) to find a few.
EVENTS_BY_SUBJECT = """
CREATE INDEX events_subject ON events(subject_id, created_at);
"""


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", INITIAL_SCHEMA),
    Migration(2, "invoices, email updates, activation conditions", CUSTOMER_PORTAL_API_SCHEMA),
    Migration(3, "login code lookups", SIGN_IN_INDEXES),
    Migration(4, "email outbox, email links, webhooks", NOTIFICATIONS_SCHEMA),
    Migration(5, "customer-first order and subscription indexes", CUSTOMER_FIRST_INDEXES),
    Migration(6, "customer order lists in index order", ORDERED_ORDER_INDEX),
    Migration(7, "catalog version for per-process product caches", CATALOG_VERSION),
    Migration(8, "order items in index order", ORDERED_ITEM_INDEX),
    Migration(9, "order items as JSON on the order row", ORDER_ITEMS_JSON),
    Migration(10, "login code requester network", LOGIN_CODE_REQUESTER),
    Migration(11, "customer-session token origin", SESSION_ORIGIN),
    Migration(12, "payment-processor connectors", CONNECTORS_SCHEMA),
    Migration(13, "organization email sender name and reply-to", ORGANIZATION_EMAIL_SENDER),
    Migration(15, "customer key rotation on by default, benefit visibility", POLAR_RULES),
    Migration(16, "organization resubscribe link", ORGANIZATION_RESUBSCRIBE_URL),
    Migration(17, "seller console: accounts, codes, sessions, audit log", SELLER_CONSOLE),
    Migration(18, "console customers: search indexes, view-as sessions", CONSOLE_CUSTOMERS),
    Migration(19, "events by subject", EVENTS_BY_SUBJECT),
)

LATEST_VERSION = MIGRATIONS[-1].version

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)
"""


def current_version(conn: sqlite3.Connection) -> int:
    conn.execute(_BOOKKEEPING)
    row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()
    return int(row[0])


def check_version(conn: sqlite3.Connection) -> int:
    """Return the recorded version; raise ``SchemaTooNewError`` if this Portal is older than the DB."""
    version = current_version(conn)
    if version > LATEST_VERSION:
        raise SchemaTooNewError(
            f"database schema is version {version}, this Portal knows up to {LATEST_VERSION}: "
            "upgrade Portal before serving this data directory"
        )
    return version


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Apply every pending migration, each atomically; return the versions applied (empty: no-op)."""
    version = check_version(conn)
    applied: list[int] = []
    for migration in MIGRATIONS:
        if migration.version <= version:
            continue
        # executescript runs the whole script; wrapping it in BEGIN IMMEDIATE/COMMIT makes it atomic.
        script = (
            "BEGIN IMMEDIATE;\n"
            f"{migration.sql}\n;"
            "INSERT INTO schema_migrations(version, name) VALUES "
            f"({int(migration.version)}, '{migration.name.replace(chr(39), '')}');\n"
            "COMMIT;"
        )
        try:
            conn.executescript(script)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        applied.append(migration.version)
    return applied
