"""Sustained Stripe webhook ingest (issue 19): signed events POSTed to
``/v1/integrations/stripe/{slug}/webhook`` of the production command, as fast as Stripe's deliveries would come.

What it does: makes a fresh data dir, starts the fake Stripe API on loopback (``tests/stripe_fake.py``: the
connector fetches a checkout session's line items from it, as from Stripe), starts ``portal serve --workers N``
(default 2, the README's production setting) with ``PORTAL_STRIPE_API_BASE`` pointing at the fake, creates an
organization with a license-key product and a monthly plan, connects it, maps the prices, then sends
``--customers`` buyers' events from ``--concurrency`` threads (keep-alive clients), each buyer three events in
order: ``checkout.session.completed`` (a Payment Link purchase: customer + paid order + license key + receipt
email queued + one fetch of its line items), ``customer.subscription.created``, ``invoice.paid``
(``subscription_create`` order). Every event is signed with Stripe's scheme at send time.

Reports (JSON): events/s over the whole run, p50/p99 per request, answers by status; checks every event was
applied and the database holds one paid order per purchase and per invoice. Target: >= 200 events/s.

Usage: ``.venv/bin/python bench/stripe_ingest.py [--customers 1000] [--concurrency 8] [--workers 2]``
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import stripe_events as se  # noqa: E402  (the same shapes and signing as the tests)
from tests.stripe_fake import fake_stripe  # noqa: E402

WEBHOOK_SECRET = "whsec_bench_ingest"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def buyer_events(index: int, guide: dict[str, Any], plan: dict[str, Any]) -> list[dict[str, Any]]:
    now = int(time.time())
    customer_id = f"cus_bench{index:06d}"
    email = f"buyer{index}@bench.example"
    session = se.checkout_session(
        f"cs_bench{index:06d}",
        created=now,
        email=email,
        name=f"Buyer {index}",
        amount=guide["unit_amount"],
        customer_id=customer_id,
        payment_intent=f"pi_bench{index:06d}",
        payment_link="plink_bench",
    )
    subscription_id = f"sub_bench{index:06d}"
    sub = se.subscription(subscription_id, customer_id=customer_id, the_price=plan, created=now, period_start=now)
    line = se.invoice_line(f"il_bench{index:06d}", plan["unit_amount"], plan, subscription_id, "1 × Plan")
    invoice = se.invoice(
        f"in_bench{index:06d}",
        customer_id=customer_id,
        subscription_id=subscription_id,
        created=now,
        billing_reason="subscription_create",
        lines=[line],
    )
    return [
        se.event(f"evt_bench{index:06d}_a", "checkout.session.completed", session, now),
        se.event(f"evt_bench{index:06d}_b", "customer.subscription.created", sub, now),
        se.event(f"evt_bench{index:06d}_c", "invoice.paid", invoice, now),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1000, help="buyers (three events each)")
    parser.add_argument("--concurrency", type=int, default=8, help="sending threads")
    parser.add_argument("--workers", type=int, default=2, help="portal serve --workers")
    parser.add_argument("--keep", action="store_true", help="keep the data dir (printed) instead of removing it")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="portal-stripe-ingest-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with fake_stripe() as fake:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
        env.update(
            PORTAL_DATA_DIR=str(work / "data"),
            PORTAL_BASE_URL=base,
            PORTAL_SECRET_KEY=secrets.token_urlsafe(32),
            PORTAL_MAIL_BACKEND="outbox",
            PORTAL_STRIPE_API_BASE=fake.base_url,
        )
        portal = [sys.executable, "-m", "portal"]
        made = subprocess.run(
            [*portal, "token", "create", "--admin", "--name", "bench"], env=env, capture_output=True, text=True
        )
        if made.returncode != 0:
            raise SystemExit(f"portal token create failed: {made.stderr}")
        token = made.stdout.strip().splitlines()[-1]
        with (work / "serve.log").open("wb") as log:
            server = subprocess.Popen(
                [*portal, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(f"portal serve did not come up; see {work / 'serve.log'}")
                time.sleep(0.2)
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as admin:
                org = admin.post("/v1/organizations/", json={"name": "Bench", "slug": "bench"}).json()
                scope = {"organization_id": org["id"]}
                key = admin.post(
                    "/v1/benefits/",
                    json={**scope, "type": "license_keys", "description": "Key", "properties": {"prefix": "BENCH"}},
                ).json()

                def product(name: str, amount: int, **extra: Any) -> dict[str, Any]:
                    body = {
                        **scope,
                        "name": name,
                        "prices": [{"amount_type": "fixed", "price_amount": amount, "price_currency": "usd"}],
                        "benefits": [key["id"]],
                        **extra,
                    }
                    return dict(admin.post("/v1/products/", json=body).json())

                guide_product = product("Guide", 2900)
                plan_product = product("Plan", 1000, recurring_interval="month")
                connect = {"api_key": fake.api_key, "webhook_secret": WEBHOOK_SECRET}
                admin.put(f"/v1/connectors/stripe?organization_id={org['id']}", json=connect).raise_for_status()
                for price_id, product_id in (("price_guide", guide_product["id"]), ("price_plan", plan_product["id"])):
                    admin.put(
                        f"/v1/connectors/stripe/prices/{price_id}?organization_id={org['id']}",
                        json={"product_id": product_id},
                    ).raise_for_status()
            guide = se.price("price_guide", 2900, product="prod_guide")
            plan = se.price("price_plan", 1000, product="prod_plan", interval="month")
            for index in range(args.customers):
                session_id = f"cs_bench{index:06d}"
                fake.add("checkout/sessions", {"id": session_id, "object": "checkout.session"})
                fake.line_items[session_id] = [se.line_item(f"li_bench{index:06d}", guide, "Guide")]

            hook = f"{base}/v1/integrations/stripe/bench/webhook"
            answers: Counter[str] = Counter()
            latencies: list[float] = []
            lock = threading.Lock()
            next_buyer = iter(range(args.customers))

            def sender() -> None:
                with httpx.Client(timeout=30) as client:
                    while True:
                        with lock:
                            index = next(next_buyer, None)
                        if index is None:
                            return
                        for evt in buyer_events(index, guide, plan):  # a buyer's events in order
                            body = se.body_of(evt)
                            started = time.perf_counter()
                            answer = client.post(
                                hook, content=body, headers={"Stripe-Signature": se.signature(body, WEBHOOK_SECRET)}
                            )
                            elapsed = time.perf_counter() - started
                            status = answer.json().get("status") if answer.status_code == 200 else answer.status_code
                            with lock:
                                latencies.append(elapsed)
                                answers[str(status)] += 1

            started = time.perf_counter()
            threads = [threading.Thread(target=sender) for _ in range(args.concurrency)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(timeout=30)

    conn = sqlite3.connect(work / "data" / "portal.db")
    try:
        paid = conn.execute("SELECT billing_reason, COUNT(*) FROM orders WHERE status = 'paid' GROUP BY 1").fetchall()
        events = conn.execute("SELECT status, COUNT(*) FROM connector_events GROUP BY 1").fetchall()
    finally:
        conn.close()
    total = sum(answers.values())
    ordered = sorted(latencies)
    report = {
        "events": total,
        "seconds": round(elapsed, 2),
        "events_per_second": round(total / elapsed, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 1),
        "answers": dict(answers),
        "stored": dict(events),
        "paid_orders": dict(paid),
        "workers": args.workers,
        "concurrency": args.concurrency,
        "load_average_before": round(load_before, 2),
    }
    if args.keep:
        report["data_dir"] = str(work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2))
    ok = answers.get("applied", 0) == total and dict(paid) == {
        "purchase": args.customers,
        "subscription_create": args.customers,
    }
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
