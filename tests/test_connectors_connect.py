"""Connecting an organization to Stripe (issue 19, Connect): the CLI and the admin API check the key against the
(fake, loopback) Stripe API with the pinned API version, store the secrets encrypted, print/answer the webhook URL
and the events to select, and never show the secrets again."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from portal.cli import main
from portal.connectors.store import decrypt_secrets
from portal.connectors.stripe.client import API_VERSION
from portal.settings import Settings
from tests.admin_support import api, create_org, mint_token
from tests.apps import app_for
from tests.stripe_fake import FakeStripe, fake_stripe

WEBHOOK_SECRET = "whsec_test_secret_for_the_fake"


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with fake_stripe() as running:
        yield running


@pytest.fixture
def stripe_settings(settings: Settings, fake: FakeStripe) -> Settings:
    return msgspec.structs.replace(settings, stripe_api_base=fake.base_url)


@pytest.fixture
def stripe_client(stripe_settings: Settings) -> Iterator[TestClient[Litestar]]:
    with TestClient(app_for(stripe_settings), base_url="http://testserver.local") as test_client:
        yield test_client


def _rows(db_path: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM connector_connections").fetchall()
    finally:
        conn.close()


def _env(monkeypatch: pytest.MonkeyPatch, settings: Settings, api_base: str) -> None:
    monkeypatch.setenv("PORTAL_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("PORTAL_SECRET_KEY", settings.secret_key)
    monkeypatch.setenv("PORTAL_BASE_URL", "https://portal.example.com")
    monkeypatch.setenv("PORTAL_STRIPE_API_BASE", api_base)


def test_cli_connect_checks_the_key_stores_it_encrypted_and_prints_the_webhook(
    stripe_client: TestClient[Litestar],
    stripe_settings: Settings,
    fake: FakeStripe,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    admin = mint_token(stripe_settings)
    org = create_org(stripe_client, admin, "acme")
    _env(monkeypatch, stripe_settings, fake.base_url)
    monkeypatch.setenv("STRIPE_API_KEY", fake.api_key)
    secret_file = tmp_path / "whsec"
    secret_file.write_text(WEBHOOK_SECRET + "\n")

    assert main(["connect", "stripe", "--org", "acme", "--webhook-secret-file", str(secret_file)]) == 0
    out = capsys.readouterr()
    assert "POST https://portal.example.com/v1/integrations/stripe/acme/webhook" in out.out
    assert "checkout.session.completed" in out.out and "customer.subscription.updated" in out.out
    assert fake.api_key not in out.out + out.err and WEBHOOK_SECRET not in out.out + out.err
    # The key was checked against the API, with the pinned version.
    assert [(r.method, r.path) for r in fake.requests] == [("GET", "/v1/customers")]
    assert fake.requests[0].version == API_VERSION
    (row,) = _rows(stripe_settings.db_path)
    assert row["organization_id"] == org["id"] and row["processor"] == "stripe"
    assert fake.api_key not in row["secrets"] and WEBHOOK_SECRET not in row["secrets"]
    secrets = decrypt_secrets(stripe_settings.secret_key, org["id"], "stripe", row["secrets"])
    assert (secrets.api_key, secrets.webhook_secret) == (fake.api_key, WEBHOOK_SECRET)
    # Bound to the organization and the instance secret.
    with pytest.raises(ValueError):
        decrypt_secrets(stripe_settings.secret_key, "another-org", "stripe", row["secrets"])
    with pytest.raises(ValueError):
        decrypt_secrets("another instance secret", org["id"], "stripe", row["secrets"])


def test_cli_connect_with_a_refused_key_stores_nothing(
    stripe_client: TestClient[Litestar],
    stripe_settings: Settings,
    fake: FakeStripe,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    create_org(stripe_client, mint_token(stripe_settings), "acme")
    _env(monkeypatch, stripe_settings, fake.base_url)
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_wrong")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
    assert main(["connect", "stripe", "--org", "acme"]) == 1
    err = capsys.readouterr().err
    assert "Stripe refused the API key" in err and "sk_test_wrong" not in err
    assert _rows(stripe_settings.db_path) == []
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET")
    monkeypatch.setenv("STRIPE_API_KEY", fake.api_key)
    assert main(["connect", "stripe", "--org", "acme"]) == 2
    assert "STRIPE_WEBHOOK_SECRET" in capsys.readouterr().err
    assert main(["connect", "stripe", "--org", "nope", "--webhook-secret-file", "/nonexistent"]) == 2


def test_admin_api_connects_and_never_answers_the_secrets(
    stripe_client: TestClient[Litestar], stripe_settings: Settings, fake: FakeStripe
) -> None:
    admin = mint_token(stripe_settings)
    acme = create_org(stripe_client, admin, "acme")
    other = create_org(stripe_client, admin, "other")
    token = mint_token(stripe_settings, acme["id"])
    body = {"api_key": fake.api_key, "webhook_secret": WEBHOOK_SECRET}

    response = stripe_client.put("/v1/connectors/stripe", json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert fake.api_key not in response.text and WEBHOOK_SECRET not in response.text
    answer = response.json()
    assert answer["webhook_url"] == "http://testserver.local/v1/integrations/stripe/acme/webhook"
    assert "invoice.paid" in answer["webhook_events"]
    assert answer["organization_id"] == acme["id"] and answer["livemode"] is False
    assert answer["settings"]["proration_behavior"] == "create_prorations"

    listed = api(stripe_client, token, "GET", "/v1/connectors/", 200)
    assert [c["processor"] for c in listed] == ["stripe"]
    assert fake.api_key not in str(listed)
    # Another organization sees none of it.
    assert api(stripe_client, mint_token(stripe_settings, other["id"]), "GET", "/v1/connectors/", 200) == []
    # Settings change without the secrets.
    changed = api(stripe_client, token, "PATCH", "/v1/connectors/stripe", 200, json={"payment_method_update": True})
    assert changed["settings"]["payment_method_update"] is True
    # An admin token names the organization.
    missing = api(stripe_client, admin, "PUT", "/v1/connectors/stripe", 422, json=body)
    assert missing["detail"][0]["loc"][-1] == "organization_id"
    api(stripe_client, admin, "PUT", f"/v1/connectors/stripe?organization_id={other['id']}", 200, json=body)


def test_admin_api_refused_or_unreachable_stripe_changes_nothing(
    stripe_client: TestClient[Litestar], stripe_settings: Settings, fake: FakeStripe
) -> None:
    acme = create_org(stripe_client, mint_token(stripe_settings), "acme")
    token = mint_token(stripe_settings, acme["id"])
    wrong = api(
        stripe_client,
        token,
        "PUT",
        "/v1/connectors/stripe",
        422,
        json={"api_key": "sk_test_wrong", "webhook_secret": WEBHOOK_SECRET},
    )
    assert wrong["detail"][0]["loc"][-1] == "api_key" and "refused" in wrong["detail"][0]["msg"]
    fake.down = True
    down = api(
        stripe_client,
        token,
        "PUT",
        "/v1/connectors/stripe",
        502,
        json={"api_key": fake.api_key, "webhook_secret": WEBHOOK_SECRET},
    )
    assert "could not be reached" in down["detail"]
    blank = api(stripe_client, token, "PUT", "/v1/connectors/stripe", 422, json={"api_key": " ", "webhook_secret": "x"})
    assert blank["detail"][0]["loc"][-1] == "api_key"
    api(stripe_client, token, "PUT", "/v1/connectors/nope", 404, json={"api_key": "k", "webhook_secret": "s"})
    assert _rows(stripe_settings.db_path) == []
