"""Tenant isolation, property-based: a Hypothesis state machine drives random portal actions (HTML pages and JSON
API) as random customers of two organizations, built through the admin API, and checks after every answer that

* no response (HTML, JSON, a signed receipt) contains another tenant's marker strings — every customer has
  unique markers in their name, email, billing name and license keys; every organization in its name, product
  names, benefit descriptions and file names;
* every object a JSON answer returns belongs to the acting customer (``customer_id`` and known ids);
* another customer's object answers 404 exactly like a missing one, and changes nothing of theirs;
* a session never opens another organization's portal.

Bounded and deterministic: ``derandomize=True``, no example database, 15 examples x 20 steps.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from litestar import Litestar
from litestar.testing import TestClient

from portal.clock import iso
from portal.db import connect_sync
from portal.sessions.auth import cookie_name
from portal.settings import Settings
from tests.admin_support import api, bearer, mint_token
from tests.signin_helpers import insert_session

ORGS = {"a": "QZXORGALPHA", "b": "QZXORGBRAVO"}
CUSTOMERS_PER_ORG = 2


@dataclass
class Customer:
    """One customer with its own sessions, objects and marker strings."""

    org_key: str
    slug: str
    org_id: str
    id: str
    marker: str
    email: str
    api_token: str = ""
    browser_token: str = ""
    orders: list[str] = field(default_factory=list)
    subscriptions: list[str] = field(default_factory=list)
    grants: list[str] = field(default_factory=list)
    license_keys: dict[str, str] = field(default_factory=dict)  # id -> key string
    markers: set[str] = field(default_factory=set)

    def owns(self, kind: str, object_id: str) -> bool:
        known = {
            "orders": self.orders,
            "subscriptions": self.subscriptions,
            "benefit-grants": self.grants,
            "license-keys": list(self.license_keys),
        }[kind]
        return object_id in known


@dataclass
class World:
    client: TestClient[Litestar]
    settings: Settings
    customers: list[Customer]
    org_markers: dict[str, set[str]]
    csrf: str

    def foreign_markers(self, actor: Customer, *, public_org: str | None = None) -> set[str]:
        """Markers ``actor`` must never see; ``public_org``'s own (its name on its public sign-in page) excepted."""
        other_orgs = {
            m for key, markers in self.org_markers.items() if key not in (actor.org_key, public_org) for m in markers
        }
        other_customers = {m for c in self.customers if c is not actor for m in c.markers}
        return {m.lower() for m in other_orgs | other_customers}


def _org(client: TestClient[Litestar], admin: str, key: str) -> tuple[dict[str, Any], str, set[str]]:
    marker = ORGS[key]
    slug = f"shop-{key}"
    org = api(client, admin, "POST", "/v1/organizations/", 201, json={"name": f"Shop {marker}", "slug": slug})
    return org, slug, {marker}


