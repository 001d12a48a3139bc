"""Load-test the production server (``portal serve``) with ``wrk`` on the small and the large benchmark databases.

For each data dir made by ``bench/generate.py`` (``bench/data/small`` and ``bench/data/large``) this script:

1. mints a browser session and an API session for the known customer (a ``customer_sessions`` row whose
   ``token_hash`` is ``portal.sessions.store.token_digest(secret, token)`` with the data dir's ``secret_key``);
2. starts ``portal serve --host 127.0.0.1 --port P --workers N`` exactly as the README's production section says
   (N from the README, else 2), with its log on ``<data dir>/serve.log``, and waits for ``/healthz``;
3. checks every scenario answers 200 (a redirect to the sign-in page would be fast and wrong) and warms each up;
4. with both servers up (the idle one costs nothing), runs ``--rounds`` rounds (default 5) through all scenarios
   in turn, interleaving the DBs (round 1 small, round 1 large, round 2 small…), each a ``wrk --latency`` run of
   ``--duration`` seconds (a Lua script sets the method, body, cookie/``Authorization`` and prints the numbers as
   JSON) while sampling the RSS of that server's process tree from ``/proc``. A scenario's numbers are the medians
   of its rounds; its ratio to ``/healthz`` is the median of the ratios within a round, and its large/small
   latency ratio the median of the ratios of the same round number: this VM's speed drifts by 20-30% over
   minutes, and two runs a few minutes apart measure two different machines, while one round through all
   scenarios takes about half a minute;
5. stops the servers and deletes the minted sessions.

Each run also reads the server's threads' scheduler statistics (``/proc/<pid>/task/<tid>/schedstat``): its CPU
time per request, and the share of its runnable time it spent waiting for a CPU that another process had
(``cpu_wait``). With ``--control``, a bare Litestar app on the same stack (``bench/control_app.py``) is loaded right
after each scenario of each round with the same CPU per request and the same answer size: the p99/p50 check names
the control's figure beside Portal's, so a tail that the machine gives any request of that cost is told apart
from one that Portal's code adds (issue 18.9).

The results table (machine, date, req/s, p50/p99, ratios to ``/healthz`` and large/small, RSS, targets) is written
into ``bench/README.md`` between the ``bench:results`` markers (a rerun replaces it) and as JSON into
``bench/data/results.json``. Use ``--wait-load 1.0`` to start only once the 1-minute load average is below 1.0.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from portal.sessions.store import token_digest

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
README = BENCH_DIR / "README.md"
START_MARK = "<!-- bench:results:start -->"
END_MARK = "<!-- bench:results:end -->"

# Targets of the benchmark issue (on a 2-core machine, in the same run).
MIN_RATIO = {"overview": 0.35, "orders": 0.35, "receipt": 0.35, "sign_in": 0.35, "api_orders": 0.40, "validate": 0.40}
MAX_P99_MS = 50.0
MAX_P99_OVER_P50 = 3.0  # issue 18.9: the tail, with 1 and with 2 workers
MAX_LARGE_OVER_SMALL = 1.25
MAX_RSS_MB = 200.0


@dataclass(frozen=True)
class Scenario:
    name: str
    label: str
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None


@dataclass
class Result:
    scenario: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    rss_mb: float
    rounds: list[dict[str, float]] = field(default_factory=list)
    cpu_ms: float = 0.0  # the server's CPU time per request (all its threads)
    cpu_wait: float = 0.0  # the share of the server's runnable time spent waiting for a CPU (another process had it)


LUA = """
wrk.method = {method}
wrk.body = {body}
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {{"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def lua_string(value: str | None) -> str:
    return "nil" if value is None else json.dumps(value)  # a JSON string literal is a valid Lua string literal


def readme_workers(default: int = 2) -> int:
    """``--workers N`` as recommended in the project README's production section (2 cores), else ``default``."""
    text = (REPO / "README.md").read_text()
    match = re.search(r"^#+ .*(?:[Pp]roduction|[Dd]eploy).*$", text, flags=re.MULTILINE)
    if match:
        section = text[match.end() :]
        following = re.search(r"^## ", section, flags=re.MULTILINE)
        section = section[: following.start()] if following else section
        found = re.search(r"--workers[ =](\d+)", section)
        if found:
            return int(found.group(1))
    return default


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tree_pids(root: int) -> list[int]:
    """``root`` and all its descendants (uvicorn's supervisor and its worker processes)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, []))
    return pids


def rss_mb(pids: Sequence[int]) -> float:
    total_kb = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


class RssSampler(threading.Thread):
    """Samples the server tree's total RSS every 0.25 s; ``peak`` is the maximum seen."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root, self.peak = root, 0.0
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.peak = max(self.peak, rss_mb(tree_pids(self.root)))
            self.stop_event.wait(0.25)


def sched_times(pids: Sequence[int]) -> tuple[int, int]:
    """(CPU time, time runnable but waiting for a CPU), in ns, summed over every thread of ``pids``."""
    cpu = wait = 0
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as handle:
                    fields = handle.read().split()
            except OSError:
                continue
            cpu, wait = cpu + int(fields[0]), wait + int(fields[1])
    return cpu, wait


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def wait_for_quiet(threshold: float, max_seconds: float) -> tuple[float, bool]:
    """Poll the 1-minute load average until it is below ``threshold``; (load, reached)."""
    deadline = time.monotonic() + max_seconds
    load = load_average()
    while load >= threshold and time.monotonic() < deadline:
        print(f"  load average {load:.2f} >= {threshold}, waiting…", file=sys.stderr, flush=True)
        time.sleep(15)
        load = load_average()
    return load, load < threshold


def mint_sessions(data_dir: Path, known: dict[str, Any]) -> tuple[str, str, list[str]]:
    """Insert a browser and an API session for the known customer; (browser token, api token, session ids)."""
    secret = (data_dir / "secret_key").read_text().strip()
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    expires = (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    conn = sqlite3.connect(data_dir / "portal.db", isolation_level=None, timeout=10)
    tokens, ids = [], []
    try:
        for kind in ("browser", "api"):
            token, session_id = secrets.token_urlsafe(32), f"bench-{secrets.token_hex(8)}"
            conn.execute(
                "INSERT INTO customer_sessions (id, token_hash, kind, organization_id, customer_id, expires_at, "
                "last_seen_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session_id,
                    token_digest(secret, token),
                    kind,
                    known["organization_id"],
                    known["customer_id"],
                    expires,
                    stamp,
                    stamp,
                ),
            )
            tokens.append(token)
            ids.append(session_id)
    finally:
        conn.close()
    return tokens[0], tokens[1], ids


def delete_sessions(data_dir: Path, ids: Sequence[str]) -> None:
    conn = sqlite3.connect(data_dir / "portal.db", isolation_level=None, timeout=10)
    try:
        conn.executemany("DELETE FROM customer_sessions WHERE id = ?", [(i,) for i in ids])
    finally:
        conn.close()


def scenarios(known: dict[str, Any], browser_token: str, api_token: str, csrf: str = "") -> list[Scenario]:
    """The measured requests. Signed-in pages send the cookies a browser that signed in has: the session and the
    CSRF cookie it got on the sign-in page (without it every answer would mint and set a new one)."""
    slug = known["organization_slug"]
    cookie = {"Cookie": f"portal_session_{slug}={browser_token}" + (f"; csrftoken={csrf}" if csrf else "")}
    return [
        Scenario("healthz", "`GET /healthz` (baseline)", "GET", "/healthz"),
        Scenario("sign_in", "sign-in page", "GET", f"/{slug}/portal"),
        Scenario("overview", "overview (50 orders), signed in", "GET", f"/{slug}/portal", cookie),
        Scenario("orders", "orders page, signed in", "GET", f"/{slug}/portal/orders", cookie),
        Scenario(
            "receipt",
            "receipt page, signed in",
            "GET",
            f"/{slug}/portal/orders/{known['receipt_order_id']}/receipt",
            cookie,
        ),
        Scenario(
            "api_orders",
            "`GET /v1/customer-portal/orders/`",
            "GET",
            "/v1/customer-portal/orders/",
            {"Authorization": f"Bearer {api_token}"},
        ),
        Scenario(
            "validate",
            "`POST …/license-keys/validate`",
            "POST",
            "/v1/customer-portal/license-keys/validate",
            {"Content-Type": "application/json"},
            json.dumps({"key": known["license_key"], "organization_id": known["organization_id"]}),
        ),
    ]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def fetch(base: str, scenario: Scenario) -> tuple[int, bytes]:
    request = urllib.request.Request(
        base + scenario.path,
        data=scenario.body.encode() if scenario.body else None,
        headers=scenario.headers,
        method=scenario.method,
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def csrf_cookie(base: str, slug: str) -> str:
    """The CSRF cookie value the sign-in page sets, as a browser would keep it."""
    with urllib.request.urlopen(f"{base}/{slug}/portal", timeout=10) as response:
        for header in response.headers.get_all("set-cookie") or []:
            name, _, rest = header.partition("=")
            if name.strip() == "csrftoken":
                return rest.split(";", 1)[0]
    return ""


def check(base: str, scenario: Scenario, known: dict[str, Any]) -> int:
    """Fails unless ``scenario`` answers 200 with what it should; the answer's size."""
    status, body = fetch(base, scenario)
    if status != 200:
        raise SystemExit(f"{scenario.name}: expected 200, got {status}: {body[:300]!r}")
    expected = {
        "overview": known["customer_email"].encode(),
        "orders": b"50",
        "api_orders": b'"total_count":50',
        "validate": known["license_key_id"].encode(),
    }.get(scenario.name)
    if expected is not None and expected not in body:
        raise SystemExit(f"{scenario.name}: answer lacks {expected!r}: {body[:300]!r}")
    return len(body)


def run_wrk(base: str, scenario: Scenario, args: argparse.Namespace, seconds: float, sampler_root: int) -> Result:
    headers = "\n".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in scenario.headers.items())
    script = LUA.format(method=lua_string(scenario.method), body=lua_string(scenario.body), headers=headers)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
        lua = handle.name
    sampler = RssSampler(sampler_root)
    sampler.start()
    pids = tree_pids(sampler_root)
    cpu_before, wait_before = sched_times(pids)
    try:
        command = [
            args.wrk,
            f"-t{args.threads}",
            f"-c{args.connections}",
            f"-d{round(seconds)}s",
            "--latency",
            "--timeout",
            "5s",
            "-s",
            lua,
            base + scenario.path,
        ]
        completed = subprocess.run(command, capture_output=True, text=True, check=True, preexec_fn=on_cpus(1))
    finally:
        sampler.stop_event.set()
        sampler.join()
        os.unlink(lua)
    cpu_after, wait_after = sched_times(pids)
    line = next(x for x in completed.stdout.splitlines() if x.startswith("BENCHJSON "))
    data = json.loads(line.removeprefix("BENCHJSON "))
    duration = data["duration_us"] / 1e6
    return Result(
        scenario=scenario.name,
        requests=data["requests"],
        seconds=round(duration, 2),
        rps=round(data["requests"] / duration, 1),
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        errors=data["errors"],
        rss_mb=round(sampler.peak, 1),
        cpu_ms=round((cpu_after - cpu_before) / 1e6 / max(1, data["requests"]), 3),
        cpu_wait=round(share(wait_after - wait_before, cpu_after - cpu_before), 3),
    )


def share(wait: int, cpu: int) -> float:
    return wait / (wait + cpu) if wait + cpu > 0 else 0.0


# (server CPUs, wrk CPUs) when the machine has more CPUs than server workers (``--no-pin`` turns it off): each side
# gets its own, as with a load generator on another machine, so the server's tail is its own and not the time it
# waited for ``wrk`` to leave its CPU. With as many workers as CPUs they share them all (set by ``main``).
PINNED: tuple[frozenset[int], frozenset[int]] | None = None


def cpu_split(workers: int) -> tuple[frozenset[int], frozenset[int]] | None:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) <= workers:
        return None
    return frozenset(cpus[:workers]), frozenset(cpus[workers:])


def on_cpus(side: int) -> Any:
    """``preexec_fn`` that moves the child (and its children) to the server's (0) or wrk's (1) CPUs, if pinned."""
    if PINNED is None:
        return None
    cpus = PINNED[side]
    return lambda: os.sched_setaffinity(0, cpus)


def serve(data_dir: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PORTAL_DATA_DIR": str(data_dir),
        "PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
    }
    portal = Path(sys.executable).with_name("portal")
    command = [str(portal), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    log = open(data_dir / "serve.log", "ab")  # noqa: SIM115 - handed to the child, closed when the server stops
    return subprocess.Popen(command, env=env, stdout=log, stderr=log, start_new_session=True, preexec_fn=on_cpus(0))


def wait_healthy(base: str, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"portal serve exited with {process.returncode}; see serve.log")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("portal serve did not become healthy")


def wait_background_idle(data_dir: Path, seconds: float = 180) -> int:
    """Wait until the server's background workers have drained the email outbox (on a fresh large data dir they
    first queue and send thousands of due renewal reminders): measure the steady state a long-running server is
    in, not that start-up transient. Returns how many emails were waiting at first."""
    conn = sqlite3.connect(data_dir / "portal.db", timeout=10)
    deadline, first = time.monotonic() + seconds, None
    try:
        while time.monotonic() < deadline:
            try:
                pending = conn.execute(
                    "SELECT COUNT(*) FROM email_outbox WHERE status IN ('pending', 'sending')"
                ).fetchone()[0]
            except sqlite3.OperationalError:  # no outbox table in this schema
                return 0
            first = pending if first is None else first
            if pending == 0:
                time.sleep(2)  # one more scan interval for reminders queued just now
                if conn.execute("SELECT COUNT(*) FROM email_outbox WHERE status = 'pending'").fetchone()[0] == 0:
                    return first
            time.sleep(1)
    finally:
        conn.close()
    return first or 0


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)  # our own process group (start_new_session)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class Served:
    """One data dir's server, up and warmed, with what its scenarios need."""

    name: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    base: str
    session_ids: list[str]
    chosen: list[Scenario]
    load_before: float
    sizes: dict[str, int] = field(default_factory=dict)  # each scenario's answer size, for the control


def start_db(name: str, args: argparse.Namespace, workers: int) -> Served:
    """Mint the sessions, start ``portal serve`` on the data dir, wait for it and its background workers, check
    every scenario and warm it up."""
    data_dir = BENCH_DIR / "data" / name
    known = json.loads((data_dir / "bench.json").read_text())
    browser_token, api_token, session_ids = mint_sessions(data_dir, known)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    load_before = load_average()
    print(f"{name}: portal serve --workers {workers}", file=sys.stderr, flush=True)
    process = serve(data_dir, port, workers)
    served = Served(name, data_dir, process, base, session_ids, [], load_before)
    try:
        wait_healthy(base, process)
        time.sleep(3)  # let the background workers' first scans run
        drained = wait_background_idle(data_dir)
        if drained:
            print(f"  {name}: waited for the background workers to send {drained} queued emails", file=sys.stderr)
        csrf = csrf_cookie(base, known["organization_slug"])
        served.chosen = [
            s for s in scenarios(known, browser_token, api_token, csrf) if not args.only or s.name in args.only
        ]
        for scenario in served.chosen:
            served.sizes[scenario.name] = check(base, scenario, known)
            run_wrk(base, scenario, args, args.warmup, process.pid)
    except BaseException:
        stop_db(served)
        raise
    return served


def stop_db(served: Served) -> None:
    stop(served.process)
    delete_sessions(served.data_dir, served.session_ids)


@dataclass
class Control:
    """``bench/control_app.py`` served like Portal (uvicorn, same workers and event loop, a socket per worker), and
    its own CPU per request."""

    process: subprocess.Popen[bytes]
    base: str
    base_cpu_ms: float


def start_control(args: argparse.Namespace, workers: int) -> Control:
    port = free_port()
    # Served the way `portal serve` serves (portal/serve_sockets.py: event loop, a socket per worker).
    serve = (
        f"import sys; sys.path.insert(0, {str(BENCH_DIR)!r}); "
        "from portal.serve_sockets import EVENT_LOOP, serve_workers; "
        f"serve_workers('control_app:app', '127.0.0.1', {port}, {workers}, "
        "dict(loop=EVENT_LOOP, access_log=False, log_level='warning'))"
    )
    command = [sys.executable, "-c", serve]
    process = subprocess.Popen(command, start_new_session=True, preexec_fn=on_cpus(0))
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base, process)
    # What the stack alone costs per request (to subtract from Portal's figure): an empty answer.
    empty = Scenario("control", "control", "GET", "/?cpu_us=0&size=0")
    return Control(process, base, run_wrk(base, empty, args, max(2, args.warmup), process.pid).cpu_ms)


