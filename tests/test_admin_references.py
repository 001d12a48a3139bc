"""Tenant references: every admin write refuses an id that is not the caller's organization's, in every field.

The walk takes the admin write routes from the app's route table (a new route without an entry in ``WRITES``
fails), finds the id-bearing fields of each body type (a new ``*_id`` field without a case fails), and sends each
route once per id with another organization's id and once with an unknown one, with an organization token and with
an admin token (mixing two organizations' objects in one write). A path id answers 404; a body id answers Polar's
422 at ``["body", <field>]`` ("… does not exist."), foreign and unknown alike; the database and the files directory
do not change. Then the consequences the issue found: another tenant cannot make an organization undeletable (the
misleading 409), and a subscription PATCH with a bad ``price_id`` no longer answers 200 and drops the price."""

from __future__ import annotations

import dataclasses
import sqlite3
import types
import typing
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest

from portal.admin.auth import require_api_token
from portal.clock import Clock, iso, new_id
from portal.settings import Settings
from tests.admin_support import api, bearer, create_org, mint_token

UNKNOWN = "00000000-0000-4000-8000-000000000000"
UNKNOWN_EXTERNAL = "no-such-external-id"
PERIOD = "2026-11-01T00:00:00Z"

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Write:
    """One admin write: the route as the app lists it, the world key each path parameter names, a body valid with
    the caller's own ids (``{key}`` placeholders), and the world key each id-bearing body location names."""

    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    body: Any = None
    refs: dict[Loc, str] = field(default_factory=dict)
    multipart: bool = False
    admin_only: bool = False
    # Path parameters that name no stored object (a processor's name): sent as given, never walked.
    names: dict[str, str] = field(default_factory=dict)
    # Body locations that choose this write's organization (like ANCHORS, for this route only).
    anchors: frozenset[Loc] = frozenset()


GRANT_BODY = {"customer_id": "{customer}", "benefit_id": "{benefit}"}
ORDER_BODY = {
    "customer_id": "{customer}",
    "product_id": "{product}",
    "subscription_id": "{subscription}",
    "billing_reason": "subscription_cycle",
    "items": [{"label": "Renewal", "unit_amount": 900, "product_price_id": "{price}"}],
}
SUBSCRIPTION_BODY = {
    "customer_id": "{customer}",
    "product_id": "{product}",
    "price_id": "{price}",
    "status": "active",
    "current_period_start": PERIOD,
}

