"""Each area's tables are read and written by that area's modules only (issue 18: one home per concept).

Scans every module under ``portal/`` for SQL naming a table (``FROM``/``JOIN``/``UPDATE``/``INTO <table>``) and
fails when a module outside the table's area touches it, unless the module is on ``ALLOWED`` with its reason. To
read an area's table from elsewhere, add a function to that area's ``reads.py`` (or, for a write, its
``service.py``) and call it; only add to ``ALLOWED`` what cannot go through the area (schema, cascades)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PORTAL = Path(__file__).resolve().parent.parent / "portal"

# table -> the area package that owns it (its reads.py and service.py, and any module inside the package).
HOMES: dict[str, str] = {
    "orders": "orders",
    "order_items": "orders",
    "refunds": "orders",
    "customers": "customers",
    "subscriptions": "subscriptions",
    "benefits": "benefits",
    "benefit_grants": "benefits",
    "license_keys": "benefits",
    "license_key_activations": "benefits",
    "files": "benefits",
    "products": "products",
    "product_prices": "products",
    "product_benefits": "products",
}

# (module, table) -> why that module names the table although it is not in the table's area.
ALLOWED: dict[tuple[str, str], str] = {
    ("references.py", "orders"): "the one table of tenant-ownership checks, by kind, for every write",
    ("admin/deletions.py", "orders"): "an organization's deletion cascade: one statement across areas",
    ("admin/deletions.py", "order_items"): "an organization's deletion cascade: one statement across areas",
    ("benefits/reads.py", "orders"): "license_key_source: the order that granted a key (one statement via its grant)",
    ("admin/deletions.py", "customers"): "an organization's deletion cascade: one statement across areas",
    ("references.py", "customers"): "the one table of tenant-ownership checks, by kind, for every write",
    ("cli.py", "customers"): "serve --demo's banner: one sign-in address per organization, a join with organizations",
    ("i18n.py", "customers"): "the saved language written by the language switch (not moved yet: customers.service)",
    ("benefits/reads.py", "customers"): "grant summaries join live customers (one statement; benefits area)",
    ("notifications/emails.py", "customers"): "the recipient read inside the enqueue transaction (not moved yet)",
    ("sessions/service.py", "customers"): "sign-in: the code's customer looked up and verified in its transaction",
    (
        "sessions/email_links.py",
        "customers",
    ): "email-link sign-in: the customer checked and verified in its transaction",
    ("sessions/store.py", "customers"): "the session look-up of every request joins its live customer (one statement)",
    ("references.py", "subscriptions"): "the one table of tenant-ownership checks, by kind, for every write",
    ("benefits/reads.py", "subscriptions"): "license_key_source: the subscription that granted a key (one statement)",
    ("notifications/emails.py", "subscriptions"): "the renewal/cancellation email's subscription with product and plan",
    ("notifications/hooks.py", "subscriptions"): "subscription_snapshot: the fields a subscription.updated compares",
    ("notifications/reminders.py", "subscriptions"): "the renewal-reminder scan (a batch join with customers)",
    ("admin/deletions.py", "benefits"): "a benefit's deletion: unlinked from products, its grants revoked, in one tx",
    (
        "admin/deletions.py",
        "benefit_grants",
    ): "a benefit's deletion: unlinked from products, its grants revoked, in one tx",
    ("admin/deletions.py", "files"): "a file's deletion: refused while a live benefit lists it, then removed",
    ("references.py", "benefits"): "the one table of tenant-ownership checks, by kind, for every write",
    ("references.py", "files"): "the one table of tenant-ownership checks, by kind, for every write",
    ("products/reads.py", "benefits"): "a product's benefits in order, batch-read with the catalog (products area)",
    ("products/service.py", "benefits"): "a product's benefit links are written with the product (products area)",
    ("notifications/emails.py", "benefit_grants"): "the receipt email lists what the order granted (not moved yet)",
    ("notifications/emails.py", "benefits"): "the receipt email lists what the order granted (not moved yet)",
    ("notifications/emails.py", "license_keys"): "the receipt email carries the granted keys (not moved yet)",
    ("notifications/emails.py", "files"): "the receipt email names the granted files (not moved yet)",
    ("seeding/loader.py", "benefits"): "the seed loader's idempotent reloads (restores, counts)",
    ("seeding/loader.py", "benefit_grants"): "the seed loader's idempotent reloads (restores, counts)",
    ("seeding/loader.py", "license_keys"): "the seed loader's idempotent reloads (restores, counts)",
    ("seeding/loader.py", "license_key_activations"): "the seed loader's idempotent reloads (restores, counts)",
    ("seeding/loader.py", "files"): "the seed loader's idempotent reloads (restores, counts)",
    ("orders/reads.py", "products"): "the product's name joined into order lists (one statement; search, sort)",
    ("subscriptions/reads.py", "products"): "the product's name joined; the plans a subscription may switch to",
    ("subscriptions/reads.py", "product_prices"): "the plans a subscription may switch to: each plan's current price",
    ("subscriptions/service.py", "product_prices"): "a subscription's price checked against its product on write",
    ("notifications/emails.py", "products"): "the subscription email's product name (not moved yet)",
    ("notifications/hooks.py", "products"): "subscription_snapshot's product name (not moved yet)",
    ("references.py", "products"): "the one table of tenant-ownership checks, by kind, for every write",
    ("references.py", "product_prices"): "the one table of tenant-ownership checks, by kind, for every write",
    ("admin/deletions.py", "products"): "an organization's deletion cascade: one statement across areas",
    ("admin/deletions.py", "product_prices"): "an organization's deletion cascade: one statement across areas",
    ("admin/deletions.py", "product_benefits"): "a benefit's deletion unlinks it from products in the same tx",
    ("connectors/cli.py", "products"): "connectors: another branch's area at the time of this change (to move)",
    ("connectors/links.py", "products"): "connectors: price mappings joined with their product (another branch's area)",
    ("seeding/loader.py", "customers"): "the seed loader restores a deleted seeded customer (idempotent reloads)",
}

# The schema (numbered migrations, their triggers and backfills) names every table by nature.
SCHEMA_MODULES = frozenset({"migrations.py"})

_SQL = re.compile(r"\b(?:FROM|JOIN|UPDATE|INTO)\s+(\w+)\b")


def _uses() -> set[tuple[str, str]]:
    found = set()
    for path in PORTAL.rglob("*.py"):
        module = path.relative_to(PORTAL).as_posix()
        if module in SCHEMA_MODULES:
            continue
        for table in _SQL.findall(path.read_text(encoding="utf-8")):
            if table in HOMES and not module.startswith(HOMES[table] + "/"):
                found.add((module, table))
    return found


def test_area_tables_only_in_their_area() -> None:
    stray = sorted(_uses() - ALLOWED.keys())
    assert not stray, f"SQL on an area's table outside the area (add a function to the area's reads.py): {stray}"


@pytest.mark.parametrize("entry", sorted(ALLOWED))
def test_allowed_entries_are_still_needed(entry: tuple[str, str]) -> None:
    """An exception that is no longer used is removed, so the list stays the truth."""
    assert entry in _uses(), f"{entry} no longer names the table: remove it from ALLOWED"


def test_the_scan_sees_sql() -> None:
    """The scan finds the area's own SQL (a broken pattern would pass everything)."""
    text = (PORTAL / "orders" / "reads.py").read_text(encoding="utf-8")
    assert "orders" in _SQL.findall(text)