def control_scenario(control: Control, portal: Result, size: int) -> Scenario:
    """The control request that costs what ``portal`` cost: its CPU per request beyond the stack's, its size."""
    cpu_us = max(0, round((portal.cpu_ms - control.base_cpu_ms) * 1000))
    return Scenario(portal.scenario, "control", "GET", f"/?cpu_us={cpu_us}&size={size}")


def bench_dbs(names: Sequence[str], args: argparse.Namespace, workers: int) -> list[dict[str, Any]]:
    """Both servers run side by side (the idle one costs nothing) and the rounds interleave them: round 1 on the
    small DB, round 1 on the large one, round 2 on the small one… so that a large/small comparison, like a ratio to
    ``/healthz``, is between measurements taken about a minute apart rather than several minutes apart."""
    servers: list[Served] = []
    control: Control | None = None
    try:
        for name in names:
            servers.append(start_db(name, args, workers))
        if args.control:
            control = start_control(args, workers)
        rounds: dict[str, dict[str, list[Result]]] = {
            served.name: {scenario.name: [] for scenario in served.chosen} for served in servers
        }
        controls: dict[str, dict[str, list[Result]]] = {served.name: {} for served in servers}
        for number in range(1, args.rounds + 1):
            for served in servers:
                for scenario in served.chosen:
                    result = run_wrk(served.base, scenario, args, args.duration, served.process.pid)
                    rounds[served.name][scenario.name].append(result)
                    print(
                        f"  {served.name:<5} round {number} {scenario.name:<11} {result.rps:>8.0f} req/s  "
                        f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  errors {result.errors}  "
                        f"rss {result.rss_mb:.0f} MB",
                        file=sys.stderr,
                        flush=True,
                    )
                    if control is not None:
                        twin = control_scenario(control, result, served.sizes.get(scenario.name, 0))
                        measured = run_wrk(control.base, twin, args, args.duration, control.process.pid)
                        controls[served.name].setdefault(scenario.name, []).append(measured)
                        print(
                            f"  {'':<5} control {scenario.name:<11} {measured.rps:>8.0f} req/s  "
                            f"p50 {measured.p50_ms:6.2f} ms  p99 {measured.p99_ms:6.2f} ms  ({twin.path})",
                            file=sys.stderr,
                            flush=True,
                        )
    finally:
        for served in servers:
            stop_db(served)
        if control is not None:
            stop(control.process)
    out = []
    for served in servers:
        generated_path = served.data_dir / "generate.json"
        generated = json.loads(generated_path.read_text()) if generated_path.exists() else {}
        out.append(
            {
                "name": served.name,
                "orders": generated.get("rows", {}).get("orders"),
                "load_before": served.load_before,
                "results": [asdict(combine(measured)) for measured in rounds[served.name].values()],
                "controls": [asdict(combine(measured)) for measured in controls[served.name].values()],
            }
        )
    return out


