"""The README's first command, run verbatim on a fresh clone in a fresh virtualenv, serves the demo.

(The second command, ``bash .ci/run``, is what CI runs on a fresh clone: it proves itself.)
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from portal.tls import https_context

REPO_ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text()
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S)]


def test_readme_opens_with_the_two_commands() -> None:
    commands = readme_commands()
    assert len(commands) >= 2
    assert "portal serve --demo" in commands[0]
    assert commands[1] == "bash .ci/run"
    ci_script = (REPO_ROOT / ".ci" / "run").read_text()
    assert "pytest" in ci_script and "chromium" in ci_script


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.skipif(shutil.which("git") is None, reason="git is needed to make a fresh clone")
def test_readme_demo_command_works_on_a_fresh_clone(tmp_path: Path) -> None:
    assert port_is_free(8000), "the README command serves on port 8000; something else holds it"
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "VIRTUAL_ENV"))}
    log = (tmp_path / "readme-run.log").open("wb")
    process = subprocess.Popen(
        ["bash", "-c", readme_commands()[0]],
        cwd=clone,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    probe = httpx.Client(timeout=1, verify=https_context())  # one TLS context for every poll (portal/tls.py)
    try:
        deadline = time.monotonic() + 420
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "readme-run.log").read_text()[-3000:]
            try:
                if probe.get("http://127.0.0.1:8000/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        else:
            raise AssertionError("README command did not serve within 7 minutes")
        output = (tmp_path / "readme-run.log").read_text()
        portal_urls = re.findall(r"(http://127\.0\.0\.1:8000/[a-z0-9-]+/portal)", output)
        assert portal_urls, output[-2000:]
        page = httpx.get(portal_urls[0])
        assert page.status_code == 200 and 'type="email"' in page.text
        assert (clone / "portal-data" / "portal.db").is_file()
    finally:
        probe.close()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def quick_start_script() -> str:
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("## Seller quick-start\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the quick-start is one bash block"
    return blocks[0]


def test_readme_quick_start_runs_and_its_link_opens_the_portal(tmp_path: Path) -> None:
    """The six steps, run as written (only the port differs) against a served Portal: the link ``portal link``
    prints opens the new organization's portal signed in, showing the order and its license key."""
    from tests.conftest import free_port
    from tests.serving import portal_env, start_portal, stop, wait_until_up

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = portal_env(tmp_path / "data", PORTAL_BASE_URL=base)
    server = start_portal(["serve", "--port", str(port)], env, tmp_path / "serve.log")
    try:
        wait_until_up(base, server)
        # The script calls `.venv/bin/portal`, as a reader in their checkout would.
        venv_bin = tmp_path / "work" / ".venv" / "bin"
        venv_bin.mkdir(parents=True)
        (venv_bin / "portal").write_text(f'#!/bin/sh\nexec {sys.executable} -m portal "$@"\n')
        (venv_bin / "portal").chmod(0o755)
        script = "set -euo pipefail\n" + quick_start_script().replace("http://127.0.0.1:8000", base)
        run = subprocess.run(
            ["bash", "-c", script], cwd=venv_bin.parent.parent, env=env, capture_output=True, text=True, timeout=120
        )
        assert run.returncode == 0, run.stderr + (tmp_path / "serve.log").read_text()[-2000:]
        link = run.stdout.strip().splitlines()[-1]
        assert link.startswith(f"{base}/my-shop/portal?customer_session_token=polar_cst_"), run.stdout
        with httpx.Client(follow_redirects=True) as browser:
            page = browser.get(link)
            assert page.status_code == 200
            assert "ada@example.com" in page.text and "My App" in page.text
            benefits = browser.get(f"{base}/my-shop/portal/benefits")
            assert "MYAPP-" in benefits.text
    finally:
        stop(server)


def test_portal_link_refuses_unknown_organization_or_customer(tmp_path: Path) -> None:
    from tests.serving import portal_env, run_portal

    env = portal_env(tmp_path / "data")
    unknown_org = run_portal(["link", "--org", "nope", "--email", "a@example.com"], env)
    assert unknown_org.returncode == 1 and "no organization with slug 'nope'" in unknown_org.stderr
    assert unknown_org.stdout == ""
