"""Connecting processors from the console: each processor's form asks for what that processor needs (in its own
words; Gumroad's URL secret may be left to Portal), the key is checked against the processor (each one's fake)
before anything is stored, a refused key is named inline in that processor's section and stores nothing, the
secrets never come back in a page (Gumroad's ping URL, which holds its secret, is shown once); and the audit
entries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from bs4 import BeautifulSoup
from litestar import Litestar
from litestar.testing import TestClient

from portal.settings import Settings
from tests.apps import app_for
from tests.console_helpers import add_member, audit_actions, console_cookie, insert_seller, plant_session, sql
from tests.gumroad_fake import ACCESS_TOKEN as GUMROAD_TOKEN
from tests.gumroad_fake import fake_gumroad
from tests.lemonsqueezy_fake import fake_lemonsqueezy
from tests.paddle_fake import fake_paddle
from tests.polar_support import fake_polar
from tests.signin_helpers import csrf, insert_org
from tests.stripe_fake import FakeStripe, fake_stripe


@pytest.fixture
def stripe_client(settings: Settings) -> Iterator[tuple[TestClient[Litestar], Settings, FakeStripe]]:
    with fake_stripe() as fake:
        stripe_settings = msgspec.structs.replace(settings, stripe_api_base=fake.base_url)
        with TestClient(app_for(stripe_settings), base_url="http://testserver.local") as client:
            yield client, stripe_settings, fake


def test_connect_checks_the_key_and_never_shows_it(
    stripe_client: tuple[TestClient[Litestar], Settings, FakeStripe],
) -> None:
    client, settings, fake = stripe_client
    acme = insert_org(settings, "acme", "Acme")
    owner = insert_seller(settings, "owner@acme.example")
    add_member(settings, owner, acme, "owner")
    console_cookie(client, settings, plant_session(settings, owner))
    refused = client.post(
        "/console/acme/processors/stripe/connect",
        data={"api_key": "sk_test_wrong", "webhook_secret": "whsec_abc", "_csrf_token": csrf(client)},
    )
    assert refused.status_code == 400 and 'id="stripe-api-key-error"' in refused.text
    assert sql(settings, "SELECT COUNT(*) FROM connector_connections")[0][0] == 0
    empty = client.post(
        "/console/acme/processors/stripe/connect",
        data={"api_key": fake.api_key, "webhook_secret": " ", "_csrf_token": csrf(client)},
    )
    assert empty.status_code == 400 and 'id="stripe-webhook-secret-error"' in empty.text
    accepted = client.post(
        "/console/acme/processors/stripe/connect",
        data={"api_key": fake.api_key, "webhook_secret": "whsec_abc", "_csrf_token": csrf(client)},
    )
    assert accepted.status_code == 200, accepted.text[:300]
    assert "http://testserver.local/v1/integrations/stripe/acme/webhook" in accepted.text
    assert "Connected." in accepted.text
    assert fake.api_key not in accepted.text and "whsec_abc" not in accepted.text
    (stored,) = sql(settings, "SELECT secrets FROM connector_connections")
    assert fake.api_key not in stored[0] and "whsec_abc" not in stored[0]
    assert [entry[0] for entry in audit_actions(settings, acme)] == ["processor.connect"]


@pytest.fixture
def every_fake(settings: Settings, tmp_path: Path) -> Iterator[tuple[TestClient[Litestar], Settings, dict[str, str]]]:
    """The console app with every processor's API played by its fake; the key each fake accepts, by processor."""
    with (
        fake_polar(tmp_path / "polar") as polar,
        fake_lemonsqueezy() as lemonsqueezy,
        fake_paddle() as paddle,
        fake_gumroad() as gumroad,
    ):
        fakes_settings = msgspec.structs.replace(
            settings,
            polar_api_base=polar.base_url,
            lemonsqueezy_api_base=lemonsqueezy.base_url,
            paddle_api_base=paddle.base_url,
            gumroad_api_base=gumroad.base_url,
        )
        keys = {
            "polar": polar.token,
            "lemonsqueezy": lemonsqueezy.api_key,
            "paddle": paddle.api_key,
            "gumroad": GUMROAD_TOKEN,
        }
        with TestClient(app_for(fakes_settings), base_url="http://testserver.local") as client:
            yield client, fakes_settings, keys


# What each processor's form asks for, in its own words (portal/connectors/<name>/processor.py: what it checks).
LABELS = {
    "polar": ("Organization access token", "Webhook secret"),
    "lemonsqueezy": ("API key", "Webhook signing secret"),
    "paddle": ("API key", "Webhook secret key"),
    "gumroad": ("Access token", "Ping URL secret (optional)"),
    "stripe": ("Secret API key", "Webhook signing secret"),
}