def combine(measured: Sequence[Result]) -> Result:
    """One scenario's rounds: the median of req/s and of each percentile, all errors, the peak RSS; each round's
    req/s is kept so that ratios are taken round by round (``render``)."""
    return Result(
        scenario=measured[0].scenario,
        requests=sum(r.requests for r in measured),
        seconds=round(sum(r.seconds for r in measured), 2),
        rps=statistics.median(r.rps for r in measured),
        p50_ms=statistics.median(r.p50_ms for r in measured),
        p90_ms=statistics.median(r.p90_ms for r in measured),
        p99_ms=statistics.median(r.p99_ms for r in measured),
        max_ms=max(r.max_ms for r in measured),
        errors=sum(r.errors for r in measured),
        rss_mb=max(r.rss_mb for r in measured),
        rounds=[{"rps": r.rps, "p50_ms": r.p50_ms, "p99_ms": r.p99_ms, "cpu_wait": r.cpu_wait} for r in measured],
        cpu_ms=statistics.median(r.cpu_ms for r in measured),
        cpu_wait=statistics.median(r.cpu_wait for r in measured),
    )


def ratio_to(result: dict[str, Any], base: dict[str, Any]) -> tuple[float, float, float]:
    """(median, lowest, highest) over the rounds of this scenario's req/s over ``/healthz``'s in the same round."""
    pairs = list(zip(result.get("rounds") or [], base.get("rounds") or [], strict=False))
    if not pairs:
        value = result["rps"] / base["rps"]
        return value, value, value
    ratios = [mine["rps"] / theirs["rps"] for mine, theirs in pairs]
    return statistics.median(ratios), min(ratios), max(ratios)


