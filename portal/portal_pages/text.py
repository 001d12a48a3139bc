"""Display helpers computed in Python (templates stay query- and logic-free): safe notes with clickable links,
postal address lines, billing intervals, statuses and file sizes — in the active locale (``portal.i18n``)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from babel import Locale
from babel.numbers import format_decimal
from markupsafe import Markup, escape

from portal.i18n import active_translations, current_locale, gettext, ngettext
from portal.i18n import lazy_gettext as _l

# Markdown-style [text](url) links, or bare http(s) URLs; matched on already-escaped text.
_LINK = re.compile(r"\[([^\]\n]{1,200})\]\((https?://[^\s()<>\"']+)\)|(https?://[^\s<>\"']+)")
_TRAILING = ".,;:!?)]}"


def _anchor(url: str, label: str) -> str:
    return f'<a href="{url}" rel="noopener nofollow">{label}</a>'


def _link(match: re.Match[str]) -> str:
    if match.group(2):
        return _anchor(match.group(2), match.group(1))
    url, tail = match.group(3), ""
    while url and url[-1] in _TRAILING:
        tail = url[-1] + tail
        url = url[:-1]
    return _anchor(url, url) + tail


def linkify(text: str | None) -> Markup:
    """Escape ``text`` and make links clickable (``[label](https://…)`` and bare http(s) URLs); blank lines make
    paragraphs, newlines ``<br>``.

    Escaping comes first, so the regex only ever sees escaped text: no markup from the note survives, and
    ``&amp;`` inside a URL stays escaped in the ``href`` (browsers decode it)."""
    if not text:
        return Markup("")
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()):
        linked = _LINK.sub(_link, str(escape(block)))
        paragraphs.append("<p>" + linked.replace("\n", "<br>\n") + "</p>")
    return Markup("\n".join(paragraphs))  # noqa: S704 - built from escaped text only


def country_name(code: str | None, locale: str | None = None) -> str:
    if not code:
        return ""
    try:
        return Locale.parse((locale or current_locale()).replace("-", "_")).territories.get(code.upper(), code)
    except (ValueError, TypeError):
        return code


CITY_STATE_POSTAL = frozenset({"US", "CA", "AU"})


def address_lines(address: dict[str, Any] | None, locale: str | None = None) -> list[str]:
    """An address as printable lines: street, street 2, "postal code city", state, country name."""
    if not address:
        return []
    country = (address.get("country") or "").upper()
    city, state, postal = address.get("city"), address.get("state"), address.get("postal_code")
    if country in CITY_STATE_POSTAL:
        # "San Francisco, CA 94110" (US, CA, AU style)
        tail = " ".join(part for part in (state, postal) if part)
        lines = [address.get("line1"), address.get("line2"), ", ".join(part for part in (city, tail) if part)]
    else:
        # "10119 Berlin" then the region, as most of Europe writes it
        lines = [address.get("line1"), address.get("line2"), " ".join(p for p in (postal, city) if p), state]
    lines.append(country_name(address.get("country"), locale))
    return [str(line) for line in lines if line]


def interval_label(interval: str, count: int = 1) -> str:
    """``month`` → "month", (``month``, 3) → "3 months" (translated)."""
    if interval == "day":
        return ngettext("day", "%(num)d days", count) % {"num": count}
    if interval == "week":
        return ngettext("week", "%(num)d weeks", count) % {"num": count}
    if interval == "month":
        return ngettext("month", "%(num)d months", count) % {"num": count}
    if interval == "year":
        return ngettext("year", "%(num)d years", count) % {"num": count}
    return interval if count == 1 else f"{count} {interval}"


def price_per(price: str, interval: str, count: int = 1) -> str:
    """An already formatted price and its billing interval: "$10.00 / month", "10,00 € / 3 Monate"."""
    return gettext("%(price)s / %(interval)s") % {"price": price, "interval": interval_label(interval, count)}


def number(value: int | float) -> str:
    """A number with the active locale's grouping: 10,000 / 10.000 / 10 000."""
    return format_decimal(value, locale=current_locale())


STATUS_LABELS = {
    "paid": (_l("Paid"), "ok"),
    "refunded": (_l("Refunded"), "bad"),
    "partially_refunded": (_l("Partially refunded"), "warn"),
    "pending": (_l("Pending"), "warn"),
    "void": (_l("Void"), ""),
    "active": (_l("Active"), "ok"),
    "trialing": (_l("Trial"), "ok"),
    "past_due": (_l("Past due"), "bad"),
    "canceled": (_l("Canceled"), ""),
    "unpaid": (_l("Unpaid"), "bad"),
    "incomplete": (_l("Incomplete"), "warn"),
    "incomplete_expired": (_l("Expired"), ""),
    "granted": (_l("Active"), "ok"),
    "revoked": (_l("Revoked"), "bad"),
    "disabled": (_l("Disabled"), "bad"),
    # Outgoing webhook events (the console's Webhooks pages).
    "sending": (_l("Sending"), "warn"),
    "succeeded": (_l("Delivered"), "ok"),
    "failed": (_l("Failed"), "bad"),
    "skipped": (_l("Skipped"), ""),
    # A processor's incoming events (the console's Processors page).
    "applied": (_l("Applied"), "ok"),
    "ignored": (_l("Ignored"), ""),
    "unmapped": (_l("Not mapped"), "warn"),
}


def status_label(status: str) -> tuple[str, str]:
    label, tone = STATUS_LABELS.get(status, (status.replace("_", " ").capitalize(), ""))
    return str(label), tone


def status_badge(status: str) -> Markup:
    """``<span class="badge TONE">Label</span>`` for an order, subscription or key status (one call per row from
    the templates, cheaper than a Jinja macro; built once per status and catalog)."""
    return _status_badge(status, active_translations())


@lru_cache(maxsize=512)
def _status_badge(status: str, catalog: object) -> Markup:
    label, tone = status_label(status)
    return Markup('<span class="badge {}">{}</span>').format(tone, label)


def file_size(size: int) -> str:
    """A file size for people: "512 bytes", "1.5 MB" ("1,5 MB" in German)."""
    if size < 1024:
        return ngettext("%(num)s byte", "%(num)s bytes", size) % {"num": number(size)}
    value, unit = size / 1024, 0
    while value >= 1024 and unit < 2:
        value, unit = value / 1024, unit + 1
    amount = format_decimal(round(value, 1), format="#,##0.0", locale=current_locale())
    # French writes Ko/Mo/Go: the units are translated too.
    return (gettext("%(size)s KB"), gettext("%(size)s MB"), gettext("%(size)s GB"))[unit] % {"size": amount}


BENEFIT_TYPE_LABELS = {
    "custom": _l("Note"),
    "license_keys": _l("License key"),
    "downloadables": _l("Downloads"),
    "discord": _l("Discord"),
    "github_repository": _l("GitHub repository"),
    "meter_credit": _l("Usage credits"),
    "feature_flag": _l("Feature"),
}


def benefit_type_label(benefit_type: str) -> str:
    return str(BENEFIT_TYPE_LABELS.get(benefit_type, benefit_type))
