"""Where the shipped non-Python files live: ``templates/`` and ``seed/``.

In a wheel they are package data (``portal/templates``, ``portal/seed``, see pyproject's force-include); in a
source checkout or editable install they sit at the repository top level next to ``portal/``.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def _shipped(name: str) -> Path:
    inside = _PACKAGE_DIR / name
    if inside.is_dir():
        return inside
    return _PACKAGE_DIR.parent / name


def templates_dir() -> Path:
    return _shipped("templates")


def seed_dir() -> Path:
    return _shipped("seed")


def demo_seed_path() -> Path:
    return seed_dir() / "demo.json"
