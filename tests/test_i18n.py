"""Languages over HTTP: negotiation order (``?locale=`` > saved choice > Accept-Language > organization default),
the switcher (POST + CSRF, 303 back, saved in ``customers.locale``), the language carried through sign-in, the
login-code email and transactional emails in the customer's language, and locale-aware money and dates."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest
from bs4 import BeautifulSoup
from litestar import Litestar
from litestar.testing import TestClient

from portal import i18n
from portal.clock import Clock
from portal.settings import Settings
from portal.templating import build_environment
from tests.apps import app_for
from tests.browser_helpers import csrf_token, customer_id, login_code, new_session, one

pytestmark = pytest.mark.seeded  # data_dir: a copy of the demo seed (tests/conftest.py)


@pytest.fixture
def client(app: Litestar) -> Iterator[TestClient[Litestar]]:
    with TestClient(app, base_url="http://testserver.local") as test_client:
        test_client.follow_redirects = False
        yield test_client


def sign_in(client: TestClient[Litestar], settings: Settings, slug: str, email: str) -> None:
    name, token = new_session(settings, slug, email)
    client.cookies.set(name, token)


def page_language(response) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """(``<html lang>``, the first nav label) of a signed-in page."""
    assert response.status_code == 200, response.text[:300]
    page = BeautifulSoup(response.text, "html.parser")
    return page.html["lang"], page.select_one("nav.portal-nav a").get_text(strip=True)


OVERVIEW = {"en": "Overview", "de": "Übersicht", "fr": "Aperçu", "es": "Resumen"}


# --- negotiation, unit ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "saved", "accept", "org", "expected"),
    [
        ("fr", "de", "es", "en", "fr"),  # the URL wins
        (None, "de", "es", "fr", "de"),  # then the saved choice
        (None, None, "es-MX,es;q=0.9,en;q=0.5", "fr", "es"),  # then the browser
        (None, None, "it-IT,it;q=0.9", "fr", "fr"),  # nothing the browser wants: the org default
        (None, None, None, None, "en"),  # and English last
        ("xx", "klingon", "ja", "de-AT", "de"),  # unsupported values are skipped
        (None, "de_CH", None, "en", "de"),  # regional variants map to their language
        (None, None, "en;q=0.2, de;q=0.8", "fr", "de"),  # q-values decide, not order
        (None, None, "de;q=0", "fr", "fr"),  # q=0 means "not this one"
    ],
)
def test_negotiation_order(query, saved, accept, org, expected) -> None:  # type: ignore[no-untyped-def]
    assert i18n.negotiate(query=query, saved=saved, accept_language=accept, org_default=org) == expected


def test_filters_follow_the_active_locale() -> None:
    env = build_environment()
    template = env.from_string("{{ 123456 | money('eur') }} | {{ '2025-03-09T10:00:00Z' | date }} | {{ _('Orders') }}")
    with i18n.use_locale("de"):
        assert template.render() == "1.234,56\xa0€ | 09.03.2025 | Bestellungen"
    with i18n.use_locale("fr"):
        assert template.render() == "1\u202f234,56\xa0€ | 9 mars 2025 | Commandes"
    # A template's own `locale` variable still wins over the active one (receipts, emails).
    assert template.render(locale="es").startswith("1.234,56\xa0€ | 9 mar 2025")
    assert template.render() == "€1,234.56 | Mar 9, 2025 | Orders"


def test_translation_is_escaped_and_per_request() -> None:
    env = build_environment()
    template = env.from_string('{{ _("Sign in to %(name)s", name=name) }}|{% trans %}Welcome back{% endtrans %}')
    with i18n.use_locale("fr"):
        assert template.render(name="<R&D>") == "Connexion à &lt;R&amp;D&gt;|Bon retour"
    assert template.render(name="<R&D>") == "Sign in to &lt;R&amp;D&gt;|Welcome back"


# --- negotiation over HTTP ------------------------------------------------------------------------------------


def test_query_beats_saved_beats_accept_language_beats_org_default(client, settings) -> None:
    # lumen's default is German; Lena has no saved language.
    sign_in(client, settings, "lumen", "lena.schmidt@example.de")
    assert page_language(client.get("/lumen/portal/orders")) == ("de", "Übersicht")
    spanish = {"Accept-Language": "es-ES,es;q=0.9,en;q=0.4"}
    assert page_language(client.get("/lumen/portal/orders", headers=spanish)) == ("es", "Resumen")

    # The switcher saves French: it now beats the browser's Spanish.
    form = {"_csrf_token": csrf_token(client, "/lumen/portal"), "locale": "fr", "next": "/lumen/portal/orders?page=1"}
    response = client.post("/lumen/portal/locale", data=form)
    assert response.status_code == 303
    assert response.headers["location"] == "/lumen/portal/orders?page=1&done=locale_saved"
    lena = customer_id(settings, "lumen", "lena.schmidt@example.de")
    assert one(settings, "SELECT locale FROM customers WHERE id = ?", (lena,))["locale"] == "fr"
    followed = client.get(response.headers["location"], headers=spanish)
    assert page_language(followed) == ("fr", "Aperçu")
    assert "Langue enregistrée" in followed.text

    # ?locale= beats the saved choice, for that page only.
    assert page_language(client.get("/lumen/portal/orders?locale=en", headers=spanish)) == ("en", "Overview")
    assert page_language(client.get("/lumen/portal/orders", headers=spanish)) == ("fr", "Aperçu")


def test_switcher_needs_csrf_and_only_redirects_inside_the_portal(client, settings) -> None:
    sign_in(client, settings, "acme", "alex@example.com")
    assert client.post("/acme/portal/locale", data={"locale": "de", "next": "/acme/portal"}).status_code == 403
    token = csrf_token(client, "/acme/portal")
    for target in ("https://evil.example/", "//evil.example/acme/portal", "/lumen/portal/orders", "/acme/portalx"):
        response = client.post("/acme/portal/locale", data={"_csrf_token": token, "locale": "de", "next": target})
        assert response.status_code == 303
        assert response.headers["location"] == "/acme/portal", target
    # An unknown language changes nothing.
    response = client.post("/acme/portal/locale", data={"_csrf_token": token, "locale": "xx", "next": "/acme/portal"})
    assert response.headers["location"] == "/acme/portal"
    alex = customer_id(settings, "acme", "alex@example.com")
    assert one(settings, "SELECT locale FROM customers WHERE id = ?", (alex,))["locale"] == "de"


def test_switcher_is_a_form_when_signed_in_and_links_otherwise(client, settings) -> None:
    page = BeautifulSoup(client.get("/acme/portal?locale=es").text, "html.parser")
    assert page.html["lang"] == "es"
    links = {a["hreflang"]: a["href"] for a in page.select(".language-switcher a")}
    assert links == {code: f"/acme/portal?locale={code}" for code in ("en", "de", "fr", "es")}
    assert page.select_one('.language-switcher a[aria-current="true"]')["hreflang"] == "es"
    assert page.select_one("h1").get_text(strip=True).startswith("Iniciar sesión en")

    sign_in(client, settings, "acme", "alex@example.com")
    page = BeautifulSoup(client.get("/acme/portal/orders?page=1&locale=de").text, "html.parser")
    form = page.select_one("form.language-switcher")
    assert form["method"] == "post" and form["action"] == "/acme/portal/locale"
    assert form.select_one('input[name="_csrf_token"]') is not None
    assert form.select_one('input[name="next"]')["value"] == "/acme/portal/orders?page=1"
    assert form.select_one("option[selected]")["value"] == "de"
    assert form.select_one("button[type=submit]").get_text(strip=True) == "Sprache ändern"


def test_error_pages_are_translated(client, settings) -> None:
    response = client.get("/lumen/portal/orders/nope", headers={"Accept-Language": "fr"})
    assert response.status_code == 303  # signed out: to the sign-in page
    sign_in(client, settings, "lumen", "lena.schmidt@example.de")
    response = client.get("/lumen/portal/orders/nope")
    assert response.status_code == 404
    page = BeautifulSoup(response.text, "html.parser")
    assert page.html["lang"] == "de"
    assert page.select_one("h1").get_text(strip=True) == "Seite nicht gefunden"
    response = client.get("/no-such-org/portal", headers={"Accept-Language": "es"})
    assert response.status_code == 404
    assert "No hay ningún portal en esta dirección." in response.text


def test_money_and_dates_follow_the_page_language(client, settings) -> None:
    sign_in(client, settings, "acme", "alex@example.com")
    english = BeautifulSoup(client.get("/acme/portal/orders?locale=en").text, "html.parser")
    german = BeautifulSoup(client.get("/acme/portal/orders?locale=de").text, "html.parser")
    amount_en = english.select_one("table.orders td.num").get_text(strip=True)
    amount_de = german.select_one("table.orders td.num").get_text(strip=True)
    assert amount_en.startswith("$") and "." in amount_en
    assert amount_de.endswith("$") and "," in amount_de
    assert german.select_one("table.orders th").get_text(strip=True) == "Datum"


# --- sign-in and emails ---------------------------------------------------------------------------------------


@pytest.fixture
def smtp_client(smtp_settings: Settings) -> Iterator[TestClient[Litestar]]:
    with TestClient(app_for(smtp_settings, clock=Clock()), base_url="http://testserver.local") as test_client:
        test_client.follow_redirects = False
        yield test_client


def test_language_picked_on_sign_in_is_carried_and_saved(smtp_client, smtp_settings, smtp_server) -> None:
    inbox, _ = smtp_server
    client = smtp_client
    page = BeautifulSoup(client.get("/acme/portal?locale=fr").text, "html.parser")
    form = page.select_one("form.stack")
    assert form["action"] == "/acme/portal/request?locale=fr"
    response = client.post(form["action"], data={"_csrf_token": csrf_token(client), "email": "alex@example.com"})
    assert response.status_code == 303
    assert response.headers["location"] == "/acme/portal/authenticate?locale=fr"

    message = inbox.wait_for(1)[-1]
    assert message["Subject"] == "Votre code de connexion pour Acme Software"
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "Votre code de connexion à usage unique :" in text
    html = message.get_body(preferencelist=("html",)).get_content()
    assert '<html lang="fr">' in html and "Connexion à Acme Software" in html

    code_page = client.get(response.headers["location"])
    assert "Consultez vos e-mails" in code_page.text
    form = BeautifulSoup(code_page.text, "html.parser").select_one('form[action^="/acme/portal/authenticate"]')
    assert form["action"] == "/acme/portal/authenticate?locale=fr"
    response = client.post(form["action"], data={"_csrf_token": csrf_token(client), "code": login_code(message)})
    assert response.status_code == 303
    alex = customer_id(smtp_settings, "acme", "alex@example.com")
    assert one(smtp_settings, "SELECT locale FROM customers WHERE id = ?", (alex,))["locale"] == "fr"
    assert page_language(client.get("/acme/portal/orders")) == ("fr", "Aperçu")


def test_login_email_follows_accept_language(smtp_client, smtp_server) -> None:
    inbox, _ = smtp_server
    client = smtp_client
    client.get("/acme/portal")
    client.post(
        "/acme/portal/request",
        data={"_csrf_token": csrf_token(client), "email": "alex@example.com"},
        headers={"Accept-Language": "de-DE,de;q=0.9"},
    )
    message = inbox.wait_for(1)[-1]
    assert message["Subject"] == "Ihr Anmeldecode für Acme Software"
    assert "Ihr einmaliger Anmeldecode lautet:" in message.get_body(preferencelist=("plain",)).get_content()


def test_transactional_email_in_the_customers_language() -> None:
    from portal.notifications.emails import render
    from portal.notifications.outbox import OutboxMessage

    context = {
        "organization": {"name": "Lumen", "slug": "lumen", "support_email": "help@lumen.example", "avatar_url": None},
        "customer": {"name": "Marie", "email": "marie@example.fr"},
        "locale": "fr",
        "links": {},
        "subscription": {
            "id": "s1",
            "product_name": "Studio",
            "amount": 1900,
            "currency": "eur",
            "recurring_interval": "month",
            "recurring_interval_count": 1,
            "current_period_end": "2025-04-01T00:00:00Z",
            "ends_at": "2025-04-01T00:00:00Z",
            "status": "active",
        },
        "previous_product_name": None,
    }
    message = OutboxMessage(
        id="m1",
        organization_id=None,
        customer_id=None,
        kind="subscription_canceled",
        to_address="marie@example.fr",
        context=msgspec.json.encode(context).decode(),
        dedupe_key=None,
        status="pending",
        attempts=0,
        next_attempt_at="2025-03-01T00:00:00Z",
        last_error=None,
        sent_at=None,
        created_at="2025-03-01T00:00:00Z",
        modified_at=None,
    )
    mail = render(message, {"subscription": "https://portal.example/lumen/portal/link?token=t"})
    assert mail.subject == "Votre abonnement Studio est résilié"
    assert "Vous conservez l’accès jusqu’au 1 avril 2025." in mail.text
    assert "Gérez votre abonnement :" in mail.text
    assert "Gérer votre abonnement" in (mail.html or "")
