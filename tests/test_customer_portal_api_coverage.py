"""Every customer-portal and customer-session method of ``polar-sdk``, in each API version Portal answers
(2026-10, 2027-01), is (1) routed by Portal with its HTTP method and path, and (2) listed in the README's
compatibility table with its support status."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from litestar import Litestar

from portal.app import create_app
from portal.settings import Settings
from tests.sdk_methods import VERSIONS, sdk_methods

README = Path(__file__).resolve().parent.parent / "README.md"
METHODS = sorted({method for version in VERSIONS for method in sdk_methods(version)})


@pytest.fixture(scope="module")
def openapi_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("cov"), secret_key="coverage-test-secret-key")
    app: Litestar = create_app(settings)
    spec = app.openapi_schema.to_schema()
    return {_normal(path): {m.upper() for m in ops} for path, ops in spec["paths"].items()}


def _normal(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path.rstrip("/"))


def test_sdk_enumeration_is_not_empty() -> None:
    for version in VERSIONS:
        methods = sdk_methods(version)
        assert len(methods) >= 40
        assert ("customer_portal.orders.list", "GET", "/v1/customer-portal/orders/") in methods


@pytest.mark.parametrize(("name", "verb", "path"), METHODS, ids=[m[0] for m in METHODS])
def test_every_sdk_method_is_routed(openapi_paths: dict[str, set[str]], name: str, verb: str, path: str) -> None:
    assert verb in openapi_paths.get(_normal(path), set()), f"{name}: {verb} {path} is not routed"


def test_readme_table_lists_every_sdk_method() -> None:
    text = README.read_text()
    table = text.split("<!-- customer-portal-sdk-table:start -->")[1].split("<!-- customer-portal-sdk-table:end -->")[0]
    rows = {
        match.group(1): match.group(2)
        for match in re.finditer(r"^\| `([a-z_.]+)` \| `[A-Z]+ [^`]+` \| (yes|no|partly) \|", table, re.M)
    }
    assert sorted(rows) == sorted({name for name, _, _ in METHODS})
    assert rows["customer_portal.orders.list"] == "yes" and rows["customer_portal.wallets.list"] == "no"
