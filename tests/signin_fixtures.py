"""Fixtures of the sign-in tests (load with ``pytest_plugins = ["tests.signin_fixtures"]``): an app wired to the
real loopback SMTP server, two organizations with customers, a browser."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from portal.clock import Clock
from portal.settings import Settings
from tests.apps import app_for
from tests.conftest import SMTPInbox
from tests.signin_helpers import BASE, Shop, insert_customer, insert_org


@pytest.fixture
def shop(settings: Settings) -> Shop:
    acme = insert_org(settings, "acme", "Acme & Co", avatar_url="https://img.example/acme.png")
    globex = insert_org(settings, "globex", "Globex")
    return Shop(
        acme_id=acme,
        globex_id=globex,
        ada_acme=insert_customer(settings, acme, "ada@example.com", "Ada"),
        ada_globex=insert_customer(settings, globex, "ada@example.com", "Ada G"),
        bob_acme=insert_customer(settings, acme, "bob@example.com", "Bob"),
    )


@pytest.fixture
def inbox(smtp_server: tuple[SMTPInbox, int]) -> SMTPInbox:
    return smtp_server[0]


@pytest.fixture
def mail_app(smtp_settings: Settings, clock: Clock, shop: Shop) -> Litestar:
    return app_for(smtp_settings, clock=clock)


@pytest.fixture
def browser(mail_app: Litestar) -> Iterator[TestClient[Litestar]]:
    with TestClient(mail_app, base_url=BASE) as client:
        yield client
