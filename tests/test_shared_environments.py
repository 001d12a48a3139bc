"""Every app of a process renders through one set of compiled templates (``shared_environments()`` in
``portal/templating/environment.py``): building an app adds nothing of its own to that environment, a second app
compiles no template the first one already compiled, and each app still renders its own sellers' values."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import jinja2
import msgspec
import pytest
from litestar.testing import TestClient

from portal.app import create_app
from portal.clock import Clock
from portal.db import connect_sync
from portal.settings import Settings
from portal.templating import shared_environments

pytestmark = pytest.mark.seeded  # data_dir: a copy of the demo seed (tests/conftest.py)


def _renamed_copy(settings: Settings, tmp_path: Path, name: str) -> Settings:
    """Another data dir: the same demo data, with Acme's name changed to ``name``."""
    conn = connect_sync(settings.db_path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(settings.db_path, other / "portal.db")
    conn = connect_sync(other / "portal.db")
    conn.execute("UPDATE organizations SET name = ? WHERE slug = 'acme'", (name,))
    conn.close()
    return msgspec.structs.replace(settings, data_dir=other)


def _page(settings: Settings, path: str) -> str:
    with TestClient(create_app(settings, clock=Clock()), base_url="http://testserver.local") as client:
        response = client.get(path)
        assert response.status_code == 200, response.text[:300]
        return response.text


def test_a_second_app_compiles_nothing_new_and_renders_its_own_seller(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = _renamed_copy(settings, tmp_path, "Zeta Tools")
    first = _page(settings, "/acme/portal")  # compiles what the sign-in page needs, if nothing did yet
    globals_before = dict(shared_environments().base.globals)

    compiled: list[str | None] = []
    original = jinja2.Environment.compile

    def counting(self: jinja2.Environment, source: Any, name: str | None = None, *args: Any, **kwargs: Any) -> Any:
        compiled.append(name)
        return original(self, source, name, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    second = _page(other, "/acme/portal")

    assert "Acme" in first and "Zeta Tools" not in first
    assert "Zeta Tools" in second and "Acme Software" not in second
    assert compiled == []  # the first app's compiled templates served the second
    after = shared_environments().base.globals
    assert after.keys() == globals_before.keys()
    assert all(after[key] is value for key, value in globals_before.items())  # nothing per app was added
