"""No English slips past gettext: every page and email is rendered with a pseudo-locale whose "translation" wraps
each message in ⟦…⟧, and money/dates in ⟪…⟫. What remains visible after removing those (text and the visible
attributes: title, alt, aria-label, placeholder, button values) must be data — names, emails, product labels,
license keys, numbers — taken from the database and the context. A bare English word added to a template, or a
Python message shown without gettext, leaves letters behind and fails this test. So does a template no scenario
renders: every file under templates/ must be covered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import jinja2
import pytest
from babel import Locale
from litestar import Litestar
from litestar.testing import TestClient

from portal import i18n, templating
from portal.app import create_app
from portal.clock import Clock
from portal.db import Database
from portal.resources import templates_dir
from portal.settings import Settings
from portal.templating import filters as template_filters
from tests.browser_helpers import csrf_token, new_session, one, query
from tests.signin_helpers import insert_session

pytestmark = pytest.mark.seeded  # data_dir: a copy of the demo seed (tests/conftest.py)

OPEN, CLOSE, DOPEN, DCLOSE = "⟦", "⟧", "⟪", "⟫"
VISIBLE_ATTRIBUTES = ("title", "alt", "aria-label", "placeholder")
# Templates that only make sense as part of another one, or static assets.
# The seller console's templates are rendered under the pseudo-locale by tests/test_console_pages.py.
NOT_PAGES = ("static/", "console/")


class PseudoTranslations:
    """A catalog that "translates" by marking: what went through gettext is recognisable in the output."""

    def gettext(self, message: str) -> str:
        return f"{OPEN}{message}{CLOSE}"

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return f"{OPEN}{singular if n == 1 else plural}{CLOSE}"

    def pgettext(self, context: str, message: str) -> str:
        return self.gettext(message)

    def npgettext(self, context: str, singular: str, plural: str, n: int) -> str:
        return self.ngettext(singular, plural, n)


@pytest.fixture
def rendered_templates(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[str]]:
    """Pseudo-locale on, money and dates marked, and the name of every template loaded (also includes/imports).

    Translations and filters are compiled into templates, and an app renders through the process's shared
    environments (``portal/templating/environment.py``): the app made after this fixture gets new ones, compiled
    with the pseudo-locale, and they are dropped again afterwards, so no later test renders the pseudo text."""
    names: set[str] = set()
    original = jinja2.Environment._load_template

    def load(self, name, globals):  # type: ignore[no-untyped-def]
        names.add(name)
        return original(self, name, globals)

    monkeypatch.setattr(jinja2.Environment, "_load_template", load)
    monkeypatch.setattr(i18n, "translations_for", lambda locale: PseudoTranslations())
    for name in ("money_filter", "date_filter", "datetime_filter"):
        real = getattr(template_filters, name)
        monkeypatch.setattr(template_filters, name, lambda *a, _real=real, **k: f"{DOPEN}{_real(*a, **k)}{DCLOSE}")
    templating.shared_environments.cache_clear()
    yield names
    templating.shared_environments.cache_clear()


@pytest.fixture
def client(settings: Settings, clock: Clock, rendered_templates: set[str]) -> Iterator[TestClient[Litestar]]:
    # An app of its own (not ``tests.apps.app_for``): its templates are compiled with the pseudo-locale's text.
    app = create_app(settings, clock=clock)
    with TestClient(app, base_url="http://testserver.local") as test_client:
        test_client.follow_redirects = False
        yield test_client


# --- what counts as data ----------------------------------------------------------------------------------


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
        if value[:1] in "{[":
            with contextlib.suppress(ValueError):
                yield from _strings(json.loads(value))
        yield from value.splitlines()
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def data_strings(settings: Settings, *extra: Any) -> list[str]:
    """Every text value in the database (JSON unpacked), country and language names, and ``extra``."""
    found: set[str] = set()
    for (table,) in query(settings, "SELECT name FROM sqlite_master WHERE type = 'table'"):
        for row in query(settings, f"SELECT * FROM {table}"):
            found.update(_strings(list(row)))
    found.update(Locale("en").territories.values())
    found.update(i18n.LANGUAGE_NAMES.values())
    found.update(_strings(list(extra)))
    found.add("ABC123")  # the login code of the email scenario
    found.add(urlsplit(settings.base_url).hostname or "")  # its WebOTP line: "@host #code"
    return sorted((s.strip() for s in found if len(s.strip()) >= 2), key=len, reverse=True)


# --- what is visible ----------------------------------------------------------------------------------------


class Visible(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.attributes: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        values = dict(attrs)
        self.attributes.extend(values[name] or "" for name in VISIBLE_ATTRIBUTES if name in values)
        if tag == "input" and values.get("type") in ("submit", "button"):
            self.attributes.append(values.get("value") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)


def _unmarked(text: str) -> str:
    """``text`` without marked spans; markers nest (a translated sentence holding a date), innermost first."""
    pattern = re.compile(f"{DOPEN}[^{DOPEN}{DCLOSE}]*{DCLOSE}|{OPEN}[^{OPEN}{CLOSE}]*{CLOSE}")
    while True:
        stripped = pattern.sub(" ", text)
        if stripped == text:
            return text
        text = stripped


URL = re.compile(r"https?://\S+")


def leftover_words(body: str, data: list[str], *, html: bool = True) -> list[str]:
    """Words visible in ``body`` that came neither through gettext nor from data (whole words only: the data "en"
    does not hide the English "Send"); URLs are data too."""
    data_words = re.compile("|".join(f"(?<!\\w){re.escape(value)}(?!\\w)" for value in data)) if data else None
    if html:
        parser = Visible()
        parser.feed(body)
        chunks = [" ".join(parser.text), *parser.attributes]
    else:
        chunks = [body]
    words: list[str] = []
    for chunk in chunks:
        rest = URL.sub(" ", _unmarked(chunk))
        if data_words is not None:
            rest = data_words.sub(" ", rest)
        words.extend(re.findall(r"[^\W\d_]{2,}", rest))
    return words


def assert_all_translated(body: str, data: list[str], where: str, *, html: bool = True) -> None:
    assert OPEN in body, f"{where}: nothing went through gettext"
    words = leftover_words(body, data, html=html)
    assert not words, f"{where}: text outside gettext: {words}"


# --- the test itself ------------------------------------------------------------------------------------------


def test_checker_catches_bare_english() -> None:
    data = ["Acme Software", "alex@example.com"]
    good = f"<h1>{OPEN}Sign in to Acme Software{CLOSE}</h1><p>alex@example.com {DOPEN}$10.00{DCLOSE}</p>"
    assert leftover_words(good, data) == []
    assert leftover_words(good.replace("</p>", " Questions?</p>"), data) == ["Questions"]
    assert leftover_words(f'<button title="Copy key">{OPEN}Copy{CLOSE}</button>', data) == ["Copy", "key"]
    assert leftover_words(f"<p>{OPEN}Paid on <b>{DOPEN}Mar 1{DCLOSE}</b>{CLOSE} by Acme Software</p>", data) == ["by"]


def _run(settings: Settings, work: Any) -> Any:
    async def main() -> Any:
        db = Database(settings.db_path)
        await db.open()
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(main())


def test_every_page_and_email_goes_through_gettext(client, settings, clock, rendered_templates) -> None:  # type: ignore[no-untyped-def]
    pages: dict[str, str] = {}

    def get(path: str, status: int = 200) -> None:
        response = client.get(path)
        assert response.status_code == status, (path, response.status_code, response.text[:300])
        pages[path] = response.text

    # Signed out: landing, sign-in (with each kind of message), the code page, an expired email link, errors.
    get("/")
    get("/acme/portal")
    get("/acme/portal?customer_session_token=nope")
    get("/acme/portal/link?token=nope", 400)
    get("/no-such-org/portal", 404)
    get("/acme/portal/no-such-page", 404)  # the organization's branded 404
    token = csrf_token(client, "/acme/portal")
    response = client.post("/acme/portal/request", data={"_csrf_token": token, "email": "not-an-email"})
    pages["request: invalid email"] = response.text
    client.post("/acme/portal/request", data={"_csrf_token": token, "email": "alex@example.com"})
    get("/acme/portal/authenticate")
    response = client.post("/acme/portal/authenticate", data={"_csrf_token": token, "code": "WRONG1"})
    assert response.status_code == 400
    pages["authenticate: wrong code"] = response.text

    # A live email link (the "Continue" page).
    from portal.sessions import email_links

    org = one(settings, "SELECT id FROM organizations WHERE slug = 'acme'")["id"]
    alex = one(settings, "SELECT id FROM customers WHERE email = 'alex@example.com' AND organization_id = ?", (org,))[
        "id"
    ]

    async def mint(db: Database) -> str:
        async with db.write() as tx:
            return await email_links.mint(
                tx, settings, organization_id=org, customer_id=alex, target_path="/acme/portal/orders", now=clock.now()
            )

    get(f"/acme/portal/link?token={_run(settings, mint)}")

    # Email change (issue 22), allowed by acme: the link's confirm page, the done page (another browser), a spent link.
    from portal.db import connect_sync
    from portal.security import hmac_digest

    jordan_id = one(
        settings, "SELECT id FROM customers WHERE email = 'jordan@example.com' AND organization_id = ?", (org,)
    )["id"]
    conn = connect_sync(settings.db_path)
    conn.execute("UPDATE organizations SET allow_email_change = 1 WHERE id = ?", (org,))
    conn.execute(
        "INSERT INTO customer_email_updates (id, organization_id, customer_id, email, token_hash, expires_at, "
        "created_at) VALUES ('pseudo-change', ?, ?, 'jordan.new@example.com', ?, '2999-01-01T00:00:00Z', "
        "'2020-01-01T00:00:00Z')",
        (org, jordan_id, hmac_digest(settings.secret_key, "PSEUDOTOKEN1", purpose="email-update")),
    )
    conn.commit()
    conn.close()
    get("/acme/portal/email-change?token=PSEUDOTOKEN1")
    response = client.post("/acme/portal/email-change", data={"_csrf_token": token, "token": "PSEUDOTOKEN1"})
    assert response.status_code == 200, response.text[:300]
    pages["email change: done"] = response.text
    get("/acme/portal/email-change?token=PSEUDOTOKEN1", 400)
    conn = connect_sync(settings.db_path)
    conn.execute("UPDATE customers SET email = 'jordan@example.com' WHERE id = ?", (jordan_id,))
    conn.commit()
    conn.close()

    # Signed in as Alex: every page, every notice, forms with errors.
    name, session = new_session(settings, "acme", "alex@example.com")
    client.cookies.set(name, session)
    get("/acme/portal")
    # A seller-minted link for another customer, opened while signed in: the page that asks before switching.
    jordan = one(
        settings, "SELECT id FROM customers WHERE email = 'jordan@example.com' AND organization_id = ?", (org,)
    )
    get(f"/acme/portal?customer_session_token={insert_session(settings, org, jordan['id'], kind='api')}")
    for done in (
        "canceled",
        "uncanceled",
        "plan_changed",
        "deactivated",
        "billing_saved",
        "locale_saved",
        "email_change_sent",
        "email_changed",
    ):
        get(f"/acme/portal?done={done}")
    get("/acme/portal/orders")
    get("/acme/portal/orders?page=99")
    for (order_id,) in query(
        settings, "SELECT id FROM orders WHERE customer_id = ? AND receipt_number IS NOT NULL", (alex,)
    ):
        get(f"/acme/portal/orders/{order_id}")
        get(f"/acme/portal/orders/{order_id}/receipt")
    get("/acme/portal/orders/nope", 404)
    get("/acme/portal/subscriptions")
    sub = one(settings, "SELECT id FROM subscriptions WHERE external_id = 'acme-sub-alex-pro'")["id"]
    get(f"/acme/portal/subscriptions/{sub}")
    get(f"/acme/portal/subscriptions/{sub}/change-plan")
    plans = re.findall(r'name="product_id" value="([^"]+)"', pages[f"/acme/portal/subscriptions/{sub}/change-plan"])
    get(f"/acme/portal/subscriptions/{sub}/change-plan/confirm?product_id={plans[0]}")
    get(f"/acme/portal/subscriptions/{sub}/cancel")  # the cancel step (reasons, comment, confirm)
    client.post(f"/acme/portal/subscriptions/{sub}/cancel", data={"_csrf_token": token, "cancellation_reason": "other"})
    get(f"/acme/portal/subscriptions/{sub}")  # canceled: the resume form
    conn = connect_sync(settings.db_path)  # let customers rotate keys: the "Replace key" step renders too
    conn.execute(
        "UPDATE benefits SET properties = json_set(properties, '$.allow_customer_rotation', json('true')) "
        "WHERE type = 'license_keys'"
    )
    conn.commit()
    conn.close()
    get("/acme/portal/benefits")
    get(re.findall(r'href="([^"]+/rotate)" data-action="rotate"', pages["/acme/portal/benefits"])[0])
    # The confirmation step of deactivating a license-key activation.
    get(re.findall(r'href="([^"]+/deactivate)" data-action="deactivate"', pages["/acme/portal/benefits"])[0])
    get("/acme/portal/settings")
    response = client.post(
        "/acme/portal/settings", data={"_csrf_token": token, "line1": "x" * 300, "country": "ZZ", "tax_id": "!"}
    )
    assert response.status_code == 400
    pages["billing: errors"] = response.text
    response = client.post("/acme/portal/settings/email", data={"_csrf_token": token, "email": "nope"})
    assert response.status_code == 400
    pages["billing: email change error"] = response.text
    # An invoice (generated from the order page), and its page.
    paid = one(settings, "SELECT id FROM orders WHERE customer_id = ? AND status = 'paid' LIMIT 1", (alex,))["id"]
    response = client.post(f"/acme/portal/orders/{paid}/invoice", data={"_csrf_token": token})
    assert response.status_code == 303, response.text[:300]
    get(response.headers["location"])
    get(f"/acme/portal/orders/{paid}")  # now with "Download invoice"

    # A customer with nothing yet: the empty states.
    name, session = new_session(settings, "acme", "jordan@example.com")
    with _empty_customer(settings, "acme", clock) as email:
        name, session = new_session(settings, "acme", email)
        client.cookies.set(name, session)
        for path in ("/acme/portal", "/acme/portal/orders", "/acme/portal/subscriptions", "/acme/portal/benefits"):
            get(path)
            pages[f"empty {path}"] = pages.pop(path)

    data = data_strings(settings)
    for where, body in pages.items():
        assert_all_translated(body, data, where)

    # Emails: the login code, and every transactional kind from real snapshots of the demo data.
    for where, body, is_html in _emails(settings, clock):
        assert_all_translated(body, data, where, html=is_html)

    # And nothing was left out: every template was rendered by some scenario above.
    everything = {
        str(path.relative_to(templates_dir()))
        for path in templates_dir().rglob("*")
        if path.is_file() and not str(path.relative_to(templates_dir())).startswith(NOT_PAGES)
    }
    missing = everything - rendered_templates - {"portal/signed_in.html"}
    assert not missing, f"templates no scenario renders (add one): {sorted(missing)}"


def test_fallback_signed_in_page_goes_through_gettext(settings, rendered_templates) -> None:  # type: ignore[no-untyped-def]
    # Only shown when the overview module is absent; rendered directly.
    env = templating.build_environment()
    context = {
        "organization": {"name": "Acme Software", "slug": "acme", "support_email": "help@acme.example"},
        "customer": {"email": "alex@example.com"},
        "return_url": "https://acme.example/",
        "csrf_input": "",
    }
    body = env.get_template("portal/signed_in.html").render(context)
    assert_all_translated(body, ["Acme Software", "alex@example.com", "help@acme.example"], "signed_in.html")


class _empty_customer:
    """A customer with no orders, subscriptions or benefits, for the empty states."""

    def __init__(self, settings: Settings, slug: str, clock: Clock) -> None:
        self.settings, self.slug, self.clock = settings, slug, clock

    def __enter__(self) -> str:
        org = one(self.settings, "SELECT id FROM organizations WHERE slug = ?", (self.slug,))["id"]
        now = self.clock.now().isoformat()

        async def work(db: Database) -> None:
            async with db.write() as tx:
                await tx.execute(
                    "INSERT INTO customers (id, organization_id, email, created_at) VALUES (?, ?, ?, ?)",
                    ("empty-customer", org, "nobody@example.com", now),
                )

        _run(self.settings, work)
        return "nobody@example.com"

    def __exit__(self, *exc: object) -> None:
        return None


def _emails(settings: Settings, clock: Clock) -> list[tuple[str, str, bool]]:
    from portal.notifications import emails
    from portal.notifications.outbox import OutboxMessage
    from portal.sessions.emails import email_change_email, login_code_email

    organization = _run(settings, lambda db: _org(db, "acme"))
    login = login_code_email(
        settings,
        organization=organization,
        to="alex@example.com",
        code="ABC123",
        expires_at=_later(clock),
        now=clock.now(),
    )
    result = [("login email (text)", login.text, False), ("login email (html)", login.html or "", True)]
    result.append(("login email (subject)", login.subject, False))
    change = email_change_email(settings, organization=organization, to="alex.new@example.com", token="ABC", minutes=30)
    result += [
        ("email change (text)", change.text, False),
        ("email change (html)", change.html or "", True),
        ("email change (subject)", change.subject, False),
    ]

    async def enqueue(db: Database) -> None:
        now = clock.now()
        order = await db.fetchone("SELECT id FROM orders WHERE external_id = 'acme-ord-alex-icons'")
        refund = await db.fetchone("SELECT id FROM refunds WHERE order_id = ?", (order["id"],))
        sub = await db.fetchone("SELECT id FROM subscriptions WHERE external_id = 'acme-sub-alex-pro'")
        async with db.write() as tx:
            await emails.enqueue_receipt(tx, order["id"], now=now)
            await emails.enqueue_refund(tx, order["id"], refund["id"], now=now)
            for kind in ("subscription_canceled", "subscription_uncanceled", "renewal_reminder"):
                await emails.enqueue_subscription(tx, kind, sub["id"], now=now, dedupe_key=kind)
            await emails.enqueue_subscription(
                tx, "subscription_updated", sub["id"], now=now, previous_product_name="Old plan", dedupe_key="upd"
            )
            await emails.enqueue_payment_failed(tx, sub["id"], now=now, next_attempt=now)
            customer = await tx.fetchval("SELECT customer_id FROM orders WHERE id = ?", (order["id"],))
            await emails.enqueue_sign_in_link(tx, customer, now=now)  # the console's "Email a sign-in link"

    _run(settings, enqueue)
    rows = query(settings, "SELECT * FROM email_outbox ORDER BY created_at")
    kinds = {row["kind"] for row in rows}
    assert kinds >= set(emails.SUBJECTS), kinds
    for row in rows:
        message = OutboxMessage(**{name: row[name] for name in OutboxMessage.__struct_fields__})
        urls = {name: f"https://portal.example/{name}" for name in json.loads(row["context"]).get("links", {})}
        mail = emails.render(message, urls)
        result += [
            (f"{row['kind']} (text)", mail.text, False),
            (f"{row['kind']} (html)", mail.html or "", True),
            (f"{row['kind']} (subject)", mail.subject, False),
        ]
    return result


async def _org(db: Database, slug: str) -> Any:
    from portal.organizations.queries import get_by_slug

    return await get_by_slug(db, slug)


def _later(clock: Clock) -> str:
    from datetime import timedelta

    from portal.clock import iso

    return iso(clock.now() + timedelta(minutes=10))