def _catalog(client: TestClient[Litestar], token: str, marker: str) -> dict[str, str]:
    """Benefits (license keys, a custom note, a downloadable file) and two products, all carrying ``marker``."""
    license_benefit = api(
        client,
        token,
        "POST",
        "/v1/benefits/",
        201,
        json={
            "type": "license_keys",
            "description": f"License {marker}LIC",
            "properties": {"prefix": "KEY", "activations": {"limit": 2, "enable_customer_admin": True}},
        },
    )
    note = api(
        client,
        token,
        "POST",
        "/v1/benefits/",
        201,
        json={"type": "custom", "description": f"Note {marker}NOTE", "properties": {"note": f"Secret {marker}TIP"}},
    )
    response = client.post(
        "/v1/files/",
        files={"file": (f"guide-{marker}FILE.pdf", b"%PDF-1.4 " + marker.encode() * 50, "application/pdf")},
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text
    download = api(
        client,
        token,
        "POST",
        "/v1/benefits/",
        201,
        json={
            "type": "downloadables",
            "description": f"Guide {marker}DL",
            "properties": {"files": [response.json()["id"]]},
        },
    )
    price = [{"amount_type": "fixed", "price_amount": 4900, "price_currency": "usd"}]
    once = api(
        client,
        token,
        "POST",
        "/v1/products/",
        201,
        json={"name": f"Toolkit {marker}ONCE", "prices": price, "benefits": [license_benefit["id"], download["id"]]},
    )
    monthly = api(
        client,
        token,
        "POST",
        "/v1/products/",
        201,
        json={
            "name": f"Cloud {marker}SUB",
            "prices": price,
            "recurring_interval": "month",
            "benefits": [license_benefit["id"]],
        },
    )
    return {"once": once["id"], "monthly": monthly["id"], "note": note["id"]}


def _customer(
    client: TestClient[Litestar], token: str, key: str, slug: str, org_id: str, index: int, catalog: dict[str, str]
) -> Customer:
    marker = f"QZXCUST{key.upper()}{index}K"
    email = f"{marker.lower()}@example.com"
    created = api(
        client,
        token,
        "POST",
        "/v1/customers/",
        201,
        json={"email": email, "name": f"Name {marker}NAME", "billing_name": f"Bill {marker}BILL"},
    )
    customer = Customer(key, slug, org_id, created["id"], marker, email, markers={marker})
    order = api(
        client, token, "POST", "/v1/orders/", 201, json={"customer_id": customer.id, "product_id": catalog["once"]}
    )
    if order["status"] != "paid":
        api(client, token, "PATCH", f"/v1/orders/{order['id']}", 200, json={"status": "paid"})
    customer.orders.append(order["id"])
    sub = api(
        client,
        token,
        "POST",
        "/v1/subscriptions/",
        201,
        json={
            "customer_id": customer.id,
            "product_id": catalog["monthly"],
            "status": "active",
            "current_period_start": "2026-11-01T00:00:00Z",
        },
    )
    customer.subscriptions.append(sub["id"])
    api(
        client,
        token,
        "POST",
        "/v1/benefit-grants/",
        201,
        json={"customer_id": customer.id, "benefit_id": catalog["note"], "order_id": order["id"]},
    )
    listed = api(client, token, "GET", f"/v1/orders/?customer_id={customer.id}&limit=100", 200)
    customer.orders = sorted({o["id"] for o in listed["items"]} | set(customer.orders))
    grants = api(client, token, "GET", f"/v1/benefit-grants/?customer_id={customer.id}&limit=100", 200)
    customer.grants = [g["id"] for g in grants["items"]]
    return customer


@pytest.fixture
def world(client: TestClient[Litestar], settings: Settings) -> Iterator[World]:
    admin = mint_token(settings)
    customers: list[Customer] = []
    org_markers: dict[str, set[str]] = {}
    for key in ORGS:
        org, slug, markers = _org(client, admin, key)
        token = mint_token(settings, org["id"])
        catalog = _catalog(client, token, ORGS[key])
        org_markers[key] = markers | {f"{ORGS[key]}{suffix}" for suffix in ("LIC", "NOTE", "TIP", "FILE", "ONCE")}
        org_markers[key] |= {f"{ORGS[key]}SUB", slug}
        for index in range(CUSTOMERS_PER_ORG):
            customers.append(_customer(client, token, key, slug, org["id"], index, catalog))
    for customer in customers:
        customer.api_token = insert_session(settings, customer.org_id, customer.id, kind="api")
        customer.browser_token = insert_session(settings, customer.org_id, customer.id, ttl_seconds=86400)
        keys = api(client, customer.api_token, "GET", "/v1/customer-portal/license-keys/?limit=100", 200)
        customer.license_keys = {k["id"]: k["key"] for k in keys["items"]}
        assert customer.license_keys, "every customer owns license keys"
        customer.markers |= set(customer.license_keys.values())
        subs = api(client, customer.api_token, "GET", "/v1/customer-portal/subscriptions/?limit=100", 200)
        customer.subscriptions = sorted({s["id"] for s in subs["items"]} | set(customer.subscriptions))
    client.cookies.clear()
    client.get("/")
    csrf = client.cookies.get("csrftoken")
    assert csrf
    client.follow_redirects = False
    yield World(client, settings, customers, org_markers, str(csrf))


# --- checks ------------------------------------------------------------------------------------------------------

ID_KEYS = {"orders": "orders", "subscriptions": "subscriptions", "benefit-grants": "benefit-grants"}


def assert_clean(
    world: World, actor: Customer, response: httpx.Response, what: str, public_org: str | None = None
) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code}"
    text = response.text.lower()
    leaked = sorted(m for m in world.foreign_markers(actor, public_org=public_org) if m in text)
    assert not leaked, f"{what} as {actor.marker} leaked {leaked}"


