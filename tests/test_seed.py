"""The seed document: the demo loads (twice, identically), every error is reported with its path, and a
refused document writes nothing."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from portal.db import Database, connect_sync
from portal.migrations import migrate
from portal.resources import demo_seed_path
from portal.seeding.loader import SeedError, SeedResult, load_seed, load_seed_file, resolve_time

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DEMO = demo_seed_path()

EXPECTED_DEMO_COUNTS = {
    "organizations": 2,
    "customers": 10,
    "products": 9,
    "product_prices": 10,
    "benefits": 17,
    "product_benefits": 30,
    "files": 5,
    "subscriptions": 10,
    "orders": 39,
    "order_items": 39,
    "refunds": 5,
    "benefit_grants": 55,
    "license_keys": 11,
    "license_key_activations": 9,
}


def run_with_db(tmp_path: Path, scenario: Callable[[Database], Awaitable[None]]) -> None:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "portal.db"
    conn = connect_sync(path)
    migrate(conn)
    conn.close()

    async def main() -> None:
        db = await Database(path).open()
        try:
            await scenario(db)
        finally:
            await db.close()

    asyncio.run(main())


async def table_counts(db: Database) -> dict[str, int]:
    names = [
        row[0]
        for row in await db.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'schema_migrations'"
        )
    ]
    return {name: await db.fetchval(f'SELECT COUNT(*) FROM "{name}"') for name in names}


def demo_document() -> dict[str, Any]:
    return json.loads(DEMO.read_text())


def files_on_disk(files_dir: Path) -> set[Path]:
    return {p for p in files_dir.rglob("*") if p.is_file()} if files_dir.exists() else set()


async def load_demo(db: Database, files_dir: Path) -> SeedResult:
    return await load_seed_file(db, DEMO, files_dir=files_dir, now=NOW)


def test_demo_loads_with_expected_counts(tmp_path: Path) -> None:
    files_dir = tmp_path / "files"

    async def scenario(db: Database) -> None:
        result = await load_demo(db, files_dir)
        assert result.organization_slugs == ["acme", "lumen"]
        assert result.orders == 39 and result.license_keys == 11
        counts = await table_counts(db)
        for table, expected in EXPECTED_DEMO_COUNTS.items():
            assert counts[table] == expected, table

        currencies = await db.fetchall("SELECT slug, default_currency, default_locale FROM organizations ORDER BY slug")
        assert [tuple(row) for row in currencies] == [("acme", "usd", "en"), ("lumen", "eur", "de")]
        types = {row[0] for row in await db.fetchall("SELECT DISTINCT type FROM benefits")}
        assert types == {
            "custom",
            "license_keys",
            "downloadables",
            "discord",
            "github_repository",
            "meter_credit",
            "feature_flag",
        }
        alex_orders = await db.fetchval(
            """
            SELECT COUNT(*) FROM orders o
            JOIN customers c ON c.id = o.customer_id
            JOIN organizations g ON g.id = o.organization_id
            WHERE c.email = 'alex@example.com' AND g.slug = 'acme'
            """
        )
        assert alex_orders >= 12
        in_both = await db.fetchval(
            """
            SELECT COUNT(DISTINCT organization_id) FROM customers WHERE email = 'sam@example.com'
            """
        )
        assert in_both == 2
        statuses = {row[0] for row in await db.fetchall("SELECT status FROM orders")}
        assert {"paid", "refunded", "partially_refunded"} <= statuses
        subs = await db.fetchall("SELECT status, cancel_at_period_end, current_period_end FROM subscriptions")
        assert {"active", "trialing", "canceled"} <= {row["status"] for row in subs}
        assert any(row["cancel_at_period_end"] and row["status"] == "active" for row in subs)
        live = [row for row in subs if row["status"] in ("active", "trialing")]
        assert all(row["current_period_end"] > "2026-11-25" for row in live)
        recurring = await db.fetchall(
            """
            SELECT organization_id, COUNT(*) FROM products WHERE is_recurring = 1
            GROUP BY organization_id
            """
        )
        assert len(recurring) == 2 and all(row[1] >= 2 for row in recurring)
        assert await db.fetchval("SELECT COUNT(*) FROM license_key_activations") > 0
        # Files were copied under files_dir/<org>/<file id> with their recorded size and checksum.
        for row in await db.fetchall("SELECT * FROM files"):
            content = (files_dir / row["path"]).read_bytes()
            assert len(content) == row["size"] > 0
            assert hashlib.sha256(content).hexdigest() == row["checksum_sha256_hex"]
            assert row["path"].startswith(row["organization_id"] + "/")

    run_with_db(tmp_path, scenario)


def test_loading_twice_gives_identical_counts(tmp_path: Path) -> None:
    files_dir = tmp_path / "files"

    async def scenario(db: Database) -> None:
        await load_demo(db, files_dir)
        first = await table_counts(db)
        keys = [tuple(r) for r in await db.fetchall("SELECT id, key FROM license_keys")]
        receipts = await db.fetchall("SELECT id, receipt_number FROM orders ORDER BY id")
        on_disk = files_on_disk(files_dir)
        await load_demo(db, files_dir)
        assert await table_counts(db) == first
        assert [tuple(r) for r in await db.fetchall("SELECT id, key FROM license_keys")] == keys
        assert [tuple(r) for r in await db.fetchall("SELECT id, receipt_number FROM orders ORDER BY id")] == [
            tuple(r) for r in receipts
        ]
        assert files_on_disk(files_dir) == on_disk
        # A week later (``serve --demo`` restarted): relative times move, row counts do not.
        await load_seed_file(db, DEMO, files_dir=files_dir, now=NOW + timedelta(days=7))
        assert await table_counts(db) == first
        assert files_on_disk(files_dir) == on_disk

    run_with_db(tmp_path, scenario)


def test_receipt_numbers_are_unique_and_gap_free_per_org(tmp_path: Path) -> None:
    async def scenario(db: Database) -> None:
        await load_demo(db, tmp_path / "files")
        for org in await db.fetchall("SELECT * FROM organizations"):
            rows = await db.fetchall(
                """
                SELECT receipt_number FROM orders
                WHERE organization_id = ? AND receipt_number IS NOT NULL
                ORDER BY paid_at, receipt_number
                """,
                (org["id"],),
            )
            numbers = [row[0] for row in rows]
            prefix = org["receipt_prefix"]
            assert numbers == [f"{prefix}-{n:04d}" for n in range(1, len(numbers) + 1)]
            assert org["next_receipt_number"] == len(numbers) + 1
            unpaid = await db.fetchval(
                "SELECT COUNT(*) FROM orders WHERE organization_id = ? AND paid_at IS NULL",
                (org["id"],),
            )
            assert unpaid == 0

    run_with_db(tmp_path, scenario)


def test_refunds_in_the_demo_revoke_or_keep_grants(tmp_path: Path) -> None:
    async def scenario(db: Database) -> None:
        await load_demo(db, tmp_path / "files")
        rows = await db.fetchall(
            """
            SELECT o.status, g.revoked_at, lk.status AS key_status
            FROM orders o
            JOIN benefit_grants g ON g.order_id = o.id
            LEFT JOIN license_keys lk ON lk.grant_id = g.id
            """
        )
        for row in rows:
            if row["status"] == "refunded":
                assert row["revoked_at"] is not None
                assert row["key_status"] in (None, "revoked")
            else:
                assert row["revoked_at"] is None
                assert row["key_status"] in (None, "granted")
        assert {row["status"] for row in rows} == {"paid", "refunded", "partially_refunded"}

    run_with_db(tmp_path, scenario)


def _refused(tmp_path: Path, document: dict[str, Any], *, preload: bool = True) -> list[str]:
    """Load ``document`` over a DB holding the lumen org; assert nothing changed; return the errors."""
    files_dir = tmp_path / "files"
    errors: list[str] = []

    async def scenario(db: Database) -> None:
        if preload:
            base = demo_document()
            base["organizations"] = base["organizations"][1:]
            await load_seed(db, base, seed_dir=DEMO.parent, files_dir=files_dir, now=NOW)
        before = await table_counts(db)
        receipts_before = await db.fetchall("SELECT slug, next_receipt_number FROM organizations")
        disk_before = files_on_disk(files_dir)
        with pytest.raises(SeedError) as info:
            await load_seed(
                db,
                json.dumps(document).encode(),
                seed_dir=DEMO.parent,
                files_dir=files_dir,
                now=NOW,
            )
        errors.extend(info.value.errors)
        assert await table_counts(db) == before
        after = await db.fetchall("SELECT slug, next_receipt_number FROM organizations")
        assert [tuple(r) for r in after] == [tuple(r) for r in receipts_before]
        assert files_on_disk(files_dir) == disk_before

    run_with_db(tmp_path, scenario)
    return errors


def test_type_error_anywhere_writes_nothing_and_names_the_path(tmp_path: Path) -> None:
    document = demo_document()
    document["organizations"][0]["orders"][3]["amount"] = "x"
    errors = _refused(tmp_path, document)
    assert len(errors) == 1
    assert errors[0].startswith("organizations[0].orders[3].amount: expected int")


def test_unknown_reference_writes_nothing_and_names_the_path(tmp_path: Path) -> None:
    document = demo_document()
    document["organizations"][1]["orders"][2]["product"] = "no-such-product"
    errors = _refused(tmp_path, document)
    assert errors == ["organizations[1].orders[2].product: unknown product 'no-such-product'"]


def test_every_error_is_collected(tmp_path: Path) -> None:
    typed = demo_document()
    typed["organizations"][0]["orders"][3]["amount"] = "x"
    typed["organizations"][0]["customers"][1]["email"] = 5
    typed["organizations"][1]["products"][0]["colour"] = "red"
    del typed["organizations"][1]["slug"]
    errors = _refused(tmp_path / "typed", typed, preload=False)
    assert sorted(errors) == sorted(
        [
            "organizations[0].orders[3].amount: expected int | null, got str",
            "organizations[0].customers[1].email: expected str, got int",
            "organizations[1].products[0].colour: unknown field",
            "organizations[1].slug: required field missing",
        ]
    )

    semantic = demo_document()
    acme, lumen = semantic["organizations"]
    acme["customers"][1]["email"] = "ALEX@example.com"
    acme["orders"][4]["created_at"] = "yesterday"
    acme["products"][0]["benefits"].append("missing-benefit")
    acme["products"][1]["prices"][0]["currency"] = "USD"
    lumen["default_currency"] = "xyz"
    lumen["benefits"][2]["properties"]["activations"]["limit"] = "3"
    lumen["benefits"][1]["files"][0]["path"] = "../../etc/passwd"
    lumen["customers"].append(dict(lumen["customers"][0], email="other@example.com"))
    errors = _refused(tmp_path / "semantic", semantic)
    expected_prefixes = [
        "organizations[0].customers[1].email: duplicate email",
        "organizations[0].orders[4].created_at: expected an ISO-8601 time",
        "organizations[0].products[0].benefits[3]: unknown benefit 'missing-benefit'",
        "organizations[0].products[1].prices[0].currency: expected a lower-case ISO-4217 code",
        "organizations[1].default_currency: unknown currency 'xyz'",
        "organizations[1].benefits[2].properties.activations.limit: expected int, got str",
        "organizations[1].benefits[1].files[0].path: must stay inside the seed directory",
        "organizations[1].customers[4].external_id: duplicate external_id 'lumen-sam'",
    ]
    for prefix in expected_prefixes:
        assert any(error.startswith(prefix) for error in errors), (prefix, errors)


def test_failure_while_writing_rolls_back_everything(tmp_path: Path) -> None:
    """A conflict only the database knows (an existing customer with the same email but another
    external_id) surfaces during the write pass: the whole document is rolled back, copied files deleted."""
    document = demo_document()
    lumen = copy.deepcopy(document["organizations"][1])
    lumen["customers"] = [dict(c, external_id="old-" + c["external_id"]) for c in lumen["customers"]]
    for key in ("orders", "subscriptions"):
        lumen[key] = []
    files_dir = tmp_path / "files"

    async def scenario(db: Database) -> None:
        await load_seed(db, {"organizations": [lumen]}, seed_dir=DEMO.parent, files_dir=files_dir, now=NOW)
        before = await table_counts(db)
        disk_before = files_on_disk(files_dir)
        with pytest.raises(SeedError) as info:
            await load_seed(db, document, seed_dir=DEMO.parent, files_dir=files_dir, now=NOW)
        assert info.value.errors == ["organizations[1].customers[0].email: a customer with this email exists"]
        assert await table_counts(db) == before
        assert files_on_disk(files_dir) == disk_before

    run_with_db(tmp_path, scenario)


def test_invalid_json_and_missing_files(tmp_path: Path) -> None:
    async def scenario(db: Database) -> None:
        with pytest.raises(SeedError) as info:
            await load_seed(db, b"{not json", seed_dir=None, files_dir=tmp_path, now=NOW)
        assert info.value.errors[0].startswith("document: invalid JSON")
        with pytest.raises(SeedError) as info:
            await load_seed(db, demo_document(), seed_dir=None, files_dir=tmp_path, now=NOW)
        assert "organizations[0].benefits[2].files[0].path: files by path need a seed directory" in (
            "; ".join(info.value.errors)
        )
        assert (await table_counts(db))["organizations"] == 0

    run_with_db(tmp_path, scenario)


def test_inline_file_content(tmp_path: Path) -> None:
    document = {
        "organizations": [
            {
                "slug": "tiny",
                "name": "Tiny Co",
                "benefits": [
                    {
                        "external_id": "dl",
                        "type": "downloadables",
                        "description": "Readme",
                        "files": [
                            {
                                "name": "README.txt",
                                "mime_type": "text/plain",
                                "content_base64": "aGVsbG8K",
                            }
                        ],
                    }
                ],
            }
        ]
    }

    async def scenario(db: Database) -> None:
        result = await load_seed(db, document, seed_dir=None, files_dir=tmp_path / "f", now=NOW)
        assert result.files == 1
        row = await db.fetchone("SELECT * FROM files")
        assert row is not None
        assert (tmp_path / "f" / row["path"]).read_bytes() == b"hello\n"
        org = await db.fetchone("SELECT receipt_prefix FROM organizations")
        assert org is not None and org[0] == "TINY"

    run_with_db(tmp_path, scenario)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("now-30d", datetime(2026, 10, 26, 12, 0, tzinfo=UTC)),
        ("now-10d+1M", datetime(2026, 12, 15, 12, 0, tzinfo=UTC)),
        ("now-1y-2M", datetime(2025, 9, 25, 12, 0, tzinfo=UTC)),
        ("now+2h-30m", datetime(2026, 11, 25, 13, 30, tzinfo=UTC)),
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
        ("2026-03-01T10:00:00Z", datetime(2026, 3, 1, 10, tzinfo=UTC)),
    ],
)
def test_resolve_time(text: str, expected: datetime) -> None:
    assert resolve_time(text, NOW) == expected


def test_resolve_time_refuses_garbage() -> None:
    with pytest.raises(ValueError):
        resolve_time("next tuesday", NOW)
