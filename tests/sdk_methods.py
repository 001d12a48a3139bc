"""Every customer-portal and customer-session method of ``polar-sdk``, per API version the SDK ships
(``polar.v2026_10``, ``polar.v2027_01``), enumerated from the SDK's sync service classes: ``(service.method, HTTP
method, path)``. The README's table must list each one."""

from __future__ import annotations

import ast
import importlib
import inspect
from collections.abc import Iterator

# The API versions Portal answers; polar-sdk 1.0.2 ships both (and 2026-04, older than Portal).
VERSIONS = ("v2026_10", "v2027_01")


def _requests(cls: type) -> Iterator[tuple[str, str, str]]:
    tree = ast.parse(inspect.getsource(inspect.getmodule(cls)))  # type: ignore[arg-type]
    for node in tree.body:
        if not (isinstance(node, ast.ClassDef) and node.name == cls.__name__):
            continue
        for fn in node.body:
            if not isinstance(fn, ast.FunctionDef) or fn.name.startswith(("_", "iter_")):
                continue
            for call in ast.walk(fn):
                if isinstance(call, ast.Call) and getattr(call.func, "attr", "") == "build_request":
                    kw = {k.arg: k.value for k in call.keywords}
                    yield fn.name, kw["method"].value, kw["url"].value  # type: ignore[attr-defined]


def sdk_methods(version: str = "v2026_10") -> list[tuple[str, str, str]]:
    portal = importlib.import_module(f"polar.{version}.services.customer_portal")
    sessions = importlib.import_module(f"polar.{version}.services.customer_sessions")
    found: dict[str, tuple[str, str, str]] = {}
    for name, annotation in portal.CustomerPortalSync.__annotations__.items():
        service = getattr(portal, annotation)
        for method, verb, path in _requests(service):
            found[f"customer_portal.{name}.{method}"] = (f"customer_portal.{name}.{method}", verb, path)
    for method, verb, path in _requests(sessions.CustomerSessionsSync):
        found[f"customer_sessions.{method}"] = (f"customer_sessions.{method}", verb, path)
    return sorted(found.values())