def test_every_processor_has_its_own_form_and_connects_through_the_console(
    every_fake: tuple[TestClient[Litestar], Settings, dict[str, str]],
) -> None:
    client, settings, keys = every_fake
    acme = insert_org(settings, "acme", "Acme")
    owner = insert_seller(settings, "owner@acme.example")
    add_member(settings, owner, acme, "owner")
    console_cookie(client, settings, plant_session(settings, owner))
    page = BeautifulSoup(client.get("/console/acme/processors").text, "html.parser")
    for name, (key_label, secret_label) in LABELS.items():
        assert page.select_one(f'label[for="{name}-api-key"]').get_text() == key_label  # type: ignore[union-attr]
        assert page.select_one(f'label[for="{name}-webhook-secret"]').get_text() == secret_label  # type: ignore[union-attr]
    assert page.select_one("#gumroad-webhook-secret").has_attr("required") is False  # type: ignore[union-attr]
    assert page.select_one("#paddle-webhook-secret").has_attr("required")  # type: ignore[union-attr]

    for name in ("polar", "lemonsqueezy", "paddle", "gumroad"):
        # A key the processor refuses: named inline, in this processor's section only, nothing stored.
        refused = client.post(
            f"/console/acme/processors/{name}/connect",
            data={"api_key": "wrong-key", "webhook_secret": "s" * 24, "_csrf_token": csrf(client)},
        )
        assert refused.status_code == 400, (name, refused.text[:300])
        errors = BeautifulSoup(refused.text, "html.parser").select(".field-error")
        assert [error["id"] for error in errors] == [f"{name}-api-key-error"], name
        assert sql(settings, "SELECT COUNT(*) FROM connector_connections WHERE processor = ?", (name,))[0][0] == 0

    for name in ("polar", "lemonsqueezy", "paddle"):
        missing = client.post(
            f"/console/acme/processors/{name}/connect",
            data={"api_key": keys[name], "webhook_secret": " ", "_csrf_token": csrf(client)},
        )
        assert missing.status_code == 400 and f'id="{name}-webhook-secret-error"' in missing.text, name
        secret = f"{name}-webhook-secret-for-tests"
        accepted = client.post(
            f"/console/acme/processors/{name}/connect",
            data={"api_key": keys[name], "webhook_secret": secret, "_csrf_token": csrf(client)},
        )
        assert accepted.status_code == 200 and "Connected." in accepted.text, (name, accepted.text[:300])
        assert f"http://testserver.local/v1/integrations/{name}/acme/webhook" in accepted.text
        assert keys[name] not in accepted.text and secret not in accepted.text
        (stored,) = sql(settings, "SELECT secrets FROM connector_connections WHERE processor = ?", (name,))[0]
        assert keys[name] not in stored and secret not in stored

    # Gumroad: an unsafe URL secret is refused; left empty, Portal picks one and shows the whole ping URL once.
    unsafe = client.post(
        "/console/acme/processors/gumroad/connect",
        data={"api_key": keys["gumroad"], "webhook_secret": "short&x", "_csrf_token": csrf(client)},
    )
    assert unsafe.status_code == 400 and 'id="gumroad-webhook-secret-error"' in unsafe.text
    connected = client.post(
        "/console/acme/processors/gumroad/connect",
        data={"api_key": keys["gumroad"], "webhook_secret": "", "_csrf_token": csrf(client)},
        follow_redirects=False,
    )
    assert connected.status_code == 200
    ping = BeautifulSoup(connected.text, "html.parser").select_one("#gumroad-ping-url")
    assert ping is not None
    ping_url = ping.get_text()
    assert ping_url.startswith("http://testserver.local/v1/integrations/gumroad/acme/webhook?secret=")
    assert ping_url not in client.get("/console/acme/processors").text  # shown once
    # The secret in the URL is the connection's: a ping carrying it is let in, another secret is refused.
    path = ping_url.removeprefix("http://testserver.local")
    wrong = client.post(path.rsplit("=", 1)[0] + "=not-the-secret-at-all", data={"sale_id": "x"})
    assert wrong.status_code in (400, 401, 403)
    right = client.post(path, data={"sale_id": "sale-unknown"})
    assert right.status_code not in (400, 401, 403), right.text[:300]
    actions = [entry[0] for entry in audit_actions(settings, acme)]
    assert actions == ["processor.connect"] * 4
