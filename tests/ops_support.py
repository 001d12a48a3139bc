"""Helpers for the operations tests: a migrated data dir, ``portal serve`` processes on loopback ports, an admin
token, and organizations/customers made through the admin API of a served process."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from portal.settings import Settings
from portal.tls import https_context
from tests.admin_support import bearer, mint_token
from tests.conftest import free_port
from tests.serving import portal_env, run_portal, start_portal, stop, wait_until_up


@dataclass
class Served:
    base: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def migrated(data_dir: Path) -> Settings:
    """``portal migrate`` on ``data_dir`` (which also creates its secret key); the settings tests share with it."""
    result = run_portal(["migrate"], portal_env(data_dir))
    assert result.returncode == 0, result.stderr
    return Settings(data_dir=data_dir).resolve_secrets()


@contextmanager
def served(data_dir: Path, log: Path, *args: str, **env: str) -> Iterator[Served]:
    """``portal serve`` on a free loopback port until the block ends (SIGTERM, then wait)."""
    port = free_port()
    environment = portal_env(data_dir, PORTAL_BASE_URL=f"http://127.0.0.1:{port}", **env)
    process = start_portal(["serve", "--port", str(port), *args], environment, log)
    server = Served(base=f"http://127.0.0.1:{port}", process=process, log=log)
    try:
        wait_until_up(server.base, process, timeout=30)
        yield server
    finally:
        stop(process)


def admin_token(settings: Settings) -> str:
    return mint_token(settings)


def make_org(base: str, token: str, slug: str) -> dict[str, object]:
    response = httpx.post(
        f"{base}/v1/organizations/",
        json={"name": slug.title(), "slug": slug, "receipt_prefix": slug.upper()},
        headers=bearer(token),
        verify=https_context(),
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def make_customer(base: str, token: str, org_id: object, email: str) -> dict[str, object]:
    response = httpx.post(
        f"{base}/v1/customers/",
        json={"organization_id": org_id, "email": email, "name": email.split("@")[0].title()},
        headers=bearer(token),
        verify=https_context(),
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]
