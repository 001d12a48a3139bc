"""Signed-in pages rendered through the cached layout shell (``portal.templating.layout_shell``) are byte-for-byte
what Jinja renders in full: every signed-in page, in two locales, with and without a return link and a notice, with
markup, braces and quotes in the seller's name, the customer's email and the return URL; the shell is really used
(built once, then filled); a layout that does more with a slot's value than print it falls back to Jinja; and a
layout (or page) that prints anything per customer gives every customer their own value, whatever the first
customer's value was."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from jinja2 import DictLoader
from litestar import Litestar
from litestar.testing import TestClient

from portal.app import create_app
from portal.clock import Clock
from portal.settings import Settings
from portal.templating import build_environment
from portal.templating.layout_shell import LayoutShells
from tests.browser_helpers import new_session, one
from tests.test_pages_matrix import owner_objects

pytestmark = pytest.mark.seeded  # data_dir: a copy of the demo seed (tests/conftest.py)

HOSTILE_NAME = 'Acme <b>"Tools"</b> & {braces} {title}'
HOSTILE_EMAIL = "o'neil+{page}&<x>@example.com"
HOSTILE_RETURN = "https://shop.example/account?a=1&b=<2>&c='3'"

PAGE = '{% extends "portal/_layout.html" %}{% block title %}T{% endblock %}{% block page %}P{{ n }}{% endblock %}'
PAGES = [
    "/acme/portal",
    "/acme/portal/orders",
    "/acme/portal/orders/{order}",
    "/acme/portal/subscriptions",
    "/acme/portal/subscriptions/{sub}",
    "/acme/portal/subscriptions/{sub}/change-plan",
    "/acme/portal/subscriptions/{sub}/change-plan/confirm?product_id={product}",
    "/acme/portal/benefits",
    "/acme/portal/settings",
    "/acme/portal/settings?done=billing_saved&page=2",
    "/acme/portal/benefits?done=deactivated",
]


class FrozenClock(Clock):
    """Signed download links carry their expiry second: every render of a test sees the same time."""

    def __init__(self) -> None:
        super().__init__()
        self._frozen = super().now()

    def now(self) -> datetime:
        return self._frozen


@pytest.fixture
def clock() -> Clock:
    return FrozenClock()


@pytest.fixture
def app(settings: Settings, clock: Clock) -> Litestar:
    """An app of its own (not ``tests.apps.app_for``): these tests count the shells its template engine built."""
    return create_app(settings, clock=clock)


@pytest.fixture
def client(app: Litestar) -> Iterator[TestClient[Litestar]]:
    with TestClient(app, base_url="http://testserver.local") as test_client:
        test_client.follow_redirects = False
        yield test_client


def _make_hostile(settings: Settings) -> None:
    from portal.db import connect_sync

    conn = connect_sync(settings.db_path)
    try:
        conn.execute("UPDATE organizations SET name = ? WHERE slug = 'acme'", (HOSTILE_NAME,))
        conn.execute(
            "UPDATE customers SET email = ? WHERE email = 'alex@example.com' "
            "AND organization_id = (SELECT id FROM organizations WHERE slug = 'acme')",
            (HOSTILE_EMAIL,),
        )
    finally:
        conn.close()


def _page_bytes(client: TestClient[Litestar], path: str, locale: str) -> tuple[int, bytes]:
    response = client.get(path, headers={"Accept-Language": locale})
    return response.status_code, response.content


@pytest.mark.parametrize("return_url", [None, HOSTILE_RETURN])
def test_every_signed_in_page_is_the_same_through_the_shell(
    client: TestClient[Litestar], app: Litestar, settings: Settings, return_url: str | None
) -> None:
    ids = owner_objects(settings)
    _make_hostile(settings)
    name, token = new_session(settings, "acme", HOSTILE_EMAIL, return_url=return_url)
    client.cookies.set(name, token)
    client.get("/acme/portal")  # the CSRF cookie, so every request below carries the same token
    engine: Any = app.template_engine
    shells: LayoutShells = engine.layout_shells
    assert shells is not None
    for template in PAGES:
        path = template.format(**ids)
        for locale in ("en", "de"):
            first = _page_bytes(client, path, locale)  # builds the shell (and checks it against Jinja)
            second = _page_bytes(client, path, locale)  # filled from the shell
            engine.layout_shells = None
            try:
                plain = _page_bytes(client, path, locale)  # Litestar's own template response: Jinja in full
            finally:
                engine.layout_shells = shells
            assert plain[0] == 200, (path, plain[0])
            assert first == second == plain, (path, locale)
            assert HOSTILE_EMAIL.encode() not in plain[1]  # escaped, not raw
            assert b"o&#39;neil+{page}&amp;&lt;x&gt;@example.com" in plain[1]
    assert not shells._disabled
    templates = {key[0] for key in shells._shells}
    assert {"portal/overview.html", "portal/orders.html", "portal/order.html", "portal/billing.html"} <= templates
    assert {key[4] for key in shells._shells} == {False, True}  # pages with and without a notice
    assert one(settings, "SELECT name FROM organizations WHERE slug = 'acme'")["name"] == HOSTILE_NAME


def test_a_change_to_the_seller_is_a_new_shell(client: TestClient[Litestar], app: Litestar, settings: Settings) -> None:
    from portal.db import connect_sync

    name, token = new_session(settings, "acme", "alex@example.com")
    client.cookies.set(name, token)
    assert client.get("/acme/portal/orders").status_code == 200
    assert client.get("/acme/portal/orders").status_code == 200
    conn = connect_sync(settings.db_path)
    conn.execute("UPDATE organizations SET name = 'Renamed Seller' WHERE slug = 'acme'")
    conn.close()
    page = client.get("/acme/portal/orders").text
    assert "Renamed Seller" in page
    assert len([key for key in app.template_engine.layout_shells._shells if key[0] == "portal/orders.html"]) == 2  # type: ignore[attr-defined]


def test_a_layout_that_does_more_than_print_a_slot_falls_back_to_jinja(caplog: pytest.LogCaptureFixture) -> None:
    templates = {
        "portal/_layout.html": (
            "<title>{% block title %}{% endblock %}</title>{{ customer.email | upper }} {{ csrf_input | safe }}"
            "{% block page %}{% endblock %}"
        ),
        "page.html": PAGE,
    }
    env = build_environment()
    env.loader = DictLoader(templates)
    shells = LayoutShells(lambda locale: env)

    class Customer:
        email = "a@example.com"

    context = {"customer": Customer(), "csrf_input": "<input>", "n": 1, "organization": None}
    expected = env.get_template("page.html").render(context)
    with caplog.at_level(logging.WARNING, logger="portal.templating.layout_shell"):
        assert shells.render("page.html", context) == expected == "<title>T</title>A@EXAMPLE.COM <input>P1"
        assert shells.render("page.html", {**context, "n": 2}) == "<title>T</title>A@EXAMPLE.COM <input>P2"
    assert "page.html" in shells._disabled and not shells._shells
    assert "without a layout shell" in caplog.text


def test_a_layout_that_only_prints_the_slots_is_filled_from_the_shell() -> None:
    templates = {
        "portal/_layout.html": (
            "<title>{% block title %}{% endblock %}</title><p>{{ customer.email }}</p>{{ csrf_input | safe }}"
            "{% if notice %}<i>{{ notice }}</i>{% endif %}{% block page %}{% endblock %}"
        ),
        "page.html": PAGE,
    }
    env = build_environment()
    env.loader = DictLoader(templates)
    shells = LayoutShells(lambda locale: env)

    class Customer:
        def __init__(self, email: str) -> None:
            self.email = email

    for n, email in enumerate(["a@example.com", "<b>{n}</b>@example.com", "x&y@example.com"]):
        context = {"customer": Customer(email), "csrf_input": f"<input value={n}>", "n": n, "notice": "<ok>"}
        assert shells.render("page.html", context) == env.get_template("page.html").render(context)
    assert len(shells._shells) == 1 and not shells._disabled


class BadgedCustomer:
    def __init__(self, email: str, badge: str) -> None:
        self.email = email
        self.badge = badge


def _shells_for(templates: dict[str, str]) -> tuple[Any, LayoutShells]:
    env = build_environment()
    env.loader = DictLoader(templates)
    return env, LayoutShells(lambda locale: env)


# The first customer's per-customer value renders as nothing, so a shell built from it would look right for them
# and then serve nothing to everybody else: each case must fall back and give the second customer their own value.
PER_CUSTOMER_LAYOUTS = {
    "customer attribute": "<p>{{ customer.email }}</p><i>{{ customer.badge }}</i>{% block page %}{% endblock %}",
    "unlisted context value": "<p>{{ customer.email }}</p><i>{{ unread }}</i>{% block page %}{% endblock %}",
    "defined test": "{% if unread is defined %}<i>{{ unread }}</i>{% endif %}{% block page %}{% endblock %}",
    "request attribute": "<i>{{ request.badge }}</i>{% block page %}{% endblock %}",
}


@pytest.mark.parametrize("layout", PER_CUSTOMER_LAYOUTS.values(), ids=PER_CUSTOMER_LAYOUTS.keys())
def test_a_layout_printing_a_per_customer_value_renders_each_customers_own(layout: str) -> None:
    env, shells = _shells_for(
        {"portal/_layout.html": "<title>{% block title %}{% endblock %}</title>" + layout, "page.html": PAGE}
    )

    class Query:
        def multi_items(self) -> list[tuple[str, str]]:
            return []

    class Request:
        def __init__(self, badge: str) -> None:
            self.badge = badge
            self.scope = {"path": "/acme/portal"}
            self.query_params = Query()

    first = {"customer": BadgedCustomer("a@example.com", ""), "n": 1, "organization": None}
    second = {"customer": BadgedCustomer("b@example.com", "VIP"), "n": 2, "organization": None}
    first_unread = {**first, "request": Request("")}
    second_unread = {**second, "request": Request("VIP"), "unread": "VIP"}
    if "unread is defined" not in layout:
        first_unread["unread"] = ""
    for context in (first_unread, second_unread):
        assert shells.render("page.html", context) == env.get_template("page.html").render(context)
    assert "VIP" in shells.render("page.html", second_unread)
    assert "page.html" in shells._disabled


def test_a_page_overriding_another_layout_block_renders_each_customers_own() -> None:
    templates = {
        "portal/_layout.html": (
            "<title>{% block title %}{% endblock %}</title>{% block extra %}{% endblock %}"
            "{% block page %}{% endblock %}"
        ),
        "page.html": PAGE.replace(
            "{% block page %}", "{% block extra %}{{ customer.badge }}{% endblock %}{% block page %}"
        ),
    }
    env, shells = _shells_for(templates)
    first = {"customer": BadgedCustomer("a@example.com", ""), "n": 1}
    second = {"customer": BadgedCustomer("b@example.com", "VIP"), "n": 2}
    assert shells.render("page.html", first) == env.get_template("page.html").render(first)
    assert shells.render("page.html", second) == "<title>T</title>VIPP2"


def test_the_shell_is_built_from_seller_level_values_only() -> None:
    """Two customers whose contexts differ in everything but the seller-level values share one shell."""
    templates = {
        "portal/_layout.html": (
            "<title>{% block title %}{% endblock %}</title><b>{{ organization }}</b><p>{{ customer.email }}</p>"
            "{% block page %}{% endblock %}"
        ),
        "page.html": PAGE,
    }
    env, shells = _shells_for(templates)
    for n, email in enumerate(["a@example.com", "b@example.com"]):
        context = {"customer": BadgedCustomer(email, str(n)), "n": n, "organization": "Acme", "secret": email}
        assert shells.render("page.html", context) == env.get_template("page.html").render(context)
    assert len(shells._shells) == 1 and not shells._disabled
