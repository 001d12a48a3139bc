"""The demo's suggested accounts (issue 22): every ``demo_accounts`` entry of seed/demo.json is a customer of each
organization it names once the demo is loaded, the README's "What the demo shows" lists each of them, one email is
a customer of both organizations, and the demo has a ``past_due`` subscription its customer sees as such."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from litestar.testing import TestClient

from portal.cli import demo_accounts
from portal.settings import Settings
from tests.browser_helpers import REPO_ROOT, new_session, query

pytestmark = pytest.mark.seeded  # data_dir: a copy of the demo seed (tests/conftest.py)


def test_every_suggested_account_exists_and_is_in_the_readme(settings: Settings) -> None:
    accounts = demo_accounts()
    assert len(accounts) >= 4
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("## What the demo shows") :].split("\n## ", 1)[0]
    for account in accounts:
        assert f"`{account.email}`" in section, account.email
        for slug in account.organizations:
            found = query(
                settings,
                "SELECT c.id FROM customers c JOIN organizations o ON o.id = c.organization_id "
                "WHERE o.slug = ? AND c.email = ? AND c.deleted_at IS NULL",
                (slug, account.email),
            )
            assert found, (account.email, slug)
    assert any(len(account.organizations) == 2 for account in accounts)  # a customer of both organizations


def test_demo_has_a_past_due_subscription_shown_as_such(client: TestClient, settings: Settings) -> None:  # type: ignore[type-arg]
    rows = query(
        settings,
        "SELECT s.id, c.email FROM subscriptions s JOIN customers c ON c.id = s.customer_id "
        "WHERE s.status = 'past_due'",
    )
    assert rows
    subscription, email = rows[0]["id"], rows[0]["email"]
    assert email in {account.email for account in demo_accounts()}
    name, token = new_session(settings, "acme", email)
    client.cookies.set(name, token)
    page = BeautifulSoup(client.get(f"/acme/portal/subscriptions/{subscription}").text, "html.parser")
    assert "Past due" in page.get_text()
