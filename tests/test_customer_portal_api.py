"""Contract tests: the official ``polar-sdk`` (sync ``Polar``) drives the customer-portal API of a served Portal
(uvicorn on loopback, demo seed) through every supported method, asserting on the SDK's parsed models. Only the
base URL differs from talking to Polar."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from polar.base import PolarClientError
from polar.v2026_10 import outputs
from polar.v2026_10.client import Polar
from polar.v2026_10.errors import (
    AlreadyCanceledSubscription,
    CustomerPortalSubscriptionsUpdate403Error,
    CustomerPortalSubscriptionsUpdate409Error,
    HTTPValidationError,
    NotPermitted,
    ResourceNotFound,
)

from portal.settings import Settings
from tests.api_server import api_token, execute, revoke_tokens, served_portal
from tests.browser_helpers import customer_id, one, query

pytestmark = pytest.mark.seeded  # data_dir: a copy of the demo seed (tests/conftest.py)


@pytest.fixture
def portal(settings: Settings) -> Iterator[tuple[str, Settings]]:
    with served_portal(settings) as served:
        yield served


def sdk(portal: tuple[str, Settings], slug: str = "acme", email: str = "alex@example.com", **kw: Any) -> Polar:
    base_url, settings = portal
    return Polar(access_token=api_token(settings, slug, email, **kw), base_url=base_url)


def sub_id(settings: Settings, external_id: str) -> str:
    return one(settings, "SELECT id FROM subscriptions WHERE external_id = ?", (external_id,))["id"]


def product_id(settings: Settings, external_id: str) -> str:
    return one(settings, "SELECT id FROM products WHERE external_id = ?", (external_id,))["id"]


def test_organization_is_public(portal: tuple[str, Settings]) -> None:
    with Polar(access_token="public-no-token", base_url=portal[0]) as polar:
        data = polar.customer_portal.organizations.get("acme")
        with pytest.raises(ResourceNotFound):
            polar.customer_portal.organizations.get("nope")
    assert isinstance(data, outputs.CustomerOrganizationData)
    assert data.organization.slug == "acme"
    assert data.organization.customer_portal_settings.subscription.update_plan is True
    assert {p.name for p in data.products} >= {"Acme Toolkit", "Acme Pro (monthly)"}
    toolkit = next(p for p in data.products if p.name == "Acme Toolkit")
    assert {type(b).__name__ for b in toolkit.benefits} >= {"BenefitCustomPublic", "BenefitLicenseKeysPublic"}


def test_orders_list_filters_get_and_receipt(portal: tuple[str, Settings]) -> None:
    base_url, settings = portal
    with sdk(portal) as polar:
        orders = polar.customer_portal.orders
        first = orders.list(limit=5)
        every = list(orders.iter_list(limit=5))
        recurring = orders.list(product_billing_type="recurring", limit=100)
        one_time = orders.list(product_billing_type=["one_time"], limit=100)
        searched = orders.list(query="icons")
        by_product = orders.list(product_id=product_id(settings, "acme-icons"))
        by_subscription = orders.list(subscription_id=sub_id(settings, "acme-sub-alex-pro"), limit=100)
        oldest_first = orders.list(sorting=["created_at"], limit=100)
        order = orders.get(first.items[0].id)
        receipt = orders.receipt(order.id)
        with pytest.raises(HTTPValidationError):
            orders.list(limit=0)  # above 100 is clamped (tests/test_polar_rules.py)
    assert isinstance(first, outputs.ListResourceCustomerOrder)
    assert first.pagination.total_count == 13 and first.pagination.max_page == 3
    assert len(first.items) == 5 and len(every) == 13 and len({o.id for o in every}) == 13
    created = [o.created_at for o in every]
    assert created == sorted(created, reverse=True)
    assert [o.id for o in oldest_first.items] == [o.id for o in reversed(every)]
    assert recurring.pagination.total_count + one_time.pagination.total_count == 13
    assert all(o.subscription_id for o in recurring.items) and not any(o.subscription_id for o in one_time.items)
    assert [o.description for o in searched.items] == ["Acme Icons"] == [o.description for o in by_product.items]
    assert by_subscription.pagination.total_count == recurring.pagination.total_count
    assert isinstance(order, outputs.CustomerOrder) and order.id == first.items[0].id
    assert order.product is not None and order.product.organization.slug == "acme"
    assert order.items and order.receipt_number and order.paid is True
    # The receipt URL opens without any cookie or token, and shows this order's receipt.
    assert receipt.url.startswith(f"{base_url}/r/receipts/{order.id}?signature=")
    with httpx.Client() as anonymous:
        page = anonymous.get(receipt.url)
        tampered = anonymous.get(receipt.url.replace("signature=", "signature=0"))
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert order.receipt_number in page.text and "Rivera Design LLC" in page.text
    assert tampered.status_code == 404


def test_receipt_link_expires(settings: Settings) -> None:
    from portal.clock import Clock

    clock = Clock()
    with served_portal(settings, clock=clock) as served, sdk(served) as polar:
        order = polar.customer_portal.orders.list(limit=1).items[0]
        url = polar.customer_portal.orders.receipt(order.id).url
        clock.advance(3601)
        assert httpx.get(url).status_code == 404


def test_subscriptions_list_get_cancel_uncancel_and_change_plan(portal: tuple[str, Settings]) -> None:
    _, settings = portal
    subscription_id = sub_id(settings, "acme-sub-alex-pro")
    yearly = product_id(settings, "acme-pro-yearly")
    with sdk(portal) as polar:
        subscriptions = polar.customer_portal.subscriptions
        listed = subscriptions.list()
        active = subscriptions.list(active=True)
        got = subscriptions.get(subscription_id)
        canceled = subscriptions.update(
            subscription_id, cancel_at_period_end=True, cancellation_reason="too_expensive", cancellation_comment="$$"
        )
        with pytest.raises(CustomerPortalSubscriptionsUpdate403Error) as again:
            subscriptions.update(subscription_id, cancel_at_period_end=True)
        with pytest.raises(AlreadyCanceledSubscription):
            subscriptions.cancel(subscription_id)
        resumed = subscriptions.update(subscription_id, cancel_at_period_end=False)
        with pytest.raises(CustomerPortalSubscriptionsUpdate409Error) as not_scheduled:
            subscriptions.update(subscription_id, cancel_at_period_end=False)
        changed = subscriptions.update(subscription_id, product_id=yearly)
        with pytest.raises(HTTPValidationError):
            subscriptions.update(subscription_id, product_id=product_id(settings, "acme-icons"))
        with pytest.raises(CustomerPortalSubscriptionsUpdate403Error) as seats:
            subscriptions.update(subscription_id, seats=3)
        deleted = subscriptions.cancel(subscription_id)
    assert isinstance(listed, outputs.ListResourceCustomerSubscription) and listed.pagination.total_count == 1
    assert active.pagination.total_count == 1
    assert isinstance(got, outputs.CustomerSubscription) and got.product.name == "Acme Pro (monthly)"
    assert got.status == "active" and got.cancel_at_period_end is False and got.prices
    assert canceled.cancel_at_period_end is True and canceled.customer_cancellation_reason == "too_expensive"
    assert canceled.ends_at == canceled.current_period_end
    assert type(again.value.error).__name__ == "AlreadyCanceledSubscription"
    assert resumed.cancel_at_period_end is False and resumed.canceled_at is None
    assert type(not_scheduled.value.error).__name__ == "SubscriptionNotScheduledToCancel"
    assert changed.product_id == yearly and changed.amount == 12000 and changed.recurring_interval == "year"
    assert type(seats.value.error).__name__ == "UpdateSubscriptionSeatsNotAllowed"
    assert deleted.cancel_at_period_end is True
    names = [row["name"] for row in query(settings, "SELECT name FROM events ORDER BY created_at, rowid")]
    assert names[-4:] == [
        "subscription.canceled",
        "subscription.uncanceled",
        "subscription.plan_changed",
        "subscription.canceled",
    ]


def test_plan_change_refused_when_org_disallows(portal: tuple[str, Settings]) -> None:
    _, settings = portal
    execute(settings, "UPDATE organizations SET allow_plan_change = 0 WHERE slug = 'acme'")
    with sdk(portal) as polar, pytest.raises(CustomerPortalSubscriptionsUpdate403Error) as refused:
        polar.customer_portal.subscriptions.update(
            sub_id(settings, "acme-sub-alex-pro"), product_id=product_id(settings, "acme-pro-yearly")
        )
    assert type(refused.value.error).__name__ == "UpdateSubscriptionPlanNotAllowed"


EVERY_TYPE = {
    "CustomerBenefitGrantCustom",
    "CustomerBenefitGrantDiscord",
    "CustomerBenefitGrantGitHubRepository",
    "CustomerBenefitGrantDownloadables",
    "CustomerBenefitGrantLicenseKeys",
    "CustomerBenefitGrantMeterCredit",
    "CustomerBenefitGrantFeatureFlag",
}


def test_benefit_grants_of_every_type(portal: tuple[str, Settings]) -> None:
    with sdk(portal, email="priya@example.com") as polar:
        grants = polar.customer_portal.benefit_grants
        listed = list(grants.iter_list(limit=3))
        keys_only = grants.list(type="license_keys")
        one_grant = grants.get(listed[0].id)
        discord = next(g for g in listed if isinstance(g, outputs.CustomerBenefitGrantDiscord))
        with pytest.raises(NotPermitted):
            grants.update(discord.id, benefit_type="discord", properties={"account_id": "123"})
        custom = next(g for g in listed if isinstance(g, outputs.CustomerBenefitGrantCustom))
        unchanged = grants.update(custom.id, benefit_type="custom")
    assert {type(g).__name__ for g in listed} == EVERY_TYPE
    assert all(g.is_granted and not g.is_revoked for g in listed)
    assert keys_only.pagination.total_count == 2
    assert all(isinstance(g, outputs.CustomerBenefitGrantLicenseKeys) for g in keys_only.items)
    assert all(g.properties.display_key and g.properties.license_key_id for g in keys_only.items)
    assert one_grant.id == listed[0].id
    assert custom.benefit.properties.note and "quick-start" in custom.benefit.properties.note
    assert discord.benefit.properties.guild_id == "1187000000000000001"
    github = next(g for g in listed if isinstance(g, outputs.CustomerBenefitGrantGitHubRepository))
    assert github.benefit.properties.repository_name == "toolkit-pro-plugins"
    downloads = next(g for g in listed if isinstance(g, outputs.CustomerBenefitGrantDownloadables))
    assert downloads.benefit.properties.active_files and downloads.properties.files
    credits = next(g for g in listed if isinstance(g, outputs.CustomerBenefitGrantMeterCredit))
    assert credits.benefit.properties.units == 5000
    license_grant = next(g for g in listed if isinstance(g, outputs.CustomerBenefitGrantLicenseKeys))
    assert license_grant.benefit.properties.activations is not None
    assert unchanged.id == custom.id


def test_license_keys_list_get_and_activations(portal: tuple[str, Settings]) -> None:
    with sdk(portal) as polar:
        keys = polar.customer_portal.license_keys
        listed = keys.list()
        toolkit = next(k for k in listed.items if k.key.startswith("ACME-") and k.status == "granted")
        pro = next(k for k in listed.items if k.key.startswith("ACMEPRO-"))
        with_admin = keys.get(toolkit.id)
        without_admin = keys.get(pro.id)
    assert isinstance(listed, outputs.ListResourceLicenseKeyRead) and listed.pagination.total_count == 3
    assert isinstance(with_admin, outputs.LicenseKeyWithActivations)
    # Polar shows activations only when the benefit lets customers manage them.
    assert len(with_admin.activations) == 2
    assert without_admin.activations == []


def test_downloadables_download_through_signed_url(portal: tuple[str, Settings]) -> None:
    _, settings = portal
    with sdk(portal) as polar:
        downloadables = list(polar.customer_portal.downloadables.iter_list(limit=2))
    assert {d.file.name for d in downloadables} == {"acme-toolkit-guide.pdf", "CHANGELOG.txt", "acme-icons-1.4.zip"}
    with httpx.Client() as anonymous:
        for item in downloadables:
            assert isinstance(item, outputs.DownloadableRead)
            # Polar's shape: the listed URL redirects (302) to a short-lived signed file URL.
            response = anonymous.get(item.file.download.url)
            assert response.status_code == 302, response.text
            response = anonymous.get(response.headers["location"])
            assert response.status_code == 200, response.text
            assert hashlib.sha256(response.content).hexdigest() == item.file.checksum_sha256_hex
            assert len(response.content) == item.file.size
    downloads = query(settings, "SELECT * FROM events WHERE name = 'file.downloaded'")
    assert len(downloads) == 3


def test_customer_me_get_and_update(portal: tuple[str, Settings]) -> None:
    with sdk(portal) as polar:
        customers = polar.customer_portal.customers
        me = customers.get()
        updated = customers.update(
            billing_name="Rivera Studio",
            billing_address={"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"},
            tax_id="91-1144442",
        )
        with pytest.raises(HTTPValidationError) as invalid:
            customers.update(billing_address={"line1": "1 Main St", "country": "US"})
        user = polar.customer_portal.customer_session.get_authenticated_user()
        session = polar.customer_portal.customer_session.introspect()
    assert isinstance(me, outputs.CustomerPortalCustomer) and me.email == "alex@example.com"
    assert updated.billing_name == "Rivera Studio" and updated.billing_address is not None
    assert updated.billing_address.city == "Springfield" and updated.tax_id == ["911144442", "us_ein"]
    assert invalid.value.error.detail[0].loc == ["body", "billing_address", "city"]
    assert user.customer_id == me.id and user.email == me.email
    assert session.expires_at


def test_other_customers_and_other_orgs_answer_404(portal: tuple[str, Settings]) -> None:
    _, settings = portal
    jordan_order = one(
        settings,
        "SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.email = 'jordan@example.com'",
    )["id"]
    sam_lumen_sub = sub_id(settings, "lumen-sub-sam-plus")
    jordan_sub = sub_id(settings, "acme-sub-jordan-pro")
    jordan_key = one(
        settings,
        "SELECT k.id FROM license_keys k JOIN customers c ON c.id = k.customer_id WHERE c.email = 'jordan@example.com'",
    )["id"]
    jordan_grant = one(
        settings,
        "SELECT g.id FROM benefit_grants g JOIN customers c ON c.id = g.customer_id "
        "WHERE c.email = 'jordan@example.com'",
    )["id"]
    # sam@example.com exists in both orgs: an acme token never reaches sam's lumen objects.
    with sdk(portal, email="sam@example.com") as polar:
        cp = polar.customer_portal
        attempts = [
            lambda: cp.orders.get(jordan_order),
            lambda: cp.orders.receipt(jordan_order),
            lambda: cp.orders.invoice(jordan_order),
            lambda: cp.orders.update(jordan_order, billing_name="x"),
            lambda: cp.subscriptions.get(sam_lumen_sub),
            lambda: cp.subscriptions.get(jordan_sub),
            lambda: cp.subscriptions.cancel(jordan_sub),
            lambda: cp.subscriptions.update(jordan_sub, cancel_at_period_end=False),
            lambda: cp.license_keys.get(jordan_key),
            lambda: cp.license_keys.rotate(jordan_key),
            lambda: cp.benefit_grants.get(jordan_grant),
            lambda: cp.orders.get("00000000-0000-0000-0000-000000000000"),
        ]
        for attempt in attempts:
            with pytest.raises(ResourceNotFound):
                attempt()
        lumen_orders = cp.orders.list(limit=100)
    assert lumen_orders.pagination.total_count == 1  # sam's acme order only
    assert one(settings, "SELECT cancel_at_period_end FROM subscriptions WHERE id = ?", (jordan_sub,))[0] == 1


def test_revoked_and_expired_tokens_answer_401(portal: tuple[str, Settings]) -> None:
    from portal.clock import Clock

    base_url, settings = portal
    revoked = api_token(settings, "acme", "casey@example.com")
    revoke_tokens(settings, "acme", "casey@example.com")
    past = Clock()
    past.advance(-7200)
    expired = api_token(settings, "acme", "alex@example.com", clock=past)
    for token in (revoked, expired, "not-a-token"):
        with Polar(access_token=token, base_url=base_url) as polar:
            with pytest.raises(PolarClientError) as problem:
                polar.customer_portal.orders.list()
            assert problem.value.status_code == 401
            raw = httpx.get(f"{base_url}/v1/customer-portal/customers/me", headers={"Authorization": f"Bearer {token}"})
            assert raw.status_code == 401 and raw.json()["error"] == "Unauthorized"


UNSUPPORTED = [
    ("customers", "list_payment_methods", (), {}),
    ("customers", "delete_payment_method", ("x",), {}),
    ("orders", "get_payment_status", ("x",), {}),
    ("seats", "list_seats", (), {}),
    ("seats", "list_claimed_subscriptions", (), {}),
    ("members", "list_members", (), {}),
    ("wallets", "list", (), {}),
    ("wallets", "get", ("x",), {}),
    ("customer_meters", "list", (), {}),
    ("customer_meters", "get", ("x",), {}),
]


@pytest.mark.parametrize(("service", "method", "args", "kwargs"), UNSUPPORTED)
def test_unsupported_features_answer_documented_403(
    portal: tuple[str, Settings], service: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    with sdk(portal) as polar, pytest.raises(PolarClientError) as refused:
        getattr(getattr(polar.customer_portal, service), method)(*args, **kwargs)
    assert refused.value.status_code == 403
    raw = refused.value.error if isinstance(refused.value.error, str) else None
    if raw is not None:
        assert "NotSupported" in raw


def test_unsupported_body_is_polar_shaped(portal: tuple[str, Settings]) -> None:
    base_url, settings = portal
    token = api_token(settings, "acme", "alex@example.com")
    answer = httpx.get(f"{base_url}/v1/customer-portal/wallets/", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 403
    assert answer.json()["error"] == "NotSupported" and "not supported" in answer.json()["detail"]
    anonymous = httpx.get(f"{base_url}/v1/customer-portal/wallets/")
    assert anonymous.status_code == 401


def test_email_change_is_off_unless_the_org_enables_it(portal: tuple[str, Settings]) -> None:
    with sdk(portal) as polar, pytest.raises(PolarClientError) as refused:
        polar.customer_portal.customers.request_email_update(email="new@example.com")
    assert refused.value.status_code == 403


PUBLIC_PATHS = {
    "/v1/customer-portal/organizations/{slug}",
    "/v1/customer-portal/license-keys/validate",
    "/v1/customer-portal/license-keys/activate",
    "/v1/customer-portal/license-keys/deactivate",
    "/v1/customer-portal/customers/me/email-update/check",
    "/v1/customer-portal/customers/me/email-update/verify",
    "/v1/customer-portal/downloadables/{token}",
}


def test_openapi_documents_every_customer_portal_route(portal: tuple[str, Settings]) -> None:
    spec = httpx.get(f"{portal[0]}/docs/openapi.json").json()
    paths = {
        path: ops
        for path, ops in spec["paths"].items()
        # customer-session/* belongs to the sign-in area and is tested there.
        if path.startswith("/v1/customer-portal/") and "/customer-session/" not in path
    }
    assert len(paths) >= 25
    for path, operations in paths.items():
        for method, operation in operations.items():
            if method not in ("get", "post", "patch", "delete"):
                continue
            codes = set(operation["responses"])
            public = not operation.get("security")
            assert public == (path in PUBLIC_PATHS), (method, path)
            assert public or "401" in codes, (method, path)
            assert codes & {"403", "404", "422", "400"}, (method, path)


def test_customer_id_helper_is_scoped(settings: Settings) -> None:
    assert customer_id(settings, "acme", "sam@example.com") != customer_id(settings, "lumen", "sam@example.com")
