"""Shared fixtures: a real SQLite file per test (copied from a migrated template), settings, the app under the
sync TestClient, a real SMTP server (aiosmtpd) on loopback that collects messages, and ``chromium``: Debian's
chromium through Playwright, one browser per test process (tests open their own contexts)."""

from __future__ import annotations

import email
import email.policy
import gc
import re
import shutil
import socket
import sys
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiosmtpd.controller import Controller
from litestar import Litestar
from litestar.testing import TestClient

from portal.clock import Clock
from portal.db import connect_sync
from portal.migrations import migrate
from portal.settings import Settings
from tests.apps import app_for, handed_out_for_one_test

if TYPE_CHECKING:
    from tests.console_helpers import Team

REPO_ROOT = Path(__file__).resolve().parent.parent

# A full pass of the cycle collector walks every object of the process. A test process holds a lot for its whole run
# (pooled apps, compiled templates, the fuzzer's schema), so each pass cost ~0.4 s, 16-17 of them per process and run:
# 6-8 s of CPU per process. Offering a full pass after every 100 passes of the younger generation (Python's default is
# 10) leaves 4-6 of them (2.5-5 s), for about 400-500 MB per process at the end of a run. Served Portals (their own
# processes) keep the defaults.
gc.set_threshold(*gc.get_threshold()[:2], 100)


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty database made once per run; tests get a copy."""
    path = tmp_path_factory.mktemp("template") / "portal.db"
    conn = connect_sync(path)
    migrate(conn)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory, template_db: Path) -> Path:
    """A data dir with the demo seed loaded, made once per test process (one per xdist worker) and only copied."""
    from tests.browser_helpers import seeded_template

    return seeded_template(tmp_path_factory, template_db)


@pytest.fixture
def data_dir(request: pytest.FixtureRequest, tmp_path: Path, template_db: Path) -> Path:
    """This test's own data dir: the migrated empty database, or, in a module marked ``pytest.mark.seeded``, a copy
    of the demo seed (``seeded``)."""
    if request.node.get_closest_marker("seeded") is not None:
        from tests.browser_helpers import copy_seeded

        return copy_seeded(request.getfixturevalue("seeded"), tmp_path)
    directory = tmp_path / "data"
    directory.mkdir()
    shutil.copy(template_db, directory / "portal.db")
    return directory


@pytest.fixture(scope="session")
def _shared_chromium() -> Iterator[Any]:
    from tests.browser_helpers import SharedChromium

    shared = SharedChromium.current = SharedChromium()
    try:
        yield shared
    finally:
        shared.close()
        SharedChromium.current = None


@pytest.fixture
def chromium(_shared_chromium: Any) -> Iterator[Any]:
    """A Playwright ``Browser`` on Debian's chromium, shared by every browser test of this process (launching one
    costs about two seconds). Open contexts with ``chromium.new_context(...)``: they are closed after the test.
    It is set up after the test's other fixtures (``pytest_collection_modifyitems``), so they may call
    ``asyncio.run``; inside the test, such code goes through ``tests.browser_helpers.in_thread``."""
    from tests.browser_helpers import chromium_path

    if chromium_path() is None:
        pytest.skip("Debian's chromium is not installed")
    browser = _shared_chromium.acquire()
    try:
        yield browser
    finally:
        _shared_chromium.release()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Every test starts without Playwright's loop running on the thread (``SharedChromium`` parks it between
    browser tests), so fixtures of any scope and the test itself may call ``asyncio.run``."""
    helpers = sys.modules.get("tests.browser_helpers")
    if helpers is not None and helpers.SharedChromium.current is not None:
        helpers.SharedChromium.current.park()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SMTPInbox:
    """Messages received by the loopback SMTP server."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self._cond = threading.Condition()

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._cond:
            self.messages.append(message)  # type: ignore[arg-type]
            self._cond.notify_all()
        return "250 OK"

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[EmailMessage]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.messages) >= count, timeout=timeout)
            if len(self.messages) < count:
                raise AssertionError(f"expected {count} emails, got {len(self.messages)}")
            return list(self.messages)

    def clear(self) -> None:
        with self._cond:
            self.messages.clear()


@pytest.fixture
def smtp_server() -> Iterator[tuple[SMTPInbox, int]]:
    inbox = SMTPInbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        base_url="http://testserver.local",
        secret_key="test-secret-key-not-for-production",
        argon2_profile="test",
        # The tests' webhook receivers listen on loopback (the default, refused: test_webhook_destinations.py).
        webhook_private_addresses=True,
    )


@pytest.fixture
def smtp_settings(settings: Settings, smtp_server: tuple[SMTPInbox, int]) -> Settings:
    import msgspec

    _, port = smtp_server
    return msgspec.structs.replace(
        settings, mail_backend="smtp", smtp_host="127.0.0.1", smtp_port=port, smtp_security="none"
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(autouse=True)
def _apps_back_to_the_pool() -> Iterator[None]:
    """Apps handed out by ``tests.apps.app_for`` during the test are free again once it (and its fixtures) ended."""
    with handed_out_for_one_test():
        yield


@pytest.fixture
def app(settings: Settings, clock: Clock) -> Litestar:
    return app_for(settings, clock=clock)


@pytest.fixture
def client(app: Litestar) -> Iterator[TestClient[Litestar]]:
    with TestClient(app, base_url="http://testserver.local") as test_client:
        yield test_client


# --- markers (registered in pyproject.toml): applied here by rule, so a new test file gets them without a list ----

_BROWSER = re.compile(r"\bplaywright\b|\bchromium_path\b")
_SERVED = re.compile(
    r"from tests\.serving import|\bimport subprocess\b|\buvicorn\b|from tests\.(api_server|ops_support) import"
)
# Measured at 2 s or more each (``pytest --durations=30``); the rest of the suite is well under a second a test.
SLOW_TESTS = {
    "test_every_operation_answers_as_documented",
    "test_dockerfile_commands_build_and_serve_here",
    "test_flood_of_wrong_codes_is_throttled_without_slowing_other_customers",
    "test_readme_demo_command_works_on_a_fresh_clone",
    "test_customer_journey",
    "test_portal_in_german_and_french",
    "test_fifty_concurrent_mixed_writes",
    "test_backup_during_a_write_burst_then_restore",
    "test_gzip_bomb_answers_do_not_grow_the_served_process",
    "test_serve_demo_answers_healthz_and_the_sign_in_page",
    "test_request_answers_at_once_while_the_mail_is_slow",
    "test_acknowledged_writes_survive_sigkill",
    "test_silent_and_blackholed_endpoints_end_at_the_deadline",
    "test_sigterm_during_a_write_burst_loses_no_answered_write",
    "test_replicate_to_a_file_replica_and_restore",
}


def _browser_fixtures_last(item: pytest.Item) -> None:
    """``chromium`` and the fixtures built on it are set up after the test's other fixtures (and torn down before
    them), so those may call ``asyncio.run``, which cannot run beside Playwright's loop (``SharedChromium``)."""
    names = getattr(item, "fixturenames", None)
    if names is None or "chromium" not in names:
        return
    definitions = item._fixtureinfo.name2fixturedefs  # type: ignore[attr-defined]

    def uses_chromium(name: str, seen: frozenset[str] = frozenset()) -> bool:
        if name == "chromium":
            return True
        found = definitions.get(name)
        if not found or name in seen:
            return False
        return any(uses_chromium(arg, seen | {name}) for arg in found[-1].argnames)

    browser_side = [name for name in names if uses_chromium(name)]
    names[:] = [name for name in names if name not in browser_side] + browser_side


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``browser`` on tests of modules that drive chromium (or tests using the ``chromium`` fixture), ``served``
    on modules that start processes (a served Portal, the CLI, uvicorn), ``slow`` on the measured slow tests.

    Then the modules holding such tests run first (each module's tests stay together, in their order): xdist
    hands tests out in collection order, so the long ones start early and the run ends on short tests that both
    processes share out evenly, instead of one process finishing a 30-second test while the other sits idle."""
    kinds: dict[str, tuple[bool, bool]] = {}  # module path -> (drives chromium, starts processes): read once each
    for item in items:
        _browser_fixtures_last(item)
        path = str(item.path)
        if path not in kinds:
            source = item.path.read_text(encoding="utf-8")
            kinds[path] = (_BROWSER.search(source) is not None, _SERVED.search(source) is not None)
        browser, served = kinds[path]
        if browser or "chromium" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)
        if served:
            item.add_marker(pytest.mark.served)
        if getattr(item, "originalname", item.name) in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
    heavy = {
        str(item.path)
        for item in items
        if any(item.get_closest_marker(name) is not None for name in ("browser", "served", "slow"))
    }
    items.sort(key=lambda item: str(item.path) not in heavy)  # stable: the order within each group is kept


@pytest.fixture
def served_console(settings: Settings) -> Iterator[tuple[str, Settings, Team]]:
    """The app served over HTTP on a free loopback port with the console's team (``make_team``: organizations,
    sellers of each role, the rows every console action works on): ``(base_url, settings, team)``. The console's
    browser tests drive it with the ``chromium`` fixture."""
    import msgspec

    from tests.browser_helpers import free_port_for_tests, serve
    from tests.console_helpers import make_team

    port = free_port_for_tests()
    settings = msgspec.structs.replace(settings, base_url=f"http://127.0.0.1:{port}")
    team = make_team(settings)
    with serve(app_for(settings, clock=Clock()), port) as base_url:
        yield base_url, settings, team
