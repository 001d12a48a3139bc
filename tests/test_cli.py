"""The ``portal`` command for real: migrate, check, seed (atomic, errors by path), serve --demo."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
from bs4 import BeautifulSoup

from portal.cli import build_parser
from portal.resources import demo_seed_path
from tests.conftest import free_port
from tests.serving import portal_env, run_portal, start_portal, stop, wait_until_up


def table_counts(db_path: Path) -> dict[str, int]:
    conn = sqlite3.connect(db_path)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {name: conn.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0] for name in names}
    finally:
        conn.close()


def test_migrate_is_idempotent_and_check_passes(tmp_path: Path) -> None:
    env = portal_env(tmp_path / "data")
    first = run_portal(["migrate"], env)
    assert first.returncode == 0, first.stderr
    assert "Applied migrations" in first.stdout
    second = run_portal(["migrate"], env)
    assert second.returncode == 0 and "Nothing to do" in second.stdout
    check = run_portal(["check"], env)
    assert check.returncode == 0, check.stderr
    assert "ok:" in check.stdout


def test_check_fails_clearly_on_bad_settings(tmp_path: Path) -> None:
    env = portal_env(tmp_path / "data", PORTAL_BASE_URL="not a url")
    run_portal(["migrate"], env)
    result = run_portal(["check"], env)
    assert result.returncode == 1
    assert "PORTAL_BASE_URL" in result.stderr


def test_seed_with_a_bad_field_writes_nothing_and_names_the_path(tmp_path: Path) -> None:
    env = portal_env(tmp_path / "data")
    assert run_portal(["migrate"], env).returncode == 0
    before = table_counts(tmp_path / "data" / "portal.db")
    document = json.loads(demo_seed_path().read_text())
    orders = document["organizations"][0]["orders"]
    assert len(orders) > 3
    orders[3]["amount"] = "lots"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))
    # seed files are resolved relative to the document: keep it next to the real seed dir's files
    (tmp_path / "files").symlink_to(demo_seed_path().parent / "files")
    result = run_portal(["seed", str(bad)], env)
    assert result.returncode == 1
    assert "organizations[0].orders[3].amount" in result.stderr
    assert table_counts(tmp_path / "data" / "portal.db") == before


def test_serve_demo_answers_healthz_and_the_sign_in_page(tmp_path: Path) -> None:
    port = free_port()
    env = portal_env(tmp_path / "data")
    log = tmp_path / "serve.log"
    process = start_portal(["serve", "--demo", "--port", str(port)], env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, process)
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        output = log.read_text()
        urls = [line.split(": ", 1)[1].split()[0] for line in output.splitlines() if "/portal" in line]
        assert len(urls) >= 2, output
        assert "outbox" in output  # where login codes appear
        page = httpx.get(urls[0])
        assert page.status_code == 200
        soup = BeautifulSoup(page.text, "html.parser")
        email_input = soup.find("input", attrs={"type": "email"})
        assert email_input is not None
        form = email_input.find_parent("form")
        assert form is not None and form.get("method") == "post"
        assert soup.find("input", attrs={"name": "_csrf_token"}) is not None
    finally:
        stop(process)
    # A second start on the same data dir does not seed again.
    counts = table_counts(tmp_path / "data" / "portal.db")
    process = start_portal(["serve", "--demo", "--port", str(port)], env, tmp_path / "serve2.log")
    try:
        wait_until_up(base, process)
    finally:
        stop(process)
    assert table_counts(tmp_path / "data" / "portal.db")["orders"] == counts["orders"]


def test_the_command_line_parser_imports_no_web_framework_nor_processor() -> None:
    # `portal serve --workers N` keeps the process that parsed the command line alive as uvicorn's supervisor:
    # whatever building the parser imports stays resident beside the workers for the server's lifetime.
    probe = (
        "import sys; from portal.cli import build_parser; build_parser(); "
        "print(' '.join(sorted(m for m in ('litestar', 'httpx', 'jinja2', 'stripe', 'cryptography', 'babel') "
        "if m in sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == []


def test_every_built_in_processor_is_on_the_command_line_with_its_label() -> None:
    from portal.connectors.base import registry
    from portal.connectors.names import PROCESSOR_LABELS

    assert {name: processor.label for name, processor in registry().items()} == PROCESSOR_LABELS
    parser = build_parser()
    for name in registry():
        assert parser.parse_args(["connect", name, "--org", "acme"]).processor == name
        assert parser.parse_args(["connect", "status", "--org", "acme", "--processor", name]).processor_name == name
