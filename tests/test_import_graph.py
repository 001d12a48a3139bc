"""Import rules between packages (issue 18.2): Polar's shapes live in ``portal.polar`` for every surface, so the
webhook payloads never reach into the admin API, and ``portal.polar`` depends on the areas only.

The graph is read from the source (``import``/``from … import`` anywhere in a module, also inside functions), so a
rule holds whatever runs first; a module's imports are followed transitively within ``portal``."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PORTAL = ROOT / "portal"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in PORTAL.rglob("*.py")}


@cache
def direct_imports(module: str) -> frozenset[str]:
    """The ``portal`` modules ``module`` imports (``from pkg import name`` counts ``pkg.name`` when it is a
    module, else ``pkg``)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return frozenset(name for name in found if name in MODULES)


def reachable(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for name in direct_imports(todo.pop()):
            if name not in seen:
                seen.add(name)
                todo.append(name)
    return seen


def _in(package: str) -> list[str]:
    return sorted(name for name in MODULES if name == package or name.startswith(package + "."))


@pytest.mark.parametrize("module", _in("portal.webhooks") + _in("portal.polar"))
def test_webhooks_and_polar_never_reach_the_admin_api(module: str) -> None:
    admin = sorted(name for name in reachable(module) if name == "portal.admin" or name.startswith("portal.admin."))
    assert not admin, f"{module} reaches {admin}"


def test_the_graph_sees_imports() -> None:
    """The reader follows real imports (a broken reader would pass the rule above)."""
    assert "portal.polar.convert" in reachable("portal.webhooks.payloads")
    assert "portal.admin.auth" in reachable("portal.admin.loaders")
