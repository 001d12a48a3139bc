"""Outgoing webhooks reach public addresses only, unless the instance allows others
(``PORTAL_WEBHOOK_PRIVATE_ADDRESSES``, off by default): an address literal or ``localhost`` is refused when the
endpoint is saved (admin API and console), and a host name is resolved at each delivery, refused when it resolves
to a non-public address, and otherwise connected to at the address that was checked."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from typing import Any

import pytest
from litestar.testing import TestClient

from portal.clock import Clock
from portal.settings import Settings
from portal.webhooks import destinations
from tests.admin_support import api
from tests.apps import app_for
from tests.console_helpers import console_cookie, make_team, plant_session, sql
from tests.notification_support import fast, make_shop, pay, receiver, wait_until
from tests.signin_helpers import csrf

BASE = "http://testserver.local"

REFUSED = [
    "127.0.0.1",
    "127.8.9.10",
    "localhost",
    "LOCALHOST.",
    "admin.localhost",
    "0.0.0.0",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "224.0.0.1",
    "::1",
    "::",
    "fe80::1%eth0",
    "fd00::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
]
PUBLIC = ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:93.184.216.34", "hooks.example.com"]


@pytest.mark.parametrize("host", REFUSED)
def test_non_public_hosts_are_refused(host: str) -> None:
    assert destinations.host_problem(host) == destinations.REFUSED_HOST


@pytest.mark.parametrize("host", PUBLIC)
def test_public_hosts_and_names_pass_the_save_check(host: str) -> None:
    assert destinations.host_problem(host) is None


def test_a_delivery_connects_to_the_checked_address_under_the_original_name() -> None:
    url, headers, extensions = asyncio.run(destinations.pinned("https://93.184.216.34:8443/hooks?x=1"))
    assert url == "https://93.184.216.34:8443/hooks?x=1"
    assert headers == {"host": "93.184.216.34:8443"} and extensions == {"sni_hostname": "93.184.216.34"}
    url, headers, extensions = asyncio.run(destinations.pinned("http://[2606:4700:4700::1111]/h"))
    assert url == "http://[2606:4700:4700::1111]/h" and headers == {"host": "[2606:4700:4700::1111]"}
    assert extensions == {}
    with pytest.raises(destinations.NonPublicDestination):
        asyncio.run(destinations.pinned("http://127.0.0.1:9/h"))


@pytest.fixture
def strict(settings: Settings) -> Settings:
    """The default: non-public destinations refused."""
    return fast(settings, webhook_private_addresses=False)


def test_the_admin_api_refuses_a_private_url_naming_the_field(strict: Settings, clock: Clock) -> None:
    with TestClient(app_for(strict, clock=clock), base_url=BASE) as client:
        shop = make_shop(client, strict)
        for url in ("http://127.0.0.1:8080/hook", "http://169.254.169.254/latest/meta-data", "http://[::1]/h"):
            answer = api(client, shop.token, "POST", "/v1/webhooks/endpoints", 422, json={"url": url, "events": []})
            assert answer["detail"][0]["loc"] == ["body", "url"], answer
        created = api(
            client,
            shop.token,
            "POST",
            "/v1/webhooks/endpoints",
            201,
            json={"url": "https://hooks.example.com/polar", "events": ["order.paid"]},
        )
        answer = api(
            client,
            shop.token,
            "PATCH",
            f"/v1/webhooks/endpoints/{created['id']}",
            422,
            json={"url": "http://10.0.0.7/hook"},
        )
        assert answer["detail"][0]["loc"] == ["body", "url"], answer
        kept = api(client, shop.token, "GET", f"/v1/webhooks/endpoints/{created['id']}", 200)
        assert kept["url"] == "https://hooks.example.com/polar"


def _resolves_to_non_public(host: str) -> bool:
    try:
        found = socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM)
    except OSError:
        return True
    return not all(destinations.is_public(ipaddress.ip_address(str(entry[4][0]).split("%")[0])) for entry in found)


def _deliveries(settings: Settings) -> list[Any]:
    return sql(settings, "SELECT succeeded, http_code, response FROM webhook_deliveries ORDER BY created_at")


@pytest.mark.parametrize("allowed", [False, True])
def test_a_name_resolving_to_a_private_address_is_refused_at_delivery(
    settings: Settings, clock: Clock, allowed: bool
) -> None:
    """An endpoint saved with a host name (this machine's own, which resolves to loopback or a private address):
    each delivery is refused and nothing reaches the receiver, unless the instance allows private addresses."""
    host = socket.gethostname()
    if not _resolves_to_non_public(host):
        pytest.skip(f"{host} resolves to a public address here")
    app_settings = fast(settings, webhook_private_addresses=allowed, retry_max_attempts=1)
    with TestClient(app_for(app_settings, clock=clock), base_url=BASE) as client:
        shop = make_shop(client, app_settings)
        with receiver() as hook:
            port = hook.url.split(":")[2].split("/")[0]
            url = f"http://{host}:{port}/hooks/polar"
            api(client, shop.token, "POST", "/v1/webhooks/endpoints", 201, json={"url": url, "events": ["order.paid"]})
            pay(client, shop)
            delivered = wait_until(lambda: _deliveries(app_settings))
            time.sleep(0.2)
            received = list(hook.requests)
    ((succeeded, http_code, response),) = delivered
    if allowed:
        if host_reaches_loopback(host):
            assert succeeded and http_code == 200 and len(received) == 1
    else:
        assert not succeeded and http_code is None and received == []
        assert response.startswith(f"Refused: {host} resolves to a non-public address"), response


def host_reaches_loopback(host: str) -> bool:
    try:
        return any(entry[4][0] == "127.0.0.1" for entry in socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM))
    except OSError:
        return False


def test_the_console_form_names_the_refused_address(strict: Settings, clock: Clock) -> None:
    with TestClient(app_for(strict, clock=clock), base_url=BASE) as client:
        client.follow_redirects = False
        team = make_team(strict)
        console_cookie(client, strict, plant_session(strict, team.owner))
        before = sql(strict, "SELECT COUNT(*) FROM webhook_endpoints")[0][0]
        refused = client.post(
            "/console/acme/webhooks/endpoints",
            data={"url": "http://127.0.0.1:3000/hook", "events": "order.paid", "_csrf_token": csrf(client)},
        )
        assert refused.status_code == 400
        assert 'id="new-url-error"' in refused.text and "PORTAL_WEBHOOK_PRIVATE_ADDRESSES" in refused.text
        assert sql(strict, "SELECT COUNT(*) FROM webhook_endpoints")[0][0] == before
        created = client.post(
            "/console/acme/webhooks/endpoints",
            data={"url": "https://hooks.example/orders", "events": "order.paid", "_csrf_token": csrf(client)},
        )
        assert created.status_code in (200, 303), created.text[:500]
        assert sql(strict, "SELECT COUNT(*) FROM webhook_endpoints")[0][0] == before + 1
