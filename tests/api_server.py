"""Helpers of the customer-portal API tests: a demo-seeded data dir per test, the app served for real (uvicorn
on a loopback port, so the official SDK talks HTTP to it), customer-session tokens minted straight into the
database, and a mailer that keeps what it is asked to send."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec

from portal.clock import Clock, iso
from portal.db import Database
from portal.mail import MailMessage
from portal.sessions.store import create_session
from portal.settings import Settings
from tests.admin_support import free_port, serve
from tests.apps import app_for
from tests.browser_helpers import customer_id, org_id


class MemoryMailer:
    """Keeps messages instead of sending them."""

    def __init__(self) -> None:
        self.messages: list[MailMessage] = []

    async def send(self, message: MailMessage) -> bool:
        self.messages.append(message)
        return True


def live_settings(settings: Settings, port: int) -> Settings:
    return msgspec.structs.replace(settings, base_url=f"http://127.0.0.1:{port}")


@contextmanager
def served_portal(settings: Settings, clock: Clock | None = None, mailer: Any = None) -> Iterator[tuple[str, Settings]]:
    """The app on a free loopback port whose PORTAL_BASE_URL is its real address: (base URL, settings)."""
    port = free_port()
    live = live_settings(settings, port)
    with serve(app_for(live, clock=clock, mailer=mailer), port=port) as base_url:
        yield base_url, live.resolve_secrets()


def _run(settings: Settings, work: Any) -> Any:
    async def main() -> Any:
        db = await Database(settings.db_path, readers=1).open()
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(main())


def api_token(settings: Settings, slug: str, email: str, *, ttl_seconds: int = 3600, clock: Clock | None = None) -> str:
    """A customer-session token (kind ``api``) for ``email`` in ``slug``, as ``POST /v1/customer-sessions/``."""
    organization, customer = org_id(settings, slug), customer_id(settings, slug, email)
    now = (clock or Clock()).now()

    async def work(db: Database) -> str:
        async with db.write() as tx:
            token, _ = await create_session(
                tx,
                secret=settings.resolve_secrets().secret_key,
                kind="api",
                organization_id=organization,
                customer_id=customer,
                now=now,
                ttl_seconds=ttl_seconds,
            )
        return token

    return _run(settings, work)  # type: ignore[no-any-return]


def execute(settings: Settings, sql: str, params: tuple[Any, ...] = ()) -> None:
    """One write through the app's own transaction discipline."""

    async def work(db: Database) -> None:
        async with db.write() as tx:
            await tx.execute(sql, params)

    _run(settings, work)


def revoke_tokens(settings: Settings, slug: str, email: str) -> None:
    execute(
        settings,
        "UPDATE customer_sessions SET revoked_at = ? WHERE customer_id = ?",
        (iso(Clock().now()), customer_id(settings, slug, email)),
    )
