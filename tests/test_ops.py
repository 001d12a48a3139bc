"""Operations: ``portal check --smtp``, secrets from files, readiness, and the instance lock."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from litestar.testing import TestClient

from portal import instance_lock
from portal.migrations import LATEST_VERSION
from portal.settings import Settings
from tests.apps import app_for
from tests.conftest import SMTPInbox, free_port
from tests.serving import portal_env, run_portal


class Authenticator:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.seen.append((login, password))
        return AuthResult(success=(login, password) == ("shop", "s3cret-from-file"))


@pytest.fixture
def auth_smtp() -> Iterator[tuple[int, Authenticator]]:
    authenticator = Authenticator()
    port = free_port()
    controller = Controller(
        SMTPInbox(), hostname="127.0.0.1", port=port, authenticator=authenticator, auth_require_tls=False
    )
    controller.start()
    try:
        yield port, authenticator
    finally:
        controller.stop()


def _smtp_env(tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    env = portal_env(tmp_path / "data", PORTAL_SMTP_HOST="127.0.0.1", PORTAL_SMTP_PORT=str(port), **extra)
    assert run_portal(["migrate"], env).returncode == 0
    return env


def test_check_smtp_against_a_loopback_server(tmp_path: Path, smtp_server: tuple[SMTPInbox, int]) -> None:
    env = _smtp_env(tmp_path, smtp_server[1], PORTAL_SMTP_SECURITY="none")
    result = run_portal(["check", "--smtp"], env)
    assert result.returncode == 0, result.stderr
    assert f"ok: SMTP 127.0.0.1:{smtp_server[1]}" in result.stdout
    assert smtp_server[0].messages == []  # it talks, it does not send


def test_check_smtp_on_a_closed_port_fails_clearly(tmp_path: Path) -> None:
    port = free_port()
    env = _smtp_env(tmp_path, port, PORTAL_SMTP_SECURITY="none")
    result = run_portal(["check", "--smtp"], env)
    assert result.returncode == 1
    assert f"problem: SMTP 127.0.0.1:{port}: cannot connect" in result.stderr
    assert "refused" in result.stderr.lower()
    # Without --smtp the same instance checks fine: the mail server is only probed on request.
    assert run_portal(["check"], env).returncode == 0


def test_check_smtp_names_a_missing_starttls(tmp_path: Path, smtp_server: tuple[SMTPInbox, int]) -> None:
    env = _smtp_env(tmp_path, smtp_server[1], PORTAL_SMTP_SECURITY="starttls")
    result = run_portal(["check", "--smtp"], env)
    assert result.returncode == 1
    assert "does not offer STARTTLS" in result.stderr


def test_check_smtp_logs_in_with_the_password_from_a_file(tmp_path: Path, auth_smtp: tuple[int, Authenticator]) -> None:
    port, authenticator = auth_smtp
    password_file = tmp_path / "smtp_password"
    password_file.write_text("s3cret-from-file\n")
    env = _smtp_env(
        tmp_path,
        port,
        PORTAL_SMTP_SECURITY="none",
        PORTAL_SMTP_USERNAME="shop",
        PORTAL_SMTP_PASSWORD_FILE=str(password_file),
    )
    result = run_portal(["check", "--smtp"], env)
    assert result.returncode == 0, result.stderr
    assert authenticator.seen == [("shop", "s3cret-from-file")]
    password_file.write_text("wrong")
    # smtplib tries each AUTH mechanism in turn; aiosmtpd stalls on the second one, hence the short timeout.
    result = run_portal(["check", "--smtp"], {**env, "PORTAL_SMTP_TIMEOUT": "1"})
    assert result.returncode == 1
    assert "login" in result.stderr
    assert "wrong" not in result.stderr + result.stdout


def test_secrets_come_from_files(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("  key-from-a-file-0123456789  \n")
    password_file = tmp_path / "password"
    password_file.write_text("pw-from-file\n")
    data_dir = tmp_path / "data"
    settings = Settings.from_env(
        {
            "PORTAL_DATA_DIR": str(data_dir),
            "PORTAL_SECRET_KEY": "ignored-when-a-file-is-given",
            "PORTAL_SECRET_KEY_FILE": str(key_file),
            "PORTAL_SMTP_PASSWORD_FILE": str(password_file),
        }
    )
    assert settings.validate() == []
    resolved = settings.resolve_secrets()
    assert resolved.secret_key == "key-from-a-file-0123456789"
    assert resolved.smtp_password == "pw-from-file"
    assert "key-from-a-file" not in repr(resolved) and "pw-from-file" not in repr(resolved)
    assert not (data_dir / "secret_key").exists()  # nothing generated when a file is given
    app = app_for(settings)
    assert app.state.portal.settings.secret_key == "key-from-a-file-0123456789"

    missing = Settings.from_env({"PORTAL_SECRET_KEY_FILE": str(tmp_path / "nope")})
    assert any("PORTAL_SECRET_KEY_FILE" in problem for problem in missing.validate())
    result = run_portal(["check"], portal_env(data_dir, PORTAL_SMTP_PASSWORD_FILE=str(tmp_path / "nope")))
    assert result.returncode != 0
    assert "nope" in result.stderr


def test_generated_secret_key_is_shared_by_processes_starting_together(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from portal.settings import load_or_create_secret

    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: load_or_create_secret(tmp_path / "fresh"), range(16)))
    assert len(keys) == 1
    assert (tmp_path / "fresh" / "secret_key").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in (tmp_path / "fresh").iterdir()] == ["secret_key"]


def test_readyz_is_503_while_migrations_are_pending(settings: Settings) -> None:
    with TestClient(app_for(settings), base_url="http://testserver.local") as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json() == {"status": "ok", "schema_version": LATEST_VERSION}
        conn = sqlite3.connect(settings.db_path)
        conn.execute("DELETE FROM schema_migrations WHERE version = ?", (LATEST_VERSION,))
        conn.commit()
        conn.close()
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["detail"] == "migrations pending"
        assert client.get("/healthz").status_code == 200  # the process itself is still up


def test_instance_lock_is_shared_by_servers_and_exclusive_for_restore(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert not instance_lock.is_served(data_dir)
    first = instance_lock.acquire(data_dir, exclusive=False)
    second = instance_lock.acquire(data_dir, exclusive=False)  # a second server on the same data dir
    assert instance_lock.is_served(data_dir)
    with pytest.raises(instance_lock.InstanceBusy, match="server is running"):
        instance_lock.acquire(data_dir, exclusive=True, wait_seconds=0.2)
    first.release()
    second.release()
    with (
        instance_lock.acquire(data_dir, exclusive=True),
        pytest.raises(instance_lock.InstanceBusy, match="restore is in progress"),
    ):
        instance_lock.acquire(data_dir, exclusive=False)
    assert not instance_lock.is_served(data_dir)


def test_settings_with_trusted_proxies_parse(settings: Settings) -> None:
    changed = msgspec.structs.replace(settings, trusted_proxies=" 10.0.0.1, ::1 ,")
    assert changed.trusted_proxy_set == frozenset({"10.0.0.1", "::1"})