def tail_ratio(result: dict[str, Any]) -> float:
    """The median over the rounds of each round's p99 over its own p50 (the ratio of the medians without rounds)."""
    ratios = [r["p99_ms"] / r["p50_ms"] for r in result.get("rounds") or [] if r["p50_ms"] > 0]
    if not ratios:
        return result["p99_ms"] / result["p50_ms"] if result["p50_ms"] > 0 else 0.0
    return statistics.median(ratios)


def latency_ratio(large: dict[str, Any], small: dict[str, Any], key: str) -> float:
    """The median over the rounds of the large DB's ``key`` latency over the small DB's in the same round (the
    rounds interleave the two servers), or the ratio of the medians without rounds."""
    pairs = list(zip(large.get("rounds") or [], small.get("rounds") or [], strict=False))
    if not pairs:
        return float(large[key] / small[key])
    return statistics.median(mine[key] / theirs[key] for mine, theirs in pairs)


def machine() -> dict[str, str]:
    model, cores = platform.processor() or "?", str(os.cpu_count())
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in lscpu.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model name":
                model = value.strip()
            elif key.strip() == "CPU(s)":
                cores = value.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return {"cpu": model, "cores": cores, "python": platform.python_version()}


def _ok(passed: bool) -> str:
    return "✅" if passed else "❌"