WRITES: list[Write] = [
    Write("POST", "/v1/organizations", body={"name": "New", "slug": "new-org"}, admin_only=True),
    Write("PATCH", "/v1/organizations/{id:str}", {"id": "org"}, {"name": "Changed"}),
    Write("DELETE", "/v1/organizations/{id:str}", {"id": "org"}, admin_only=True),
    Write(
        "POST",
        "/v1/products",
        body={
            "name": "New",
            "organization_id": "{org}",
            "prices": [{"amount_type": "fixed", "price_amount": 100, "price_currency": "usd"}],
            "benefits": ["{benefit}"],
        },
        refs={("organization_id",): "org", ("benefits", 0): "benefit"},
    ),
    # Keeping a price by id: on create there is no product yet, so no id can be kept; still named, never used.
    Write(
        "POST",
        "/v1/products",
        body={"name": "New", "organization_id": "{org}", "prices": [{"id": "{price}"}]},
        refs={("prices", 0, "id"): "price"},
    ),
    Write(
        "PATCH",
        "/v1/products/{id:str}",
        {"id": "product"},
        {"prices": [{"id": "{price}"}]},
        {("prices", 0, "id"): "price"},
    ),
    Write("DELETE", "/v1/products/{id:str}", {"id": "product"}),
    Write(
        "POST",
        "/v1/products/{id:str}/benefits",
        {"id": "product"},
        {"benefits": ["{benefit}"]},
        {("benefits", 0): "benefit"},
    ),
    Write(
        "POST",
        "/v1/benefits",
        body={
            "type": "downloadables",
            "description": "New",
            "organization_id": "{org}",
            "properties": {"files": ["{file}"]},
        },
        refs={("organization_id",): "org", ("properties", "files", 0): "file"},
    ),
    Write(
        "PATCH",
        "/v1/benefits/{id:str}",
        {"id": "downloads"},
        {"properties": {"files": ["{file}"]}},
        {("properties", "files", 0): "file"},
    ),
    Write("DELETE", "/v1/benefits/{id:str}", {"id": "benefit"}),
    Write("POST", "/v1/files", body={"organization_id": "{org}"}, refs={("organization_id",): "org"}, multipart=True),
    Write("DELETE", "/v1/files/{id:str}", {"id": "file"}),
    Write(
        "POST",
        "/v1/customers",
        body={"email": "new@example.com", "organization_id": "{org}"},
        refs={("organization_id",): "org"},
    ),
    Write("PATCH", "/v1/customers/{id:str}", {"id": "customer"}, {"name": "Changed"}),
    Write("DELETE", "/v1/customers/{id:str}", {"id": "customer"}),
    Write("PATCH", "/v1/customers/external/{external_id:str}", {"external_id": "external"}, {"name": "Changed"}),
    Write("DELETE", "/v1/customers/external/{external_id:str}", {"external_id": "external"}),
    Write(
        "POST",
        "/v1/orders",
        body=ORDER_BODY,
        refs={
            ("customer_id",): "customer",
            ("product_id",): "product",
            ("subscription_id",): "subscription",
            ("items", 0, "product_price_id"): "price",
        },
    ),
    Write("PATCH", "/v1/orders/{id:str}", {"id": "order"}, {"refund_amount": 1}),
    Write(
        "POST",
        "/v1/subscriptions",
        body=SUBSCRIPTION_BODY,
        refs={("customer_id",): "customer", ("product_id",): "product", ("price_id",): "price"},
    ),
    Write(
        "PATCH",
        "/v1/subscriptions/{id:str}",
        {"id": "subscription"},
        {"product_id": "{product}", "price_id": "{price}"},
        {("product_id",): "product", ("price_id",): "price"},
    ),
    Write("DELETE", "/v1/subscriptions/{id:str}", {"id": "subscription"}),
    Write(
        "POST",
        "/v1/benefit-grants",
        body={**GRANT_BODY, "order_id": "{order}"},
        refs={("customer_id",): "customer", ("benefit_id",): "benefit", ("order_id",): "order"},
    ),
    Write(
        "POST",
        "/v1/benefit-grants",
        body={**GRANT_BODY, "subscription_id": "{subscription}"},
        refs={("subscription_id",): "subscription"},
    ),
    Write("DELETE", "/v1/benefit-grants/{id:str}", {"id": "grant"}),
    Write("PATCH", "/v1/license-keys/{id:str}", {"id": "license_key"}, {"status": "disabled"}),
    Write("POST", "/v1/customer-sessions", body={"customer_id": "{customer}"}, refs={("customer_id",): "customer"}),
    Write(
        "POST",
        "/v1/customer-sessions",
        body={"external_customer_id": "{external}"},
        refs={("external_customer_id",): "external"},
    ),
    # A seed document names no stored ids: its objects refer to each other by external id inside the document.
    Write("POST", "/v1/admin/seed", body={"organizations": []}, admin_only=True),
    Write(
        "POST",
        "/v1/webhooks/endpoints",
        body={"url": "https://example.com/hook", "events": ["order.paid"], "organization_id": "{org}"},
        refs={("organization_id",): "org"},
    ),
    Write("PATCH", "/v1/webhooks/endpoints/{id:str}", {"id": "endpoint"}, {"name": "Changed"}),
    Write("PATCH", "/v1/webhooks/endpoints/{id:str}/secret", {"id": "endpoint"}),
    Write("DELETE", "/v1/webhooks/endpoints/{id:str}", {"id": "endpoint"}),
    Write("POST", "/v1/webhooks/events/{id:str}/redeliver", {"id": "event"}),
    # A connection is named by its processor; its body (secrets, settings) names no stored object.
    Write("PUT", "/v1/connectors/{processor:str}", names={"processor": "stripe"}),
    Write("PATCH", "/v1/connectors/{processor:str}", names={"processor": "stripe"}),
    # A price mapping names a Portal product (checked before the connection); the price is the processor's id.
    Write(
        "PUT",
        "/v1/connectors/{processor:str}/prices/{price_id:str}",
        body={"product_id": "{product}"},
        refs={("product_id",): "product"},
        names={"processor": "stripe", "price_id": "price_123"},
        anchors=frozenset({("product_id",)}),
    ),
    Write(
        "POST",
        "/v1/connectors/{processor:str}/events/{event_id:str}/replay",
        names={"processor": "stripe", "event_id": "evt_123"},
    ),
]

