"""Connecting Stripe from the console: the key is checked against (a fake) Stripe before anything is stored, a
refused key is named inline and stores nothing, the secrets never come back in a page; and the audit entries."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from portal.app import create_app
from portal.settings import Settings
from tests.console_helpers import add_member, audit_actions, console_cookie, insert_seller, plant_session, sql
from tests.signin_helpers import csrf, insert_org
from tests.stripe_fake import FakeStripe, fake_stripe


@pytest.fixture
def stripe_client(settings: Settings) -> Iterator[tuple[TestClient[Litestar], Settings, FakeStripe]]:
    with fake_stripe() as fake:
        stripe_settings = msgspec.structs.replace(settings, stripe_api_base=fake.base_url)
        with TestClient(create_app(stripe_settings), base_url="http://testserver.local") as client:
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
