"""The customer-portal API caches products per process (``portal.polar.catalog``): a change made through
another process (here: a second app on the same data dir, with its own ``Database``) shows at once, because the
cache is keyed by ``organizations.catalog_version``, which triggers bump on every change to products, prices,
benefits and their links (migration 7)."""

from __future__ import annotations

import sqlite3
from typing import Any

import httpx
import pytest

from portal.settings import Settings
from tests.admin_support import bearer, mint_token
from tests.api_server import api_token, served_portal
from tests.browser_helpers import one

pytestmark = pytest.mark.seeded  # data_dir: a copy of the demo seed (tests/conftest.py)


def _orders(base_url: str, token: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{base_url}/v1/customer-portal/orders/", params={"limit": 100}, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


def _product(orders: list[dict[str, Any]], product_id: str) -> dict[str, Any]:
    return next(o["product"] for o in orders if o["product_id"] == product_id)


def test_a_change_through_another_process_shows_at_once(settings: Settings) -> None:
    product = one(settings, "SELECT id, organization_id FROM products WHERE external_id = 'acme-toolkit'")
    admin = mint_token(settings, product["organization_id"])
    with served_portal(settings) as (reader, live), served_portal(settings) as (writer, _):
        customer = api_token(live, "acme", "alex@example.com")
        before = _product(_orders(reader, customer), product["id"])  # now cached in the reader's process
        assert _product(_orders(reader, customer), product["id"]) == before

        renamed = httpx.patch(
            f"{writer}/v1/products/{product['id']}", json={"name": "Acme Toolkit 2"}, headers=bearer(admin)
        )
        assert renamed.status_code == 200, renamed.text
        after = _product(_orders(reader, customer), product["id"])
        assert after["name"] == "Acme Toolkit 2" and before["name"] == "Acme Toolkit"

        benefit = before["benefits"][0]
        described = httpx.patch(
            f"{writer}/v1/benefits/{benefit['id']}",
            json={"type": benefit["type"], "description": "Renamed perk"},
            headers=bearer(admin),
        )
        assert described.status_code == 200, described.text
        shown = _product(_orders(reader, customer), product["id"])
        assert {b["description"] for b in shown["benefits"] if b["id"] == benefit["id"]} == {"Renamed perk"}


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE products SET description = 'x' WHERE id = :product",
        "INSERT INTO product_prices (id, product_id, price_amount, price_currency, created_at) "
        "VALUES ('p-new', :product, 100, 'usd', '2026-01-01T00:00:00Z')",
        "UPDATE product_prices SET price_amount = price_amount + 1 WHERE product_id = :product",
        "DELETE FROM product_prices WHERE product_id = :product",
        "UPDATE benefits SET description = 'x' WHERE organization_id = :org",
        "DELETE FROM product_benefits WHERE product_id = :product",
        "INSERT INTO benefits (id, organization_id, type, description, created_at) "
        "VALUES ('b-new', :org, 'custom', 'New', '2026-01-01T00:00:00Z')",
        "INSERT INTO product_benefits (product_id, benefit_id) VALUES (:product, 'b-new-link')",
    ],
)
def test_every_catalog_change_bumps_the_version(settings: Settings, statement: str) -> None:
    product = one(settings, "SELECT id, organization_id FROM products WHERE external_id = 'acme-toolkit'")
    conn = sqlite3.connect(settings.db_path, isolation_level=None)
    try:
        if "b-new-link" in statement:  # a link needs an existing benefit
            conn.execute(
                "INSERT INTO benefits (id, organization_id, type, description, created_at) "
                "VALUES ('b-new-link', ?, 'custom', 'Linked', '2026-01-01T00:00:00Z')",
                (product["organization_id"],),
            )
        version = "SELECT catalog_version FROM organizations WHERE id = ?"
        others = "SELECT SUM(catalog_version) FROM organizations WHERE id != ?"
        before, other_before = (
            conn.execute(version, (product["organization_id"],)).fetchone()[0],
            conn.execute(others, (product["organization_id"],)).fetchone()[0],
        )
        changed = conn.execute(statement, {"product": product["id"], "org": product["organization_id"]}).rowcount
        assert changed >= 1
        assert conn.execute(version, (product["organization_id"],)).fetchone()[0] > before
        assert conn.execute(others, (product["organization_id"],)).fetchone()[0] == other_before
    finally:
        conn.close()
