"""Which customer actions the seller allows (console Settings → "What customers may do"): cancelling and license-key
rotation are on by default; switched off in the console, every path a customer can take refuses them — the portal
pages hide the button, their confirm page and their POST refuse; the customer-portal JSON API answers with Polar's
error shape — and nothing changes. Switched back on, they work again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bs4 import BeautifulSoup
from litestar import Litestar
from litestar.testing import TestClient

from portal.settings import Settings
from tests.api_server import api_token
from tests.browser_helpers import new_session, one
from tests.console_helpers import add_member, audit_actions, console_cookie, insert_seller, plant_session, sql
from tests.signin_helpers import csrf

pytestmark = pytest.mark.seeded  # the demo data: alex@example.com has a subscription and license keys at acme


@pytest.fixture
def client(app: Litestar) -> Iterator[TestClient[Litestar]]:
    with TestClient(app, base_url="http://testserver.local") as test_client:
        test_client.follow_redirects = False
        yield test_client


def _switch(client: TestClient[Litestar], settings: Settings, *, on: bool) -> None:
    """Save the settings page as it is, with both switches set to ``on``."""
    page = BeautifulSoup(client.get("/console/acme/settings").text, "html.parser")
    form = page.select_one('form[action="/console/acme/settings"]')
    assert form is not None
    data: dict[str, str] = {}
    for field in form.select("input[name], textarea[name]"):
        if field.get("type") == "checkbox":
            if field.has_attr("checked"):
                data[str(field["name"])] = "on"
        elif field.name == "textarea":
            data[str(field["name"])] = field.get_text()
        else:
            data[str(field["name"])] = str(field.get("value", ""))
    for name in ("allow_cancel", "allow_key_rotation"):
        data.pop(name, None)
        if on:
            data[name] = "on"
    data["_csrf_token"] = csrf(client)
    saved = client.post("/console/acme/settings", data=data)
    assert saved.status_code == 303, saved.text[:500]


def test_cancel_and_rotation_switched_off_are_refused_on_every_path(
    client: TestClient[Litestar], settings: Settings
) -> None:
    ((org_id,),) = sql(settings, "SELECT id FROM organizations WHERE slug = 'acme'")
    owner = insert_seller(settings, "owner@acme.example")
    add_member(settings, owner, org_id, "owner")
    console_cookie(client, settings, plant_session(settings, owner))
    page = BeautifulSoup(client.get("/console/acme/settings").text, "html.parser")
    for switch in ("#f-allow_cancel", "#f-allow_key_rotation"):
        assert page.select_one(switch).has_attr("checked"), f"{switch} is on by default"  # type: ignore[union-attr]
    _switch(client, settings, on=False)
    assert [a[0] for a in audit_actions(settings, org_id)] == ["settings.update"]
    (details,) = sql(settings, "SELECT details FROM seller_audit_log WHERE action = 'settings.update'")[0]
    assert '"customer_actions":{"cancel":false,"license_key_rotation":false}' in details

    subscription = one(settings, "SELECT id, cancel_at_period_end FROM subscriptions WHERE external_id = ?",
                       ("acme-sub-alex-pro",))  # fmt: skip
    key = one(
        settings,
        "SELECT k.id, k.key FROM license_keys k JOIN benefits b ON b.id = k.benefit_id "
        "JOIN customers c ON c.id = k.customer_id WHERE c.email = 'alex@example.com' AND k.status = 'granted' "
        "AND b.external_id = 'acme-toolkit-license'",
    )
    sid, kid = subscription["id"], key["id"]
    cookie, token = new_session(settings, "acme", "alex@example.com")
    client.cookies.set(cookie, token)

    # The pages: no button, the confirm steps lead away, the POSTs are refused.
    detail = BeautifulSoup(client.get(f"/acme/portal/subscriptions/{sid}").text, "html.parser")
    assert detail.select_one('[data-action="start-cancel"]') is None
    form = client.get(f"/acme/portal/subscriptions/{sid}/cancel")
    assert form.status_code == 303 and form.headers["location"] == f"/acme/portal/subscriptions/{sid}"
    refused = client.post(f"/acme/portal/subscriptions/{sid}/cancel", data={"_csrf_token": csrf(client)})
    assert refused.status_code == 404
    benefits = BeautifulSoup(client.get("/acme/portal/benefits").text, "html.parser")
    assert benefits.select('a[data-action="rotate"]') == []
    assert client.get(f"/acme/portal/benefits/license-keys/{kid}/rotate").status_code == 404
    refused = client.post(f"/acme/portal/benefits/license-keys/{kid}/rotate", data={"_csrf_token": csrf(client)})
    assert refused.status_code == 400  # the rule's refusal, as for a benefit that does not allow rotation

    # The customer-portal API: Polar's error shape.
    bearer = {"Authorization": f"Bearer {api_token(settings, 'acme', 'alex@example.com')}"}
    api = "/v1/customer-portal"
    for response in (
        client.patch(f"{api}/subscriptions/{sid}", json={"cancel_at_period_end": True}, headers=bearer),
        client.delete(f"{api}/subscriptions/{sid}", headers=bearer),
    ):
        assert response.status_code == 403
        assert response.json() == {
            "error": "NotPermitted",
            "detail": "Canceling subscriptions is not allowed by this seller.",
        }
    rotate = client.post(f"{api}/license-keys/{kid}/rotate", headers=bearer)
    assert rotate.status_code == 400
    assert rotate.json() == {
        "error": "RotateNotPermitted",
        "detail": "The seller does not allow customers to rotate license keys.",
    }
    # The customer's own settings are still in the API's view (only the actions are refused).
    assert client.get(f"{api}/subscriptions/{sid}", headers=bearer).json()["cancel_at_period_end"] is False
    assert one(settings, "SELECT cancel_at_period_end FROM subscriptions WHERE id = ?", (sid,))[0] == 0
    assert one(settings, "SELECT key FROM license_keys WHERE id = ?", (kid,))[0] == key["key"]
    assert sql(settings, "SELECT COUNT(*) FROM events WHERE name IN ('subscription.canceled', "
               "'license_key.rotated') AND subject_id IN (?, ?)", (sid, kid))[0][0] == 0  # fmt: skip

    # Switched back on: the same calls work.
    _switch(client, settings, on=True)
    assert client.post(f"{api}/license-keys/{kid}/rotate", headers=bearer).status_code == 200
    canceled = client.patch(f"{api}/subscriptions/{sid}", json={"cancel_at_period_end": True}, headers=bearer)
    assert canceled.status_code == 200 and canceled.json()["cancel_at_period_end"] is True


def test_a_malformed_customer_actions_setting_is_named_and_a_stored_one_reads_safely() -> None:
    from portal.errors import InvalidInput
    from portal.organizations.customer_actions import customer_actions, customer_actions_problems

    assert customer_actions_problems({"customer_actions": {"cancel": False}}) == []
    (problem,) = customer_actions_problems({"customer_actions": {"cancel": "no"}})
    assert isinstance(problem, InvalidInput) and problem.field == "settings.customer_actions.cancel"
    (problem,) = customer_actions_problems({"customer_actions": {"refund": True}})
    assert problem.field == "settings.customer_actions.refund"
    # A stored value that no longer parses reads as the defaults (on), never as a crash.
    assert customer_actions('{"customer_actions": {"cancel": 3}}').cancel is True
    assert customer_actions("not json").license_key_rotation is True
