"""The same contract through the async client (``PolarAsync``), run with ``asyncio.run`` (no pytest-asyncio):
orders and receipts, subscriptions (cancel, uncancel, plan change), grants, license keys, downloadables, and
the email change flow (off by default; on, a code mailed to the new address verifies it)."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Iterator

import httpx
import pytest
from polar.base import PolarClientError
from polar.v2026_10 import outputs
from polar.v2026_10.client import PolarAsync
from polar.v2026_10.errors import CustomerPortalCustomersVerifyEmailUpdate401Error

from portal.settings import Settings
from tests.api_server import MemoryMailer, api_token, execute, served_portal
from tests.browser_helpers import one, org_id, query

pytestmark = pytest.mark.seeded  # data_dir: a copy of the demo seed (tests/conftest.py)


@pytest.fixture
def mailer() -> MemoryMailer:
    return MemoryMailer()


@pytest.fixture
def portal(settings: Settings, mailer: MemoryMailer) -> Iterator[tuple[str, Settings]]:
    with served_portal(settings, mailer=mailer) as served:
        yield served


def test_async_client_through_every_area(portal: tuple[str, Settings]) -> None:
    base_url, settings = portal
    token = api_token(settings, "acme", "alex@example.com")
    subscription_id = one(settings, "SELECT id FROM subscriptions WHERE external_id = 'acme-sub-alex-pro'")["id"]
    team = one(settings, "SELECT id FROM products WHERE external_id = 'acme-team-monthly'")["id"]
    key = one(
        settings,
        "SELECT k.key FROM license_keys k JOIN benefits b ON b.id = k.benefit_id "
        "JOIN customers c ON c.id = k.customer_id "
        "WHERE b.external_id = 'acme-pro-license' AND c.email = 'alex@example.com'",
    )["key"]
    org = org_id(settings, "acme")

    async def main() -> dict[str, object]:
        async with PolarAsync(access_token=token, base_url=base_url) as polar:
            cp = polar.customer_portal
            orders = [order async for order in cp.orders.iter_list(limit=4)]
            receipt = await cp.orders.receipt(orders[-1].id)
            canceled = await cp.subscriptions.update(subscription_id, cancel_at_period_end=True)
            resumed = await cp.subscriptions.update(subscription_id, cancel_at_period_end=False)
            changed = await cp.subscriptions.update(subscription_id, product_id=team)
            got = await cp.subscriptions.get(subscription_id)
            grants = await cp.benefit_grants.list(limit=100)
            activation = await cp.license_keys.activate(key=key, organization_id=org, label="async")
            validated = await cp.license_keys.validate(key=key, organization_id=org, activation_id=activation.id)
            await cp.license_keys.deactivate(key=key, organization_id=org, activation_id=activation.id)
            downloadables = await cp.downloadables.list(limit=100)
            return {
                "orders": orders,
                "receipt": receipt,
                "canceled": canceled,
                "resumed": resumed,
                "changed": changed,
                "got": got,
                "grants": grants,
                "validated": validated,
                "downloadables": downloadables,
            }

    result = asyncio.run(main())
    orders = result["orders"]
    assert isinstance(orders, list) and len(orders) == 13
    assert all(isinstance(o, outputs.CustomerOrder) for o in orders)
    receipt = result["receipt"]
    assert isinstance(receipt, outputs.CustomerOrderReceipt)
    assert httpx.get(receipt.url).status_code == 200
    assert result["canceled"].cancel_at_period_end is True  # type: ignore[attr-defined]
    assert result["resumed"].cancel_at_period_end is False  # type: ignore[attr-defined]
    assert result["changed"].product.name == "Acme Team" == result["got"].product.name  # type: ignore[attr-defined]
    grants = result["grants"]
    assert isinstance(grants, outputs.ListResourceCustomerBenefitGrant)
    # Acme Team includes cloud credits: the plan change granted them.
    assert any(isinstance(g, outputs.CustomerBenefitGrantMeterCredit) and g.is_granted for g in grants.items)
    validated = result["validated"]
    assert isinstance(validated, outputs.ValidatedLicenseKey) and validated.activation is not None
    downloadables = result["downloadables"]
    assert isinstance(downloadables, outputs.ListResourceDownloadableRead)
    first = downloadables.items[0]
    body = httpx.get(first.file.download.url, follow_redirects=True).content
    assert hashlib.sha256(body).hexdigest() == first.file.checksum_sha256_hex


def test_email_change_flow(portal: tuple[str, Settings], mailer: MemoryMailer) -> None:
    base_url, settings = portal
    token = api_token(settings, "acme", "casey@example.com")

    async def request(new_email: str) -> None:
        async with PolarAsync(access_token=token, base_url=base_url) as polar:
            await polar.customer_portal.customers.request_email_update(email=new_email)

    with pytest.raises(PolarClientError) as off:
        asyncio.run(request("casey.new@example.com"))
    assert off.value.status_code == 403 and "NotPermitted" in str(off.value.error)
    execute(settings, "UPDATE organizations SET allow_email_change = 1 WHERE slug = 'acme'")
    # An address that is already a customer's gets the same answer (202) and no mail (issue 17.3).
    asyncio.run(request("alex@example.com"))
    asyncio.run(request("casey.new@example.com"))
    for _ in range(100):
        if mailer.messages:
            break
        asyncio.run(asyncio.sleep(0.02))
    message = mailer.messages[-1]
    assert message.to == "casey.new@example.com"
    assert [m.to for m in mailer.messages if "verification code" in m.text] == ["casey.new@example.com"]
    code = re.search(r"verification code: ([A-Z0-9]{12})", message.text)
    assert code is not None

    async def verify(value: str) -> tuple[object, object]:
        async with PolarAsync(access_token=token, base_url=base_url) as polar:
            customers = polar.customer_portal.customers
            checked = await customers.check_email_update(token=value)
            verified = await customers.verify_email_update(token=value)
            return checked, verified

    with pytest.raises(PolarClientError) as bad:
        asyncio.run(verify("WRONGCODE123"))
    assert bad.value.status_code == 401
    _, verified = asyncio.run(verify(code.group(1)))
    assert isinstance(verified, outputs.CustomerEmailUpdateVerifyResponse) and verified.token
    row = one(settings, "SELECT email, email_verified FROM customers WHERE email = 'casey.new@example.com'")
    assert row["email_verified"] == 1

    async def me(new_token: str) -> outputs.CustomerPortalCustomer:
        async with PolarAsync(access_token=new_token, base_url=base_url) as polar:
            return await polar.customer_portal.customers.get()

    assert asyncio.run(me(verified.token)).email == "casey.new@example.com"  # type: ignore[attr-defined]

    async def verify_only(value: str) -> None:
        async with PolarAsync(access_token=token, base_url=base_url) as polar:
            await polar.customer_portal.customers.verify_email_update(token=value)

    with pytest.raises(CustomerPortalCustomersVerifyEmailUpdate401Error):  # single use
        asyncio.run(verify_only(code.group(1)))
    assert query(settings, "SELECT * FROM events WHERE name = 'customer.email_updated'")
