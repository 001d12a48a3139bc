"""ASGI entry point for servers: ``uvicorn --factory portal.asgi:app_from_env``."""

from __future__ import annotations

from litestar import Litestar

from portal.app import create_app
from portal.settings import Settings


def app_from_env() -> Litestar:
    """The app of one ``portal serve`` worker process: it owns the process, so its startup objects are frozen."""
    return create_app(Settings.from_env(), freeze_gc=True)
