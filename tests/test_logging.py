"""Request logs: one line per request (method, path without query, status, duration, org), text or JSON, and never
a token, code, cookie or email body, neither in the logs nor in the database."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from portal.logging_setup import JsonFormatter, TextFormatter, uvicorn_log_config
from portal.sessions.auth import challenge_cookie_name, cookie_name
from portal.settings import Settings
from tests.admin_support import bearer, mint_token
from tests.conftest import SMTPInbox, free_port
from tests.ops_support import migrated
from tests.serving import portal_env, stop, wait_until_up
from tests.signin_helpers import Shop, code_from, dump_database, request_code, submit_code, text_part

pytest_plugins = ["tests.signin_fixtures"]

# Loggers of the test's own clients and SMTP server (httpx prints whole URLs, aiosmtpd every DATA line).
CLIENT_LOGGERS = ("httpx", "httpcore", "mail.log")


def _server_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if not r.name.startswith(CLIENT_LOGGERS)]


def test_no_secret_reaches_the_logs_or_the_database(
    caplog: pytest.LogCaptureFixture,
    browser: TestClient[Litestar],
    smtp_settings: Settings,
    inbox: SMTPInbox,
    shop: Shop,
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = smtp_settings
    admin = mint_token(settings)
    secrets: dict[str, str] = {"admin token": admin}

    # A real sign-in: code by email, typed back.
    assert request_code(browser, "acme", "ada@example.com").status_code == 303
    message = inbox.wait_for(1)[0]
    secrets["login code"] = code = code_from(message)
    secrets["challenge cookie"] = str(browser.cookies.get(challenge_cookie_name(settings, "acme")))
    assert submit_code(browser, "acme", "WRONG1").status_code == 400
    assert submit_code(browser, "acme", code).status_code == 303
    secrets["session cookie"] = str(browser.cookies.get(cookie_name(settings, "acme")))
    secrets["csrf cookie"] = str(browser.cookies.get("csrftoken"))
    assert browser.get("/acme/portal/orders").status_code == 200

    # A pre-authenticated link minted by the admin API, followed by another browser, and used as a Bearer token.
    minted = browser.post("/v1/customer-sessions/", json={"customer_id": shop.bob_acme}, headers=bearer(admin))
    assert minted.status_code == 201, minted.text
    secrets["customer session token"] = token = minted.json()["token"]
    link = minted.json()["customer_portal_url"].replace(settings.public_base_url, "")
    # Signed in as Ada, a link for Bob asks first (issue 17.1); the switch is a CSRF-checked POST.
    assert browser.get(link, follow_redirects=False).status_code == 200
    switched = browser.post(
        "/acme/portal/switch",
        data={"customer_session_token": token, "_csrf_token": str(browser.cookies.get("csrftoken"))},
        follow_redirects=False,
    )
    assert switched.status_code == 303
    secrets["session cookie from link"] = str(browser.cookies.get(cookie_name(settings, "acme")))
    assert secrets["session cookie from link"] != secrets["session cookie"]
    assert browser.get("/v1/customer-portal/customers/me", headers=bearer(token)).status_code == 200
    assert browser.get("/v1/customer-portal/orders/?page=1", headers=bearer(token)).status_code == 200

    records = _server_records(caplog)
    lines = "\n".join(
        formatter.format(record) for record in records for formatter in (TextFormatter(), JsonFormatter())
    )
    assert all(len(value) >= 6 for value in secrets.values()), secrets
    for name, value in secrets.items():
        assert value not in lines, f"the {name} is in the logs"
    body = text_part(message)
    assert body.strip() not in lines and "Subject" not in lines
    assert "customer_session_token" not in lines

    requests = [r for r in records if r.name == "portal.request"]
    assert {"POST /acme/portal/request", "POST /acme/portal/authenticate", "GET /acme/portal"} <= {
        f"{r.fields['method']} {r.fields['path']}"  # type: ignore[attr-defined]
        for r in requests
    }
    for record in requests:
        fields: dict[str, Any] = record.fields  # type: ignore[attr-defined]
        assert isinstance(fields["status"], int) and isinstance(fields["duration_ms"], float)
        assert "?" not in fields["path"] and "?" not in record.getMessage()
        if fields["path"].startswith(("/acme/", "/v1/customer-portal/")):
            assert fields["org"] == "acme", fields

    stored = dump_database(settings)
    for name, value in secrets.items():
        if name != "csrf cookie":  # CSRF tokens are not stored at all; checked anyway below
            assert value not in stored, f"the {name} is stored in clear"
    assert secrets["csrf cookie"] not in stored


def test_text_and_json_lines() -> None:
    record = logging.LogRecord("portal.request", logging.INFO, __file__, 1, "%s %s", ("GET", "/x"), None)
    record.fields = {"method": "GET", "path": "/x", "status": 200, "org": "acme", "client": None}
    record.in_message = ("method", "path")
    text = TextFormatter().format(record)
    assert text.endswith("INFO portal.request GET /x status=200 org=acme")
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "GET /x" and entry["org"] == "acme" and entry["status"] == 200
    assert entry["time"].endswith("Z")
    config = uvicorn_log_config("json")
    assert config["loggers"]["uvicorn.access"]["handlers"] == []


def test_client_address_from_trusted_proxies_only(caplog: pytest.LogCaptureFixture, settings: Settings) -> None:
    import msgspec

    from tests.apps import app_for

    caplog.set_level(logging.INFO)
    for trusted, expected in (("testclient", "203.0.113.9"), ("", "testclient")):
        app = app_for(msgspec.structs.replace(settings, trusted_proxies=trusted))
        with TestClient(app, base_url="http://testserver.local") as client:
            caplog.clear()
            client.get("/healthz", headers={"X-Forwarded-For": "203.0.113.9"})
        [line] = [r for r in caplog.records if r.name == "portal.request"]
        assert line.fields["client"] == expected  # type: ignore[attr-defined]


def test_served_json_logs_with_two_workers(tmp_path: Path) -> None:
    """``--workers 2`` with ``PORTAL_LOG_FORMAT=json``: every stderr line is JSON, request paths have no query."""
    data_dir = tmp_path / "data"
    migrated(data_dir)
    port = free_port()
    env = portal_env(data_dir, PORTAL_LOG_FORMAT="json")
    stderr_path = tmp_path / "stderr.log"
    with stderr_path.open("wb") as stderr, (tmp_path / "stdout.log").open("wb") as stdout:
        process = subprocess.Popen(
            [sys.executable, "-m", "portal", "serve", "--workers", "2", "--port", str(port)],
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, process, timeout=30)
        for _ in range(10):
            assert httpx.get(f"{base}/healthz?token=SECRET123").status_code == 200
        assert httpx.get(f"{base}/nowhere?code=SECRET456").status_code == 404
    finally:
        stop(process)
    lines = [line for line in stderr_path.read_text().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # fails on any line that is not JSON
    assert "SECRET" not in stderr_path.read_text()
    assert sum("Started server process" in e["message"] for e in entries) == 2
    requests = [e for e in entries if e["logger"] == "portal.request"]
    assert {(e["method"], e["path"], e["status"]) for e in requests} >= {
        ("GET", "/healthz", 200),
        ("GET", "/nowhere", 404),
    }
    assert all(isinstance(e["duration_ms"], float) for e in requests)
