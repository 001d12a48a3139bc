"""The app skeleton: health, landing page, error shapes, settings table documented in the README."""

from __future__ import annotations

from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from portal.settings import SETTINGS, Settings, SettingsError

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_healthz_and_landing(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    page = client.get("/")
    assert page.status_code == 200
    soup = BeautifulSoup(page.text, "html.parser")
    assert soup.h1 is not None and soup.h1.get_text(strip=True) == "Customer portals"
    assert soup.find("a", href="/console") is not None  # sellers are pointed to the console
    assert "@" not in page.text  # nothing private: no emails, no org list


def test_readyz_reports_schema(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_unknown_api_path_is_polar_shaped_json(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/v1/does-not-exist")
    assert response.status_code == 404
    body = response.json()
    assert set(body) == {"error", "detail"}


def test_unknown_org_portal_is_html_404(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/no-such-org/portal")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    soup = BeautifulSoup(response.text, "html.parser")
    assert soup.h1 is not None and "not found" in soup.h1.get_text().lower()


def test_readme_documents_every_setting() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    missing = [spec.env for spec in SETTINGS if f"`{spec.env}`" not in readme]
    assert missing == []


def test_settings_from_env_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="PORTAL_SMTP_PORT"):
        Settings.from_env({"PORTAL_SMTP_PORT": "not-a-number"})
    settings = Settings.from_env({"PORTAL_SMTP_PORT": "2525", "PORTAL_DATA_DIR": "/tmp/x"})
    assert settings.smtp_port == 2525
    assert settings.data_dir == Path("/tmp/x")


def test_secret_key_is_generated_once_and_not_in_repr(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path).resolve_secrets()
    second = Settings(data_dir=tmp_path).resolve_secrets()
    assert first.secret_key and first.secret_key == second.secret_key
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert first.secret_key not in repr(first)


def test_startup_objects_are_frozen_out_of_the_collector_while_serving(settings: Settings) -> None:
    import gc

    from litestar.testing import TestClient

    from portal.app import create_app

    before = gc.get_freeze_count()
    with TestClient(app=create_app(settings, freeze_gc=True)) as client:
        assert client.get("/healthz").status_code == 200
        frozen = gc.get_freeze_count()
    assert frozen > before + 10_000  # the app, its routes and templates, the loaded modules
    assert gc.get_freeze_count() == before  # handed back on shutdown

    # An app sharing its process (tests, embedding) leaves the collector alone: a full collection per startup
    # would walk every other app's objects too.
    with TestClient(app=create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        assert gc.get_freeze_count() == before


def test_the_served_app_freezes_its_startup_objects(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from portal import asgi

    built: list[bool] = []
    monkeypatch.setattr(asgi, "create_app", lambda _settings, **options: built.append(options["freeze_gc"]))
    monkeypatch.setenv("PORTAL_DATA_DIR", str(settings.data_dir))
    asgi.app_from_env()
    assert built == [True]


def test_what_is_built_into_the_app_is_only_its_baked_settings(tmp_path: Path, template_db: Path) -> None:
    """An instance (data dir, database, clock, mailer) is the app's state, read at startup and by every request:
    the same app handed another state serves that one's data and nothing of the first (``tests/apps.py`` relies
    on it), and settings that differ only outside ``baked_settings`` bake the same app."""
    import shutil

    import msgspec
    from litestar.testing import TestClient

    from portal.app import baked_settings, create_app, new_state
    from tests.signin_helpers import insert_org

    instances = []
    for slug in ("acme", "beta"):
        (tmp_path / slug).mkdir()
        shutil.copy(template_db, tmp_path / slug / "portal.db")
        settings = Settings(data_dir=tmp_path / slug, secret_key="s" * 32, argon2_profile="test")
        insert_org(settings, slug)
        instances.append(settings)
    acme, beta = instances
    app = create_app(acme)
    with TestClient(app, base_url="http://testserver.local") as client:
        assert client.get("/acme/portal").status_code == 200
        assert client.get("/beta/portal").status_code == 404
    app.state["portal"] = new_state(beta)
    with TestClient(app, base_url="http://testserver.local") as client:
        assert client.get("/beta/portal").status_code == 200
        assert client.get("/acme/portal").status_code == 404
    # The base URL counts only by its scheme (CSRF and view-as cookies are __Host- on https), the mail server not.
    elsewhere = msgspec.structs.replace(beta, base_url="http://127.0.0.1:9", smtp_port=2525, db_readers=1)
    assert baked_settings(elsewhere) == baked_settings(acme)
    assert baked_settings(msgspec.structs.replace(acme, base_url="https://shop.example")) != baked_settings(acme)
    assert baked_settings(msgspec.structs.replace(acme, max_body_bytes=1000)) != baked_settings(acme)


_PORTAL_TRAFFIC_PROBE = """
import asyncio, sys
from portal.app import create_app
from portal.settings import Settings

app = create_app(Settings.from_env(), freeze_gc=True)
stopping = asyncio.Event()


async def call(scope, messages, sent=None):
    sent = [] if sent is None else sent

    async def receive():
        if messages:
            return messages.pop(0)
        if scope["type"] == "lifespan":  # serving until told to stop
            await stopping.wait()
            return {"type": "lifespan.shutdown"}
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def main():
    startup = [{"type": "lifespan.startup"}]
    started = []
    lifespan = asyncio.create_task(
        call({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, startup, sent=started)
    )
    while not any(m["type"] == "lifespan.startup.complete" for m in started):
        await asyncio.sleep(0.05)
    for path in ("/healthz", "/acme/portal", "/docs"):
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80),
            "state": {},
        }
        answer = await call(scope, [{"type": "http.request", "body": b"", "more_body": False}])
        print(path, answer[0]["status"], file=sys.stderr)
    stopping.set()
    await lifespan
    print(" ".join(sorted(m for m in ("httpx", "cryptography", "stripe", "xhtml2pdf", "reportlab", "paddle_billing")
                          if m in sys.modules)))


asyncio.run(main())
"""


def test_a_worker_serving_portal_traffic_loads_no_processor_or_http_client_library(tmp_path: Path) -> None:
    """What a worker imports stays resident for its lifetime (bench/README.md, "Memory"): the HTTP client (webhook
    deliveries, processor APIs), cryptography (processor secrets), the processors' SDKs and the PDF renderer are
    loaded by the first request that needs them, not by serving pages to customers."""
    import os
    import subprocess
    import sys

    from tests.signin_helpers import insert_org

    env = {**os.environ, "PORTAL_DATA_DIR": str(tmp_path), "PORTAL_SECRET_KEY": "s" * 32}
    settings = Settings(data_dir=tmp_path, secret_key="s" * 32)
    subprocess.run([sys.executable, "-m", "portal", "migrate"], env=env, check=True, capture_output=True)
    insert_org(settings, "acme")
    done = subprocess.run(
        [sys.executable, "-c", _PORTAL_TRAFFIC_PROBE], env=env, capture_output=True, text=True, timeout=120
    )
    assert "/acme/portal 200" in done.stderr, done.stderr[-2000:]
    assert "/healthz 200" in done.stderr
    assert done.stdout.split() == []
