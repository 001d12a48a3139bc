"""ASGI entry point for servers: ``uvicorn --factory portal.asgi:app_from_env``."""

from __future__ import annotations

from litestar import Litestar

from portal.app import create_app
from portal.settings import Settings


def app_from_env() -> Litestar:
    return create_app(Settings.from_env())
