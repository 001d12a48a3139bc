"""polar-sdk's ``2027-01`` API version (``polar.v2027_01``, issue 23.12) against a served Portal: every
customer-portal and customer-session method it has is called once and either works or answers the Polar-shaped
error the README's table documents for it; and the one shape 2027-01 changes for the customer portal (validated
and activated license keys name the subscription or one-time order that granted them) is answered."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from polar.base import PolarClientError, PolarDeserializationError
from polar.v2027_01 import outputs
from polar.v2027_01.client import Polar

from portal.settings import Settings
from tests.admin_support import mint_token
from tests.api_server import api_token, served_portal
from tests.browser_helpers import one, org_id
from tests.sdk_methods import sdk_methods

pytestmark = pytest.mark.seeded  # data_dir: a copy of the demo seed (tests/conftest.py)

Call = Callable[[Polar, dict[str, Any]], Any]
NOT_SUPPORTED = (403, "NotSupported")


def body_less(status: int, sdk_error: str) -> tuple[int, str]:
    """A status whose body the SDK does not read: it raises its own class for it (Portal's body, NotSupported or
    Unauthorized, is checked over raw HTTP in tests/test_customer_portal_api.py)."""
    return status, sdk_error


# method -> (call, expected): "ok", or the (status, error) the README documents for it. Run in this order.
CALLS: dict[str, tuple[Call, str | tuple[int, str]]] = {
    "customer_portal.customer_session.introspect": (lambda p, c: p.customer_portal.customer_session.introspect(), "ok"),
    "customer_portal.customer_session.get_authenticated_user": (
        lambda p, c: p.customer_portal.customer_session.get_authenticated_user(),
        "ok",
    ),
    "customer_portal.customers.get": (lambda p, c: p.customer_portal.customers.get(), "ok"),
    "customer_portal.customers.update": (
        lambda p, c: p.customer_portal.customers.update(billing_name="Rivera Design LLC", tax_id="91-1144442"),
        "ok",
    ),
    "customer_portal.customers.list_payment_methods": (
        lambda p, c: p.customer_portal.customers.list_payment_methods(),
        NOT_SUPPORTED,
    ),
    "customer_portal.customers.add_payment_method": (
        lambda p, c: p.customer_portal.customers.add_payment_method(
            confirmation_token_id="ctoken", set_default=True, return_url="https://acme.example/back"
        ),
        NOT_SUPPORTED,
    ),
    "customer_portal.customers.confirm_payment_method": (
        lambda p, c: p.customer_portal.customers.confirm_payment_method(setup_intent_id="seti", set_default=True),
        (403, "CustomerNotReady"),  # the SDK reads this method's 403 as Polar's CustomerNotReady
    ),
    "customer_portal.customers.delete_payment_method": (
        lambda p, c: p.customer_portal.customers.delete_payment_method("pm"),
        NOT_SUPPORTED,
    ),
    "customer_portal.customers.request_email_update": (
        lambda p, c: p.customer_portal.customers.request_email_update(email="alex.new@example.com"),
        (403, "NotPermitted"),  # the demo organization leaves allow_email_change off
    ),
    "customer_portal.customers.check_email_update": (
        lambda p, c: p.customer_portal.customers.check_email_update(token="WRONGTOKEN12"),
        body_less(401, "CustomerPortalCustomersCheckEmailUpdate401Error"),
    ),
    "customer_portal.customers.verify_email_update": (
        lambda p, c: p.customer_portal.customers.verify_email_update(token="WRONGTOKEN12"),
        body_less(401, "CustomerPortalCustomersVerifyEmailUpdate401Error"),
    ),
    "customer_portal.organizations.get": (lambda p, c: p.customer_portal.organizations.get("acme"), "ok"),
    "customer_portal.benefit_grants.list": (lambda p, c: p.customer_portal.benefit_grants.list(), "ok"),
    "customer_portal.benefit_grants.get": (lambda p, c: p.customer_portal.benefit_grants.get(c["grant"]), "ok"),
    "customer_portal.benefit_grants.update": (
        lambda p, c: p.customer_portal.benefit_grants.update(c["grant"], benefit_type="custom"),
        "ok",
    ),
    "customer_portal.downloadables.list": (lambda p, c: p.customer_portal.downloadables.list(), "ok"),
    "customer_portal.license_keys.list": (lambda p, c: p.customer_portal.license_keys.list(), "ok"),
    "customer_portal.license_keys.get": (lambda p, c: p.customer_portal.license_keys.get(c["key"]["id"]), "ok"),
    "customer_portal.license_keys.validate": (
        lambda p, c: p.customer_portal.license_keys.validate(key=c["key"]["key"], organization_id=c["org"]),
        "ok",
    ),
    "customer_portal.license_keys.deactivate": (
        lambda p, c: p.customer_portal.license_keys.deactivate(
            key=c["key"]["key"], organization_id=c["org"], activation_id=c["activation"]
        ),
        "ok",
    ),
    "customer_portal.license_keys.activate": (
        lambda p, c: p.customer_portal.license_keys.activate(key=c["key"]["key"], organization_id=c["org"], label="ci"),
        "ok",
    ),
    "customer_portal.license_keys.rotate": (lambda p, c: p.customer_portal.license_keys.rotate(c["key"]["id"]), "ok"),
    "customer_portal.orders.list": (lambda p, c: p.customer_portal.orders.list(), "ok"),
    "customer_portal.orders.get": (lambda p, c: p.customer_portal.orders.get(c["order"]), "ok"),
    "customer_portal.orders.update": (
        lambda p, c: p.customer_portal.orders.update(c["order"], billing_name="Rivera Design LLC"),
        "ok",
    ),
    "customer_portal.orders.receipt": (lambda p, c: p.customer_portal.orders.receipt(c["order"]), "ok"),
    "customer_portal.orders.generate_invoice": (
        lambda p, c: p.customer_portal.orders.generate_invoice(c["order"]),
        "ok",
    ),
    "customer_portal.orders.invoice": (lambda p, c: p.customer_portal.orders.invoice(c["order"]), "ok"),
    "customer_portal.orders.get_payment_status": (
        lambda p, c: p.customer_portal.orders.get_payment_status(c["order"]),
        NOT_SUPPORTED,
    ),
    "customer_portal.orders.confirm_retry_payment": (
        lambda p, c: p.customer_portal.orders.confirm_retry_payment(c["order"], confirmation_token_id="ctoken"),
        NOT_SUPPORTED,
    ),
    "customer_portal.subscriptions.list": (lambda p, c: p.customer_portal.subscriptions.list(), "ok"),
    "customer_portal.subscriptions.get": (lambda p, c: p.customer_portal.subscriptions.get(c["subscription"]), "ok"),
    "customer_portal.subscriptions.cancel": (
        lambda p, c: p.customer_portal.subscriptions.cancel(c["subscription"]),
        "ok",
    ),
    "customer_portal.subscriptions.update": (
        lambda p, c: p.customer_portal.subscriptions.update(c["subscription"], cancel_at_period_end=False),
        "ok",
    ),
    "customer_portal.customer_meters.list": (lambda p, c: p.customer_portal.customer_meters.list(), NOT_SUPPORTED),
    "customer_portal.customer_meters.get": (lambda p, c: p.customer_portal.customer_meters.get("m"), NOT_SUPPORTED),
    "customer_portal.members.list_members": (
        lambda p, c: p.customer_portal.members.list_members(),
        body_less(403, "CustomerPortalMembersListMembers403Error"),
    ),
    "customer_portal.members.add_member": (
        lambda p, c: p.customer_portal.members.add_member(email="team@example.com"),
        body_less(403, "CustomerPortalMembersAddMember403Error"),
    ),
    "customer_portal.members.update_member": (
        lambda p, c: p.customer_portal.members.update_member("m", name="Team"),
        body_less(403, "CustomerPortalMembersUpdateMember403Error"),
    ),
    "customer_portal.members.remove_member": (
        lambda p, c: p.customer_portal.members.remove_member("m"),
        body_less(403, "CustomerPortalMembersRemoveMember403Error"),
    ),
    "customer_portal.seats.list_seats": (
        lambda p, c: p.customer_portal.seats.list_seats(),
        body_less(403, "CustomerPortalSeatsListSeats403Error"),
    ),
    "customer_portal.seats.assign_seat": (
        lambda p, c: p.customer_portal.seats.assign_seat(email="seat@example.com"),
        body_less(403, "CustomerPortalSeatsAssignSeat403Error"),
    ),
    "customer_portal.seats.revoke_seat": (
        lambda p, c: p.customer_portal.seats.revoke_seat("s"),
        body_less(403, "CustomerPortalSeatsRevokeSeat403Error"),
    ),
    "customer_portal.seats.resend_invitation": (
        lambda p, c: p.customer_portal.seats.resend_invitation("s"),
        body_less(403, "CustomerPortalSeatsResendInvitation403Error"),
    ),
    "customer_portal.seats.list_claimed_subscriptions": (
        lambda p, c: p.customer_portal.seats.list_claimed_subscriptions(),
        NOT_SUPPORTED,
    ),
    "customer_portal.wallets.list": (lambda p, c: p.customer_portal.wallets.list(), NOT_SUPPORTED),
    "customer_portal.wallets.get": (lambda p, c: p.customer_portal.wallets.get("w"), NOT_SUPPORTED),
    "customer_sessions.create": (
        lambda p, c: p.customer_sessions.create(customer_id=c["customer"], request_access_token=c["admin"]),
        "ok",
    ),
}


@pytest.fixture
def portal(settings: Settings) -> Iterator[tuple[str, Settings]]:
    with served_portal(settings) as served:
        yield served


def sdk(portal: tuple[str, Settings]) -> Polar:
    base_url, settings = portal
    return Polar(access_token=api_token(settings, "acme", "alex@example.com"), base_url=base_url)


def license_key(settings: Settings, benefit: str) -> dict[str, Any]:
    return dict(
        one(
            settings,
            "SELECT k.id, k.key FROM license_keys k JOIN customers c ON c.id = k.customer_id "
            "JOIN benefits b ON b.id = k.benefit_id WHERE c.email = 'alex@example.com' AND b.external_id = ? "
            "AND k.status = 'granted'",
            (benefit,),
        )
    )


def outcome(call: Call, polar: Polar, context: dict[str, Any]) -> str | tuple[int, str]:
    try:
        call(polar, context)
    except PolarDeserializationError as exc:  # an answer the SDK cannot read: never acceptable
        return 0, f"undeserializable: {exc}"[:300]
    except PolarClientError as exc:
        error = exc.error
        name = json.loads(error).get("error", "") if isinstance(error, str) else getattr(error, "error", "")
        return exc.status_code, name or type(exc).__name__
    return "ok"


def test_every_2027_01_method_works_or_answers_its_documented_error(portal: tuple[str, Settings]) -> None:
    _, settings = portal
    assert sorted(CALLS) == [name for name, _, _ in sdk_methods("v2027_01")], "a 2027-01 method has no call here"
    key = license_key(settings, "acme-toolkit-license")
    context = {
        "org": org_id(settings, "acme"),
        "customer": one(settings, "SELECT id FROM customers WHERE email = 'alex@example.com'")["id"],
        "admin": mint_token(settings, org_id(settings, "acme")),
        "order": one(settings, "SELECT id FROM orders WHERE external_id = 'acme-ord-alex-toolkit'")["id"],
        "subscription": one(settings, "SELECT id FROM subscriptions WHERE external_id = 'acme-sub-alex-pro'")["id"],
        "grant": one(
            settings,
            "SELECT g.id FROM benefit_grants g JOIN benefits b ON b.id = g.benefit_id JOIN customers c "
            "ON c.id = g.customer_id WHERE c.email = 'alex@example.com' AND b.external_id = 'acme-welcome' "
            "AND g.revoked_at IS NULL",
        )["id"],
        "key": key,
        "activation": one(
            settings, "SELECT id FROM license_key_activations WHERE license_key_id = ? LIMIT 1", (key["id"],)
        )["id"],
    }
    with sdk(portal) as polar:
        answers = {name: outcome(call, polar, context) for name, (call, _) in CALLS.items()}
    wrong = [
        f"{name}: {answers[name]} (expected {expected})"
        for name, (_, expected) in CALLS.items()
        if answers[name] != expected
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("benefit", "source"), [("acme-toolkit-license", "order"), ("acme-pro-license", "subscription")]
)
def test_validated_and_activated_keys_name_what_granted_them(
    portal: tuple[str, Settings], benefit: str, source: str
) -> None:
    _, settings = portal
    key = license_key(settings, benefit)
    organization = org_id(settings, "acme")
    grant = one(
        settings,
        "SELECT g.order_id, g.subscription_id FROM benefit_grants g "
        "JOIN license_keys k ON k.grant_id = g.id WHERE k.id = ?",
        (key["id"],),
    )
    with sdk(portal) as polar:
        keys = polar.customer_portal.license_keys
        validated = keys.validate(key=key["key"], organization_id=organization)
        for activation in keys.get(key["id"]).activations:
            keys.deactivate(key=key["key"], organization_id=organization, activation_id=activation.id)
        activated = keys.activate(key=key["key"], organization_id=organization, label="2027-01")
    assert isinstance(validated, outputs.ValidatedLicenseKey)
    for answered in (validated, activated.license_key):
        if source == "subscription":
            assert answered.subscription_id == grant["subscription_id"] and answered.subscription is not None
            assert answered.subscription.id == grant["subscription_id"] and answered.subscription.status == "active"
            assert answered.order_id is None and answered.order is None
        else:
            assert answered.order_id == grant["order_id"] and answered.order is not None
            assert answered.order.paid is True and answered.order.status == "paid"
            assert answered.subscription_id is None and answered.subscription is None