def assert_owned(actor: Customer, kind: str, item: dict[str, Any], what: str) -> None:
    if "customer_id" in item:
        assert item["customer_id"] == actor.id, f"{what}: someone else's {kind} {item['id']}"
    if kind in ("orders", "subscriptions", "benefit-grants", "license-keys"):
        assert actor.owns(kind, item["id"]), f"{what}: unknown {kind} {item['id']} for {actor.marker}"


def _api(world: World, actor: Customer, method: str, path: str, **kwargs: Any) -> httpx.Response:
    world.client.cookies.clear()
    response = world.client.request(method, path, headers=bearer(actor.api_token), **kwargs)
    assert_clean(world, actor, response, f"{method} {path}")
    return response


def _page(
    world: World, actor: Customer, method: str, path: str, public_org: str | None = None, **kwargs: Any
) -> httpx.Response:
    client = world.client
    client.cookies.clear()
    client.cookies.set(cookie_name(world.settings, actor.slug), actor.browser_token)
    client.cookies.set("csrftoken", world.csrf)
    if method == "POST":
        kwargs["data"] = {**kwargs.get("data", {}), "_csrf_token": world.csrf}
    response = client.request(method, path, **kwargs)
    assert_clean(world, actor, response, f"{method} {path}", public_org)
    return response


def _owner_of(world: World, kind: str, object_id: str) -> Customer:
    return next(c for c in world.customers if c.owns(kind, object_id))


def _no_plan_change(settings: Settings, subscription_id: str) -> bool:
    conn = connect_sync(settings.db_path)
    try:
        row = conn.execute(
            "SELECT s.cancel_at_period_end, s.status, s.ended_at, s.current_period_end, o.allow_plan_change "
            "FROM subscriptions s JOIN organizations o ON o.id = s.organization_id WHERE s.id = ?",
            (subscription_id,),
        ).fetchone()
        over = row[2] is not None or (row[3] is not None and row[3] <= iso(datetime.now(UTC)))
        return bool(row[0]) or row[1] not in ("active", "trialing") or over or not row[4]
    finally:
        conn.close()


def _activation_counts(settings: Settings) -> list[int]:
    conn = connect_sync(settings.db_path)
    try:
        return [row[0] for row in conn.execute("SELECT COUNT(*) FROM license_key_activations GROUP BY license_key_id")]
    finally:
        conn.close()


