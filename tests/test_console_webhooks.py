"""Webhook endpoints in the console: create (refused fields named, nothing written), the signing secret shown once
at creation and at rotation, edit url/events/enabled, delete; the per-attempt delivery log fed by the real worker
delivering to a receiver on loopback (time, HTTP status or error, duration) with redeliver; the log's bounded
retention; and the audit entry of each change."""

from __future__ import annotations

import re
from collections.abc import Iterator

import msgspec
import pytest
from bs4 import BeautifulSoup
from litestar import Litestar
from litestar.testing import TestClient

from portal.clock import Clock, iso, new_id
from portal.settings import Settings
from portal.webhooks import queries as webhook_queries
from tests.apps import app_for
from tests.console_helpers import Team, audit_actions, console_cookie, make_team, plant_session, sql
from tests.notification_support import fast, receiver, wait_until
from tests.signin_helpers import csrf


@pytest.fixture
def console(settings: Settings, clock: Clock) -> Iterator[tuple[TestClient[Litestar], Settings, Team]]:
    app_settings = fast(settings, retry_backoff_base=0.05, retry_max_attempts=2)
    with TestClient(app_for(app_settings, clock=clock), base_url="http://testserver.local") as client:
        client.follow_redirects = False
        team = make_team(app_settings)
        console_cookie(client, app_settings, plant_session(app_settings, team.owner))
        yield client, app_settings, team


def _secret_shown(html: str) -> str:
    found = re.search(r'id="new-secret">([^<]+)<', html)
    assert found is not None, "no secret on the page"
    return found.group(1)


