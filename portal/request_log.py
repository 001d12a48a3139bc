"""One log line per HTTP request: method, path (never the query string), status, duration, organization, client.

Raw ASGI middleware that ``create_app`` wraps around Litestar's whole handler (routing included), so unmatched
paths (404/405) get their line too. What is never logged: the query string (pre-authenticated
``customer_session_token``, download signatures), headers (cookies, ``Authorization``) and bodies (login codes).
The organization is the one a handler or auth dependency put on ``request.state.organization``. The path is the
decoded one: a CR/LF or other control character in it is escaped by the formatters (``logging_setup``), so a
request cannot forge a log line.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from portal.settings import Settings
from portal.web import scope_client_ip

log = logging.getLogger("portal.request")
_IN_MESSAGE = ("method", "path", "status", "duration_ms")


def _org_slug(scope: Scope) -> str | None:
    state = scope.get("state")
    organization = state.get("organization") if isinstance(state, dict) else None
    if organization is None:
        return None
    slug = organization.get("slug") if isinstance(organization, dict) else getattr(organization, "slug", None)
    return str(slug) if slug else None


class RequestLogMiddleware:
    """Times each HTTP request and logs it once it has been answered (or has failed or been cancelled)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.trusted_proxies = settings.trusted_proxy_set

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            self._log(scope, status, started)

    def _log(self, scope: Scope, status: int | None, started: float) -> None:
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        method = str(scope.get("method", "-"))
        path = str(scope.get("path", "-"))
        fields: dict[str, Any] = {
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": duration_ms,
            "org": _org_slug(scope),
            "client": scope_client_ip(scope, self.trusted_proxies),
        }
        # No status: the client went away or the server stopped before an answer started.
        level = logging.WARNING if status is None else logging.ERROR if status >= 500 else logging.INFO
        log.log(
            level,
            "%s %s %s %.1fms",
            method,
            path,
            status or "-",
            duration_ms,
            extra={"fields": fields, "in_message": _IN_MESSAGE},
        )