def render(report: dict[str, Any]) -> str:
    """The Markdown results block (between the markers in bench/README.md)."""
    runs = {run["name"]: {r["scenario"]: r for r in run["results"]} for run in report["runs"]}
    small, large = runs.get("small", {}), runs.get("large", {})
    info = report["machine"]
    lines = [
        START_MARK,
        f"Measured {report['date']} on {info['cpu']} ({info['cores']} CPUs), Python {info['python']}; "
        f"`portal serve --workers {report['workers']}`, `wrk -t{report['threads']} -c{report['connections']} "
        f"-d{report['duration']}s` on loopback"
        + (
            f" (server on CPU {','.join(map(str, report['pinned'][0]))}, wrk on CPU "
            f"{','.join(map(str, report['pinned'][1]))})"
            if report.get("pinned")
            else " (server and wrk sharing the CPUs)"
        )
        + f" after a {report['warmup']}s warm-up per scenario, "
        f"{report.get('rounds', 1)} rounds through all scenarios in turn, the two DBs' servers side by side and "
        "their rounds interleaved: medians of the rounds; each ratio to `/healthz` and each large/small ratio taken "
        "round by round (median; the `/healthz` ratio with the lowest and highest round in brackets). "
        f"1-minute load average before the runs: "
        + ", ".join(f"{run['name']} {run['load_before']:.2f}" for run in report["runs"])
        + (
            f" (waited for < {report['wait_load']}: {'reached' if report['quiet'] else 'NOT reached'})"
            if report.get("wait_load")
            else ""
        )
        + ".",
        "",
        "| Scenario | small req/s | small p50 / p99 ms | large req/s | large p50 / p99 ms | large vs `/healthz` "
        "| large / small p50, p99 | RSS large (MB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    base = large.get("healthz") or small.get("healthz")
    checks: list[str] = []
    for name, r in (large or small).items():
        s = small.get(name)
        ratio, low, high = ratio_to(r, base) if base else (0.0, 0.0, 0.0)
        rel = (latency_ratio(r, s, "p50_ms"), latency_ratio(r, s, "p99_ms")) if s and large else None
        label = next(
            sc.label
            for sc in scenarios(
                {"organization_slug": "x", "receipt_order_id": "x", "license_key": "", "organization_id": ""}, "", ""
            )
            if sc.name == name
        )
        lines.append(
            f"| {label} | {s['rps']:,.0f} | {s['p50_ms']:.1f} / {s['p99_ms']:.1f} | " if s else f"| {label} | – | – | "
        )
        lines[-1] += (
            f"{r['rps']:,.0f} | {r['p50_ms']:.1f} / {r['p99_ms']:.1f} | {ratio:.0%}"
            + (f" ({low:.0%}–{high:.0%})" if high > low else "")
            + " | "
            + (f"{rel[0]:.2f}×, {rel[1]:.2f}× | " if rel else "– | ")
            + f"{r['rss_mb']:.0f} |"
        )
        if name in MIN_RATIO:
            checks.append(f"{_ok(ratio >= MIN_RATIO[name])} {name} ≥ {MIN_RATIO[name]:.0%} of `/healthz`: {ratio:.0%}")
    worst_p99 = max((r["p99_ms"] for run in runs.values() for r in run.values()), default=0)
    checks.append(f"{_ok(worst_p99 <= MAX_P99_MS)} p99 ≤ {MAX_P99_MS:.0f} ms everywhere: worst {worst_p99:.1f} ms")
    checks += tail_checks(report, runs)
    if small and large:
        # The median latency: a p99 of 15-40 ms at 32 connections on 2 shared cores moves by a third between rounds
        # of the same server, for /healthz (which reads no data) as much as for the pages, so its large/small ratio
        # measures the scheduler (it is in the table; the p99 has its own target above).
        worst = max((latency_ratio(large[n], small[n], "p50_ms"), n) for n in large if n in small)
        worst_p99 = max((latency_ratio(large[n], small[n], "p99_ms"), n) for n in large if n in small)
        checks.append(
            f"{_ok(worst[0] <= MAX_LARGE_OVER_SMALL)} large/small median latency ≤ {MAX_LARGE_OVER_SMALL}×: "
            f"worst {worst[0]:.2f}× ({worst[1]}); p99 for information: worst {worst_p99[0]:.2f}× ({worst_p99[1]})"
        )
    if large:
        peak = max(r["rss_mb"] for r in large.values())
        checks.append(f"{_ok(peak <= MAX_RSS_MB)} server RSS ≤ {MAX_RSS_MB:.0f} MB on the large DB: peak {peak:.0f} MB")
    errors = sum(r["errors"] for run in runs.values() for r in run.values())
    checks.append(f"{_ok(errors == 0)} no errors or non-2xx answers: {errors}")
    lines += ["", "Targets:", "", *[f"- {c}" for c in checks], "", END_MARK]
    return "\n".join(lines)


def tail_checks(report: dict[str, Any], runs: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """The p99/p50 target (issue 18.9), with what tells the machine's tail from Portal's: the share of its runnable
    time the server waited for a CPU, and the control app's p99/p50 for requests of the same cost (``--control``)."""
    tails = [(tail_ratio(r), run_name, name) for run_name, run in runs.items() for name, r in run.items()]
    if not tails:
        return []
    tail, run_name, name = max(tails)
    line = (
        f"{_ok(tail <= MAX_P99_OVER_P50)} p99 ≤ {MAX_P99_OVER_P50:.0f}× p50 everywhere "
        f"(`--workers {report['workers']}`): worst {tail:.1f}× ({run_name} {name})"
    )
    waits = [r.get("cpu_wait", 0.0) for run in runs.values() for r in run.values()]
    if any(waits):
        line += f"; the server waited for a CPU {statistics.median(waits):.0%} of its runnable time (median)"
    controls = {
        (run["name"], c["scenario"]): c for run in report["runs"] for c in run.get("controls") or [] if c["rounds"]
    }
    if controls:
        twin = controls.get((run_name, name))
        worst = max((tail_ratio(c), f"{key[0]} {key[1]}") for key, c in controls.items())
        line += (
            f"; the control app, same stack, CPU and bytes: {tail_ratio(twin):.1f}× there"
            if twin
            else "; the control app, same stack, CPU and bytes:"
        )
        line += f", worst {worst[0]:.1f}× ({worst[1]})"
    return [line]


def write_readme(block: str) -> None:
    text = README.read_text() if README.exists() else "# Benchmarks\n\n"
    if START_MARK in text and END_MARK in text:
        head, rest = text.split(START_MARK, 1)
        _, tail = rest.split(END_MARK, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n## Results\n\n" + block + "\n"
    README.write_text(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dbs", default="small,large", help="comma-separated: small,large")
    parser.add_argument("--only", nargs="*", help="scenario names to run (default: all)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per scenario and round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds through all scenarios (medians are reported)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, help="default: what the README's production section recommends, else 2")
    parser.add_argument("--wrk", default="wrk")
    parser.add_argument("--wait-load", type=float, help="wait until the 1-minute load average is below this")
    parser.add_argument("--wait-max", type=float, default=1800, help="give up waiting after this many seconds")
    parser.add_argument("--no-readme", action="store_true", help="print the table instead of updating the README")
    parser.add_argument(
        "--control",
        action="store_true",
        help="after each scenario, load a bare app of the same cost (bench/control_app.py) to tell the machine's tail",
    )
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="let the server and wrk share every CPU even when there are more CPUs than workers",
    )
    args = parser.parse_args(argv)
    workers = args.workers or readme_workers()
    global PINNED
    PINNED = None if args.no_pin else cpu_split(workers)
    if PINNED is not None:
        os.sched_setaffinity(0, PINNED[1])  # this script's own sampling stays off the server's CPUs too
    quiet = True
    if args.wait_load:
        _, quiet = wait_for_quiet(args.wait_load, args.wait_max)
    report: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "workers": workers,
        "threads": args.threads,
        "connections": args.connections,
        "duration": args.duration,
        "rounds": args.rounds,
        "warmup": args.warmup,
        "wait_load": args.wait_load,
        "quiet": quiet,
        "pinned": None if PINNED is None else [sorted(PINNED[0]), sorted(PINNED[1])],
        "runs": [],
    }
    report["runs"] = bench_dbs(args.dbs.split(","), args, workers)
    (BENCH_DIR / "data" / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    block = render(report)
    if args.no_readme or args.only:
        print(block)
    else:
        write_readme(block)
        print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