# Body fields that look like ids but name no stored object of another kind.
NOT_REFERENCES = {
    "external_id": "the object's own label, set by the seller",
    "tax_id": "a customer's tax number",
    "member_id": "accepted and ignored (Portal has no members)",
    "external_member_id": "accepted and ignored (Portal has no members)",
}
# Fields that choose the organization of the write itself: an admin token may name any organization's.
ANCHORS = {("organization_id",), ("customer_id",), ("external_customer_id",)}
# World keys whose unknown value is an external id, not an id.
EXTERNAL_KEYS = {"external"}


def _admin_writes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route behind the API-token guard that is not a read."""
    found = set()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if require_api_token in handler.resolve_guards():
                found |= {(method, route.path) for method in handler.http_methods - {"GET", "HEAD", "OPTIONS"}}
    return found


def _body_type(app: Any, method: str, path: str) -> Any:
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if route.path == path and method in handler.http_methods:
                parameter = handler.parsed_fn_signature.parameters.get("data")
                return None if parameter is None else parameter.annotation
    raise AssertionError(f"no route {method} {path}")


def _id_fields(annotation: Any, prefix: Loc = ()) -> set[Loc]:
    """The locations of id-bearing fields of a body type: ``*_id``/``id`` strings and lists of strings, in
    nested Structs, dataclasses and lists (index 0)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return set().union(*(_id_fields(arg, prefix) for arg in typing.get_args(annotation)))
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation)
        if item is str:
            return {(*prefix, 0)}
        return _id_fields(item, (*prefix, 0))
    names: list[tuple[str, Any]] = []
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        names = [(f.encode_name, f.type) for f in msgspec.structs.fields(annotation)]
    elif dataclasses.is_dataclass(annotation):
        hints = typing.get_type_hints(annotation)
        names = [(f.name, hints[f.name]) for f in dataclasses.fields(annotation)]
    found: set[Loc] = set()
    for name, kind in names:
        if name in NOT_REFERENCES:
            continue
        if name == "id" or name.endswith("_id"):
            found.add((*prefix, name))
        else:
            found |= _id_fields(kind, (*prefix, name))
    return found


def test_every_admin_write_and_id_field_has_a_case(app: Any) -> None:
    listed = {(write.method, write.path) for write in WRITES}
    assert listed == _admin_writes(app), "an admin write route without a case in WRITES (or a stale case)"
    for method, path in sorted(listed):
        writes = [write for write in WRITES if (write.method, write.path) == (method, path)]
        covered = {loc for write in writes for loc in write.refs}
        fields = _id_fields(_body_type(app, method, path))
        assert fields <= covered, f"{method} {path}: id fields without a case: {sorted(map(str, fields - covered))}"
        params = {name for write in writes for name in (*write.params, *write.names)}
        assert params == _params(path), f"{method} {path}: path parameters without a case"


def _params(path: str) -> set[str]:
    return {part.split(":")[0] for part in path.replace("}", "{").split("{")[1::2]}


