"""``PATCH /v1/license-keys/{id}`` (Polar's ``LicenseKeyUpdate``) through the functions the seller console uses:
status between granted and disabled, usage and its limit, the activation limit (never below the activations the
key has), expiry; another organization's key answers 404 and a refused field is named (422), nothing written."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import TestClient

from portal.settings import Settings
from tests.admin_support import bearer, mint_token
from tests.console_helpers import make_commerce, sql
from tests.signin_helpers import insert_org


def _patch(client: TestClient[Litestar], token: str, key_id: str, body: dict[str, Any]) -> Any:
    return client.patch(f"/v1/license-keys/{key_id}", json=body, headers=bearer(token))


def _row(settings: Settings, key_id: str) -> tuple[Any, ...]:
    (row,) = sql(
        settings,
        "SELECT status, usage, limit_usage, limit_activations, expires_at FROM license_keys WHERE id = ?",
        (key_id,),
    )
    return tuple(row)


def test_update_a_license_key(client: TestClient[Litestar], settings: Settings) -> None:
    org_id = insert_org(settings, "keys", "Keys")
    shop = make_commerce(settings, org_id)
    token = mint_token(settings, org_id)
    before = _row(settings, shop.license_key_id)
    assert before == ("granted", 0, None, 3, None)

    # Refusals, each naming its field, nothing written.
    for body, field in (
        ({"limit_activations": 0}, "limit_activations"),
        ({"limit_activations": None}, "limit_activations"),  # the key has an activation
        ({"status": "revoked"}, "status"),
        ({"usage": -1}, "usage"),
        ({"expires_at": "2030-01-01T00:00:00"}, "expires_at"),  # no offset
    ):
        answer = _patch(client, token, shop.license_key_id, body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["detail"][0]["loc"][-1] == field, answer.json()
    assert _patch(client, token, shop.license_key_id, {"color": "red"}).status_code == 422
    assert _row(settings, shop.license_key_id) == before

    answer = _patch(
        client,
        token,
        shop.license_key_id,
        {
            "status": "disabled",
            "usage": 4,
            "limit_usage": 10,
            "limit_activations": 1,
            "expires_at": "2031-05-01T00:00:00Z",
        },
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["status"], body["usage"], body["limit_usage"], body["limit_activations"]) == ("disabled", 4, 10, 1)
    assert body["expires_at"].startswith("2031-05-01T00:00:00") and len(body["activations"]) == 1
    validate = {"key": shop.key, "organization_id": org_id}
    assert client.post("/v1/customer-portal/license-keys/validate", json=validate).status_code == 404

    answer = _patch(client, token, shop.license_key_id, {"status": "granted", "limit_usage": None, "expires_at": None})
    assert answer.status_code == 200
    assert _row(settings, shop.license_key_id) == ("granted", 4, None, 1, None)
    assert client.post("/v1/customer-portal/license-keys/validate", json=validate).status_code == 200

    # Another organization's token: the key does not exist for it.
    other = mint_token(settings, insert_org(settings, "other", "Other"))
    assert _patch(client, other, shop.license_key_id, {"status": "disabled"}).status_code == 404
    assert _row(settings, shop.license_key_id)[0] == "granted"
