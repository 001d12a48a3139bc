"""API tokens: minted by ``portal token create``, printed once, stored only as an HMAC, checked on every
admin route (401 otherwise, in Polar's JSON shape), revocable, with a throttled last-used time."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from portal import cli
from portal.admin.tokens import TOKEN_PREFIX
from portal.clock import Clock
from portal.settings import Settings
from tests.admin_support import bearer, create_org, mint_token


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Settings:
    for name in ("PORTAL_BASE_URL", "PORTAL_SECRET_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PORTAL_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("PORTAL_SECRET_KEY", settings.secret_key)
    return settings


def test_cli_create_list_revoke(client: Any, cli_env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["token", "create", "--admin", "--name", "ops"]) == 0
    admin = capsys.readouterr().out.strip()
    assert admin.startswith(TOKEN_PREFIX) and len(admin) > len(TOKEN_PREFIX) + 40
    create_org(client, admin, "acme")
    assert cli.main(["token", "create", "--org", "acme"]) == 0
    org_token = capsys.readouterr().out.strip()
    assert client.get("/v1/customers/", headers=bearer(org_token)).status_code == 200
    assert cli.main(["token", "create", "--org", "nope"]) == 1
    capsys.readouterr()
    assert cli.main(["token", "list"]) == 0
    listing = capsys.readouterr().out
    assert "admin" in listing and "acme" in listing and "ops" in listing
    assert admin not in listing and org_token not in listing
    token_id = next(line.split()[0] for line in listing.splitlines() if " acme " in line)
    assert cli.main(["token", "revoke", token_id]) == 0
    assert client.get("/v1/customers/", headers=bearer(org_token)).status_code == 401
    assert cli.main(["token", "revoke", token_id]) == 1


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Basic abc", "Bearer portal_oat_not-a-real-token", "Bearer " + "x" * 500, "bearer  "],
)
def test_missing_or_bad_token_is_401_json(client: Any, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    for method, path in (("GET", "/v1/products/"), ("POST", "/v1/customer-sessions/"), ("POST", "/v1/admin/seed")):
        response = client.request(method, path, headers=headers, json={})
        assert response.status_code == 401, (method, path)
        body = response.json()
        assert body["error"] == "Unauthorized" and isinstance(body["detail"], str)


def test_customer_session_token_is_not_an_api_token(client: Any, settings: Settings) -> None:
    admin = mint_token(settings)
    org = create_org(client, admin, "acme")
    token = mint_token(settings, org["id"])
    customer = client.post("/v1/customers/", json={"email": "a@example.com"}, headers=bearer(token)).json()
    session = client.post("/v1/customer-sessions/", json={"customer_id": customer["id"]}, headers=bearer(token))
    assert session.status_code == 201
    assert client.get("/v1/customers/", headers=bearer(session.json()["token"])).status_code == 401


def test_tokens_are_stored_only_as_hmac(client: Any, settings: Settings) -> None:
    admin = mint_token(settings)
    org = create_org(client, admin, "acme")
    token = mint_token(settings, org["id"])
    customer = client.post("/v1/customers/", json={"email": "a@example.com"}, headers=bearer(token)).json()
    session = client.post("/v1/customer-sessions/", json={"customer_id": customer["id"]}, headers=bearer(token)).json()
    conn = sqlite3.connect(settings.db_path)
    try:
        dump = "\n".join(conn.iterdump())
    finally:
        conn.close()
    for secret in (admin, token, session["token"], admin.removeprefix(TOKEN_PREFIX)):
        assert secret not in dump


def test_last_used_is_recorded_at_most_once_a_minute(settings: Settings, clock: Clock, client: Any) -> None:
    admin = mint_token(settings)

    def last_used() -> str | None:
        conn = sqlite3.connect(settings.db_path)
        try:
            return conn.execute("SELECT last_used_at FROM api_tokens").fetchone()[0]  # type: ignore[no-any-return]
        finally:
            conn.close()

    assert last_used() is None
    client.get("/v1/organizations/", headers=bearer(admin))
    first = last_used()
    assert first is not None
    clock.advance(30)
    client.get("/v1/organizations/", headers=bearer(admin))
    assert last_used() == first
    clock.advance(31)
    client.get("/v1/organizations/", headers=bearer(admin))
    later = last_used()
    assert later is not None and later > first
