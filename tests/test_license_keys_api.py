"""License-key API with Polar's semantics, driven by ``polar-sdk`` against a served Portal: validate (counters,
usage limits, conditions, expiry, revoked keys), activate up to the limit (and race-safely under concurrency),
deactivate, and the customer's key rotation."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from polar.v2026_10 import outputs
from polar.v2026_10.client import Polar
from polar.v2026_10.errors import BadRequest, NotPermitted, ResourceNotFound, RotateNotPermitted

from portal.settings import Settings
from portal.tls import https_context
from tests.api_server import api_token, execute, served_portal
from tests.browser_helpers import one, org_id, query

pytestmark = pytest.mark.seeded  # data_dir: a copy of the demo seed (tests/conftest.py)


@pytest.fixture
def portal(settings: Settings) -> Iterator[tuple[str, Settings]]:
    with served_portal(settings) as served:
        yield served


def key_row(settings: Settings, email: str, benefit: str, status: str = "granted") -> dict:  # type: ignore[type-arg]
    return dict(
        one(
            settings,
            """
            SELECT k.* FROM license_keys k
            JOIN customers c ON c.id = k.customer_id
            JOIN benefits b ON b.id = k.benefit_id
            WHERE c.email = ? AND b.external_id = ? AND k.status = ?
            """,
            (email, benefit, status),
        )
    )


def public(base_url: str) -> Polar:
    # The license-key endpoints need no token; the SDK always sends one.
    return Polar(access_token="software-without-a-token", base_url=base_url)


def test_validate_counts_and_increments_usage_up_to_the_limit(portal: tuple[str, Settings]) -> None:
    base_url, settings = portal
    key = key_row(settings, "alex@example.com", "acme-pro-license")
    org = org_id(settings, "acme")
    execute(settings, "UPDATE license_keys SET usage = 9998 WHERE id = ?", (key["id"],))
    with public(base_url) as polar:
        keys = polar.customer_portal.license_keys
        first = keys.validate(key=key["key"], organization_id=org)
        used = keys.validate(key=key["key"], organization_id=org, increment_usage=2)
        with pytest.raises(BadRequest) as exhausted:
            keys.validate(key=key["key"], organization_id=org, increment_usage=1)
        with pytest.raises(ResourceNotFound):
            keys.validate(key=key["key"], organization_id=org, benefit_id="00000000-0000-0000-0000-000000000000")
        with pytest.raises(ResourceNotFound):
            keys.validate(key=key["key"], organization_id=org, customer_id="00000000-0000-0000-0000-000000000000")
        with pytest.raises(ResourceNotFound):
            keys.validate(key=key["key"] + "X", organization_id=org)
        with pytest.raises(ResourceNotFound):
            keys.validate(key=key["key"], organization_id=org_id(settings, "lumen"))
    assert isinstance(first, outputs.ValidatedLicenseKey)
    assert first.status == "granted" and first.validations == 1 and first.last_validated_at
    assert first.customer.email == "alex@example.com"
    assert used.usage == 10000 and used.validations == 2
    assert exhausted.value.error.detail == "License key only has 0 more usages."
    row = one(settings, "SELECT usage, validations FROM license_keys WHERE id = ?", (key["id"],))
    assert (row["usage"], row["validations"]) == (10000, 2)


def test_activate_until_the_limit_then_deactivate(portal: tuple[str, Settings]) -> None:
    base_url, settings = portal
    key = key_row(settings, "alex@example.com", "acme-toolkit-license")  # limit 3, 2 activations already
    org = org_id(settings, "acme")
    with public(base_url) as polar:
        keys = polar.customer_portal.license_keys
        activation = keys.activate(
            key=key["key"], organization_id=org, label="Studio Mac", conditions={"major": 3}, meta={"os": "macos"}
        )
        with pytest.raises(NotPermitted) as full:
            keys.activate(key=key["key"], organization_id=org, label="One too many")
        checked = keys.validate(
            key=key["key"], organization_id=org, activation_id=activation.id, conditions={"major": 3}
        )
        with pytest.raises(ResourceNotFound) as mismatch:
            keys.validate(key=key["key"], organization_id=org, activation_id=activation.id, conditions={"major": 4})
        keys.deactivate(key=key["key"], organization_id=org, activation_id=activation.id)
        with pytest.raises(ResourceNotFound):
            keys.deactivate(key=key["key"], organization_id=org, activation_id=activation.id)
        with pytest.raises(ResourceNotFound):
            keys.validate(key=key["key"], organization_id=org, activation_id=activation.id)
        again = keys.activate(key=key["key"], organization_id=org, label="Laptop")
    assert isinstance(activation, outputs.LicenseKeyActivationCreated)
    assert activation.label == "Studio Mac" and activation.meta == {"os": "macos"}
    assert activation.license_key.id == key["id"] and activation.license_key.limit_activations == 3
    assert full.value.error.detail == "License key activation limit already reached"
    assert checked.activation is not None and checked.activation.id == activation.id
    assert mismatch.value.error.detail == "License key does not match required conditions"
    assert again.id != activation.id
    names = [r["name"] for r in query(settings, "SELECT name FROM events WHERE subject_id = ?", (key["id"],))]
    assert names.count("license_key.activated") == 2 and names.count("license_key.deactivated") == 1


def test_keys_without_activations_revoked_and_expired(portal: tuple[str, Settings]) -> None:
    base_url, settings = portal
    org = org_id(settings, "acme")
    revoked = key_row(settings, "casey@example.com", "acme-toolkit-license", "revoked")
    expiring = key_row(settings, "lena.schmidt@example.de", "lumen-desktop-license")
    execute(
        settings, "UPDATE license_keys SET expires_at = '2020-01-01T00:00:00.000000Z' WHERE id = ?", (expiring["id"],)
    )
    sam = key_row(settings, "sam@example.com", "acme-pro-license")
    execute(settings, "UPDATE license_keys SET limit_activations = NULL WHERE id = ?", (sam["id"],))
    with public(base_url) as polar:
        keys = polar.customer_portal.license_keys
        with pytest.raises(ResourceNotFound) as inactive:
            keys.validate(key=revoked["key"], organization_id=org)
        with pytest.raises(NotPermitted):
            keys.activate(key=revoked["key"], organization_id=org, label="x")
        with pytest.raises(ResourceNotFound) as expired:
            keys.validate(key=expiring["key"], organization_id=org_id(settings, "lumen"))
        with pytest.raises(NotPermitted) as expired_activation:
            keys.activate(key=expiring["key"], organization_id=org_id(settings, "lumen"), label="x")
        with pytest.raises(NotPermitted) as no_activations:
            keys.activate(key=sam["key"], organization_id=org, label="x")
        execute(settings, "UPDATE license_keys SET status = 'disabled' WHERE id = ?", (sam["id"],))
        with pytest.raises(ResourceNotFound):
            keys.validate(key=sam["key"], organization_id=org)
    assert inactive.value.error.detail == "License key is no longer active."
    assert expired.value.error.detail == "License key has expired."
    assert expired_activation.value.error.detail == "License key has expired."
    assert "does not support activations" in no_activations.value.error.detail


def test_concurrent_activations_never_exceed_the_limit(portal: tuple[str, Settings]) -> None:
    base_url, settings = portal
    key = key_row(settings, "jordan@example.com", "acme-pro-license")  # limit 5, none used
    org = org_id(settings, "acme")

    def attempt(n: int) -> int:
        body = {"key": key["key"], "organization_id": org, "label": f"device {n}"}
        url = f"{base_url}/v1/customer-portal/license-keys/activate"
        return httpx.post(url, json=body, timeout=30, verify=https_context()).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(attempt, range(12)))
    assert sorted(statuses) == [200] * 5 + [403] * 7
    count = one(settings, "SELECT COUNT(*) FROM license_key_activations WHERE license_key_id = ?", (key["id"],))[0]
    assert count == 5


def test_rotate_keeps_the_record_and_its_activations(portal: tuple[str, Settings]) -> None:
    # When rotation is allowed and refused: tests/test_polar_rules.py (issue 23.2).
    base_url, settings = portal
    key = key_row(settings, "alex@example.com", "acme-toolkit-license")
    org = org_id(settings, "acme")
    with Polar(access_token=api_token(settings, "acme", "alex@example.com"), base_url=base_url) as polar:
        keys = polar.customer_portal.license_keys
        rotated = keys.rotate(key["id"])
        with pytest.raises(ResourceNotFound):
            keys.validate(key=key["key"], organization_id=org)
        valid = keys.validate(key=rotated.key, organization_id=org)
        fetched = keys.get(key["id"])
        revoked = key_row(settings, "alex@example.com", "acme-toolkit-license", "revoked")
        with pytest.raises(RotateNotPermitted):
            keys.rotate(revoked["id"])
    assert rotated.id == key["id"] and rotated.key != key["key"] and rotated.key.startswith("ACME-")
    assert rotated.display_key == f"****-{rotated.key[-6:]}"
    assert valid.id == key["id"] and len(fetched.activations) == 2  # activations kept
