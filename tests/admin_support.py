"""Helpers for admin-API tests: mint API tokens straight into a test database, auth headers, a few objects
made through the API, and serving the app with uvicorn on a loopback port (for the official SDKs)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from litestar import Litestar

from portal.admin import tokens
from portal.clock import Clock
from portal.db import Database
from portal.settings import Settings


def mint_token(settings: Settings, organization_id: str | None = None, name: str = "test") -> str:
    """A new API token (admin when ``organization_id`` is None), written with the same code as the CLI."""

    async def work() -> str:
        db = await Database(settings.db_path, readers=1).open()
        try:
            async with db.write() as tx:
                token, _ = await tokens.create_token(
                    tx,
                    secret=settings.resolve_secrets().secret_key,
                    name=name,
                    organization_id=organization_id,
                    now=Clock().now(),
                )
            return token
        finally:
            await db.close()

    return asyncio.run(work())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def create_org(client: Any, admin: str, slug: str, **fields: Any) -> dict[str, Any]:
    response = client.post(
        "/v1/organizations/", json={"name": slug.title(), "slug": slug, **fields}, headers=bearer(admin)
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def api(client: Any, token: str, method: str, path: str, expect: int | None = None, **kwargs: Any) -> Any:
    """Call the API; assert the status when ``expect`` is given; return the JSON body (or None)."""
    response = client.request(method, path, headers=bearer(token), **kwargs)
    if expect is not None:
        assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text}"
    return response.json() if response.content else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(app: Litestar, port: int | None = None) -> Iterator[str]:
    """Run ``app`` with uvicorn in a background thread; yields its base URL (``http://127.0.0.1:<port>``)."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
