"""Write-side domain services: organizations, customers, products, benefits, orders (receipts, grants,
refunds) and subscriptions (grants follow status), each inside one write transaction."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from portal.benefits.grants import sync_subscription_grants
from portal.benefits.license_keys import add_interval, display_key, generate_key, record_activation
from portal.benefits.service import (
    BenefitInput,
    create_benefit,
    parse_properties,
    register_file,
    update_benefit,
)
from portal.customers.service import (
    Address,
    CustomerInput,
    CustomerUpdate,
    create_customer,
    update_customer,
)
from portal.db import Database, Transaction, connect_sync
from portal.errors import Conflict, InvalidInput, NotFound
from portal.migrations import migrate
from portal.orders.service import (
    OrderInput,
    OrderItemInput,
    create_order,
    mark_order_paid,
    refund_order,
    void_order,
)
from portal.organizations.service import (
    OrganizationInput,
    OrganizationUpdate,
    create_organization,
    default_receipt_prefix,
    update_organization,
)
from portal.products.service import (
    PriceInput,
    ProductInput,
    create_product,
    set_product_benefits,
    update_product,
)
from portal.references import UnknownReference
from portal.subscriptions.service import (
    SubscriptionInput,
    create_subscription,
    end_subscription,
    update_subscription,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
KEY_RE = re.compile(r"^ACME-[0-9A-F]{8}-[0-9A-F]{8}-[0-9A-F]{8}-[0-9A-F]{8}$")


def run_with_db(tmp_path: Path, scenario: Callable[[Database], Awaitable[None]]) -> None:
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


class Shop:
    """A small organization: a customer, a one-time product (license key + note + download), and a
    monthly product (discord + feature flag)."""

    org: str
    customer: str
    product: str
    monthly: str
    yearly: str
    license_benefit: str
    note_benefit: str
    discord_benefit: str
    flag_benefit: str
    credit_benefit: str


async def make_shop(tx: Transaction, files_dir: Path, slug: str = "acme") -> Shop:
    shop = Shop()
    shop.org = await create_organization(tx, OrganizationInput(slug=slug, name="Acme Software"), now=NOW)
    shop.customer = await create_customer(
        tx,
        shop.org,
        CustomerInput(
            email="Alex@Example.com",
            name="Alex Rivera",
            billing_name="Rivera Design LLC",
            billing_address=Address(line1="1 Main St", city="Springfield", country="US"),
            tax_id="91-1144442",
            external_id="alex",
        ),
        now=NOW,
    )
    stored = await register_file(
        tx,
        shop.org,
        name="guide.txt",
        content=b"read me\n",
        mime_type="text/plain",
        files_dir=files_dir,
        now=NOW,
    )
    shop.license_benefit = await create_benefit(
        tx,
        shop.org,
        BenefitInput(
            type="license_keys",
            description="License key",
            properties={
                "prefix": "ACME",
                "expires": {"ttl": 1, "timeframe": "year"},
                "activations": {"limit": 2, "enable_customer_admin": True},
                "limit_usage": 100,
            },
        ),
        now=NOW,
    )
    shop.note_benefit = await create_benefit(
        tx,
        shop.org,
        BenefitInput(type="custom", description="Note", properties={"note": "See https://x.test"}),
        now=NOW,
    )
    download = await create_benefit(
        tx,
        shop.org,
        BenefitInput(type="downloadables", description="Guide", properties={"files": [stored.id]}),
        now=NOW,
    )
    shop.discord_benefit = await create_benefit(
        tx,
        shop.org,
        BenefitInput(
            type="discord",
            description="Discord",
            properties={"invite_url": "https://discord.gg/acme"},
        ),
        now=NOW,
    )
    shop.flag_benefit = await create_benefit(
        tx,
        shop.org,
        BenefitInput(type="feature_flag", description="Beta", properties={"metadata": {"a": 1}}),
        now=NOW,
    )
    shop.credit_benefit = await create_benefit(
        tx,
        shop.org,
        BenefitInput(
            type="meter_credit",
            description="Credits",
            properties={"units": 100, "meter_id": "renders"},
        ),
        now=NOW,
    )
    shop.product = await create_product(
        tx,
        shop.org,
        ProductInput(name="Toolkit", prices=[PriceInput(amount=4900, currency="usd")]),
        now=NOW,
    )
    await set_product_benefits(tx, shop.product, [shop.license_benefit, shop.note_benefit, download], now=NOW)
    shop.monthly = await create_product(
        tx,
        shop.org,
        ProductInput(
            name="Pro",
            recurring_interval="month",
            prices=[PriceInput(amount=1200, currency="usd")],
        ),
        now=NOW,
    )
    await set_product_benefits(tx, shop.monthly, [shop.discord_benefit, shop.flag_benefit], now=NOW)
    shop.yearly = await create_product(
        tx,
        shop.org,
        ProductInput(
            name="Pro yearly",
            recurring_interval="year",
            prices=[PriceInput(amount=12000, currency="usd")],
        ),
        now=NOW,
    )
    await set_product_benefits(tx, shop.yearly, [shop.discord_benefit, shop.credit_benefit], now=NOW)
    return shop


def purchase(shop: Shop, *, amount: int = 4900, discount: int = 0, tax: int = 0) -> OrderInput:
    return OrderInput(
        customer_id=shop.customer,
        product_id=shop.product,
        currency="usd",
        items=[OrderItemInput(label="Toolkit", unit_amount=amount)],
        discount_amount=discount,
        tax_amount=tax,
    )


# ---------------------------------------------------------------------------------- organizations


def test_organization_rules(tmp_path: Path) -> None:
    async def scenario(db: Database) -> None:
        async with db.write() as tx:
            org = await create_organization(tx, OrganizationInput(slug="lumen-studio", name="Lumen"), now=NOW)
            row = await tx.fetchone("SELECT * FROM organizations WHERE id = ?", (org,))
            assert row is not None
            assert row["receipt_prefix"] == "LUMENSTUDIO"
            assert row["next_receipt_number"] == 1
            for slug in ("Acme", "acme_co", "-acme", "v1", ""):
                with pytest.raises(InvalidInput) as info:
                    await create_organization(tx, OrganizationInput(slug=slug, name="X"), now=NOW)
                assert info.value.field == "slug"
            with pytest.raises(Conflict) as conflict:
                await create_organization(tx, OrganizationInput(slug="lumen-studio", name="Again"), now=NOW)
            assert conflict.value.field == "slug"
            with pytest.raises(InvalidInput) as info:
                await create_organization(tx, OrganizationInput(slug="x", name="X", default_currency="usdx"), now=NOW)
            assert info.value.field == "default_currency"
            await update_organization(tx, org, OrganizationUpdate(name="Lumen Studio", accent_color="#7c3aed"), now=NOW)
            row = await tx.fetchone("SELECT * FROM organizations WHERE id = ?", (org,))
            assert row is not None
            assert (row["name"], row["accent_color"], row["slug"]) == (
                "Lumen Studio",
                "#7c3aed",
                "lumen-studio",
            )
            with pytest.raises(NotFound):
                await update_organization(tx, "missing", OrganizationUpdate(name="x"), now=NOW)

    assert default_receipt_prefix("acme") == "ACME"
    run_with_db(tmp_path, scenario)


# ---------------------------------------------------------------------------------- customers


def test_customer_email_unique_per_org_case_insensitive(tmp_path: Path) -> None:
    async def scenario(db: Database) -> None:
        async with db.write() as tx:
            shop = await make_shop(tx, tmp_path / "files")
            other = await create_organization(tx, OrganizationInput(slug="other", name="Other"), now=NOW)
            with pytest.raises(Conflict) as info:
                await create_customer(tx, shop.org, CustomerInput(email="alex@EXAMPLE.com"), now=NOW)
            assert info.value.field == "email"
            with pytest.raises(Conflict) as info:
                await create_customer(
                    tx,
                    shop.org,
                    CustomerInput(email="someone@example.com", external_id="alex"),
                    now=NOW,
                )
            assert info.value.field == "external_id"
            # The same person may buy from another organization.
            await create_customer(tx, other, CustomerInput(email="alex@example.com"), now=NOW)
            with pytest.raises(InvalidInput) as invalid:
                await create_customer(tx, shop.org, CustomerInput(email="not-an-email"), now=NOW)
            assert invalid.value.field == "email"
            second = await create_customer(tx, shop.org, CustomerInput(email="sam@example.com"), now=NOW)
            with pytest.raises(Conflict):
                await update_customer(tx, second, CustomerUpdate(email="ALEX@example.com"), now=NOW)
            # A tax ID needs a billing country and must be valid for it (stored compact), as in Polar.
            with pytest.raises(InvalidInput) as no_country:
                await update_customer(tx, second, CustomerUpdate(name="Sam", tax_id="911144442"), now=NOW)
            assert no_country.value.field == "billing_address"
            us = Address(line1="1 Main St", city="Springfield", country="US")
            with pytest.raises(InvalidInput) as invalid_tax_id:
                await update_customer(tx, second, CustomerUpdate(billing_address=us, tax_id="X1"), now=NOW)
            assert invalid_tax_id.value.field == "tax_id"
            change = CustomerUpdate(name="Sam", billing_address=us, tax_id="91-1144442")
            await update_customer(tx, second, change, now=NOW)
            row = await tx.fetchone("SELECT * FROM customers WHERE id = ?", (second,))
            assert row is not None
            assert (row["name"], row["tax_id"], row["email"]) == ("Sam", "911144442", "sam@example.com")
            with pytest.raises(NotFound):
                await update_customer(tx, second, CustomerUpdate(name="x"), now=NOW, organization_id=other)

    run_with_db(tmp_path, scenario)


# ---------------------------------------------------------------------------------- products & benefits


def test_products_and_prices(tmp_path: Path) -> None:
    async def scenario(db: Database) -> None:
        async with db.write() as tx:
            shop = await make_shop(tx, tmp_path / "files")
            with pytest.raises(InvalidInput) as info:
                await create_product(tx, shop.org, ProductInput(name="Nothing", prices=[]), now=NOW)
            assert info.value.field == "prices"
            with pytest.raises(InvalidInput) as info:
                await create_product(
                    tx,
                    shop.org,
                    ProductInput(
                        name="Twice",
                        prices=[
                            PriceInput(amount=1, currency="usd"),
                            PriceInput(amount=2, currency="usd"),
                        ],
                    ),
                    now=NOW,
                )
            assert info.value.field == "prices[1].currency"
            await update_product(
                tx,
                shop.product,
                ProductInput(
                    name="Toolkit 2",
                    prices=[
                        PriceInput(amount=5900, currency="usd"),
                        PriceInput(amount=5500, currency="eur"),
                    ],
                ),
                now=NOW,
            )
            prices = await tx.fetchall(
                """
                SELECT price_amount, price_currency, is_archived FROM product_prices
                WHERE product_id = ? ORDER BY price_amount
                """,
                (shop.product,),
            )
            assert [tuple(p) for p in prices] == [(4900, "usd", 1), (5500, "eur", 0), (5900, "usd", 0)]
            # A subscription needs a recurring product.
            with pytest.raises(InvalidInput) as info:
                await create_subscription(
                    tx,
                    shop.org,
                    SubscriptionInput(
                        customer_id=shop.customer,
                        product_id=shop.product,
                        status="active",
                        current_period_start=NOW,
                    ),
                    now=NOW,
                )
            assert info.value.field == "product_id"

    run_with_db(tmp_path, scenario)


@pytest.mark.parametrize(
    ("benefit_type", "properties", "field"),
    [
        ("license_keys", {"activations": {"limit": 0}}, "properties.activations.limit"),
        ("license_keys", {"activations": {"limit": "3"}}, "properties.activations.limit"),
        ("license_keys", {"expires": {"ttl": 1, "timeframe": "week"}}, "properties.expires.timeframe"),
        ("license_keys", {"prefix": "bad prefix!"}, "properties.prefix"),
        ("custom", {"note": "x", "extra": 1}, "properties.extra"),
        ("discord", {}, "properties.invite_url"),
        ("discord", {"invite_url": "http://discord.gg/x"}, "properties.invite_url"),
        ("github_repository", {"repository_owner": "a"}, "properties.repository_name"),
        (
            "github_repository",
            {"repository_owner": "a", "repository_name": "b", "permission": "own"},
            "properties.permission",
        ),
        ("meter_credit", {"units": 0, "meter_id": "m"}, "properties.units"),
        ("downloadables", {"files": ["a"], "archived": {"b": True}}, "properties.archived.b"),
        ("feature_flag", {"metadata": {"a": [1]}}, "properties.metadata[...]"),
    ],
)
def test_benefit_properties_are_validated(benefit_type: str, properties: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_properties(benefit_type, properties)
    assert info.value.field == field


def test_benefits_and_files(tmp_path: Path) -> None:
    files_dir = tmp_path / "files"

    async def scenario(db: Database) -> None:
        async with db.write() as tx:
            shop = await make_shop(tx, files_dir)
            other = await create_organization(tx, OrganizationInput(slug="b", name="B"), now=NOW)
            stored = await register_file(
                tx,
                other,
                name="x.bin",
                content=b"\x00\x01",
                mime_type="application/octet-stream",
                files_dir=files_dir,
                now=NOW,
            )
            assert (files_dir / other / stored.id).read_bytes() == b"\x00\x01"
            row = await tx.fetchone("SELECT * FROM files WHERE id = ?", (stored.id,))
            assert row is not None
            assert row["size"] == 2
            assert row["checksum_sha256_hex"] == hashlib.sha256(b"\x00\x01").hexdigest()
            # Another organization's file cannot be attached (answered as an unknown one: 422 on the field).
            with pytest.raises(UnknownReference) as info:
                await create_benefit(
                    tx,
                    shop.org,
                    BenefitInput(type="downloadables", description="x", properties={"files": [stored.id]}),
                    now=NOW,
                )
            assert info.value.field == "properties.files[0]"
            with pytest.raises(InvalidInput) as invalid:
                await update_benefit(
                    tx,
                    shop.note_benefit,
                    BenefitInput(type="discord", description="x", properties={}),
                    now=NOW,
                )
            assert invalid.value.field == "type"
            for benefit_type, properties in [
                ("custom", {"note": "hi"}),
                ("license_keys", {}),
                ("downloadables", {}),
                ("discord", {"guild_id": "1"}),
                (
                    "github_repository",
                    {"repository_owner": "o", "repository_name": "r", "permission": "push"},
                ),
                ("meter_credit", {"units": 5, "meter_id": "m", "rollover": True}),
                ("feature_flag", {}),
            ]:
                await create_benefit(
                    tx,
                    shop.org,
                    BenefitInput(type=benefit_type, description="ok", properties=properties),  # type: ignore[arg-type]
                    now=NOW,
                )

    run_with_db(tmp_path, scenario)


# ---------------------------------------------------------------------------------- orders


def test_order_totals_are_validated(tmp_path: Path) -> None:
    async def scenario(db: Database) -> None:
        async with db.write() as tx:
            shop = await make_shop(tx, tmp_path / "files")
            with pytest.raises(InvalidInput) as info:
                await create_order(tx, shop.org, purchase(shop, discount=5000), now=NOW)
            assert info.value.field == "discount_amount"
            with pytest.raises(InvalidInput) as info:
                await create_order(
                    tx,
                    shop.org,
                    OrderInput(customer_id=shop.customer, currency="usd", items=[]),
                    now=NOW,
                )
            assert info.value.field == "items"
            order = await create_order(
                tx,
                shop.org,
                OrderInput(
                    customer_id=shop.customer,
                    product_id=shop.product,
                    currency="usd",
                    items=[
                        OrderItemInput(label="Toolkit", unit_amount=4900, quantity=2, tax_amount=400),
                        OrderItemInput(label="Icons", unit_amount=1900, tax_amount=100),
                    ],
                    discount_amount=700,
                ),
                now=NOW,
            )
            row = await tx.fetchone("SELECT * FROM orders WHERE id = ?", (order,))
            assert row is not None
            assert (
                row["status"],
                row["subtotal_amount"],
                row["discount_amount"],
                row["tax_amount"],
                row["total_amount"],
                row["receipt_number"],
            ) == ("pending", 11700, 700, 500, 11500, None)
            items = await tx.fetchall("SELECT amount FROM order_items WHERE order_id = ? ORDER BY position", (order,))
            assert [i[0] for i in items] == [9800, 1900]

    run_with_db(tmp_path, scenario)


def test_paying_allocates_receipts_snapshots_billing_and_grants(tmp_path: Path) -> None:
    async def scenario(db: Database) -> None:
        async with db.write() as tx:
            shop = await make_shop(tx, tmp_path / "files")
            first = await create_order(tx, shop.org, purchase(shop), now=NOW)
            second = await create_order(tx, shop.org, purchase(shop), now=NOW)
            assert await mark_order_paid(tx, first, now=NOW) == "ACME-0001"
            assert await mark_order_paid(tx, second, now=NOW) == "ACME-0002"
            with pytest.raises(Conflict):
                await mark_order_paid(tx, first, now=NOW)
            # The snapshot does not follow later changes to the customer.
            await update_customer(tx, shop.customer, CustomerUpdate(billing_name="New"), now=NOW)
            row = await tx.fetchone("SELECT * FROM orders WHERE id = ?", (first,))
            assert row is not None
            assert row["status"] == "paid"
            assert row["paid_at"] == "2026-11-25T12:00:00.000000Z"
            assert row["billing_name"] == "Rivera Design LLC"
            assert '"country":"US"' in row["billing_address"]
            assert row["tax_id"] == "911144442"
            grants = await tx.fetchall("SELECT * FROM benefit_grants WHERE order_id = ? ORDER BY created_at", (first,))
            assert len(grants) == 3
            assert all(g["granted_at"] and g["revoked_at"] is None for g in grants)
            assert all(g["customer_id"] == shop.customer for g in grants)
            keys = await tx.fetchall(
                """
                SELECT lk.* FROM license_keys lk JOIN benefit_grants g ON g.id = lk.grant_id
                WHERE g.order_id = ?
                """,
                (first,),
            )
            assert len(keys) == 1
            key = keys[0]
            assert KEY_RE.match(key["key"]), key["key"]
            assert key["display_key"] == "****-" + key["key"][-6:]
            assert (key["status"], key["limit_activations"], key["limit_usage"]) == (
                "granted",
                2,
                100,
            )
            assert key["expires_at"] == "2027-11-25T12:00:00.000000Z"
            all_keys = await tx.fetchall("SELECT key FROM license_keys")
            assert len({k[0] for k in all_keys}) == 2
            grant_props = await tx.fetchval("SELECT properties FROM benefit_grants WHERE id = ?", (key["grant_id"],))
            assert key["id"] in grant_props

    run_with_db(tmp_path, scenario)


def test_receipt_numbers_stay_gap_free_after_a_rollback(tmp_path: Path) -> None:
    async def scenario(db: Database) -> None:
        async with db.write() as tx:
            shop = await make_shop(tx, tmp_path / "files")
            orders = [await create_order(tx, shop.org, purchase(shop), now=NOW) for _ in range(3)]
            other = await create_organization(tx, OrganizationInput(slug="zeta", name="Z"), now=NOW)
            zeta_customer = await create_customer(tx, other, CustomerInput(email="z@example.com"), now=NOW)
            zeta_order = await create_order(
                tx,
                other,
                OrderInput(
                    customer_id=zeta_customer,
                    currency="eur",
                    items=[OrderItemInput(label="Thing", unit_amount=100)],
                ),
                now=NOW,
            )
        async with db.write() as tx:
            assert await mark_order_paid(tx, orders[0], now=NOW) == "ACME-0001"
        with pytest.raises(RuntimeError):
            async with db.write() as tx:
                assert await mark_order_paid(tx, orders[1], now=NOW) == "ACME-0002"
                raise RuntimeError("payment provider said no")
        async with db.write() as tx:
            assert await mark_order_paid(tx, orders[2], now=NOW) == "ACME-0002"
            assert await mark_order_paid(tx, orders[1], now=NOW) == "ACME-0003"
            assert await mark_order_paid(tx, zeta_order, now=NOW) == "ZETA-0001"
        grants = await db.fetchval("SELECT COUNT(*) FROM benefit_grants WHERE order_id = ?", (orders[1],))
        assert grants == 3

    run_with_db(tmp_path, scenario)


def test_refunds(tmp_path: Path) -> None:
    async def scenario(db: Database) -> None:
        async with db.write() as tx:
            shop = await make_shop(tx, tmp_path / "files")
            order = await create_order(tx, shop.org, purchase(shop, tax=490), now=NOW)
            with pytest.raises(Conflict):
                await refund_order(tx, order, 100, now=NOW)  # not paid yet
            await mark_order_paid(tx, order, now=NOW)
            later = NOW + timedelta(days=2)
            await refund_order(tx, order, 1000, now=later, reason="goodwill")
            row = await tx.fetchone("SELECT * FROM orders WHERE id = ?", (order,))
            assert row is not None
            assert (row["status"], row["refunded_amount"]) == ("partially_refunded", 1000)
            assert row["refunded_tax_amount"] == 1000 * 490 // 5390
            live = await tx.fetchval(
                "SELECT COUNT(*) FROM benefit_grants WHERE order_id = ? AND revoked_at IS NULL",
                (order,),
            )
            assert live == 3  # a partial refund keeps the benefits
            with pytest.raises(InvalidInput) as info:
                await refund_order(tx, order, 4391, now=later)
            assert info.value.field == "amount"
            with pytest.raises(InvalidInput) as info:
                await refund_order(tx, order, 0, now=later)
            assert info.value.field == "amount"
            await refund_order(tx, order, 4390, now=later)
            row = await tx.fetchone("SELECT * FROM orders WHERE id = ?", (order,))
            assert row is not None
            assert (row["status"], row["refunded_amount"], row["refunded_tax_amount"]) == (
                "refunded",
                5390,
                490,
            )
            grants = await tx.fetchall("SELECT revoked_at FROM benefit_grants WHERE order_id = ?", (order,))
            assert [g[0] for g in grants] == ["2026-11-27T12:00:00.000000Z"] * 3
            status = await tx.fetchval(
                """
                SELECT lk.status FROM license_keys lk JOIN benefit_grants g ON g.id = lk.grant_id
                WHERE g.order_id = ?
                """,
                (order,),
            )
            assert status == "revoked"
            refunds = await tx.fetchall(
                "SELECT amount, reason FROM refunds WHERE order_id = ? ORDER BY amount", (order,)
            )
            assert [tuple(r) for r in refunds] == [(1000, "goodwill"), (4390, None)]
            with pytest.raises(Conflict):
                await refund_order(tx, order, 1, now=later)
            pending = await create_order(tx, shop.org, purchase(shop), now=NOW)
            await void_order(tx, pending, now=NOW)
            assert await tx.fetchval("SELECT status FROM orders WHERE id = ?", (pending,)) == "void"

    run_with_db(tmp_path, scenario)


def test_activations_respect_the_limit(tmp_path: Path) -> None:
    async def scenario(db: Database) -> None:
        async with db.write() as tx:
            shop = await make_shop(tx, tmp_path / "files")
            order = await create_order(tx, shop.org, purchase(shop), now=NOW)
            await mark_order_paid(tx, order, now=NOW)
            key_id = await tx.fetchval("SELECT id FROM license_keys")
            await record_activation(tx, key_id, label="Laptop", meta={}, now=NOW)
            await record_activation(tx, key_id, label="Desktop", meta={"os": "linux"}, now=NOW)
            with pytest.raises(Conflict):
                await record_activation(tx, key_id, label="Third", meta={}, now=NOW)
            await refund_order(tx, order, 4900, now=NOW)
            with pytest.raises(Conflict):
                await record_activation(tx, key_id, label="After refund", meta={}, now=NOW)

    run_with_db(tmp_path, scenario)


# ---------------------------------------------------------------------------------- subscriptions


def test_subscription_grants_follow_status_and_product(tmp_path: Path) -> None:
    async def scenario(db: Database) -> None:
        async with db.write() as tx:
            shop = await make_shop(tx, tmp_path / "files")
            data = SubscriptionInput(
                customer_id=shop.customer,
                product_id=shop.monthly,
                status="active",
                current_period_start=NOW - timedelta(days=10),
            )
            sub = await create_subscription(tx, shop.org, data, now=NOW)
            row = await tx.fetchone("SELECT * FROM subscriptions WHERE id = ?", (sub,))
            assert row is not None
            assert (row["amount"], row["currency"], row["recurring_interval"]) == (
                1200,
                "usd",
                "month",
            )
            assert row["current_period_end"] == "2026-12-15T12:00:00.000000Z"

            async def live_benefits() -> set[str]:
                rows = await tx.fetchall(
                    """
                    SELECT benefit_id FROM benefit_grants
                    WHERE subscription_id = ? AND revoked_at IS NULL
                    """,
                    (sub,),
                )
                return {r[0] for r in rows}

            assert await live_benefits() == {shop.discord_benefit, shop.flag_benefit}
            # Creating again is refused; syncing again does not duplicate.
            await sync_subscription_grants(tx, sub, now=NOW)
            assert await tx.fetchval("SELECT COUNT(*) FROM benefit_grants WHERE subscription_id = ?", (sub,)) == 2
            # A plan change: the yearly product keeps discord, drops the flag, adds credits.
            await tx.execute("UPDATE subscriptions SET product_id = ? WHERE id = ?", (shop.yearly, sub))
            await sync_subscription_grants(tx, sub, now=NOW)
            assert await live_benefits() == {shop.discord_benefit, shop.credit_benefit}
            # Cancel at period end keeps benefits until the end.
            await update_subscription(
                tx,
                sub,
                SubscriptionInput(
                    customer_id=shop.customer,
                    product_id=shop.yearly,
                    status="active",
                    current_period_start=NOW,
                    cancel_at_period_end=True,
                    canceled_at=NOW,
                ),
                now=NOW,
            )
            row = await tx.fetchone("SELECT * FROM subscriptions WHERE id = ?", (sub,))
            assert row is not None
            assert row["ends_at"] == row["current_period_end"] == "2027-11-25T12:00:00.000000Z"
            assert await live_benefits() == {shop.discord_benefit, shop.credit_benefit}
            await end_subscription(tx, sub, now=NOW + timedelta(days=1))
            assert await live_benefits() == set()
            row = await tx.fetchone("SELECT * FROM subscriptions WHERE id = ?", (sub,))
            assert row is not None
            assert row["status"] == "canceled"
            assert row["ended_at"] == "2026-11-26T12:00:00.000000Z"
            with pytest.raises(Conflict):
                await end_subscription(tx, sub, now=NOW)

            trial = await create_subscription(
                tx,
                shop.org,
                SubscriptionInput(
                    customer_id=shop.customer,
                    product_id=shop.monthly,
                    status="trialing",
                    current_period_start=NOW,
                    trial_start=NOW,
                    trial_end=NOW + timedelta(days=14),
                ),
                now=NOW,
            )
            assert await tx.fetchval("SELECT COUNT(*) FROM benefit_grants WHERE subscription_id = ?", (trial,)) == 2
            past_due = await create_subscription(
                tx,
                shop.org,
                SubscriptionInput(
                    customer_id=shop.customer,
                    product_id=shop.monthly,
                    status="past_due",
                    current_period_start=NOW,
                ),
                now=NOW,
            )
            assert await tx.fetchval("SELECT COUNT(*) FROM benefit_grants WHERE subscription_id = ?", (past_due,)) == 0
            with pytest.raises(InvalidInput) as info:
                await create_subscription(
                    tx,
                    shop.org,
                    SubscriptionInput(
                        customer_id=shop.customer,
                        product_id=shop.monthly,
                        status="trialing",
                        current_period_start=NOW,
                    ),
                    now=NOW,
                )
            assert info.value.field == "trial_end"

    run_with_db(tmp_path, scenario)


def test_license_key_helpers() -> None:
    key = generate_key("acme")
    assert KEY_RE.match(key)
    assert re.match(r"^[0-9A-F]{8}(-[0-9A-F]{8}){3}$", generate_key(None))
    assert display_key("ABCDEFGHIJ") == "****-EFGHIJ"
    jan31 = datetime(2026, 1, 31, tzinfo=UTC)
    assert add_interval(jan31, "month") == datetime(2026, 2, 28, tzinfo=UTC)
    assert add_interval(jan31, "month", -2) == datetime(2025, 11, 30, tzinfo=UTC)
    assert add_interval(jan31, "year", 1) == datetime(2027, 1, 31, tzinfo=UTC)
    assert add_interval(jan31, "week", 1) == datetime(2026, 2, 7, tzinfo=UTC)
