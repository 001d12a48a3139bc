"""Every customer-portal and customer-session method of ``polar-sdk`` (``polar.v2026_10``), enumerated from the
SDK's sync service classes: ``(service.method, HTTP method, path)``. The README's table must list each one."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator

from polar.v2026_10.services import customer_sessions
from polar.v2026_10.services.customer_portal import CustomerPortalSync


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


def sdk_methods() -> list[tuple[str, str, str]]:
    found: dict[str, tuple[str, str, str]] = {}
    for name, annotation in CustomerPortalSync.__annotations__.items():
        service = getattr(inspect.getmodule(CustomerPortalSync), annotation, None) or _resolve(annotation)
        for method, verb, path in _requests(service):
            found[f"customer_portal.{name}.{method}"] = (f"customer_portal.{name}.{method}", verb, path)
    for method, verb, path in _requests(customer_sessions.CustomerSessionsSync):
        found[f"customer_sessions.{method}"] = (f"customer_sessions.{method}", verb, path)
    return sorted(found.values())


def _resolve(annotation: str) -> type:
    import polar.v2026_10.services.customer_portal as package

    return getattr(package, annotation)  # type: ignore[no-any-return]
