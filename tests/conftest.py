"""Shared fixtures: a real SQLite file per test (copied from a migrated template), settings, the app under the
sync TestClient, and a real SMTP server (aiosmtpd) on loopback that collects messages."""

from __future__ import annotations

import email
import email.policy
import shutil
import socket
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from litestar import Litestar
from litestar.testing import TestClient

from portal.app import create_app
from portal.clock import Clock
from portal.db import connect_sync
from portal.migrations import migrate
from portal.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty database made once per run; tests get a copy."""
    path = tmp_path_factory.mktemp("template") / "portal.db"
    conn = connect_sync(path)
    migrate(conn)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


@pytest.fixture
def data_dir(tmp_path: Path, template_db: Path) -> Path:
    directory = tmp_path / "data"
    directory.mkdir()
    shutil.copy(template_db, directory / "portal.db")
    return directory


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


@pytest.fixture
def app(settings: Settings, clock: Clock) -> Litestar:
    return create_app(settings, clock=clock)


@pytest.fixture
def client(app: Litestar) -> Iterator[TestClient[Litestar]]:
    with TestClient(app, base_url="http://testserver.local") as test_client:
        yield test_client
