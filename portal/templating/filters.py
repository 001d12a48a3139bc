"""Locale-aware template filters (``money``, ``date``, ``datetime``) and gettext bound to the active locale.

Translation (``jinja2.ext.i18n``, newstyle so ``_()`` and ``{% trans %}`` escape their variables) follows the
request's locale through ``portal.i18n``'s context variable. The filters take an optional locale; without one they
use the template's ``locale`` variable, else the active locale. Used by the page environment and by the email
environments (``portal/notifications/emails.py``, ``portal/sessions/emails.py``).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import lru_cache

from babel.dates import format_date, format_datetime
from jinja2 import Environment, pass_context
from jinja2.runtime import Context

from portal import i18n
from portal.clock import parse_iso
from portal.money import format_money


def _as_datetime(value: str | datetime | None) -> datetime | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, datetime) else parse_iso(value)


# ISO-8601 text whose first ten characters are the calendar date (in the text's own offset, which is the date
# Babel formats): those are formatted once per (day, locale, format), not once per row.
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}(?:T|$)")


@lru_cache(maxsize=4096)
def _format_day(day: str, locale: str, fmt: str) -> str:
    return format_date(date.fromisoformat(day), format=fmt, locale=locale)


def date_filter(value: str | datetime | None, locale: str = "en", fmt: str = "medium") -> str:
    if isinstance(value, str) and _ISO_DAY.match(value):
        return _format_day(value[:10], locale, fmt)
    moment = _as_datetime(value)
    return "" if moment is None else format_date(moment, format=fmt, locale=locale)


def datetime_filter(value: str | datetime | None, locale: str = "en", fmt: str = "medium") -> str:
    moment = _as_datetime(value)
    return "" if moment is None else format_datetime(moment, format=fmt, locale=locale, tzinfo=None)


def money_filter(amount: int | None, currency: str, locale: str = "en") -> str:
    return "" if amount is None else format_money(amount, currency, locale)


def _locale_of(context: Context, locale: str | None) -> str:
    return locale or context.get("locale") or i18n.current_locale()


# The filters resolve the locale themselves and call the module-level formatters (tests wrap those).
@pass_context
def _money(context: Context, amount: int | None, currency: str, locale: str | None = None) -> str:
    return money_filter(amount, currency, _locale_of(context, locale))


@pass_context
def _date(context: Context, value: str | datetime | None, locale: str | None = None, fmt: str = "medium") -> str:
    return date_filter(value, _locale_of(context, locale), fmt)


@pass_context
def _datetime(context: Context, value: str | datetime | None, locale: str | None = None, fmt: str = "medium") -> str:
    return datetime_filter(value, _locale_of(context, locale), fmt)


def install_i18n(env: Environment) -> Environment:
    """Gettext bound to the active locale (never to one request), and locale-aware filters, on ``env``."""
    env.add_extension("jinja2.ext.i18n")
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_callables(  # type: ignore[attr-defined]
        i18n.gettext, i18n.ngettext, newstyle=True, pgettext=i18n.pgettext, npgettext=i18n.npgettext
    )
    env.globals["current_locale"] = i18n.current_locale
    env.globals["language_names"] = i18n.LANGUAGE_NAMES
    env.globals["locale_url"] = i18n.locale_url
    env.globals["locale_param"] = i18n.locale_param
    env.globals["page_without_locale"] = i18n.page_without_locale
    env.filters["money"] = _money
    env.filters["date"] = _date
    env.filters["datetime"] = _datetime
    return env
