"""The seller's brand in emails, through a real SMTP server (aiosmtpd on loopback), issue 22: buttons and links in
the seller's accent (darkened when too pale to read on white), a raster logo (an SVG logo is left out: most mail
clients do not render SVG), recurring prices with their interval ("$120.00 / year") and dates written out in the
customer's language, the sign-in code email included."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from litestar.testing import TestClient

from portal.clock import Clock, iso
from portal.settings import Settings
from portal.templating.accent import contrast, light_accent
from tests.admin_support import api
from tests.apps import app_for
from tests.conftest import SMTPInbox
from tests.notification_support import fast, make_shop, subscribe
from tests.signin_helpers import csrf, html_part, request_code, sign_in_browser, text_part

BASE = "http://testserver.local"
PALE = "#facc15"
LOGO = "https://cdn.acme.example/logo.png"


def buttons(html: str) -> list[str]:
    return re.findall(r'<a [^>]*style="display:inline-block;background:(#[0-9a-f]{6});color:#ffffff;', html)


def test_receipt_has_the_accent_a_raster_logo_and_a_localized_date(
    smtp_settings: Settings, smtp_server: tuple[SMTPInbox, int], clock: Clock
) -> None:
    inbox, _ = smtp_server
    settings = fast(smtp_settings)
    with TestClient(app_for(settings, clock=clock), base_url=BASE) as client:
        shop = make_shop(client, settings)
        org_path = f"/v1/organizations/{shop.org['id']}"
        api(client, shop.token, "PATCH", org_path, 200, json={"accent_color": PALE, "avatar_url": LOGO})
        api(client, shop.token, "PATCH", f"/v1/customers/{shop.customer['id']}", 200, json={"locale": "de"})
        pay = {"customer_id": shop.customer["id"], "product_id": shop.product["id"]}
        api(client, shop.token, "POST", "/v1/orders/", 201, json=pay)
        [receipt] = inbox.wait_for(1)
        html = html_part(receipt)
        accent = light_accent(PALE)
        assert accent != PALE and contrast(accent, "#ffffff") >= 4.5  # white button text stays readable
        assert buttons(html) == [accent]
        assert "#2563eb" not in html  # no leftover default blue
        assert f'<img src="{LOGO}"' in html
        month = datetime.now(UTC).month
        german = ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
                  "November", "Dezember"][month - 1]  # fmt: skip
        assert german in text_part(receipt) and german in html
        # The accent sits inside translated sentences (the footer's link): they stay translated.
        assert "Fragen?" in html and "Questions?" not in html and f"color:{accent};" in html
        inbox.clear()
        # An SVG logo is left out (no PNG variant exists): the email shows the seller's name only.
        api(client, shop.token, "PATCH", org_path, 200, json={"avatar_url": "https://cdn.acme.example/logo.svg"})
        api(client, shop.token, "POST", "/v1/orders/", 201, json=pay)
        [second] = inbox.wait_for(1)
        assert "<img" not in html_part(second)
        inbox.clear()
        # The sign-in code email: same accent on its link, no SVG logo.
        assert request_code(client, "acme", "ada@example.com").status_code == 303
        [code] = inbox.wait_for(1)
        assert f"color:{accent};" in html_part(code) and "<img" not in html_part(code)


def test_subscription_emails_show_price_and_interval(
    smtp_settings: Settings, smtp_server: tuple[SMTPInbox, int], clock: Clock
) -> None:
    inbox, _ = smtp_server
    settings = fast(smtp_settings)
    with TestClient(app_for(settings, clock=clock), base_url=BASE) as client:
        shop = make_shop(client, settings)
        yearly = api(
            client,
            shop.token,
            "POST",
            "/v1/products/",
            201,
            json={
                "name": "Yearly plan",
                "recurring_interval": "year",
                "prices": [{"amount_type": "fixed", "price_amount": 12000, "price_currency": "usd"}],
            },
        )
        sub = subscribe(client, shop, period_start=iso(datetime.now(UTC) - timedelta(days=3)), product=yearly)
        sign_in_browser(client, settings, "acme", shop.org["id"], shop.customer["id"])
        base = f"/acme/portal/subscriptions/{sub['id']}"
        form = {"_csrf_token": csrf(client)}
        assert client.post(f"{base}/cancel", data=form, follow_redirects=False).status_code == 303
        assert client.post(f"{base}/uncancel", data=form, follow_redirects=False).status_code == 303
        resumed = inbox.wait_for(2)[1]
        assert "$120.00 / year" in text_part(resumed) and "$120.00 / year" in html_part(resumed)
        renews = (datetime.now(UTC) - timedelta(days=3)).replace(year=datetime.now(UTC).year + 1)
        assert renews.strftime("%B") in text_part(resumed)  # the long date: "It renews on March 4, 2027"
        changed = client.post(
            f"{base}/change-plan", data={**form, "product_id": shop.bigger_plan["id"]}, follow_redirects=False
        )
        assert changed.status_code == 303
        plan = inbox.wait_for(3)[2]
        assert "$19.00 / month" in text_part(plan)
