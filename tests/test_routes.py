"""``portal routes``: the one list of every route (methods, path, handler), as the app serves them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from portal.app import create_app
from portal.cli import main, route_table
from portal.settings import Settings


def test_routes_lists_every_documented_operation_with_its_handler(settings: Settings) -> None:
    table = route_table(settings)
    listed = {(method, re.sub(r":[a-z]+\}", "}", path)) for methods, path, _ in table for method in methods.split(",")}
    schema = create_app(settings).openapi_schema.to_schema()
    documented = {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert documented, "the OpenAPI schema lists operations"
    assert documented <= listed, sorted(documented - listed)
    assert ("GET", "/healthz", "portal.system.healthz") in table
    assert not [row for row in table if row[0] == "OPTIONS"], "Litestar's automatic OPTIONS answers are left out"
    assert table == sorted(table, key=lambda row: (row[1], row[0]))


def test_portal_routes_prints_one_route_a_line(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PORTAL_DATA_DIR", str(data_dir))
    assert main(["routes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split("\t") for line in lines]
    assert all(len(row) == 3 for row in rows), lines[:5]
    assert ["GET", "/healthz", "portal.system.healthz"] in rows
    assert any(path.startswith("/v1/customer-portal/orders") for _, path, _ in rows)
