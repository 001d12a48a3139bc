"""Helpers to run Portal for real: ``portal`` as a subprocess, and polling until it answers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from portal.tls import https_context

# How often a fake's ``http.server`` loop looks for ``shutdown()``: its default, half a second, was most of the
# teardown of every test with a fake processor or webhook receiver.
SERVER_POLL = 0.05


def portal_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    # The tests' webhook receivers listen on loopback (the default, refused, is tests/test_webhook_destinations.py's).
    env.update({"PORTAL_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1", "PORTAL_WEBHOOK_PRIVATE_ADDRESSES": "true"})
    env.update(extra)
    return env


def run_portal(args: list[str], env: Mapping[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portal", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_portal(args: list[str], env: Mapping[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "portal", *args], env=dict(env), stdout=log, stderr=subprocess.STDOUT
        )


def wait_until_up(base_url: str, process: subprocess.Popen[bytes] | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    with httpx.Client(timeout=1, verify=https_context()) as probe:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise AssertionError(f"server exited early with {process.returncode}")
            try:
                if probe.get(f"{base_url}/healthz").status_code == 200:
                    return
            except httpx.HTTPError as exc:
                last_error = exc
            time.sleep(0.2)
    raise AssertionError(f"server at {base_url} did not come up: {last_error}")


def stop(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
