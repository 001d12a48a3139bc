"""A shop whose subscription came from Stripe, for the actions-out tests (issue 19): an organization with two
monthly plans (Basic, Pro) and a third (Team) with no Stripe price, a customer with an active Basic subscription,
a Stripe connection to the loopback fake (``tests.stripe_fake``) and the links the inbound mapping records
(customer, subscription, prices), plus the same objects in the fake."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from portal.clock import iso
from portal.connectors import store
from portal.connectors.store import ConnectorSettings, Secrets
from portal.db import Database
from portal.settings import Settings
from tests.admin_support import api, create_org, mint_token
from tests.stripe_fake import FakeStripe

WEBHOOK_SECRET = "whsec_test_secret_for_the_fake"
SUPPORT_EMAIL = "help@acme.example"


@dataclass
class StripeShop:
    org_id: str
    customer_id: str
    subscription_id: str
    basic_id: str
    pro_id: str
    team_id: str
    connection_id: str
    admin: str


def _product(client: Any, token: str, name: str, amount: int) -> dict[str, Any]:
    body = {
        "name": name,
        "recurring_interval": "month",
        "prices": [{"amount_type": "fixed", "price_amount": amount, "price_currency": "usd"}],
    }
    return api(client, token, "POST", "/v1/products/", 201, json=body)  # type: ignore[no-any-return]


def _stripe_objects(fake: FakeStripe) -> None:
    now = int(datetime.now(UTC).timestamp())
    fake.add("customers", {"id": "cus_ada", "object": "customer", "email": "ada@example.com", "created": now})
    for price_id, product, amount in (("price_basic", "prod_basic", 900), ("price_pro", "prod_pro", 1900)):
        fake.add(
            "prices",
            {
                "id": price_id,
                "object": "price",
                "product": product,
                "unit_amount": amount,
                "currency": "usd",
                "recurring": {"interval": "month", "interval_count": 1},
                "created": now,
            },
        )
    fake.add(
        "subscriptions",
        {
            "id": "sub_ada",
            "object": "subscription",
            "customer": "cus_ada",
            "status": "active",
            "cancel_at_period_end": False,
            "created": now,
            "items": {
                "object": "list",
                "data": [
                    {"id": "si_ada", "object": "subscription_item", "price": fake.objects["prices"]["price_basic"]}
                ],
            },
        },
    )


async def _link(settings: Settings, org_id: str, processor: str, links: list[tuple[str, str, str]]) -> str:
    """Store a connection (no API check: the test double processors have no API) and its links."""
    db = await Database(settings.db_path, readers=1).open()
    try:
        now = datetime.now(UTC)
        async with db.write() as tx:
            connection_id = await store.save_connection(
                tx,
                instance_secret=settings.resolve_secrets().secret_key,
                organization_id=org_id,
                processor=processor,
                secrets=Secrets(api_key=FakeStripe.api_key, webhook_secret=WEBHOOK_SECRET),
                account_id=None,
                livemode=False,
                settings=ConnectorSettings(proration_behavior="always_invoice"),
                now=now,
            )
            for kind, processor_id, portal_id in links:
                if kind == "price":
                    await tx.execute(
                        "INSERT INTO connector_prices (connection_id, processor_price_id, product_id, created_at) "
                        "VALUES (?, ?, ?, ?)",
                        (connection_id, processor_id, portal_id, iso(now)),
                    )
                else:
                    await tx.execute(
                        "INSERT INTO connector_links (connection_id, kind, processor_id, portal_id) "
                        "VALUES (?, ?, ?, ?)",
                        (connection_id, kind, processor_id, portal_id),
                    )
        return connection_id
    finally:
        await db.close()


def link(settings: Settings, org_id: str, processor: str, links: list[tuple[str, str, str]]) -> str:
    return asyncio.run(_link(settings, org_id, processor, links))


def make_shop(
    client: Any, settings: Settings, fake: FakeStripe, processor: str = "stripe", slug: str = "acme"
) -> StripeShop:
    admin = mint_token(settings)
    org = create_org(client, admin, slug, email=SUPPORT_EMAIL)
    token = mint_token(settings, org["id"])
    basic = _product(client, token, "Basic", 900)
    pro = _product(client, token, "Pro", 1900)
    team = _product(client, token, "Team", 4900)
    customer = api(client, token, "POST", "/v1/customers/", 201, json={"email": "ada@example.com", "name": "Ada"})
    start = datetime.now(UTC) - timedelta(days=5)
    subscription = api(
        client,
        token,
        "POST",
        "/v1/subscriptions/",
        201,
        json={
            "customer_id": customer["id"],
            "product_id": basic["id"],
            "status": "active",
            "current_period_start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )
    if processor == "stripe":
        _stripe_objects(fake)
    connection_id = link(
        settings,
        org["id"],
        processor,
        [
            ("customer", "cus_ada", customer["id"]),
            ("subscription", "sub_ada", subscription["id"]),
            ("price", "price_basic", basic["id"]),
            ("price", "price_pro", pro["id"]),
        ],
    )
    return StripeShop(
        org_id=org["id"],
        customer_id=customer["id"],
        subscription_id=subscription["id"],
        basic_id=basic["id"],
        pro_id=pro["id"],
        team_id=team["id"],
        connection_id=connection_id,
        admin=token,
    )


class LedgerProcessor:
    """A test double of a processor whose API cannot receive customer actions (``capabilities`` empty), e.g. a
    marketplace that only reports sales."""

    name = "ledger"
    label = "Ledger Pay"
    webhook_events: tuple[str, ...] = ()
    capabilities: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self.calls: list[str] = []

    def check_credentials(self, secrets: Any, settings: Any) -> Any:
        raise AssertionError("not called")

    def verify_event(self, body: bytes, headers: Any, secrets: Any) -> Any:
        raise AssertionError("not called")

    def cancel_subscription(self, target: Any) -> None:
        self.calls.append("cancel")

    def uncancel_subscription(self, target: Any) -> None:
        self.calls.append("uncancel")

    def change_plan(self, target: Any, processor_price_id: str) -> None:
        self.calls.append("change_plan")

    def payment_method_url(self, target: Any, return_url: str) -> str:
        self.calls.append("payment_method_url")
        return "https://ledger.example/pm"

    def redirect_origins(self, settings: Any) -> tuple[str, ...]:
        return ("https://ledger.example",)
