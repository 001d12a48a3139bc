"""The Dockerfile, replayed without a Docker engine: its instructions are parsed and run in order on this machine
(COPY into a scratch build dir, RUN with ``/opt/portal`` moved under a temp dir, ENV, WORKDIR), then the CMD is
started with the image's environment and probed with the HEALTHCHECK's own command.

Not replayed: ``useradd``/``chown``/``USER`` (they would change this machine's users); checked instead as text.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO_ROOT, free_port

DOCKERFILE = REPO_ROOT / "Dockerfile"


@dataclass
class Instruction:
    stage: int
    name: str
    args: str


def parse(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped; ``stage`` counts FROMs from 0."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    instructions: list[Instruction] = []
    stage = -1
    for line in logical:
        name, _, args = line.partition(" ")
        name = name.upper()
        if name == "FROM":
            stage += 1
        instructions.append(Instruction(stage, name, args.strip()))
    return instructions


def parse_env(args: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in shlex.split(args))


def test_dockerfile_shape() -> None:
    instructions = parse(DOCKERFILE.read_text())
    names = [i.name for i in instructions]
    assert names.count("FROM") >= 2, "multi-stage: the final image has no build tools"
    final = [i for i in instructions if i.stage == max(i.stage for i in instructions)]
    users = [i.args for i in final if i.name == "USER"]
    assert users and users[-1] not in ("root", "0"), "runs as a non-root user"
    assert any(i.name == "HEALTHCHECK" and "/healthz" in i.args for i in final)
    volume = json.loads(next(i.args for i in final if i.name == "VOLUME"))
    env = {k: v for i in final if i.name == "ENV" for k, v in parse_env(i.args).items()}
    assert env["PORTAL_DATA_DIR"] in volume, "the data dir is the volume"
    cmd = json.loads(next(i.args for i in final if i.name == "CMD"))
    assert cmd[:2] == ["portal", "serve"] and "0.0.0.0" in cmd


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash to run the RUN lines")
def test_dockerfile_commands_build_and_serve_here(tmp_path: Path) -> None:
    root = tmp_path / "root"  # stands in for the image's filesystem root
    shim = tmp_path / "shim"  # `python` as in python:3.11-slim
    shim.mkdir()
    (shim / "python").symlink_to(sys.executable)
    port = str(free_port())

    def rooted(text: str) -> str:
        return text.replace("/opt/portal", str(root / "opt/portal")).replace("/src", str(root / "src"))

    instructions = parse(DOCKERFILE.read_text())
    env = {
        "PATH": f"{shim}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    workdir = root
    healthcheck: list[str] = []
    cmd: list[str] = []
    for instruction in instructions:
        if instruction.name == "WORKDIR":
            workdir = root / instruction.args.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction.name == "COPY" and not instruction.args.startswith("--from"):
            *sources, target = shlex.split(instruction.args)
            for source in sources:
                destination = workdir / target / Path(source).name if target.endswith("/") else workdir / target
                if (REPO_ROOT / source).is_dir():
                    shutil.copytree(
                        REPO_ROOT / source, destination, ignore=shutil.ignore_patterns("__pycache__", "node_modules")
                    )
                else:
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(REPO_ROOT / source, destination)
        elif instruction.name == "RUN":
            if "useradd" in instruction.args:
                continue  # user creation: not on this machine (see the module docstring)
            result = subprocess.run(
                ["bash", "-c", rooted(instruction.args)],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=240,
                check=False,
            )
            assert result.returncode == 0, f"RUN {instruction.args}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        elif instruction.name == "ENV":
            for key, value in parse_env(instruction.args).items():
                value = value.replace("$PATH", env["PATH"]).replace("/data", str(root / "data"))
                env[key] = rooted(value)
        elif instruction.name == "HEALTHCHECK":
            healthcheck = json.loads(instruction.args.split(" CMD ", 1)[1])
        elif instruction.name == "CMD":
            cmd = json.loads(instruction.args)
    assert cmd and healthcheck
    env["PORTAL_DATA_DIR"] = str(root / "data")
    (root / "data").mkdir(parents=True, exist_ok=True)
    portal = shutil.which(cmd[0], path=env["PATH"])
    assert portal is not None and portal.startswith(str(root / "opt/portal")), portal

    cmd = [port if part == "8000" else part for part in cmd]
    healthcheck = [part.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for part in healthcheck]
    with (tmp_path / "serve.log").open("wb") as log:
        server = subprocess.Popen(cmd, cwd=root / "data", env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        healthy = False
        while time.monotonic() < deadline and server.poll() is None:
            probe = subprocess.run(healthcheck, env=env, capture_output=True, timeout=10, check=False)
            if probe.returncode == 0:
                healthy = True
                break
            time.sleep(0.3)
        assert healthy, (tmp_path / "serve.log").read_text()
        # The wheel carries the templates: a rendered page, not only JSON.
        landing = httpx.get(f"http://127.0.0.1:{port}/")
        assert landing.status_code == 200 and "<html" in landing.text.lower()
        assert (root / "data" / "portal.db").exists()
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert os.path.exists(root / "opt/portal/bin/python")
