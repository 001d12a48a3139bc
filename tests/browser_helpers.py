"""Helpers shared by the portal page, receipt, browser and accessibility tests: load the demo seed into a test
database, sign a customer in directly (a browser session row + its cookie), look rows up, serve the app for real
with uvicorn in a background thread, Debian's chromium through Playwright (one browser per test process, see
``SharedChromium``) and axe-core checks."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import uvicorn
from litestar import Litestar

from portal.clock import Clock
from portal.db import Database, connect_sync
from portal.resources import demo_seed_path
from portal.seeding.loader import load_seed_file
from portal.sessions.auth import cookie_name
from portal.sessions.store import create_session
from portal.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO_ROOT / "test-artifacts"
AXE_PATH = REPO_ROOT / "tests" / "js" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _with_db(settings: Settings, work: Any) -> Any:
    db = Database(settings.db_path)
    await db.open()
    try:
        return await work(db)
    finally:
        await db.close()


def seed_demo(settings: Settings, now: datetime) -> None:
    """Load seed/demo.json (files copied under settings.files_dir)."""
    settings.files_dir.mkdir(parents=True, exist_ok=True)
    run(_with_db(settings, lambda db: load_seed_file(db, demo_seed_path(), files_dir=settings.files_dir, now=now)))


def query(settings: Settings, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    conn = connect_sync(settings.db_path)
    try:
        return list(conn.execute(sql, params).fetchall())
    finally:
        conn.close()


def one(settings: Settings, sql: str, params: tuple[Any, ...] = ()) -> Any:
    rows = query(settings, sql, params)
    assert rows, f"no row for {sql!r} {params!r}"
    return rows[0]


def customer_id(settings: Settings, slug: str, email: str) -> str:
    return one(
        settings,
        "SELECT c.id FROM customers c JOIN organizations o ON o.id = c.organization_id "
        "WHERE o.slug = ? AND c.email = ? COLLATE NOCASE",
        (slug, email),
    )["id"]


def org_id(settings: Settings, slug: str) -> str:
    return one(settings, "SELECT id FROM organizations WHERE slug = ?", (slug,))["id"]


def new_session(
    settings: Settings, slug: str, email: str, clock: Clock | None = None, return_url: str | None = None
) -> tuple[str, str]:
    """A live browser session for ``email`` in ``slug``'s portal: returns (cookie name, token)."""
    organization = org_id(settings, slug)
    customer = customer_id(settings, slug, email)
    now = (clock or Clock()).now()

    async def work(db: Database) -> str:
        async with db.write() as tx:
            token, _ = await create_session(
                tx,
                secret=settings.secret_key,
                kind="browser",
                organization_id=organization,
                customer_id=customer,
                now=now,
                ttl_seconds=settings.session_max_age,
                return_url=return_url,
            )
        return token

    return cookie_name(settings, slug), run(_with_db(settings, work))


def table_fingerprint(settings: Settings) -> dict[str, str]:
    """A hash of every row of every table (except the session/rate-limit bookkeeping a request may touch)."""
    conn = connect_sync(settings.db_path)
    try:
        tables = [
            row[0]
            for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            if row[0] not in ("customer_sessions", "rate_limits", "login_codes")
        ]
        result = {}
        for table in tables:
            digest = hashlib.sha256()
            for row in conn.execute(f"SELECT * FROM {table}"):
                digest.update(repr(tuple(row)).encode())
            result[table] = digest.hexdigest()
        return result
    finally:
        conn.close()


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # a background thread cannot take signals
        pass


