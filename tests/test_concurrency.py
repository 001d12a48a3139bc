"""Concurrency: 50 mixed writes at once against ``portal serve --workers 2`` — orders paid through the admin API
in two organizations, customers seeded, one license key activated from many machines, validations counted,
subscriptions canceled and uncanceled, login codes requested — and then:

* no 5xx and no "database is locked" (nor any traceback) in the server log;
* receipt numbers unique and gap-free per organization;
* activations never exceed the key's limit (exactly ``limit`` succeed), validations counted exactly;
* every acknowledged creation is in the database, and nothing else.
"""

from __future__ import annotations

import random
import re
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from portal.db import connect_sync
from portal.settings import Settings
from portal.tls import https_context
from tests.admin_support import bearer, mint_token
from tests.ops_support import make_customer, make_org, migrated, served
from tests.signin_helpers import insert_session

ACTIVATION_LIMIT = 3


def _post(base: str, token: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{base}{path}", json=body, headers=bearer(token), timeout=30, verify=https_context())
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _shop(base: str, settings: Settings, admin: str, slug: str) -> dict[str, Any]:
    org = make_org(base, admin, slug)
    benefit = _post(
        base,
        admin,
        "/v1/benefits/",
        {
            "organization_id": org["id"],
            "type": "license_keys",
            "description": "License",
            "properties": {"activations": {"limit": ACTIVATION_LIMIT, "enable_customer_admin": True}},
        },
    )
    price = [{"amount_type": "fixed", "price_amount": 1000, "price_currency": "usd"}]
    once = _post(
        base,
        admin,
        "/v1/products/",
        {"organization_id": org["id"], "name": "App", "prices": price, "benefits": [benefit["id"]]},
    )
    monthly = _post(
        base,
        admin,
        "/v1/products/",
        {"organization_id": org["id"], "name": "Plan", "prices": price, "recurring_interval": "month"},
    )
    customer = make_customer(base, admin, org["id"], f"owner@{slug}.example")
    _post(
        base,
        admin,
        "/v1/orders/",
        {"organization_id": org["id"], "customer_id": customer["id"], "product_id": once["id"]},
    )
    subs = [
        _post(
            base,
            admin,
            "/v1/subscriptions/",
            {
                "customer_id": customer["id"],
                "product_id": monthly["id"],
                "status": "active",
                "current_period_start": "2026-11-01T00:00:00Z",
            },
        )["id"]
        for _ in range(2)
    ]
    pending = [
        _post(
            base,
            admin,
            "/v1/orders/",
            {"customer_id": customer["id"], "product_id": monthly["id"], "status": "pending"},
        )["id"]
        for _ in range(2)
    ]
    token = insert_session(settings, str(org["id"]), str(customer["id"]), kind="api")
    keys = httpx.get(f"{base}/v1/customer-portal/license-keys/", headers=bearer(token), timeout=30).json()["items"]
    assert len(keys) == 1
    return {
        "org": org,
        "customer": customer,
        "product": once["id"],
        "subs": subs,
        "pending": pending,
        "customer_token": token,
        "key": keys[0]["key"],
        "key_id": keys[0]["id"],
    }


def test_fifty_concurrent_mixed_writes(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = migrated(data_dir)
    admin = mint_token(settings)
    log = tmp_path / "serve.log"
    with served(data_dir, log, "--workers", "2", PORTAL_TRUSTED_PROXIES="127.0.0.1") as server:
        base = server.base
        shops = [_shop(base, settings, admin, slug) for slug in ("initech", "hooli")]
        before = _counts(settings)

        calls: list[tuple[str, Callable[[httpx.Client], httpx.Response]]] = []
        for i in range(12):  # orders paid at creation
            shop = shops[i % 2]
            body = {"customer_id": shop["customer"]["id"], "product_id": shop["product"]}
            calls.append(("pay", lambda c, body=body: c.post("/v1/orders/", json=body, headers=bearer(admin))))
        for shop in shops:  # pending orders paid now
            for order_id in shop["pending"]:
                calls.append(
                    (
                        "pay",
                        lambda c, order_id=order_id: c.patch(
                            f"/v1/orders/{order_id}", json={"status": "paid"}, headers=bearer(admin)
                        ),
                    )
                )
        for i in range(8):  # customers seeded
            body = {"organization_id": shops[i % 2]["org"]["id"], "email": f"new{i}@example.com"}
            calls.append(("customer", lambda c, body=body: c.post("/v1/customers/", json=body, headers=bearer(admin))))
        shop = shops[0]
        for i in range(8):  # one key, many machines
            body = {"key": shop["key"], "organization_id": shop["org"]["id"], "label": f"machine {i}"}
            calls.append(
                ("activate", lambda c, body=body: c.post("/v1/customer-portal/license-keys/activate", json=body))
            )
        for _ in range(6):
            body = {"key": shops[1]["key"], "organization_id": shops[1]["org"]["id"]}
            calls.append(
                ("validate", lambda c, body=body: c.post("/v1/customer-portal/license-keys/validate", json=body))
            )
        for shop in shops:  # cancel, uncancel, cancel again: each answer is a documented one
            for sub_id in shop["subs"][:1]:
                headers = bearer(shop["customer_token"])
                path = f"/v1/customer-portal/subscriptions/{sub_id}"
                calls.append(("subscription", lambda c, path=path, h=headers: c.delete(path, headers=h)))
                calls.append(
                    (
                        "subscription",
                        lambda c, path=path, h=headers: c.patch(path, json={"cancel_at_period_end": False}, headers=h),
                    )
                )
                calls.append(
                    (
                        "subscription",
                        lambda c, path=path, h=headers: c.patch(path, json={"cancel_at_period_end": True}, headers=h),
                    )
                )
        for i in range(6):  # login codes, each from its own address
            body = {"email": shops[i % 2]["customer"]["email"], "organization_id": shops[i % 2]["org"]["id"]}
            headers = {"X-Forwarded-For": f"198.51.100.{i + 1}"}
            calls.append(
                (
                    "login",
                    lambda c, body=body, h=headers: c.post(
                        "/v1/customer-portal/customer-session/request", json=body, headers=h
                    ),
                )
            )
        assert len(calls) == 50
        random.Random(6).shuffle(calls)

        start = threading.Barrier(len(calls))

        def run(call: tuple[str, Callable[[httpx.Client], httpx.Response]]) -> tuple[str, httpx.Response]:
            kind, send = call
            with httpx.Client(base_url=base, timeout=60, verify=https_context()) as client:
                start.wait(timeout=30)
                return kind, send(client)

        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            results = list(pool.map(run, calls))
        output = server.output()

    statuses = Counter((kind, response.status_code) for kind, response in results)
    assert not [key for key in statuses if key[1] >= 500], statuses
    assert "database is locked" not in output and "Traceback" not in output, output[-3000:]
    assert statuses[("pay", 201)] == 12 and statuses[("pay", 200)] == 4, statuses
    assert statuses[("customer", 201)] == 8, statuses
    assert statuses[("activate", 200)] == ACTIVATION_LIMIT, statuses
    assert statuses[("activate", 403)] == 8 - ACTIVATION_LIMIT, statuses
    assert statuses[("validate", 200)] == 6, statuses
    assert statuses[("login", 202)] == 6, statuses
    assert {status for (kind, status) in statuses if kind == "subscription"} <= {200, 403, 409}, statuses

    after = _counts(settings)
    assert after["customers"] - before["customers"] == 8
    assert after["login_codes"] - before["login_codes"] == 6
    assert after["activations"] == ACTIVATION_LIMIT
    conn = connect_sync(settings.db_path)
    try:
        validations = conn.execute(
            "SELECT validations FROM license_keys WHERE id = ?", (shops[1]["key_id"],)
        ).fetchone()
        assert validations[0] == 6
        for shop in shops:
            org_id = shop["org"]["id"]
            numbers = [
                row[0]
                for row in conn.execute(
                    "SELECT receipt_number FROM orders WHERE organization_id = ? AND receipt_number IS NOT NULL",
                    (org_id,),
                )
            ]
            paid = conn.execute(
                "SELECT COUNT(*) FROM orders WHERE organization_id = ? AND paid_at IS NOT NULL", (org_id,)
            ).fetchone()[0]
            sequence = sorted(int(re.fullmatch(r"[A-Z]+-(\d+)", n).group(1)) for n in numbers)  # type: ignore[union-attr]
            assert sequence == list(range(1, paid + 1)), (shop["org"]["slug"], numbers)
            assert paid == 1 + 6 + 2  # the setup order, six paid at creation, two pending ones paid
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def _counts(settings: Settings) -> dict[str, int]:
    conn = connect_sync(settings.db_path)
    try:
        return {
            "customers": conn.execute("SELECT COUNT(*) FROM customers").fetchone()[0],
            "login_codes": conn.execute("SELECT COUNT(*) FROM login_codes").fetchone()[0],
            "activations": conn.execute("SELECT COUNT(*) FROM license_key_activations").fetchone()[0],
        }
    finally:
        conn.close()