def test_create_edit_rotate_delete_with_the_secret_shown_once(
    console: tuple[TestClient[Litestar], Settings, Team],
) -> None:
    client, settings, team = console
    before = sql(settings, "SELECT COUNT(*) FROM webhook_endpoints")[0][0]
    refused = client.post(
        "/console/acme/webhooks/endpoints",
        data={"url": "https://user:pw@hooks.example/x", "name": "a\nb", "_csrf_token": csrf(client)},
    )
    assert refused.status_code == 400
    for field in ("new-url-error", "new-name-error", "new-events-error"):
        assert f'id="{field}"' in refused.text, field
    assert 'value="https://user:pw@hooks.example/x"' in refused.text  # kept as typed
    bad_event = client.post(
        "/console/acme/webhooks/endpoints",
        data={"url": "https://hooks.example/x", "events": "order.exploded", "_csrf_token": csrf(client)},
    )
    assert bad_event.status_code == 400 and 'id="new-events-error"' in bad_event.text
    assert sql(settings, "SELECT COUNT(*) FROM webhook_endpoints")[0][0] == before

    created = client.post(
        "/console/acme/webhooks/endpoints",
        data={
            "url": "https://hooks.example/orders",
            "name": "Orders",
            "events": ["order.paid", "order.refunded"],
            "enabled": "on",
            "_csrf_token": csrf(client),
        },
    )
    assert created.status_code == 200
    secret = _secret_shown(created.text)
    ((endpoint_id, stored, events, enabled),) = sql(
        settings, "SELECT id, secret, events, enabled FROM webhook_endpoints WHERE url = 'https://hooks.example/orders'"
    )
    assert stored == secret and secret.startswith("whsec_")
    assert msgspec.json.decode(events) == ["order.paid", "order.refunded"] and enabled == 1
    # Shown once: neither the list nor the endpoint's page shows it again.
    assert secret not in client.get("/console/acme/webhooks").text
    page = client.get(f"/console/acme/webhooks/endpoints/{endpoint_id}")
    assert page.status_code == 200 and secret not in page.text

    edited = client.post(
        f"/console/acme/webhooks/endpoints/{endpoint_id}",
        data={"url": "https://hooks.example/v2", "name": "", "events": "order.refunded", "_csrf_token": csrf(client)},
    )
    assert edited.status_code == 303 and edited.headers["location"].endswith(f"/{endpoint_id}?done=saved")
    ((url, name, events, enabled),) = sql(
        settings, "SELECT url, name, events, enabled FROM webhook_endpoints WHERE id = ?", (endpoint_id,)
    )
    assert (url, name, msgspec.json.decode(events), enabled) == (
        "https://hooks.example/v2",
        None,
        ["order.refunded"],
        0,
    )
    refused_edit = client.post(
        f"/console/acme/webhooks/endpoints/{endpoint_id}",
        data={"url": "ftp://hooks.example", "events": "order.paid", "_csrf_token": csrf(client)},
    )
    assert refused_edit.status_code == 400 and 'id="edit-url-error"' in refused_edit.text
    assert sql(settings, "SELECT url FROM webhook_endpoints WHERE id = ?", (endpoint_id,))[0][0] == url

    rotated = client.post(f"/console/acme/webhooks/endpoints/{endpoint_id}/secret", data={"_csrf_token": csrf(client)})
    assert rotated.status_code == 200
    new_secret = _secret_shown(rotated.text)
    assert new_secret != secret
    assert sql(settings, "SELECT secret FROM webhook_endpoints WHERE id = ?", (endpoint_id,))[0][0] == new_secret

    deleted = client.post(f"/console/acme/webhooks/endpoints/{endpoint_id}/delete", data={"_csrf_token": csrf(client)})
    assert deleted.status_code == 303 and deleted.headers["location"].endswith("/webhooks?done=deleted")
    assert sql(settings, "SELECT COUNT(*) FROM webhook_endpoints WHERE id = ?", (endpoint_id,))[0][0] == 0
    assert client.get(f"/console/acme/webhooks/endpoints/{endpoint_id}").status_code == 404
    actions = [entry[0] for entry in audit_actions(settings, team.acme_id)]
    assert actions == [
        "webhook.endpoint_create",
        "webhook.endpoint_update",
        "webhook.endpoint_secret",
        "webhook.endpoint_delete",
    ]
    # Another organization's seller cannot open or change acme's endpoint.
    console_cookie(client, settings, plant_session(settings, team.stranger))
    assert client.get(f"/console/acme/webhooks/endpoints/{team.endpoint_id}").status_code == 404
    assert client.get(f"/console/globex/webhooks/endpoints/{team.endpoint_id}").status_code == 404


