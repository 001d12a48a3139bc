"""Helpers for sign-in tests (and any test that needs a signed-in customer): rows inserted with plain SQL, the CSRF
token of a page, a code read from a received email, a browser session planted straight into the database.

Signed-in browser in another test::

    org_id = insert_org(settings, "acme")
    customer_id = insert_customer(settings, org_id, "ada@example.com")
    sign_in_browser(client, settings, "acme", org_id, customer_id)   # sets the session cookie on ``client``
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx
import msgspec
from bs4 import BeautifulSoup
from litestar import Litestar
from litestar.testing import TestClient

from portal.clock import iso, new_id
from portal.db import connect_sync
from portal.security import new_token
from portal.sessions.auth import cookie_name
from portal.sessions.store import token_digest
from portal.settings import Settings
from tests.conftest import SMTPInbox

BASE = "http://testserver.local"


@dataclass
class Shop:
    acme_id: str
    globex_id: str
    ada_acme: str
    ada_globex: str
    bob_acme: str


def _now() -> str:
    return iso(datetime.now(UTC))


def insert_org(settings: Settings, slug: str, name: str | None = None, avatar_url: str | None = None) -> str:
    org_id = new_id()
    conn = connect_sync(settings.db_path)
    try:
        conn.execute(
            "INSERT INTO organizations (id, slug, name, avatar_url, receipt_prefix, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (org_id, slug, name or slug.title(), avatar_url, slug.upper()[:6], _now()),
        )
    finally:
        conn.close()
    return org_id


def insert_customer(settings: Settings, org_id: str, email: str, name: str | None = None) -> str:
    customer_id = new_id()
    conn = connect_sync(settings.db_path)
    try:
        conn.execute(
            "INSERT INTO customers (id, organization_id, email, name, created_at) VALUES (?, ?, ?, ?, ?)",
            (customer_id, org_id, email, name, _now()),
        )
    finally:
        conn.close()
    return customer_id


def insert_session(
    settings: Settings,
    org_id: str,
    customer_id: str,
    *,
    kind: str = "browser",
    ttl_seconds: int = 3600,
    return_url: str | None = None,
    now: datetime | None = None,
    origin: str | None = None,
) -> str:
    """A live ``customer_sessions`` row; returns its token (what a cookie or Bearer header carries). ``api`` rows
    are seller-minted (``origin='seller'``, usable as portal links) unless ``origin`` says otherwise."""
    if origin is None and kind == "api":
        origin = "seller"
    token = new_token(32)
    moment = now or datetime.now(UTC)
    conn = connect_sync(settings.db_path)
    try:
        conn.execute(
            """
            INSERT INTO customer_sessions
                (id, token_hash, kind, organization_id, customer_id, return_url, expires_at, last_seen_at, created_at,
                 origin)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            (
                new_id(),
                token_digest(settings.secret_key, token),
                kind,
                org_id,
                customer_id,
                return_url,
                iso(moment + timedelta(seconds=ttl_seconds)),
                iso(moment),
                iso(moment),
                origin,
            ),
        )
    finally:
        conn.close()
    return token


def sign_in_browser(client: Any, settings: Settings, slug: str, org_id: str, customer_id: str) -> str:
    """Plant a browser session for ``customer_id`` and put its cookie on the TestClient; returns the token."""
    token = insert_session(settings, org_id, customer_id, kind="browser", ttl_seconds=settings.session_max_age)
    set_cookie(client, cookie_name(settings, slug), token)
    return token


def set_cookie(client: Any, name: str, value: str) -> None:
    """Set a cookie as the server would (host-only, path /), replacing the one the server set earlier."""
    client.cookies.set(name, value, domain=client.base_url.host, path="/")


def csrf_from(html: str) -> str:
    field = BeautifulSoup(html, "html.parser").find("input", attrs={"name": "_csrf_token"})
    assert field is not None, "page has no CSRF field"
    return str(field["value"])


def csrf_token(client: Any, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.text
    return csrf_from(response.text)


def text_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def html_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def code_from(message: EmailMessage) -> str:
    """The code, from the WebOTP line ``@host #CODE`` that ends the text part."""
    last = text_part(message).rstrip().splitlines()[-1]
    match = re.fullmatch(r"@\S+ #([A-Z0-9]+)", last)
    assert match, f"last line is not a WebOTP line: {last!r}"
    return match.group(1)


def dump_database(settings: Settings) -> str:
    """Every value of every table as text (to look for secrets that must not be stored)."""
    conn = connect_sync(settings.db_path)
    try:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        chunks = []
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                chunks.append(" | ".join(str(value) for value in tuple(row)))
        return "\n".join(chunks)
    finally:
        conn.close()


class Browser:
    """A cookie jar of its own on a shared TestClient: several "browsers" against one running app (a second
    TestClient would run the app's lifespan again and reopen its database)."""

    def __init__(self, client: TestClient[Litestar]) -> None:
        self.client = client
        self.jar = httpx.Cookies()

    @contextmanager
    def active(self) -> Iterator[TestClient[Litestar]]:
        saved = self.client.cookies
        self.client.cookies = self.jar
        try:
            yield self.client
        finally:
            self.jar = self.client.cookies
            self.client.cookies = saved


def csrf(client: TestClient[Any]) -> str:
    """The CSRF token: Litestar accepts the cookie's own value as the form field."""
    for name in ("csrftoken", "__Host-csrftoken"):
        value = client.cookies.get(name)
        if value:
            return str(value)
    client.get("/")
    return csrf(client)


def request_code(client: TestClient[Any], slug: str, email: str, **headers: str) -> Any:
    return client.post(
        f"/{slug}/portal/request",
        data={"email": email, "_csrf_token": csrf(client)},
        headers=headers or None,
        follow_redirects=False,
    )


def submit_code(client: TestClient[Any], slug: str, code: str) -> Any:
    return client.post(
        f"/{slug}/portal/authenticate",
        data={"code": code, "_csrf_token": csrf(client)},
        follow_redirects=False,
    )


def next_code(inbox: SMTPInbox, count: int) -> str:
    """The code of the ``count``-th email received (1-based), waiting for it to arrive."""
    return code_from(inbox.wait_for(count)[count - 1])


def with_settings(settings: Settings, **changes: Any) -> Settings:
    return msgspec.structs.replace(settings, **changes)


@contextmanager
def root_logs_into(caplog: Any) -> Iterator[None]:
    """Feed every log record to ``caplog`` even after the app's startup swapped the root handlers (Litestar's
    logging config replaces them with its queue handler)."""
    root = logging.getLogger()
    root.addHandler(caplog.handler)
    previous = root.level
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(caplog.handler)
        root.setLevel(previous)
