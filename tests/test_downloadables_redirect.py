"""``file.download.url`` from ``GET /v1/customer-portal/downloadables/`` behaves as Polar's: a ``GET`` of it
answers 302 to a short-lived signed file URL (Polar redirects to its storage), never the bytes on the first hop;
an expired link answers 410 ``ResourceUnavailable``, a forged or revoked one 404 ``ResourceNotFound``. Listed
through the real ``polar-sdk`` on a served app, fetched with raw HTTP (the SDK has no method for the hop)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from polar.v2026_10.client import Polar

from portal.clock import Clock
from portal.settings import Settings
from tests.api_server import api_token, execute, served_portal
from tests.browser_helpers import query

pytestmark = pytest.mark.seeded  # data_dir: a copy of the demo seed (tests/conftest.py)


@pytest.fixture
def portal(settings: Settings, clock: Clock) -> Iterator[tuple[str, Settings]]:
    with served_portal(settings, clock=clock) as served:
        yield served


def _listed(portal: tuple[str, Settings], clock: Clock) -> list[object]:
    base_url, settings = portal
    token = api_token(settings, "acme", "alex@example.com", clock=clock)
    with Polar(access_token=token, base_url=base_url) as polar:
        return list(polar.customer_portal.downloadables.iter_list(limit=10))


def _downloads(settings: Settings) -> int:
    return len(query(settings, "SELECT 1 FROM events WHERE name = 'file.downloaded'"))


def test_download_url_redirects_to_a_short_lived_signed_file_url(portal: tuple[str, Settings], clock: Clock) -> None:
    base_url, settings = portal
    items = _listed(portal, clock)
    assert len(items) == 3
    with httpx.Client(follow_redirects=False) as anonymous:
        for item in items:
            url = item.file.download.url  # type: ignore[attr-defined]
            assert url.startswith(f"{base_url}/v1/customer-portal/downloadables/")
            first = anonymous.get(url)
            assert first.status_code == 302, first.text
            assert first.headers["cache-control"] == "no-store"
            assert hashlib.sha256(first.content).hexdigest() != item.file.checksum_sha256_hex  # type: ignore[attr-defined]
            target = first.headers["location"]
            assert target.startswith(f"{base_url}/acme/portal/downloads/")
            # The signed file URL lives a minute, not the listed link's ten.
            expires = int(parse_qs(urlsplit(target).query)["sig"][0].split(".")[0])
            assert expires - clock.now().timestamp() <= 61
            assert datetime.fromisoformat(item.file.download.expires_at) > datetime.now(UTC)  # type: ignore[attr-defined]
            second = anonymous.get(target)
            assert second.status_code == 200
            assert hashlib.sha256(second.content).hexdigest() == item.file.checksum_sha256_hex  # type: ignore[attr-defined]
        # Only fetching the file counts as a download, not the redirect.
        assert _downloads(settings) == 3
        item = items[0]
        target = anonymous.get(item.file.download.url).headers["location"]  # type: ignore[attr-defined]
        clock.advance(90)
        assert anonymous.get(target).status_code == 404  # the file URL is gone after its minute…
        fresh = anonymous.get(item.file.download.url)  # type: ignore[attr-defined]
        assert fresh.status_code == 302 and fresh.headers["location"] != target  # …the listed link is not
        assert anonymous.get(fresh.headers["location"]).status_code == 200
        clock.advance(600)
        expired = anonymous.get(item.file.download.url)  # type: ignore[attr-defined]
    assert expired.status_code == 410
    assert expired.json() == {"error": "ResourceUnavailable", "detail": "This download link has expired."}


def test_forged_malformed_and_revoked_download_urls_answer_404(portal: tuple[str, Settings], clock: Clock) -> None:
    base_url, settings = portal
    items = _listed(portal, clock)
    first, second = (item.file.download.url for item in items[:2])  # type: ignore[attr-defined]
    token = first.rsplit("/", 1)[1]
    grant, file, expires, mac = token.split(".")
    other_file = second.rsplit("/", 1)[1].split(".")[1]
    prefix = f"{base_url}/v1/customer-portal/downloadables/"
    forged = [
        f"{grant}.{file}.{expires}.{mac[:-2]}AA",  # another MAC
        f"{grant}.{other_file}.{expires}.{mac}",  # another file under this signature
        f"{grant}.{file}.{int(expires) + 3600}.{mac}",  # a later expiry under this signature
        "nonsense",
        f"{grant}.{file}.soon.{mac}",
        "x" * 5000,
    ]
    with httpx.Client(follow_redirects=False) as anonymous:
        for bad in forged:
            answer = anonymous.get(prefix + bad)
            assert answer.status_code == 404, bad
            assert answer.json()["error"] == "ResourceNotFound"
        execute(settings, "UPDATE benefit_grants SET revoked_at = '2020-01-01T00:00:00.000000Z' WHERE id = ?", (grant,))
        revoked = anonymous.get(first)
    assert revoked.status_code == 404 and revoked.json()["error"] == "ResourceNotFound"
    assert _downloads(settings) == 0