def _world(client: Any, settings: Settings, token: str, organization_id: str, tag: str) -> dict[str, str]:
    """One of everything an admin write can name, made with ``token``; returns the ids by world key."""
    uploaded = client.post("/v1/files/", files={"file": (f"{tag}.txt", b"hi", "text/plain")}, headers=bearer(token))
    assert uploaded.status_code == 201, uploaded.text
    file_id = uploaded.json()["id"]
    benefit = api(client, token, "POST", "/v1/benefits/", 201, json={"type": "license_keys", "description": "Key"})
    downloads = api(
        client,
        token,
        "POST",
        "/v1/benefits/",
        201,
        json={"type": "downloadables", "description": "Files", "properties": {"files": [file_id]}},
    )
    product = api(
        client,
        token,
        "POST",
        "/v1/products/",
        201,
        json={
            "name": f"{tag} plan",
            "recurring_interval": "month",
            "prices": [{"amount_type": "fixed", "price_amount": 900, "price_currency": "usd"}],
            "benefits": [benefit["id"]],
        },
    )
    customer = api(
        client, token, "POST", "/v1/customers/", 201, json={"email": f"{tag}@example.com", "external_id": f"{tag}-ext"}
    )
    subscription = api(
        client,
        token,
        "POST",
        "/v1/subscriptions/",
        201,
        json={
            "customer_id": customer["id"],
            "product_id": product["id"],
            "status": "active",
            "current_period_start": PERIOD,
        },
    )
    order = api(
        client, token, "POST", "/v1/orders/", 201, json={"customer_id": customer["id"], "product_id": product["id"]}
    )
    grant = api(client, token, "GET", f"/v1/benefit-grants/?subscription_id={subscription['id']}", 200)["items"][0]
    endpoint = api(
        client,
        token,
        "POST",
        "/v1/webhooks/endpoints",
        201,
        json={"url": "https://example.com/hook", "events": ["order.refunded"]},
    )
    return {
        "org": organization_id,
        "file": file_id,
        "benefit": benefit["id"],
        "downloads": downloads["id"],
        "product": product["id"],
        "price": product["prices"][0]["id"],
        "customer": customer["id"],
        "external": f"{tag}-ext",
        "subscription": subscription["id"],
        "order": order["id"],
        "grant": grant["id"],
        "license_key": api(client, token, "GET", "/v1/license-keys/", 200)["items"][0]["id"],
        "endpoint": endpoint["id"],
        "event": _failed_event(settings, endpoint["id"], organization_id),
    }


def _failed_event(settings: Settings, endpoint_id: str, organization_id: str) -> str:
    """A webhook event that gave up (so no worker touches it while the test runs), to be redelivered."""
    event_id = new_id()
    now = iso(Clock().now())
    with sqlite3.connect(settings.db_path) as conn:
        conn.execute(
            "INSERT INTO webhook_events (id, endpoint_id, organization_id, type, payload, status, attempts, "
            "next_attempt_at, created_at) VALUES (?, ?, ?, 'order.refunded', '{}', 'failed', 5, ?, ?)",
            (event_id, endpoint_id, organization_id, now, now),
        )
    conn.close()
    return event_id


@pytest.fixture
def tenants(client: Any, settings: Settings) -> dict[str, Any]:
    admin = mint_token(settings)
    alpha, bravo = create_org(client, admin, "alpha"), create_org(client, admin, "bravo")
    token_a, token_b = mint_token(settings, alpha["id"]), mint_token(settings, bravo["id"])
    return {
        "admin": admin,
        "token": token_a,
        "own": _world(client, settings, token_a, alpha["id"], "a"),
        "other": _world(client, settings, token_b, bravo["id"], "b"),
    }


