"""Where a write's time goes under a flood (issue 17.9), measured in one process so that other load on the machine
scales the quiet and the flooded figures alike.

The demo seed in a fresh data dir, the app served on ONE event loop through ``httpx.ASGITransport`` (no sockets,
no uvicorn), and on the same loop:

* the event-loop turns a billing save (``PATCH /v1/customer-portal/customers/me``) and a read of the same customer
  take (a task ticks once per turn; a request that never waits takes none; a hop to a thread is one or more);
* ``--saves`` sequential saves, then as many reads, quiet; then the same while ``--flooders`` clients flood flat
  out with bogus license-key validations (``--kind keys``) or wrong sign-in codes from rotating addresses
  (``--kind codes``), each yielding to the loop once per request as a socket read would.

Usage: ``.venv/bin/python bench/floods_inprocess.py [--kind keys|codes] [--flooders 4] [--saves 100]``; prints JSON.
``bench/floods.py`` is the served, end-to-end figure (bench/README.md, "Writes under floods").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import logging
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from floods import mint_api_session  # noqa: E402

from portal.app import create_app  # noqa: E402
from portal.cli import main as cli  # noqa: E402
from portal.resources import demo_seed_path  # noqa: E402
from portal.settings import Settings  # noqa: E402

SAVE = "/v1/customer-portal/customers/me"


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "p50_ms": round(1000 * statistics.median(ordered), 2),
        "p95_ms": round(1000 * ordered[max(0, int(0.95 * len(ordered)) - 1)], 2),
    }


async def measure(data_dir: Path, kind: str, flooders: int, count: int) -> dict[str, Any]:
    env = {"PORTAL_DATA_DIR": str(data_dir), "PORTAL_TRUSTED_PROXIES": "127.0.0.1", "PORTAL_BASE_URL": "http://t"}
    settings = Settings.from_env(env)
    token, org_id = mint_api_session(data_dir, "alex@example.com")
    app = create_app(settings)
    report: dict[str, Any] = {"kind": kind, "flooders": flooders, "saves": count}
    async with app.lifespan():
        transport = httpx.ASGITransport(app, client=("127.0.0.1", 1000))
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as client:

            async def save(i: int) -> None:
                answer = await client.patch(SAVE, json={"billing_name": f"Alex {i} {secrets.token_hex(2)}"})
                if answer.status_code != 200:
                    raise SystemExit(f"save answered {answer.status_code}: {answer.text[:200]}")

            async def probe(n: int) -> tuple[list[float], list[float]]:
                saves: list[float] = []
                reads: list[float] = []
                for i in range(n):
                    started = time.perf_counter()
                    await save(i)
                    saves.append(time.perf_counter() - started)
                    await asyncio.sleep(0.002)
                for _ in range(n):
                    started = time.perf_counter()
                    await client.get(SAVE)
                    reads.append(time.perf_counter() - started)
                    await asyncio.sleep(0.002)
                return saves, reads

            await probe(20)  # warm-up
            turns = [0]

            async def tick() -> None:
                while True:
                    turns[0] += 1
                    await asyncio.sleep(0)

            ticker = asyncio.create_task(tick())
            save_turns, read_turns = [], []
            for i in range(20):
                before = turns[0]
                await save(i)
                save_turns.append(turns[0] - before)
                before = turns[0]
                await client.get(SAVE)
                read_turns.append(turns[0] - before)
            ticker.cancel()
            report["loop_turns_median"] = {
                "save": statistics.median(save_turns),
                "read": statistics.median(read_turns),
            }
            quiet_saves, quiet_reads = await probe(count)
            report["quiet"] = {"save": summary(quiet_saves), "read": summary(quiet_reads)}

            stop = asyncio.Event()
            sent = [0]
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as attacker:

                async def flood(offset: int) -> None:
                    n = offset
                    while not stop.is_set():
                        n += 1
                        if kind == "keys":
                            body = {"key": f"BOGUS-{secrets.token_hex(16).upper()}", "organization_id": org_id}
                            await attacker.post("/v1/customer-portal/license-keys/validate", json=body)
                        else:
                            slot = n % 64_000
                            forwarded = {"X-Forwarded-For": f"203.0.{slot % 256}.{(slot // 256) % 250 + 1}"}
                            body = {"code": "ZZZZZZ", "email": "alex@example.com", "organization_id": org_id}
                            await attacker.post(
                                "/v1/customer-portal/customer-session/authenticate", json=body, headers=forwarded
                            )
                        sent[0] += 1
                        await asyncio.sleep(0)  # a socket read between requests, as a served request has

                tasks = [asyncio.create_task(flood(j * 100_000)) for j in range(flooders)]
                await asyncio.sleep(1.0)
                started, sent_before = time.perf_counter(), sent[0]
                flood_saves, flood_reads = await probe(count)
                rate = (sent[0] - sent_before) / (time.perf_counter() - started)
                stop.set()
                await asyncio.gather(*tasks)
            report["flood"] = {"save": summary(flood_saves), "read": summary(flood_reads), "per_second": round(rate)}
            for what in ("save", "read"):
                ratio = report["flood"][what]["p95_ms"] / max(report["quiet"][what]["p95_ms"], 0.01)
                report["flood"][what]["p95_over_quiet"] = round(ratio, 2)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("keys", "codes"), default="keys")
    parser.add_argument("--flooders", type=int, default=4)
    parser.add_argument("--saves", type=int, default=100)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="portal-floods-inprocess-") as tmp:
        data_dir = Path(tmp) / "data"
        os.environ["PORTAL_DATA_DIR"] = str(data_dir)
        with contextlib.redirect_stdout(io.StringIO()):
            cli(["migrate"])
            cli(["seed", str(demo_seed_path())])
        logging.disable(logging.CRITICAL)  # the request log would be most of the work
        report = asyncio.run(measure(data_dir, args.kind, args.flooders, args.saves))
    report["load_average_before"] = round(load_before, 2)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
