"""Outgoing connections load a CA bundle at most once per process (``portal/tls.py``): processors' API calls and
file downloads share one httpx context, and an email over plain SMTP builds none."""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from portal.connectors.gumroad import client as gumroad
from portal.connectors.lemonsqueezy import client as lemonsqueezy
from portal.connectors.polar import client as polar
from portal.mail import MailMessage, SMTPMailer
from portal.settings import Settings
from tests.conftest import SMTPInbox
from tests.serving import SERVER_POLL


class _JSON(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"success": True, "items": [], "data": []}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api_base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _JSON)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": SERVER_POLL}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def bundle_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every CA bundle loaded into a TLS context from now on (httpx loads certifi's file, ``ssl`` the system's)."""
    loads: list[str] = []
    load_file = ssl.SSLContext.load_verify_locations
    load_system = ssl.SSLContext.load_default_certs

    def counted_file(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append("file")
        load_file(self, *args, **kwargs)

    def counted_system(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append("system")
        load_system(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted_file)
    monkeypatch.setattr(ssl.SSLContext, "load_default_certs", counted_system)
    return loads


def test_processor_calls_share_one_context(api_base: str, bundle_loads: list[str]) -> None:
    for _ in range(3):
        polar.get("polar_oat_test", api_base, "/v1/products/")
        lemonsqueezy.request("ls-key", api_base, "GET", "/v1/stores")
        gumroad.get("gumroad-token", api_base, "/v2/products")
    assert len(bundle_loads) <= 1, bundle_loads  # none when an earlier test of this process built it


def test_plain_smtp_builds_no_tls_context(
    smtp_settings: Settings, smtp_server: tuple[SMTPInbox, int], bundle_loads: list[str]
) -> None:
    inbox, _ = smtp_server
    mailer = SMTPMailer(smtp_settings)
    for n in range(3):
        sent = asyncio.run(mailer.send(MailMessage(to="ada@example.com", subject=f"Hello {n}", text="Hi")))
        assert sent
    assert len(inbox.messages) == 3
    assert bundle_loads == []
