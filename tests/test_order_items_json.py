"""``orders.items_json`` (migration 9) holds an order's items as the JSON array the customer-portal API embeds
(Polar's ``OrderItem``), kept by triggers on ``order_items``. Checked against the item rows themselves: after the
demo seed (written through the order service), after every kind of change to an item, after the migration's
backfill of a database that had orders before it, and in the API's answer."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import httpx
import pytest

from portal.migrations import MIGRATIONS
from portal.settings import Settings
from tests.admin_support import bearer
from tests.api_server import api_token, served_portal

pytestmark = pytest.mark.seeded  # data_dir: a copy of the demo seed (tests/conftest.py)


def _expected(conn: sqlite3.Connection) -> dict[str, list[dict[str, Any]]]:
    """Every order's items as Polar's ``OrderItem`` objects, in ``position, created_at`` order, from the rows."""
    expected: dict[str, list[dict[str, Any]]] = {order_id: [] for (order_id,) in conn.execute("SELECT id FROM orders")}
    for row in conn.execute(
        "SELECT order_id, created_at, modified_at, id, label, amount, tax_amount, proration, product_price_id "
        "FROM order_items ORDER BY order_id, position, created_at"
    ):
        order_id, created_at, modified_at, item_id, label, amount, tax_amount, proration, price_id = row
        expected[order_id].append(
            {
                "created_at": created_at,
                "modified_at": modified_at,
                "id": item_id,
                "label": label,
                "amount": amount,
                "tax_amount": tax_amount,
                "proration": bool(proration),
                "product_price_id": price_id,
            }
        )
    return expected


def _stored(conn: sqlite3.Connection) -> dict[str, list[dict[str, Any]]]:
    return {
        order_id: json.loads(text) if text is not None else []
        for order_id, text in conn.execute("SELECT id, items_json FROM orders")
    }


def _connect(settings: Settings) -> sqlite3.Connection:
    return sqlite3.connect(settings.db_path, isolation_level=None)


def test_seeded_orders_carry_their_items(settings: Settings) -> None:
    conn = _connect(settings)
    try:
        expected = _expected(conn)
        assert sum(len(items) for items in expected.values()) >= 10
        assert _stored(conn) == expected
    finally:
        conn.close()


def test_every_change_to_an_item_rewrites_its_orders_json(settings: Settings) -> None:
    conn = _connect(settings)
    try:
        first, second = (row[0] for row in conn.execute("SELECT id FROM orders ORDER BY created_at, id LIMIT 2"))
        steps = [
            # A new item at position 0 goes first, with a label that JSON must escape.
            (
                "INSERT INTO order_items (id, order_id, label, unit_amount, amount, tax_amount, proration, position, "
                "created_at) VALUES ('item-new', ?, 'Setup \"fee\" \\ 10%', 500, 500, 100, 1, -1, "
                "'2026-01-01T00:00:00.000000Z')",
                (first,),
            ),
            ("UPDATE order_items SET label = 'Renamed', amount = amount + 1 WHERE id = 'item-new'", ()),
            ("UPDATE order_items SET order_id = ? WHERE id = 'item-new'", (second,)),  # moves to another order
            ("DELETE FROM order_items WHERE order_id = ?", (first,)),  # the first order has no items left
        ]
        for sql, params in steps:
            before = _stored(conn)
            assert conn.execute(sql, params).rowcount >= 1
            expected = _expected(conn)
            assert _stored(conn) == expected, sql
            changed = {order_id for order_id in expected if before[order_id] != expected[order_id]}
            assert changed and changed <= {first, second}, sql
        assert _stored(conn)[first] == []
        assert _stored(conn)[second][0]["label"] == "Renamed"
    finally:
        conn.close()


def test_the_migration_fills_items_json_for_existing_orders(settings: Settings) -> None:
    conn = _connect(settings)
    try:
        expected = _expected(conn)
        # Back to version 8: no column, no triggers (the orders and items stay).
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'order_items_json_%'"
        ).fetchall():
            conn.execute(f'DROP TRIGGER "{name}"')
        conn.execute("ALTER TABLE orders DROP COLUMN items_json")
        # Migration 9's own script (later migrations are already applied, so migrate() would not re-run it).
        (items_json,) = [m for m in MIGRATIONS if m.version == 9]
        conn.executescript(f"BEGIN IMMEDIATE;\n{items_json.sql}\n;COMMIT;")
        assert _stored(conn) == expected
        assert conn.execute("SELECT COUNT(*) FROM orders WHERE items_json IS NOT NULL").fetchone()[0] == sum(
            1 for items in expected.values() if items
        )
    finally:
        conn.close()


def test_the_api_lists_each_orders_items(settings: Settings) -> None:
    conn = _connect(settings)
    try:
        expected = _expected(conn)
    finally:
        conn.close()
    with served_portal(settings) as (base_url, _):
        token = api_token(settings, "acme", "alex@example.com")
        response = httpx.get(f"{base_url}/v1/customer-portal/orders/", params={"limit": 100}, headers=bearer(token))
    assert response.status_code == 200, response.text
    orders = response.json()["items"]
    assert orders and any(order["items"] for order in orders)
    for order in orders:
        assert all(item.pop("start_timestamp") is None and item.pop("end_timestamp") is None for item in order["items"])
        assert order["items"] == expected[order["id"]]
