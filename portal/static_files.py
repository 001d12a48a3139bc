"""``/static/…``: the app's own CSS, scripts and images, served by Litestar's static-files router behind a guard.

The guard answers 404 before the file system is asked for a name no file of ours can have: one with a NUL or
another control character (``open()`` raises ``ValueError: embedded null byte``), a segment longer than 255
bytes or a path longer than 1,024 (``OSError: File name too long``). Those were 500s (issue 17.7).
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotFoundException
from litestar.handlers.base import BaseRouteHandler
from litestar.router import Router
from litestar.static_files import create_static_files_router

from portal.fields import has_control_characters
from portal.resources import templates_dir

MAX_SEGMENT_BYTES = 255
MAX_PATH_BYTES = 1024


def impossible_static_path(path: str) -> bool:
    """Whether ``path`` (decoded) can name no static file: control characters or over-long names."""
    encoded = path.encode("utf-8", "surrogatepass")
    if len(encoded) > MAX_PATH_BYTES or has_control_characters(path):
        return True
    return any(len(segment) > MAX_SEGMENT_BYTES for segment in encoded.split(b"/"))


def _plausible_name(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if impossible_static_path(connection.scope.get("path", "")):
        raise NotFoundException()


def static_router() -> Router:
    """``/static`` served from ``templates/static``, behind the name guard."""
    return create_static_files_router(
        path="/static", directories=[templates_dir() / "static"], guards=[_plausible_name]
    )
