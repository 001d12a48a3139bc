"""The console's commerce pages end to end (issue 21, Customers): a subscription canceled at the period end,
resumed and ended now by a seller (the customer portal's service functions: the same emails and webhooks); a
license key disabled, enabled, rotated, re-limited, re-dated, revealed and an activation removed, checked through
the public validate API; benefits granted by hand and revoked; refused inputs named with nothing written; another
organization's ids answering 404. The processor path (Stripe's loopback fake) is in the second half."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from portal.clock import iso, new_id
from portal.connectors import base
from portal.settings import Settings
from tests.apps import app_for
from tests.console_helpers import (
    NOW,
    Commerce,
    Team,
    add_member,
    audit_actions,
    console_cookie,
    insert_seller,
    make_commerce,
    make_team,
    plant_session,
    sql,
)
from tests.signin_helpers import csrf, insert_session
from tests.stripe_actions_support import LedgerProcessor, StripeShop, make_shop
from tests.stripe_fake import FakeStripe, fake_stripe


@pytest.fixture
def team(settings: Settings, client: TestClient[Litestar]) -> Team:
    made = make_team(settings)
    # An endpoint that hears every event the actions send (make_team's own hears order.paid only).
    events = [
        "subscription.updated",
        "subscription.canceled",
        "subscription.uncanceled",
        "subscription.revoked",
        "benefit_grant.created",
        "benefit_grant.updated",
        "benefit_grant.revoked",
        "license_key.deactivated",
    ]
    sql(
        settings,
        "INSERT INTO webhook_endpoints (id, organization_id, url, name, secret, events, created_at) "
        "VALUES (?, ?, 'https://hooks.acme.example/all', 'All', 'whsec_y', ?, ?)",
        (new_id(), made.acme_id, json.dumps(events), iso(NOW)),
    )
    return made


def _as(client: TestClient[Litestar], settings: Settings, seller_id: str) -> None:
    console_cookie(client, settings, plant_session(settings, seller_id))


def _post(client: TestClient[Litestar], path: str, **fields: str) -> Any:
    return client.post(path, data={"_csrf_token": csrf(client), **fields}, follow_redirects=False)


def _hooks(settings: Settings, org_id: str) -> list[str]:
    """The webhook events queued for the test's endpoint (make_team's own failed event left out)."""
    rows = sql(
        settings,
        "SELECT type FROM webhook_events WHERE organization_id = ? "
        "AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE name = 'All') ORDER BY rowid",
        (org_id,),
    )
    return [row[0] for row in rows]


def _emails(settings: Settings, org_id: str) -> list[str]:
    return [
        row[0]
        for row in sql(settings, "SELECT kind FROM email_outbox WHERE organization_id = ? ORDER BY rowid", (org_id,))
    ]


def _subscription(settings: Settings, subscription_id: str) -> dict[str, Any]:
    (row,) = sql(
        settings,
        "SELECT status, cancel_at_period_end, ends_at, ended_at FROM subscriptions WHERE id = ?",
        (subscription_id,),
    )
    return {"status": row[0], "cancel_at_period_end": bool(row[1]), "ends_at": row[2], "ended_at": row[3]}


def _key(settings: Settings, key_id: str) -> dict[str, Any]:
    (row,) = sql(
        settings,
        "SELECT key, display_key, status, limit_activations, expires_at FROM license_keys WHERE id = ?",
        (key_id,),
    )
    return dict(zip(("key", "display_key", "status", "limit_activations", "expires_at"), row, strict=True))


def _validates(client: TestClient[Litestar], org_id: str, key: str) -> bool:
    answer = client.post("/v1/customer-portal/license-keys/validate", json={"key": key, "organization_id": org_id})
    assert answer.status_code in (200, 404), answer.text
    return answer.status_code == 200


# --- subscription -------------------------------------------------------------------------------------------


def test_support_cancels_resumes_and_ends_a_subscription_with_the_portals_emails_and_webhooks(
    client: TestClient[Litestar], settings: Settings, team: Team
) -> None:
    shop = team.commerce
    _as(client, settings, team.support)
    page_path = f"/console/acme/subscriptions/{shop.subscription_id}"
    page = client.get(page_path)
    assert page.status_code == 200
    assert "Console Plan" in page.text and "buyer@console.example" in page.text
    assert "Portal (no processor)" in page.text
    assert "Cancel at the end of the period" in page.text and "End now and revoke its benefits" in page.text

    done = _post(client, page_path + "/cancel", when="period_end")
    assert done.status_code == 303 and done.headers["location"] == page_path + "?done=canceled"
    state = _subscription(settings, shop.subscription_id)
    assert state["cancel_at_period_end"] and state["status"] == "active" and state["ends_at"]
    assert _hooks(settings, team.acme_id) == ["subscription.updated", "subscription.canceled"]
    assert _emails(settings, team.acme_id)[-1] == "subscription_canceled"
    after = client.get(page_path + "?done=canceled").text
    assert "The subscription will end at the end of its current period." in after
    assert "subscription.canceled" in after and "Resume (un-cancel)" in after  # its recent changes, the next step
    # Canceling again is refused (409) and changes nothing.
    again = _post(client, page_path + "/cancel", when="period_end")
    assert again.status_code == 409 and "changed in the meantime" in again.text

    assert _post(client, page_path + "/uncancel").status_code == 303
    assert not _subscription(settings, shop.subscription_id)["cancel_at_period_end"]
    assert _hooks(settings, team.acme_id)[-2:] == ["subscription.updated", "subscription.uncanceled"]
    assert _emails(settings, team.acme_id)[-1] == "subscription_uncanceled"

    assert _post(client, page_path + "/cancel", when="now").status_code == 303
    state = _subscription(settings, shop.subscription_id)
    assert state["status"] == "canceled" and state["ended_at"]
    assert _key(settings, shop.license_key_id)["status"] == "revoked"  # the subscription's grant went with it
    assert "subscription.revoked" in _hooks(settings, team.acme_id)
    assert "benefit_grant.revoked" in _hooks(settings, team.acme_id)
    ended = client.get(page_path).text
    assert "This subscription has ended" in ended

    assert [entry[:3] for entry in audit_actions(settings, team.acme_id)] == [
        ("subscription.cancel", "support@acme.example", "support"),
        ("subscription.uncancel", "support@acme.example", "support"),
        ("subscription.cancel", "support@acme.example", "support"),
    ]
    details = [json.loads(row[0]) for row in sql(settings, "SELECT details FROM seller_audit_log ORDER BY rowid")]
    assert details == [
        {"processor": None, "when": "period_end"},
        {"processor": None},
        {"processor": None, "when": "now"},
    ]
    seller_events = sql(
        settings, "SELECT name, data FROM events WHERE subject_id = ? ORDER BY rowid", (shop.subscription_id,)
    )
    assert [name for name, _ in seller_events] == [
        "subscription.canceled",
        "subscription.uncanceled",
        "subscription.revoked",
    ]
    assert all(json.loads(data)["by"] == "seller" for _, data in seller_events)


def test_a_bad_when_is_named_and_nothing_is_written(
    client: TestClient[Litestar], settings: Settings, team: Team
) -> None:
    _as(client, settings, team.owner)
    path = f"/console/acme/subscriptions/{team.commerce.subscription_id}"
    refused = _post(client, path + "/cancel", when="yesterday")
    assert refused.status_code == 400 and 'id="when-error"' in refused.text
    assert not _subscription(settings, team.commerce.subscription_id)["cancel_at_period_end"]
    assert audit_actions(settings, team.acme_id) == [] and _hooks(settings, team.acme_id) == []


# --- license key --------------------------------------------------------------------------------------------


def test_disable_enable_and_rotate_a_key_as_the_validate_api_sees_it(
    client: TestClient[Litestar], settings: Settings, team: Team
) -> None:
    shop = team.commerce
    _as(client, settings, team.support)
    path = f"/console/acme/license-keys/{shop.license_key_id}"
    page = client.get(path)
    assert page.status_code == 200
    assert shop.key not in page.text  # masked until revealed
    assert _key(settings, shop.license_key_id)["display_key"] in page.text
    assert "Bo&#39;s laptop" in page.text and "linux" in page.text and "1 of 3" in page.text
    assert _validates(client, team.acme_id, shop.key)

    assert _post(client, path + "/disable").headers["location"] == path + "?done=disabled"
    assert _key(settings, shop.license_key_id)["status"] == "disabled"
    assert not _validates(client, team.acme_id, shop.key)
    assert _post(client, path + "/disable").status_code == 409  # only a granted key

    assert _post(client, path + "/enable").status_code == 303
    assert _validates(client, team.acme_id, shop.key)

    revealed = _post(client, path + "/reveal")
    assert revealed.status_code == 200 and f'id="revealed-key">{shop.key}<' in revealed.text

    rotated = _post(client, path + "/rotate")
    assert rotated.status_code == 200
    found = re.search(r'id="new-key">([^<]+)<', rotated.text)
    assert found is not None
    new_key = found.group(1)
    assert new_key.startswith("CON-") and new_key != shop.key
    assert not _validates(client, team.acme_id, shop.key) and _validates(client, team.acme_id, new_key)
    assert client.get(path).text.count(new_key) == 0  # shown once: not on the page again
    assert (
        sql(settings, "SELECT COUNT(*) FROM license_key_activations WHERE license_key_id = ?", (shop.license_key_id,))[
            0
        ][0]
        == 1
    )
    (grant_props,) = sql(settings, "SELECT properties FROM benefit_grants WHERE id = ?", (shop.grant_id,))[0]
    assert json.loads(grant_props)["display_key"] == _key(settings, shop.license_key_id)["display_key"]

    # A revoked key (its grant revoked) can be neither enabled nor rotated.
    sql(settings, "UPDATE benefit_grants SET revoked_at = ? WHERE id = ?", (iso(NOW), shop.grant_id))
    sql(settings, "UPDATE license_keys SET status = 'disabled' WHERE id = ?", (shop.license_key_id,))
    assert _post(client, path + "/enable").status_code == 409
    assert _key(settings, shop.license_key_id)["status"] == "disabled"

    assert [entry[0] for entry in audit_actions(settings, team.acme_id)] == [
        "license_key.disabled",
        "license_key.enabled",
        "license_key.reveal",
        "license_key.rotated",
    ]
    events = [
        row[0]
        for row in sql(
            settings,
            "SELECT name FROM events WHERE subject_id = ? AND name LIKE 'license_key.%' ORDER BY rowid",
            (shop.license_key_id,),
        )
    ]
    assert events[-3:] == ["license_key.disabled", "license_key.enabled", "license_key.rotated"]


def test_limit_expiry_and_deactivation_with_refusals_named(
    client: TestClient[Litestar], settings: Settings, team: Team
) -> None:
    shop = team.commerce
    _as(client, settings, team.owner)
    path = f"/console/acme/license-keys/{shop.license_key_id}"
    # A second activation: the limit can then not go below 2.
    sql(
        settings,
        "INSERT INTO license_key_activations (id, license_key_id, label, meta, created_at) "
        "VALUES (?, ?, 'Desk', '{}', ?)",
        (new_id(), shop.license_key_id, iso(NOW)),
    )
    for value, message in (
        ("1", "The key has 2 activations"),
        ("0", "from 1 to 50"),
        ("abc", "from 1 to 50"),
        ("51", "from 1 to 50"),
    ):
        refused = _post(client, path + "/limit", limit_activations=value)
        assert refused.status_code == 400, value
        assert 'id="f-limit_activations-error"' in refused.text and message in refused.text
        assert f'value="{value}"' in refused.text  # kept as typed
    assert _key(settings, shop.license_key_id)["limit_activations"] == 3
    assert _post(client, path + "/limit", limit_activations="2").status_code == 303
    assert _key(settings, shop.license_key_id)["limit_activations"] == 2

    refused = _post(client, path + "/expiry", expires_at="31/12/2030")
    assert refused.status_code == 400 and 'id="f-expires_at-error"' in refused.text
    assert _key(settings, shop.license_key_id)["expires_at"] is None
    assert _post(client, path + "/expiry", expires_at="2030-12-31").status_code == 303
    assert _key(settings, shop.license_key_id)["expires_at"] == "2030-12-31T00:00:00.000000Z"
    assert _validates(client, team.acme_id, shop.key)
    assert _post(client, path + "/expiry", expires_at="2001-01-01").status_code == 303  # in the past: expired now
    assert not _validates(client, team.acme_id, shop.key)
    assert "Expired" in client.get(path).text
    assert _post(client, path + "/expiry", expires_at="").status_code == 303  # no expiry
    assert _key(settings, shop.license_key_id)["expires_at"] is None and _validates(client, team.acme_id, shop.key)

    done = _post(client, path + f"/activations/{shop.activation_id}/deactivate")
    assert done.status_code == 303
    left = sql(settings, "SELECT label FROM license_key_activations WHERE license_key_id = ?", (shop.license_key_id,))
    assert [tuple(row) for row in left] == [("Desk",)]
    assert _hooks(settings, team.acme_id) == ["license_key.deactivated"]
    assert _post(client, path + f"/activations/{shop.activation_id}/deactivate").status_code == 404
    assert [entry[0] for entry in audit_actions(settings, team.acme_id)] == [
        "license_key.limit_changed",
        "license_key.expiry_changed",
        "license_key.expiry_changed",
        "license_key.expiry_changed",
        "license_key.deactivated",
    ]


# --- benefit grants -----------------------------------------------------------------------------------------


def test_grant_by_hand_and_revoke_with_webhooks(client: TestClient[Litestar], settings: Settings, team: Team) -> None:
    shop = team.commerce
    _as(client, settings, team.support)
    path = f"/console/acme/customers/{shop.customer_id}/benefits"
    page = client.get(path)
    assert page.status_code == 200
    assert "Console Key" in page.text and f"/console/acme/subscriptions/{shop.subscription_id}" in page.text
    assert f"/console/acme/license-keys/{shop.license_key_id}" in page.text

    # Another organization's benefit is refused as an unknown one, named, nothing written.
    globex_benefit = make_commerce(settings, team.globex_id).support_benefit_id
    refused = _post(client, path + "/grant", benefit_id=globex_benefit)
    assert refused.status_code == 400 and 'id="f-benefit_id-error"' in refused.text
    assert _post(client, path + "/grant", benefit_id="").status_code == 400
    assert audit_actions(settings, team.acme_id) == []

    granted = _post(client, path + "/grant", benefit_id=shop.support_benefit_id)
    assert granted.headers["location"] == path + "?done=granted"
    rows = sql(
        settings,
        "SELECT id, order_id, subscription_id, revoked_at FROM benefit_grants WHERE customer_id = ? AND benefit_id = ?",
        (shop.customer_id, shop.support_benefit_id),
    )
    ((manual_id, order_id, subscription_id, revoked_at),) = rows
    assert (order_id, subscription_id, revoked_at) == (None, None, None)
    assert _hooks(settings, team.acme_id) == ["benefit_grant.created"]
    assert "Granted by hand" in client.get(path).text
    # Granting it again changes nothing (no second grant, no webhook).
    assert _post(client, path + "/grant", benefit_id=shop.support_benefit_id).headers["location"] == path + "?done=held"
    assert _hooks(settings, team.acme_id) == ["benefit_grant.created"]

    # A hand-granted license-key benefit issues its own key.
    assert _post(client, path + "/grant", benefit_id=shop.key_benefit_id).status_code == 303
    keys = sql(settings, "SELECT status FROM license_keys WHERE customer_id = ?", (shop.customer_id,))
    assert len(keys) == 2

    # Revoking the subscription's grant revokes its key.
    assert _post(client, path + f"/{shop.grant_id}/revoke").headers["location"] == path + "?done=revoked"
    assert _key(settings, shop.license_key_id)["status"] == "revoked"
    assert not _validates(client, team.acme_id, shop.key)
    assert _post(client, path + f"/{manual_id}/revoke").status_code == 303
    assert _hooks(settings, team.acme_id)[-2:] == ["benefit_grant.revoked", "benefit_grant.revoked"]
    listing = client.get(path).text
    assert listing.count("Revoked on") == 2
    assert [entry[0] for entry in audit_actions(settings, team.acme_id)] == [
        "benefit.grant",
        "benefit.grant",
        "benefit.grant",
        "benefit.revoke",
        "benefit.revoke",
    ]


# --- isolation ----------------------------------------------------------------------------------------------


def _paths(shop: Commerce, slug: str) -> list[tuple[str, str]]:
    key = f"/console/{slug}/license-keys/{shop.license_key_id}"
    sub = f"/console/{slug}/subscriptions/{shop.subscription_id}"
    benefits = f"/console/{slug}/customers/{shop.customer_id}/benefits"
    return [
        ("GET", sub),
        ("POST", sub + "/cancel"),
        ("POST", sub + "/uncancel"),
        ("GET", key),
        *(("POST", f"{key}/{action}") for action in ("disable", "enable", "reveal", "rotate", "limit", "expiry")),
        ("POST", f"{key}/activations/{shop.activation_id}/deactivate"),
        ("GET", benefits),
        ("POST", benefits + "/grant"),
        ("POST", f"{benefits}/{shop.grant_id}/revoke"),
    ]


def test_another_organizations_ids_answer_404_and_change_nothing(
    client: TestClient[Litestar], settings: Settings, team: Team
) -> None:
    globex = make_commerce(settings, team.globex_id)
    body = {
        "when": "now",
        "limit_activations": "5",
        "expires_at": "2030-01-01",
        "benefit_id": globex.support_benefit_id,
    }
    _as(client, settings, team.owner)  # acme's owner, with globex's ids under acme's address
    for method, path in _paths(globex, "acme"):
        response = client.get(path) if method == "GET" else _post(client, path, **body)
        assert response.status_code == 404, (method, path, response.status_code)
    # An activation of acme's key paired with another key, and ids that cannot be ids.
    other_key = (
        f"/console/acme/license-keys/{team.commerce.license_key_id}/activations/{globex.activation_id}/deactivate"
    )
    assert _post(client, other_key).status_code == 404
    assert client.get("/console/acme/license-keys/" + "x" * 65).status_code == 404
    # Globex's owner cannot reach acme's objects under globex's address either.
    _as(client, settings, team.stranger)
    for method, path in _paths(team.commerce, "globex"):
        response = client.get(path) if method == "GET" else _post(client, path, **body)
        assert response.status_code == 404, (method, path, response.status_code)
    assert audit_actions(settings) == []
    assert _subscription(settings, globex.subscription_id)["status"] == "active"
    assert _key(settings, globex.license_key_id)["status"] == "granted"


# --- the processor path (Stripe's loopback fake) -----------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with fake_stripe() as running:
        yield running


@pytest.fixture
def stripe_web(settings: Settings, fake: FakeStripe) -> Iterator[tuple[TestClient[Litestar], Settings]]:
    stripe_settings = msgspec.structs.replace(settings, stripe_api_base=fake.base_url)
    with TestClient(app_for(stripe_settings), base_url="http://testserver.local") as web:
        yield web, stripe_settings


@pytest.fixture
def stripe_shop(stripe_web: tuple[TestClient[Litestar], Settings], fake: FakeStripe) -> tuple[StripeShop, str]:
    web, stripe_settings = stripe_web
    shop = make_shop(web, stripe_settings, fake)
    seller = insert_seller(stripe_settings, "support@acme.example")
    add_member(stripe_settings, seller, shop.org_id, "support")
    console_cookie(web, stripe_settings, plant_session(stripe_settings, seller))
    fake.requests.clear()
    return shop, seller


def test_cancel_and_resume_go_through_stripe_first(
    stripe_web: tuple[TestClient[Litestar], Settings], fake: FakeStripe, stripe_shop: tuple[StripeShop, str]
) -> None:
    web, settings = stripe_web
    shop, _ = stripe_shop
    path = f"/console/acme/subscriptions/{shop.subscription_id}"
    page = web.get(path).text
    assert "Stripe" in page and "sub_ada" in page
    assert "End now and revoke its benefits" not in page  # not offered for a processor's subscription
    assert "Ending at once is not offered" in page

    assert _post(web, path + "/cancel", when="period_end").status_code == 303
    (write,) = [r for r in fake.requests if r.method == "POST"]
    assert write.path == "/v1/subscriptions/sub_ada" and write.form == {"cancel_at_period_end": "true"}
    assert _subscription(settings, shop.subscription_id)["cancel_at_period_end"]
    assert _emails(settings, shop.org_id)[-1] == "subscription_canceled"

    assert _post(web, path + "/uncancel").status_code == 303
    assert [r.form for r in fake.requests if r.method == "POST"][-1] == {"cancel_at_period_end": "false"}
    assert not _subscription(settings, shop.subscription_id)["cancel_at_period_end"]
    details = [json.loads(row[0]) for row in sql(settings, "SELECT details FROM seller_audit_log ORDER BY rowid")]
    assert details == [{"processor": "stripe", "when": "period_end"}, {"processor": "stripe"}]

    # Ending at once is refused for it (409), nothing sent.
    fake.requests.clear()
    refused = _post(web, path + "/cancel", when="now")
    assert refused.status_code == 409 and "processor's dashboard" in refused.text
    assert fake.requests == [] and _subscription(settings, shop.subscription_id)["status"] == "active"


def test_a_stripe_refusal_is_shown_and_changes_nothing(
    stripe_web: tuple[TestClient[Litestar], Settings], fake: FakeStripe, stripe_shop: tuple[StripeShop, str]
) -> None:
    web, settings = stripe_web
    shop, _ = stripe_shop
    path = f"/console/acme/subscriptions/{shop.subscription_id}"
    fake.fail_with = (403, "invalid_request_error")
    refused = _post(web, path + "/cancel", when="period_end")
    assert refused.status_code == 502
    assert "Stripe did not accept the change" in refused.text and "Nothing was changed here" in refused.text
    assert not _subscription(settings, shop.subscription_id)["cancel_at_period_end"]
    assert sql(settings, "SELECT COUNT(*) FROM seller_audit_log")[0][0] == 0
    assert sql(settings, "SELECT COUNT(*) FROM events WHERE subject_id = ?", (shop.subscription_id,))[0][0] == 0
    assert "subscription_canceled" not in _emails(settings, shop.org_id)


def test_what_the_customer_sees_after_a_rotation_and_a_grant_by_hand(
    client: TestClient[Litestar], settings: Settings, team: Team
) -> None:
    shop = team.commerce
    _as(client, settings, team.support)
    rotated = _post(client, f"/console/acme/license-keys/{shop.license_key_id}/rotate")
    found = re.search(r'id="new-key">([^<]+)<', rotated.text)
    assert found is not None
    grant = _post(client, f"/console/acme/customers/{shop.customer_id}/benefits/grant", benefit_id=shop.key_benefit_id)
    assert grant.status_code == 303
    customer = {"Authorization": f"Bearer {insert_session(settings, team.acme_id, shop.customer_id, kind='api')}"}
    key = client.get(f"/v1/customer-portal/license-keys/{shop.license_key_id}", headers=customer)
    assert key.status_code == 200 and key.json()["key"] == found.group(1)
    grants = client.get("/v1/customer-portal/benefit-grants/", headers=customer).json()["items"]
    by_hand = [g for g in grants if g["order_id"] is None and g["subscription_id"] is None]
    assert len(grants) == 2 and len(by_hand) == 1 and by_hand[0]["benefit_id"] == shop.key_benefit_id
    keys = client.get("/v1/customer-portal/license-keys/", headers=customer).json()["items"]
    assert len(keys) == 2  # the grant by hand issued its own key
    # The portal's benefits page shows both keys.
    client.cookies.set("portal_session_acme", insert_session(settings, team.acme_id, shop.customer_id))
    page = client.get("/acme/portal/benefits")
    assert page.status_code == 200 and page.text.count("Console Key") >= 2


def test_a_processor_that_cannot_receive_the_change_is_never_offered_it(
    stripe_web: tuple[TestClient[Litestar], Settings], fake: FakeStripe
) -> None:
    web, settings = stripe_web
    ledger = LedgerProcessor()
    base.register(ledger)
    try:
        shop = make_shop(web, settings, fake, processor="ledger")
        seller = insert_seller(settings, "owner@acme.example")
        add_member(settings, seller, shop.org_id, "owner")
        console_cookie(web, settings, plant_session(settings, seller))
        path = f"/console/acme/subscriptions/{shop.subscription_id}"
        page = web.get(path).text
        assert "Ledger Pay cannot receive this change from Portal" in page
        assert f'action="{path}/cancel"' not in page and f'action="{path}/uncancel"' not in page
        for when in ("period_end", "now"):
            refused = _post(web, path + "/cancel", when=when)
            assert refused.status_code == 409 and "processor&#39;s dashboard" in refused.text
        assert not _subscription(settings, shop.subscription_id)["cancel_at_period_end"]
        assert ledger.calls == [] and sql(settings, "SELECT COUNT(*) FROM seller_audit_log")[0][0] == 0
    finally:
        base.unregister(ledger.name)