def _snapshot(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (both organizations, and anything else), plus the files on disk. Left out: API
    tokens' last-use stamps and the email outbox's delivery state, which background work and every authenticated
    request update; the outbox's rows themselves are compared. The sign-in links of sent mail (``email_links``) are
    left out too: the outbox worker writes them when it sends mail queued before the walk."""
    conn = sqlite3.connect(settings.db_path)
    try:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        rows = {}
        for table in tables:
            if table == "email_links":  # written by the outbox worker as it sends earlier mail (background)
                continue
            select = {"api_tokens": "id, organization_id, revoked_at", "email_outbox": "id"}.get(table, "*")
            rows[table] = sorted(map(tuple, conn.execute(f"SELECT {select} FROM {table}")), key=repr)
    finally:
        conn.close()
    rows["files on disk"] = sorted((str(path),) for path in settings.files_dir.rglob("*"))
    return rows


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {key: _fill(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, ids) for item in value]
    return value


def _set(body: Any, loc: Loc, value: str) -> Any:
    """A deep copy of ``body`` with ``value`` at ``loc``."""
    copy = msgspec.json.decode(msgspec.json.encode(body))
    target = copy
    for step in loc[:-1]:
        target = target[step]
    target[loc[-1]] = value
    return copy


def _send(client: Any, token: str, write: Write, ids: dict[str, str], params: dict[str, str], body: Any) -> Any:
    path = write.path
    for name, value in params.items():
        path = path.replace(f"{{{name}:str}}", value)
    if write.multipart:
        files = {"file": ("x.txt", b"new bytes", "text/plain")}
        return client.request(write.method, path, data=body, files=files, headers=bearer(token))
    return client.request(write.method, path, json=body, headers=bearer(token))


def _cases(write: Write, own: dict[str, str], other: dict[str, str], admin: bool) -> list[tuple[str, Any, Any, Loc]]:
    """(label, path params, body, expected 422 location or ()) for each id of ``write``: foreign, then unknown."""
    params = {**write.names, **{name: own[key] for name, key in write.params.items()}}
    body = _fill(write.body, own) if write.body is not None else None
    cases = []
    for name, key in write.params.items():
        unknown = UNKNOWN_EXTERNAL if key in EXTERNAL_KEYS else UNKNOWN
        if not admin:  # an admin token may act on any organization's object
            cases.append((f"path {name} foreign", {**params, name: other[key]}, body, ()))
        cases.append((f"path {name} unknown", {**params, name: unknown}, body, ()))
    for loc, key in write.refs.items():
        unknown = UNKNOWN_EXTERNAL if key in EXTERNAL_KEYS else UNKNOWN
        if not (admin and (loc in ANCHORS or loc in write.anchors)):
            cases.append((f"body {loc} foreign", params, _set(body, loc, other[key]), loc))
        cases.append((f"body {loc} unknown", params, _set(body, loc, unknown), loc))
    return cases


@pytest.mark.parametrize("caller", ["organization token", "admin token"])
def test_every_admin_write_refuses_foreign_and_unknown_ids(
    client: Any, settings: Settings, tenants: dict[str, Any], caller: str
) -> None:
    admin = caller == "admin token"
    token = tenants["admin"] if admin else tenants["token"]
    own, other = tenants["own"], tenants["other"]
    before = _snapshot(settings)
    failures, sent = [], 0
    for write in WRITES:
        for label, params, body, loc in _cases(write, own, other, admin):
            sent += 1
            response = _send(client, token, write, own, params, body)
            where = f"{write.method} {write.path} {label}: {response.status_code} {response.text[:300]}"
            expected_status = 403 if write.admin_only and not admin else 422 if loc else 404
            if response.status_code != expected_status:
                failures.append(where)
            elif expected_status == 422:
                problem = response.json()["detail"][0]
                if problem["loc"] != ["body", *loc] or "does not exist" not in problem["msg"]:
                    failures.append(where)
    assert failures == []
    assert sent > 60
    after = _snapshot(settings)
    assert {table: rows for table, rows in after.items() if rows != before[table]} == {}


def test_another_tenant_cannot_make_an_organization_undeletable(client: Any, tenants: dict[str, Any]) -> None:
    """The issue's exploit: an order of A naming B's price made B's deletion fail with a 409."""
    token, own, other = tenants["token"], tenants["own"], tenants["other"]
    body = _fill({**ORDER_BODY, "subscription_id": None, "billing_reason": "purchase"}, own)
    body["items"][0]["product_price_id"] = other["price"]
    refused = client.post("/v1/orders/", json=body, headers=bearer(token))
    assert refused.status_code == 422
    assert refused.json()["detail"] == [
        {"loc": ["body", "items", 0, "product_price_id"], "msg": "Price does not exist.", "type": "value_error"}
    ]
    for write in WRITES:  # every other reference attempt too, then the delete
        for _, params, attempt, _ in _cases(write, own, other, admin=False):
            _send(client, token, write, own, params, attempt)
    assert client.delete(f"/v1/organizations/{other['org']}", headers=bearer(tenants["admin"])).status_code == 204
    assert api(client, token, "GET", f"/v1/orders/{own['order']}", 200)["id"] == own["order"]


def test_org_delete_detaches_foreign_references_recorded_before_the_check(
    client: Any, settings: Settings, tenants: dict[str, Any]
) -> None:
    """Data written before writes were checked (an order item of A naming B's price) does not block B's deletion;
    A's order keeps its item, without the price link."""
    own, other = tenants["own"], tenants["other"]
    with sqlite3.connect(settings.db_path) as conn:
        conn.execute("UPDATE order_items SET product_price_id = ? WHERE order_id = ?", (other["price"], own["order"]))
    conn.close()
    assert client.delete(f"/v1/organizations/{other['org']}", headers=bearer(tenants["admin"])).status_code == 204
    order = api(client, tenants["token"], "GET", f"/v1/orders/{own['order']}", 200)
    assert [item["product_price_id"] for item in order["items"]] == [None]
    assert order["items"][0]["amount"] == 900


@pytest.mark.parametrize("price", ["unknown", "foreign", "another product's"])
def test_subscription_patch_with_a_bad_price_keeps_the_price(client: Any, tenants: dict[str, Any], price: str) -> None:
    token, own, other = tenants["token"], tenants["own"], tenants["other"]
    if price == "another product's":
        second = api(
            client,
            token,
            "POST",
            "/v1/products/",
            201,
            json={
                "name": "Other",
                "recurring_interval": "month",
                "prices": [{"price_amount": 5, "price_currency": "usd"}],
            },
        )
        price_id = second["prices"][0]["id"]
    else:
        price_id = UNKNOWN if price == "unknown" else other["price"]
    path = f"/v1/subscriptions/{own['subscription']}"
    response = client.patch(path, json={"price_id": price_id}, headers=bearer(token))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "price_id"]
    assert api(client, token, "GET", path, 200)["price_id"] == own["price"]


