"""Ctrl-C during ``portal import stripe`` (issue 19, history in): the real command in a subprocess, interrupted by
SIGINT while Stripe (the loopback fake) holds the second page of subscriptions: it exits 130 saying how to resume,
keeps the pages it wrote (their checkpoint), and the same command then finishes the import without doubles."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator

import msgspec
import pytest
from litestar.testing import TestClient

from portal.settings import Settings
from tests.admin_support import api, create_org, mint_token
from tests.apps import app_for
from tests.serving import portal_env, run_portal
from tests.stripe_fake import FakeStripe, fake_stripe
from tests.stripe_history import populate


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with fake_stripe() as running:
        yield running


# `portal …` as a terminal starts it, with Ctrl-C's default meaning: a command started in the background by a
# non-interactive shell (a CI runner's, say) inherits SIGINT ignored, and so would the command under test.
AS_IN_A_TERMINAL = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('portal', run_name='__main__', alter_sys=True)"
)


def _count(settings: Settings, sql: str) -> int:
    conn = sqlite3.connect(settings.db_path)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


def test_ctrl_c_keeps_the_pages_written_and_the_same_command_resumes(settings: Settings, fake: FakeStripe) -> None:
    live = msgspec.structs.replace(settings, stripe_api_base=fake.base_url).resolve_secrets()
    with TestClient(app_for(live), base_url="http://testserver.local") as client:
        admin = mint_token(live)
        org = create_org(client, admin, "acme")
        body = {"api_key": fake.api_key, "webhook_secret": "whsec_test"}
        api(client, admin, "PUT", f"/v1/connectors/stripe?organization_id={org['id']}", 200, json=body)
    history = populate(fake, customers=250, invoices_per_subscription=1)
    fake.hold_after_first_page_of = "subscriptions"  # the second page waits for the test
    env = portal_env(
        live.data_dir, PORTAL_SECRET_KEY=live.secret_key, PORTAL_STRIPE_API_BASE=fake.base_url, PYTHONUNBUFFERED="1"
    )
    command = [sys.executable, "-c", AS_IN_A_TERMINAL, "import", "stripe", "--org", "acme", "--catalog"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        # Interrupt once the subscriptions stream has written a page (customers and catalog are done by then) while
        # its next page is held, then let that page answer: the import stops there, whatever the host's speed.
        while _count(live, "SELECT COUNT(*) FROM connector_checkpoints WHERE stream = 'subscriptions'") == 0:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        fake.lists_released.set()
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, (out, err)
    assert "interrupted" in err and "run the same command to resume" in err
    written = _count(live, "SELECT COUNT(*) FROM subscriptions")
    assert 100 <= written < history.subscriptions
    assert _count(live, "SELECT COUNT(*) FROM orders") == 0

    fake.hold_after_first_page_of = None
    resumed = run_portal(["import", "stripe", "--org", "acme", "--catalog"], env)
    assert resumed.returncode == 0, resumed.stderr
    assert "(resumed)" in resumed.stdout and "done in an earlier run" in resumed.stdout
    assert _count(live, "SELECT COUNT(*) FROM customers") == history.customers
    assert _count(live, "SELECT COUNT(*) FROM subscriptions") == history.subscriptions
    assert _count(live, "SELECT COUNT(DISTINCT external_id) FROM orders") == history.orders
    assert _count(live, "SELECT COUNT(*) FROM orders") == history.orders
