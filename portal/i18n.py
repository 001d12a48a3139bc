"""Languages: which locale a request gets, the message catalogs, and gettext that follows the request.

Negotiation, first match wins: ``?locale=`` in the URL, the customer's saved choice (``customers.locale``),
the browser's ``Accept-Language``, the organization's ``default_locale``, then English.

Catalogs are ``portal/locale/<lang>/LC_MESSAGES/messages.po``, read with Babel's ``read_po`` and compiled in
memory on first use: no ``.mo`` files in git, the wheel ships the ``.po`` files. ``python -m portal.i18n_catalogs``
re-extracts the strings and updates the catalogs (see its docstring).

The Jinja environment is shared by concurrent requests, so nothing per-request is installed on it: its gettext
callables read the *active* locale from a context variable. ``start_request`` (an app ``before_request`` hook)
puts a mutable ``LocaleChoice`` there; code that learns more later (the organization, the signed-in customer)
fills it in with ``refine``. A mutable holder survives Litestar resolving dependencies in child tasks (which copy
the context: a plain ``ContextVar.set`` made there would be lost).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from babel import negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from markupsafe import Markup, escape

from portal.clock import iso

DEFAULT_LOCALE = "en"
SUPPORTED_LOCALES: tuple[str, ...] = ("en", "de", "fr", "es")
# Each language named in itself, as language pickers do (not translated on purpose).
LANGUAGE_NAMES: dict[str, str] = {"en": "English", "de": "Deutsch", "fr": "Français", "es": "Español"}
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"


def normalize(tag: str | None) -> str | None:
    """A supported locale for ``tag`` (``de``, ``de-AT``, ``de_DE`` → ``de``), or None."""
    if not tag or len(tag) > 35:
        return None
    language = tag.strip().replace("_", "-").split("-")[0].lower()
    return language if language in SUPPORTED_LOCALES else None


def parse_accept_language(header: str | None) -> list[str]:
    """The tags of an ``Accept-Language`` header, most wanted first (``q=0`` dropped, order kept on ties)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "")[:1000].split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        if not tag or tag == "*":
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(ranked)]


def from_accept_language(header: str | None) -> str | None:
    """The best supported locale for an ``Accept-Language`` header (Babel's negotiation), or None. Remembered per
    header value (browsers send the same few strings on every request)."""
    if header is None or len(header) > 256:
        return _negotiate_accept_language(header)
    return _negotiate_accept_language_cached(header)


@lru_cache(maxsize=512)
def _negotiate_accept_language_cached(header: str) -> str | None:
    return _negotiate_accept_language(header)


def _negotiate_accept_language(header: str | None) -> str | None:
    preferred = [tag.replace("_", "-") for tag in parse_accept_language(header)]
    found = negotiate_locale(preferred, SUPPORTED_LOCALES, sep="-")
    if found:
        return found
    # negotiate_locale matches a region tag (de-AT) to its language only when the language is available as is.
    for tag in preferred:
        if language := normalize(tag):
            return language
    return None


@dataclass
class LocaleChoice:
    """What a request told us about its language, one field per source, in priority order."""

    query: str | None = None
    saved: str | None = None
    accepted: str | None = None
    org_default: str | None = None

    @property
    def locale(self) -> str:
        for candidate in (self.query, self.saved, self.accepted, self.org_default):
            if candidate:
                return candidate
        return DEFAULT_LOCALE


def negotiate(
    query: str | None = None,
    saved: str | None = None,
    accept_language: str | None = None,
    org_default: str | None = None,
) -> str:
    """The locale for these inputs: query > saved > Accept-Language > organization default > English."""
    return LocaleChoice(
        normalize(query), normalize(saved), from_accept_language(accept_language), normalize(org_default)
    ).locale


_ACTIVE: ContextVar[LocaleChoice | None] = ContextVar("portal_locale", default=None)


def choice_for(request: Any) -> LocaleChoice:
    """The request's ``LocaleChoice`` from what the request itself carries (query and header)."""
    return LocaleChoice(
        query=normalize(request.query_params.get("locale")),
        accepted=from_accept_language(request.headers.get("accept-language")),
    )


async def start_request(request: Any) -> None:
    """``before_request`` hook: make the request's locale active for everything rendered while answering it.

    Async on purpose: Litestar runs a sync hook in a worker thread, inside a *copy* of the context, so the locale
    set there never reached the request (and every request paid a thread hop)."""
    _ACTIVE.set(choice_for(request))