@contextmanager
def serve(app: Litestar, port: int) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1:``port`` in a thread; yields the base URL."""
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def chromium_path() -> str | None:
    return shutil.which("chromium")


class SharedChromium:
    """One Playwright driver and one chromium per test process (xdist worker), started by the first test that asks
    for the ``chromium`` fixture (tests/conftest.py) and closed at the end of the run: starting them costs about
    two seconds, paid once instead of once per browser test. Each test gets its own contexts (cookies, storage,
    viewport, colour scheme), closed after it, so tests stay as isolated as with a browser of their own.

    Playwright's sync API marks its event loop as the thread's running loop, and ``asyncio.run`` refuses to start
    beside a running loop. Between browser tests the loop is therefore parked (no running loop on the thread) and
    set again for the next browser test; the loop itself stays suspended inside Playwright's dispatcher greenlet,
    which only runs while a sync Playwright call waits. Inside a browser test, code that calls ``asyncio.run``
    (seeding, sessions, domain services) still goes through ``in_thread`` as before."""

    current: ClassVar[SharedChromium | None] = None  # this process's, while the session fixture lives

    def __init__(self) -> None:
        self._playwright: Any = None
        self._browser: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def acquire(self) -> Any:
        """The worker's browser, with Playwright's loop made the running loop again for this test."""
        if self._browser is None:
            from playwright.sync_api import sync_playwright

            self._playwright = sync_playwright().start()
            self._browser = self._playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            self._loop = asyncio.get_running_loop()  # Playwright's, set as running by its sync API
        else:
            asyncio._set_running_loop(self._loop)
            if not self._browser.is_connected():  # crashed in an earlier test: later tests get a new one
                self._browser = self._playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        return self._browser

    def release(self) -> None:
        """After a test: close the contexts it opened, then park Playwright's loop (see the class docstring)."""
        if self._browser is None:
            return
        try:
            for context in list(self._browser.contexts):
                context.close()
        finally:
            self.park()

    def park(self) -> None:
        if self._loop is not None and asyncio._get_running_loop() is self._loop:
            asyncio._set_running_loop(None)

    def close(self) -> None:
        if self._browser is None:
            return
        asyncio._set_running_loop(self._loop)
        try:
            self._browser.close()
        finally:
            self._playwright.stop()  # closes the loop and clears the running loop
            self._browser = self._playwright = self._loop = None


AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


def axe_context(browser: Any, **options: Any) -> Any:
    """A browser context whose every page has axe-core loaded (an init script: parsed by each page as it loads,
    about six times cheaper than sending the 550 kB source with ``add_script_tag`` after each load). CSP (script-src
    'self') rightly blocks injected scripts: tests alone bypass it for axe."""
    context = browser.new_context(bypass_csp=True, **options)
    context.add_init_script(path=str(AXE_PATH))
    return context


# What the dark scheme can change: colours only (the stylesheets' prefers-color-scheme blocks set colours, never
# display or content), so the dark pass runs axe's colour rules alone; the light pass runs every rule.
AXE_COLOUR_RULES = ["color-contrast", "link-in-text-block"]


def axe_violations(page: Any, rules: list[str] | None = None) -> list[str]:
    """The serious and critical axe-core violations of the page as loaded (WCAG 2.1 A/AA and best practices).
    Pages of an ``axe_context`` have axe already; others get it injected here. Only violations are collected in
    full (``resultTypes``: passes and the rest keep one node each), which halves axe's time and reports the same
    violations. ``rules``: only these axe rules (by id) instead of every rule of ``AXE_TAGS``."""
    if not page.evaluate("() => typeof axe === 'object'"):
        page.add_script_tag(content=AXE_PATH.read_text())
    only = {"type": "rule", "values": rules} if rules else {"type": "tag", "values": AXE_TAGS}
    result = page.evaluate(
        "async (only) => (await axe.run(document, {runOnly: only, resultTypes: ['violations']}))",
        only,
    )
    assert result["passes"], "axe ran no checks"
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def axe_both_schemes(page: Any, problems: dict[str, list[str]], where: str, shot: str | None = None) -> None:
    """Check the loaded page with axe in the light then the dark colour scheme, switched with ``emulate_media``
    (the stylesheets follow ``prefers-color-scheme``: no second load): every rule in light, the colour rules in
    dark (``AXE_COLOUR_RULES``). Screenshot each when ``shot`` is given (a name with ``{scheme}`` in it).
    Violations are added to ``problems`` under ``"<scheme> <where>"``; the page is left in the dark scheme."""
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        if found := axe_violations(page, AXE_COLOUR_RULES if scheme == "dark" else None):
            problems[f"{scheme} {where}"] = found
        if shot is not None:
            screenshot(page, shot.format(scheme=scheme))


def confirm_destructive(page: Any, button: str) -> None:
    """Click the console button named ``button`` and confirm in the dialog it opens. Waits for the page's deferred
    script first: a click before portal.js has run acts at once, as it does without JavaScript, so a test that clicks
    right after a navigation would otherwise race the script (on a slow host it loses)."""
    page.wait_for_load_state("domcontentloaded")  # deferred scripts have run by then
    page.get_by_role("button", name=button).click()
    page.get_by_role("dialog").get_by_role("button", name=button).click()