def make_machine(world: World) -> type[RuleBasedStateMachine]:
    customers = st.sampled_from(world.customers)
    all_orders = st.sampled_from([o for c in world.customers for o in c.orders])
    all_subs = st.sampled_from([s for c in world.customers for s in c.subscriptions])
    all_grants = st.sampled_from([g for c in world.customers for g in c.grants])
    all_keys = st.sampled_from([k for c in world.customers for k in c.license_keys])
    kinds = st.sampled_from(["orders", "subscriptions", "benefit-grants", "license-keys", "downloadables"])
    pages = st.sampled_from(["", "/orders", "/subscriptions", "/benefits", "/settings"])

    class TenantMachine(RuleBasedStateMachine):
        """Random customers doing random things; the checks run on every answer."""

        @rule(actor=customers, kind=kinds)
        def api_list(self, actor: Customer, kind: str) -> None:
            response = _api(world, actor, "GET", f"/v1/customer-portal/{kind}/?limit=100")
            assert response.status_code == 200, response.text
            for item in response.json()["items"]:
                assert_owned(actor, kind, item, f"list {kind}")

        @rule(
            actor=customers,
            obj=st.one_of(
                st.tuples(st.just("orders"), all_orders),
                st.tuples(st.just("subscriptions"), all_subs),
                st.tuples(st.just("benefit-grants"), all_grants),
                st.tuples(st.just("license-keys"), all_keys),
            ),
        )
        def api_get(self, actor: Customer, obj: tuple[str, str]) -> None:
            kind, object_id = obj
            response = _api(world, actor, "GET", f"/v1/customer-portal/{kind}/{object_id}")
            if actor.owns(kind, object_id):
                assert response.status_code == 200, response.text
                assert_owned(actor, kind, response.json(), f"get {kind}")
            else:
                assert response.status_code == 404, f"{kind} of another customer: {response.status_code}"
                assert response.json()["error"] == "ResourceNotFound"

        @rule(actor=customers, order_id=all_orders)
        def api_receipt(self, actor: Customer, order_id: str) -> None:
            response = _api(world, actor, "GET", f"/v1/customer-portal/orders/{order_id}/receipt")
            if not actor.owns("orders", order_id):
                assert response.status_code == 404
                return
            assert response.status_code == 200, response.text
            receipt = world.client.get(response.json()["url"])
            assert receipt.status_code == 200
            assert_clean(world, actor, receipt, "signed receipt")
            assert actor.marker.lower() in receipt.text.lower(), "the receipt names its own customer"

        @rule(actor=customers, sub_id=all_subs, cancel=st.booleans(), via_delete=st.booleans())
        def api_cancel_or_uncancel(self, actor: Customer, sub_id: str, cancel: bool, via_delete: bool) -> None:
            owner = _owner_of(world, "subscriptions", sub_id)
            before = _api(world, owner, "GET", f"/v1/customer-portal/subscriptions/{sub_id}").json()
            path = f"/v1/customer-portal/subscriptions/{sub_id}"
            if cancel and via_delete:
                response = _api(world, actor, "DELETE", path)
            else:
                response = _api(world, actor, "PATCH", path, json={"cancel_at_period_end": cancel})
            after = _api(world, owner, "GET", path).json()
            if actor is owner:
                assert response.status_code in (200, 403, 409), response.text
                if response.status_code == 200:
                    assert after["cancel_at_period_end"] is cancel
            else:
                assert response.status_code == 404, response.text
                assert after == before, "another customer changed this subscription"

        @rule(actor=customers, page=pages, other_org=st.booleans())
        def html_page(self, actor: Customer, page: str, other_org: bool) -> None:
            other = next(c for c in world.customers if c.slug != actor.slug)
            slug = other.slug if other_org else actor.slug
            response = _page(
                world, actor, "GET", f"/{slug}/portal{page}", public_org=other.org_key if other_org else None
            )
            if other_org:
                # The session's cookie is not even sent to another portal's name: sign-in there.
                assert response.status_code in (200, 303), response.status_code
                if response.status_code == 303:
                    # The page comes along as ``next`` (a path of that same portal only, issue 22).
                    assert response.headers["location"] in (
                        f"/{slug}/portal",
                        f"/{slug}/portal?next=/{slug}/portal{page}",
                    )
                else:
                    assert page == "" and 'name="email"' in response.text
            else:
                assert response.status_code == 200, f"{page}: {response.status_code}"
                assert actor.marker.lower() in response.text.lower() or page not in ("", "/settings")

        @rule(
            actor=customers,
            obj=st.one_of(
                st.tuples(st.just("orders"), all_orders, st.sampled_from(["", "/receipt"])),
                st.tuples(st.just("subscriptions"), all_subs, st.sampled_from(["", "/change-plan"])),
            ),
        )
        def html_object(self, actor: Customer, obj: tuple[str, str, str]) -> None:
            kind, object_id, suffix = obj
            response = _page(world, actor, "GET", f"/{actor.slug}/portal/{kind}/{object_id}{suffix}")
            expected = 200 if actor.owns(kind, object_id) else 404
            if expected == 200 and suffix == "/change-plan" and _no_plan_change(world.settings, object_id):
                expected = 404  # canceled in an earlier step, or the seller allows none
            assert response.status_code == expected, f"{kind}{suffix}: {response.status_code}"

        @rule(actor=customers, sub_id=all_subs, cancel=st.booleans())
        def html_cancel_or_uncancel(self, actor: Customer, sub_id: str, cancel: bool) -> None:
            owner = _owner_of(world, "subscriptions", sub_id)
            path = f"/v1/customer-portal/subscriptions/{sub_id}"
            before = _api(world, owner, "GET", path).json()
            action = "cancel" if cancel else "uncancel"
            data = {"cancellation_reason": "other"} if cancel else {}
            response = _page(world, actor, "POST", f"/{actor.slug}/portal/subscriptions/{sub_id}/{action}", data=data)
            after = _api(world, owner, "GET", path).json()
            if actor is owner:
                assert response.status_code in (303, 400, 409), response.status_code
            else:
                assert response.status_code == 404, response.status_code
                assert after == before, "another customer changed this subscription"

        @rule(actor=customers, suffix=st.integers(min_value=0, max_value=9))
        def billing_update(self, actor: Customer, suffix: int) -> None:
            # The new billing name is one of the actor's markers from now on.
            name = f"Bill {actor.marker}B{suffix}"
            actor.markers.add(f"{actor.marker}B{suffix}")
            if suffix % 2:
                response = _page(
                    world,
                    actor,
                    "POST",
                    f"/{actor.slug}/portal/settings",
                    data={"billing_name": name, "line1": "1 Main St", "city": "Springfield", "country": "US"},
                )
                assert response.status_code == 303, response.text
            else:
                response = _api(world, actor, "PATCH", "/v1/customer-portal/customers/me", json={"billing_name": name})
                assert response.status_code == 200, response.text
                assert response.json()["id"] == actor.id

        @rule(actor=customers, key_id=all_keys, label=st.sampled_from(["laptop", "desktop", "ci"]))
        def activate_key(self, actor: Customer, key_id: str, label: str) -> None:
            """The seller's software activates a key: only within its own organization."""
            owner = _owner_of(world, "license-keys", key_id)
            body = {"key": owner.license_keys[key_id], "organization_id": actor.org_id, "label": label}
            response = _api(world, owner, "POST", "/v1/customer-portal/license-keys/activate", json=body)
            if actor.org_id == owner.org_id:
                assert response.status_code in (200, 403), response.text
            else:
                assert response.status_code == 404, response.text

        @rule(actor=customers)
        def downloads(self, actor: Customer) -> None:
            listed = _api(world, actor, "GET", "/v1/customer-portal/downloadables/?limit=100")
            assert listed.status_code == 200
            page = _page(world, actor, "GET", f"/{actor.slug}/portal/benefits")
            links = re.findall(rf'href="(/{actor.slug}/portal/downloads/[^"]+)"', page.text)
            assert links, "the Benefits page links the download"
            response = _page(world, actor, "GET", links[0].replace("&amp;", "&"))
            assert response.status_code == 200
            other = next(c for c in world.customers if c is not actor)
            # Another customer's grant in a URL without its signature: refused like a missing file.
            forged = re.sub(r"/downloads/[^/]+/", f"/downloads/{other.grants[0]}/", links[0]).split("?")[0]
            assert _page(world, actor, "GET", forged).status_code in (403, 404)

        @invariant()
        def activations_never_exceed_limits(self) -> None:
            assert max(_activation_counts(world.settings), default=0) <= 2

    return TenantMachine


def test_no_tenant_ever_sees_another(world: World) -> None:
    machine = make_machine(world)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=15,
            stateful_step_count=20,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            # No shrinking: each step's request is in the failure report already, and shrinking a 20-step run
            # against a live app takes minutes.
            phases=[Phase.explicit, Phase.generate],
        ),
    )


def test_markers_are_visible_to_their_owner(world: World) -> None:
    """The markers are real: each customer's own pages and API show their own (so their absence elsewhere means
    something)."""
    for customer in world.customers:
        me = _api(world, customer, "GET", "/v1/customer-portal/customers/me")
        assert customer.marker.lower() in me.text.lower()
        keys = _api(world, customer, "GET", "/v1/customer-portal/license-keys/?limit=100").text
        assert all(key in keys for key in customer.license_keys.values())
        benefits = _page(world, customer, "GET", f"/{customer.slug}/portal/benefits").text
        org_marker = ORGS[customer.org_key]
        assert f"{org_marker}LIC" in benefits and f"{org_marker}TIP" in benefits
        orders = _page(world, customer, "GET", f"/{customer.slug}/portal/orders").text
        assert f"{org_marker}ONCE" in orders