def ensure_request(request: Any) -> LocaleChoice:
    """The active choice, started from ``request`` when nothing is active yet (e.g. an error before routing)."""
    choice = _ACTIVE.get()
    if choice is None:
        choice = choice_for(request)
        _ACTIVE.set(choice)
    return choice


def refine(*, saved: str | None = None, org_default: str | None = None) -> str:
    """Add the customer's saved locale and the organization's default to the active choice; returns the locale."""
    choice = _ACTIVE.get()
    if choice is None:
        choice = LocaleChoice()
        _ACTIVE.set(choice)
    if saved is not None:
        choice.saved = normalize(saved)
    if org_default is not None:
        choice.org_default = normalize(org_default)
    return choice.locale


def explicit_locale() -> str | None:
    """The locale the URL asked for (``?locale=``), if any: sign-in forms carry it to the next page."""
    choice = _ACTIVE.get()
    return choice.query if choice else None


def locale_param() -> str:
    """``?locale=xx`` when the URL chose the locale, else ``""``: appended to sign-in form actions and redirects so
    the choice survives until the customer is signed in (and it is saved)."""
    locale = explicit_locale()
    return f"?locale={locale}" if locale else ""


def current_locale() -> str:
    choice = _ACTIVE.get()
    return choice.locale if choice else DEFAULT_LOCALE


@contextmanager
def use_locale(locale: str | None) -> Iterator[str]:
    """Make ``locale`` active inside the block (emails rendered outside a request, tests)."""
    active = normalize(locale) or DEFAULT_LOCALE
    token = _ACTIVE.set(LocaleChoice(query=active))
    try:
        yield active
    finally:
        _ACTIVE.reset(token)


def locale_url(request: Any, locale: str) -> str:
    """This page's URL (path and query, so tokens and page numbers survive) asking for ``locale``."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k not in ("locale", "done")]
    return request.scope["path"] + "?" + urlencode([*query, ("locale", locale)])


def page_without_locale(request: Any) -> str:
    """This page's path and query without ``locale``/``done``: where the signed-in switcher sends the customer."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k not in ("locale", "done")]
    return request.scope["path"] + (f"?{urlencode(query)}" if query else "")


# --- catalogs ---------------------------------------------------------------------------------------------


def catalog_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@lru_cache(maxsize=len(SUPPORTED_LOCALES))
def translations_for(locale: str) -> NullTranslations:
    """The compiled catalog of ``locale`` (English: the msgids themselves). Fuzzy entries are left out."""
    path = catalog_path(locale)
    if locale == DEFAULT_LOCALE or not path.is_file():
        return NullTranslations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=locale, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(fp=buffer, domain=DOMAIN)


def active_translations() -> NullTranslations:
    return translations_for(current_locale())


def gettext(message: str) -> str:
    return active_translations().gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return active_translations().ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    translated = active_translations().pgettext(context, message)
    # Babel types the answer ``str | object`` (its missing-entry sentinel); a miss answers the message itself.
    return translated if isinstance(translated, str) else message


def npgettext(context: str, singular: str, plural: str, n: int) -> str:
    return active_translations().npgettext(context, singular, plural, n)


class LazyText:
    """A message translated each time it is shown (``str()``, or escaped by Jinja), in the locale active then."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message

    def __str__(self) -> str:
        return gettext(self.message)

    def __html__(self) -> Markup:
        return escape(str(self))

    def __repr__(self) -> str:
        return f"LazyText({self.message!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LazyText) and other.message == self.message

    def __hash__(self) -> int:
        return hash(self.message)


def lazy_gettext(message: str) -> LazyText:
    """Translated when shown, in the locale active then: for module-level labels and messages."""
    return LazyText(message)


def noop(message: str) -> str:
    """Marks ``message`` for extraction without translating it (it is translated later, where it is shown)."""
    return message


_ = gettext


# --- saving the customer's choice ----------------------------------------------------------------------------


async def save_customer_locale(db: Any, organization_id: str, customer_id: str, locale: str, *, now: datetime) -> None:
    """Remember the customer's language (``customers.locale``): portal pages and emails use it from now on."""
    async with db.write() as tx:
        await tx.execute(
            "UPDATE customers SET locale = ?, modified_at = ? WHERE id = ? AND organization_id = ?",
            (locale, iso(now), customer_id, organization_id),
        )