# Screenshots are for people to look at (phone and desktop, light and dark): written to test-artifacts/ only when
# asked (``make screenshots``), since encoding ~300 full-page PNGs costs CI ~40 s of CPU for files nobody opens.
SCREENSHOTS = os.environ.get("PORTAL_TEST_SCREENSHOTS", "") not in ("", "0")


def screenshot(page: Any, name: str, *, full_page: bool = True) -> Path | None:
    """``test-artifacts/<name>.png`` of the page (``name`` may hold a subfolder), when ``PORTAL_TEST_SCREENSHOTS``
    is set; else nothing. The path written, or None."""
    if not SCREENSHOTS:
        return None
    path = ARTIFACTS / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=full_page)
    return path


def seeded_template(tmp_path_factory: Any, template_db: Path) -> Path:
    """A data dir (migrated DB + files) with the demo seed loaded, made once per session and copied per test."""
    directory = tmp_path_factory.mktemp("seeded") / "data"
    directory.mkdir()
    shutil.copy(template_db, directory / "portal.db")
    settings = Settings(data_dir=directory, secret_key="seed-template")
    seed_demo(settings, Clock().now())
    conn = connect_sync(directory / "portal.db")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return directory


def copy_seeded(template: Path, tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    shutil.copytree(template, directory)
    return directory


def csrf_token(client: Any, path: str = "/") -> str:
    """The CSRF cookie value (the form field must carry the same token); fetched by a GET if missing."""
    token = client.cookies.get("csrftoken")
    if token is None:
        client.get(path)
        token = client.cookies.get("csrftoken")
    assert token, "no CSRF cookie"
    return token


def pay_new_order(
    settings: Settings, slug: str, email: str, label: str, amount: int, currency: str, *, paid: bool = True
) -> str:
    """Create (and pay, unless ``paid=False``) an order through the domain services, as a checkout would."""
    from portal.orders.service import OrderInput, OrderItemInput, create_order, mark_order_paid

    organization = org_id(settings, slug)
    customer = customer_id(settings, slug, email)
    now = Clock().now()

    async def work(db: Database) -> str:
        async with db.write() as tx:
            order_id = await create_order(
                tx,
                organization,
                OrderInput(
                    customer_id=customer,
                    currency=currency,
                    items=[OrderItemInput(label=label, unit_amount=amount)],
                ),
                now=now,
            )
            if paid:
                await mark_order_paid(tx, order_id, now=now)
        return order_id

    return run(_with_db(settings, work))


def in_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run ``fn`` in a fresh thread: Playwright's sync API keeps an event loop on the test thread, so code that
    calls ``asyncio.run`` (seeding, sessions, domain services) must run elsewhere."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args, **kwargs).result()


def login_code(message: Any) -> str:
    """The code in a sign-in email: its text part ends with ``@<host> #<CODE>``."""
    import re

    part = message.get_body(preferencelist=("plain",))
    text = part.get_content() if part is not None else message.get_content()
    match = re.search(r"#([A-Z0-9]{6,12})\s*$", text.strip())
    assert match, text
    return match.group(1)


def free_port_for_tests() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def allow_email_change(settings: Settings, slug: str = "acme", email: str = "alex@example.com") -> str:
    """Let ``slug``'s customers change their email (the Billing page shows the form) and store a live change
    request for ``email``'s customer; returns the path of its link's confirm page (issue 22)."""
    from portal.security import hmac_digest

    token = "LAYOUTTOKEN1"
    conn = connect_sync(settings.db_path)
    try:
        conn.execute("UPDATE organizations SET allow_email_change = 1 WHERE slug = ?", (slug,))
        conn.execute(
            """
            INSERT INTO customer_email_updates (id, organization_id, customer_id, email, token_hash, expires_at,
                created_at)
            SELECT 'layout-' || c.id, c.organization_id, c.id,
                'a.rather.long.new.address.for.phones@example.com', ?, '2999-01-01T00:00:00Z', '2020-01-01T00:00:00Z'
            FROM customers c JOIN organizations o ON o.id = c.organization_id
            WHERE o.slug = ? AND c.email = ?
            """,
            (hmac_digest(settings.secret_key, token, purpose="email-update"), slug, email),
        )
        conn.commit()
    finally:
        conn.close()
    return f"/{slug}/portal/email-change?token={token}"