def test_every_attempt_is_logged_with_status_and_duration_and_can_be_redelivered(
    console: tuple[TestClient[Litestar], Settings, Team],
) -> None:
    client, settings, team = console
    # A real secret first (the helper's row has a placeholder), then point the endpoint at the receiver.
    client.post(f"/console/acme/webhooks/endpoints/{team.endpoint_id}/secret", data={"_csrf_token": csrf(client)})
    with receiver(statuses=[500, 500, 204]) as hook:
        client.post(
            f"/console/acme/webhooks/endpoints/{team.endpoint_id}",
            data={"url": hook.url, "events": "order.paid", "enabled": "on", "_csrf_token": csrf(client)},
        )
        event_id = new_id()
        sql(
            settings,
            "INSERT INTO webhook_events (id, endpoint_id, organization_id, type, payload, status, attempts, "
            "next_attempt_at, created_at) VALUES (?, ?, ?, 'order.paid', '{}', 'pending', 0, ?, ?)",
            (event_id, team.endpoint_id, team.acme_id, iso(Clock().now()), iso(Clock().now())),
        )
        hook.wait_for(2)  # two tries (retry_max_attempts=2), both answered 500: the event gave up
        wait_until(
            lambda: sql(settings, "SELECT status FROM webhook_events WHERE id = ?", (event_id,))[0][0] == "failed"
        )
        page = BeautifulSoup(client.get(f"/console/acme/webhooks/endpoints/{team.endpoint_id}").text, "html.parser")
        rows = page.select("table.console-table tbody tr")
        ours = [row for row in rows if "boom" in row.get_text()]  # the receiver's answer body, logged per attempt
        assert len(ours) == 2, [row.get_text(" ", strip=True) for row in rows]
        for row in ours:
            cells = [cell.get_text(" ", strip=True) for cell in row.select("td")]
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", cells[0]), cells
            assert re.fullmatch(r"\d+ ms", cells[4]), cells
            assert "Failed" in cells[3] and "HTTP 500" in cells[3] and cells[1] == "order.paid", cells
        # Redeliver from the endpoint's page: queued again, delivered (204), logged, and back on that page.
        form = page.select_one(f'form[action="/console/acme/webhooks/events/{event_id}/redeliver"]')
        assert form is not None and form.select_one('input[name="back"]')["value"] == "endpoint"  # type: ignore[index]
        again = client.post(
            f"/console/acme/webhooks/events/{event_id}/redeliver",
            data={"back": "endpoint", "_csrf_token": csrf(client)},
        )
        assert again.status_code == 303
        assert again.headers["location"] == f"/console/acme/webhooks/endpoints/{team.endpoint_id}?done=redelivered"
        hook.wait_for(3)
        wait_until(
            lambda: sql(settings, "SELECT status FROM webhook_events WHERE id = ?", (event_id,))[0][0] == "succeeded"
        )
    page = BeautifulSoup(client.get(again.headers["location"]).text, "html.parser")
    assert page.select_one('[role="status"]') is not None
    newest = page.select("table.console-table tbody tr")[0].get_text(" ", strip=True)
    assert "Delivered" in newest and "HTTP 204" in newest
    assert audit_actions(settings, team.acme_id)[-1][0] == "webhook.redeliver"


def test_the_log_keeps_the_newest_attempts_per_endpoint(
    console: tuple[TestClient[Litestar], Settings, Team], monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from portal.db import Database

    _, settings, team = console
    monkeypatch.setattr(webhook_queries, "DELIVERIES_KEPT", 3)

    async def attempts() -> None:
        db = await Database(settings.db_path).open()
        try:
            for second in range(5):
                async with db.write() as tx:
                    await tx.execute(
                        "UPDATE webhook_events SET status = 'sending', attempts = ? WHERE id = ?",
                        (second + 1, team.event_id),
                    )
                    event = await webhook_queries.get_event(tx, team.event_id)
                    assert event is not None
                    await webhook_queries.record_attempt(
                        tx,
                        event,
                        succeeded=False,
                        http_code=502,
                        response="bad gateway",
                        duration_ms=5,
                        status="pending",
                        retry_at=None,
                        now=Clock().now().replace(year=2030, second=second),
                    )
        finally:
            await db.close()

    asyncio.run(attempts())
    kept = sql(
        settings,
        "SELECT attempt FROM webhook_deliveries WHERE endpoint_id = ? ORDER BY created_at",
        (team.endpoint_id,),
    )
    assert [row[0] for row in kept] == [3, 4, 5]


def test_event_statuses_read_as_words_in_every_table(console: tuple[TestClient[Litestar], Settings, Team]) -> None:
    """The Webhooks and Processors pages show an event's status as the portal's labelled badge, not its code."""
    client, settings, team = console
    sql(settings, "UPDATE webhook_events SET status = 'succeeded' WHERE endpoint_id = ?", (team.endpoint_id,))
    sql(settings, "UPDATE connector_events SET status = 'unmapped'")
    codes = {"pending", "sending", "succeeded", "failed", "skipped", "applied", "ignored", "unmapped"}
    for path, label in (("/console/acme/webhooks", "Delivered"), ("/console/acme/processors", "Not mapped")):
        page = BeautifulSoup(client.get(path).text, "html.parser")
        badges = {badge.get_text() for badge in page.select("table.console-table td .badge")}
        assert label in badges and not badges & codes, (path, badges)
