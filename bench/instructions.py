"""Instructions per request for each ``bench/run.py`` scenario, counted by valgrind's callgrind: repeatable to about
±1% where wall-clock time on a shared VM moves 20-30% between runs, so it shows what a single code change saves.

For each scenario, this script runs itself under ``valgrind --tool=callgrind --instr-atstart=no`` in ``--child``
mode, which builds the app in-process (``create_app`` over the data dir, lifespan started, no server), mints the
known customer's sessions, gets a CSRF cookie from the sign-in page, checks the scenario answers 200, and sends 50
warm-up requests straight through the ASGI interface. Then the parent switches instrumentation on
(``callgrind_control -i on``), the child sends ``--requests`` more and exits, and the instruction total divided by
the request count is printed. The background tasks are off (they run on wall-clock time, which valgrind slows ~50x)
and so is the inline-read budget (every query would overrun 2 ms under valgrind and be re-run in a thread), and
``PYTHONHASHSEED`` is fixed. Instructions are not time: a page's share of ``/healthz`` when served is ~1.5x its share
here (the server's fixed cost per request). Needs ``valgrind`` (Debian package).

    python bench/instructions.py                       # every scenario on bench/data/small
    python bench/instructions.py overview orders --db large --requests 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run as bench_run  # noqa: E402 - bench/run.py, next to this file

SCENARIOS = ["healthz", "sign_in", "overview", "orders", "receipt", "api_orders", "validate"]
WARM_UP = 50


def _wait_for(path: Path) -> None:
    while not path.exists():
        time.sleep(0.05)


async def _drive(data_dir: Path, name: str, requests: int, flag: Path) -> None:
    os.environ["PORTAL_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("PORTAL_BASE_URL", "http://127.0.0.1:9")
    import portal.db
    from portal.app import create_app
    from portal.notifications.background import BackgroundTasks
    from portal.settings import Settings

    portal.db.INLINE_READ_BUDGET = 3600.0
    BackgroundTasks.start = lambda self: None  # type: ignore[method-assign]
    known = json.loads((data_dir / "bench.json").read_text())
    browser, api, ids = bench_run.mint_sessions(data_dir, known)
    app = create_app(Settings.from_env())
    lifespan_in: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan_out: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await lifespan_in.put({"type": "lifespan.startup"})
    lifespan = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, lifespan_in.get, lifespan_out.put)
    )
    started = await lifespan_out.get()
    if started["type"] != "lifespan.startup.complete" or lifespan.done():
        raise SystemExit(f"startup failed: {started}")

    async def call(scenario: bench_run.Scenario) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        body = (scenario.body or "").encode()
        headers = [(k.lower().encode(), v.encode()) for k, v in scenario.headers.items()]
        headers += [(b"host", b"127.0.0.1")] + ([(b"content-length", str(len(body)).encode())] if body else [])
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": scenario.method,
            "scheme": "http", "path": scenario.path, "raw_path": scenario.path.encode(), "query_string": b"",
            "root_path": "", "headers": headers, "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 9),
            "state": {},
        }  # fmt: skip
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        return sent[0]["status"], sent[0].get("headers", []), b"".join(m.get("body", b"") for m in sent[1:])

    try:
        sign_in = {s.name: s for s in bench_run.scenarios(known, browser, api)}["sign_in"]
        _, headers, _ = await call(sign_in)
        cookies = [v.decode() for k, v in headers if k == b"set-cookie" and v.startswith(b"csrftoken=")]
        csrf = cookies[0].split(";")[0].split("=", 1)[1] if cookies else ""
        scenario = {s.name: s for s in bench_run.scenarios(known, browser, api, csrf)}[name]
        status, _, body = await call(scenario)
        if status != 200:
            raise SystemExit(f"{name}: answered {status}: {body[:200]!r}")
        for _ in range(WARM_UP):
            await call(scenario)
        flag.with_suffix(".ready").write_text("ready")
        await asyncio.to_thread(_wait_for, flag.with_suffix(".go"))
        for _ in range(requests):
            await call(scenario)
    finally:
        bench_run.delete_sessions(data_dir, ids)
    sys.stdout.flush()
    os._exit(0)  # no shutdown work counted after the measured requests


def measure(data_dir: Path, name: str, requests: int, work: Path) -> int:
    flag = work / name
    out = work / f"{name}.callgrind"
    command = [
        "valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
        sys.executable, __file__, "--child", name, "--db-dir", str(data_dir), "--requests", str(requests),
        "--flag", str(flag),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    with (work / f"{name}.log").open("wb") as log:
        child = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        while not flag.with_suffix(".ready").exists():
            if child.poll() is not None:
                raise SystemExit(f"{name}: the driver exited, see {work / (name + '.log')}")
            time.sleep(0.2)
        subprocess.run(["callgrind_control", "-i", "on", str(child.pid)], check=True, capture_output=True)
        flag.with_suffix(".go").write_text("go")
        if child.wait() != 0:
            raise SystemExit(f"{name}: the driver failed, see {work / (name + '.log')}")
    for line in out.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1]) // requests
    raise SystemExit(f"{name}: no totals in {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=f"default: all of {', '.join(SCENARIOS)}")
    parser.add_argument("--db", default="small", help="bench/data/<db> (default: small)")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--db-dir", help=argparse.SUPPRESS)
    parser.add_argument("--flag", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        asyncio.run(_drive(Path(args.db_dir), args.child, args.requests, Path(args.flag)))
        return 0
    unknown = sorted(set(args.scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("needs valgrind (apt-get install valgrind)")
    data_dir = BENCH / "data" / args.db
    if not (data_dir / "bench.json").exists():
        raise SystemExit(f"{data_dir} has no benchmark data: run bench/generate.py first")
    with tempfile.TemporaryDirectory(prefix="portal-instructions-") as work:
        for name in args.scenarios or SCENARIOS:
            count = measure(data_dir, name, args.requests, Path(work))
            print(f"{name:12s} {count / 1000:8,.0f}k instructions/request", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
