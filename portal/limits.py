"""Request body limits: a small one for every route, ``PORTAL_MAX_BODY_BYTES`` only where files come in.

Why two limits: Litestar parses an urlencoded form on the event loop, at about 0.8 s per MB here, and the CSRF
check parses it before any handler runs, so one anonymous 10 MB POST to a sign-in form would stall every other
customer for seconds. Portal's HTML forms and JSON bodies are a few kB; only file uploads and whole seed documents
(which may embed files) need megabytes. Litestar's own ``request_max_body_size`` (set to ``PORTAL_MAX_BODY_BYTES``
by ``create_app``) stays the hard ceiling; ``BodyLimitMiddleware`` enforces the smaller limit everywhere else, on
the announced ``Content-Length`` and on the bytes actually streamed (chunked bodies). Too large: 413.

JSON nested deeper than the decoder's recursion limit raises ``RecursionError`` inside Litestar's decoder;
``is_too_deep`` lets the error handler answer it as invalid JSON (422) instead of a 500.

Throttled answers are held (``ThrottledAnswerHold``): every 429 waits ``THROTTLED_ANSWER_HOLD_SECONDS`` before it
is sent. A client that honours ``Retry-After`` never notices; one that ignores it gets at most four answers a
second per connection, so a flood of refused requests from one client cannot take the CPUs that everybody else's
requests need (bench/README.md, "Writes under floods"). A held answer costs a sleeping coroutine, no CPU; how many
can be held at once is bounded by the connection cap (``portal.serve_guard``).
"""

from __future__ import annotations

import asyncio
import re

from litestar.enums import ScopeType
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

from portal.settings import Settings

# Largest body of any route that does not take files: forms and JSON are a few kB; this parses in ~50 ms at worst.
SMALL_BODY_BYTES = 64 * 1024

# (method, path) of the routes that take files: multipart uploads and seed documents with embedded files.
UPLOAD_ROUTES = frozenset({("POST", "/v1/files"), ("POST", "/v1/admin/seed")})

# The seller console's downloadable-file upload and replace (``portal.console.catalog_pages``), which take the same
# files as ``POST /v1/files``.
CONSOLE_UPLOAD_PATH = re.compile(r"/console/[^/]+/catalog/benefits/[^/]+/files(/[^/]+/replace)?")


def body_limit(settings: Settings, method: str, path: str) -> int:
    """The largest body accepted for ``method path``."""
    if (method.upper(), path.rstrip("/")) in UPLOAD_ROUTES:
        return settings.max_body_bytes
    if method.upper() == "POST" and CONSOLE_UPLOAD_PATH.fullmatch(path):
        return settings.max_body_bytes
    return min(SMALL_BODY_BYTES, settings.max_body_bytes)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimitMiddleware:
    """Raw ASGI wrapper around the app: counts the request body as it is received and raises
    ``RequestEntityTooLarge`` (inside Litestar's handling, so the app's error handler answers 413) when the
    announced or streamed size passes the route's limit."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        limit = body_limit(self.settings, str(scope.get("method", "GET")), str(scope.get("path", "")))
        announced = _content_length(scope)
        received = 0

        async def limited_receive() -> ReceiveMessage:
            nonlocal received
            if announced is not None and announced > limit:
                raise RequestEntityTooLarge()
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise RequestEntityTooLarge()
            return message

        await self.app(scope, limited_receive, send)


def is_too_deep(exc: BaseException) -> bool:
    """``exc`` is the JSON decoder giving up on nesting (msgspec raises ``RecursionError`` for it)."""
    return isinstance(exc, RecursionError) and "deserializing" in str(exc)


# How long a 429 waits before it is sent: short for a person (the page says "try again later" anyway), long enough
# that a client hammering a throttled path gets 4 answers a second per connection instead of hundreds.
THROTTLED_ANSWER_HOLD_SECONDS = 0.25


class ThrottledAnswerHold:
    """Raw ASGI wrapper: holds every 429 answer ``THROTTLED_ANSWER_HOLD_SECONDS`` before its first byte is sent."""

    def __init__(self, app: ASGIApp, hold_seconds: float = THROTTLED_ANSWER_HOLD_SECONDS) -> None:
        self.app = app
        self.hold_seconds = hold_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return

        async def send_throttled_later(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 429:
                await asyncio.sleep(self.hold_seconds)
            await send(message)

        await self.app(scope, receive, send_throttled_later)