def test_deleted_objects_cannot_be_referenced(client: Any, tenants: dict[str, Any]) -> None:
    """A soft-deleted customer or benefit still exists as a row (its orders and grants name it) but is never a new
    reference: the same 422 as an unknown id."""
    token, own = tenants["token"], tenants["own"]
    api(client, token, "DELETE", f"/v1/benefits/{own['benefit']}", 204)
    relinked = client.post(
        f"/v1/products/{own['product']}/benefits", json={"benefits": [own["benefit"]]}, headers=bearer(token)
    )
    assert relinked.status_code == 422
    assert relinked.json()["detail"][0]["loc"] == ["body", "benefits", 0]
    api(client, token, "DELETE", f"/v1/customers/{own['customer']}", 204)
    for path, body in [
        ("/v1/orders/", {"customer_id": own["customer"], "product_id": own["product"]}),
        ("/v1/subscriptions/", {**_fill(SUBSCRIPTION_BODY, own)}),
        ("/v1/customer-sessions/", {"customer_id": own["customer"]}),
    ]:
        response = client.post(path, json=body, headers=bearer(token))
        assert response.status_code == 422, path
        assert response.json()["detail"][0] == {
            "loc": ["body", "customer_id"],
            "msg": "Customer does not exist.",
            "type": "value_error",
        }, path
