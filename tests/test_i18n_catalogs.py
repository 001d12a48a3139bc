"""The message catalogs: extracted fresh from the sources (Babel, ``babel.cfg``), every string has a non-fuzzy
translation in German, French and Spanish, with the same placeholders and markup as the English."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from portal import i18n
from portal.i18n_catalogs import TRANSLATED_LOCALES, extract, main

PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")
TAG = re.compile(r"</?([a-z]+)[^>]*>")


@pytest.fixture(scope="module")
def extracted() -> Catalog:
    return extract()


def _catalog(locale: str) -> Catalog:
    with i18n.catalog_path(locale).open("rb") as handle:
        return read_po(handle, locale=locale)


def _ids(message) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
    return tuple(message.id) if isinstance(message.id, (list, tuple)) else (message.id,)


def _strings(message) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
    return tuple(message.string) if isinstance(message.string, (list, tuple)) else (message.string,)


def test_sources_have_strings_from_templates_and_python(extracted: Catalog) -> None:
    files = {filename for message in extracted for filename, _ in message.locations}
    assert any(f.startswith("templates/portal/") for f in files)
    assert any(f.startswith("templates/_partials/") for f in files)  # Babel skips "_" directories by default
    assert any(f.startswith("templates/emails/") and f.endswith(".txt") for f in files)
    assert any(f.startswith("templates/receipts/") for f in files)
    assert any(f.startswith("templates/errors/") for f in files)
    assert {"portal/portal_pages/layout.py", "portal/customers/billing.py", "portal/sessions/pages.py"} <= files
    assert len(extracted) > 250


@pytest.mark.parametrize("locale", TRANSLATED_LOCALES)
def test_every_string_is_translated(extracted: Catalog, locale: str) -> None:
    catalog = _catalog(locale)
    problems = []
    for message in extracted:
        if not message.id:
            continue
        translated = catalog.get(message.id, context=message.context)
        if translated is None:
            problems.append(f"missing (run `python -m portal.i18n_catalogs`): {message.id!r}")
        elif translated.fuzzy:
            problems.append(f"fuzzy: {message.id!r}")
        elif not all(s.strip() for s in _strings(translated)):
            problems.append(f"untranslated: {message.id!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("locale", TRANSLATED_LOCALES)
def test_translations_keep_placeholders_and_markup(locale: str) -> None:
    problems = []
    for message in _catalog(locale):
        if not message.id:
            continue
        wanted = set().union(*(PLACEHOLDER.findall(text) for text in _ids(message)))
        tags = Counter(TAG.findall(_ids(message)[0]))
        for text in _strings(message):
            found = set(PLACEHOLDER.findall(text))
            # A singular may leave out the count ("month" for 1); nothing else may be dropped or invented.
            if not found <= wanted or (wanted - found) - {"num"}:
                problems.append(f"{message.id!r}: placeholders {sorted(found)} vs {sorted(wanted)}")
            if Counter(TAG.findall(text)) != tags:
                problems.append(f"{message.id!r}: markup differs: {text!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("locale", TRANSLATED_LOCALES)
def test_catalog_compiles_and_translates(locale: str) -> None:
    i18n.translations_for.cache_clear()
    with i18n.use_locale(locale):
        assert i18n.gettext("Orders") != "Orders"
        assert "%(num)d" in i18n.ngettext("month", "%(num)d months", 3)


def test_catalogs_are_up_to_date_with_the_sources() -> None:
    # Nothing obsolete, nothing missing: `python -m portal.i18n_catalogs` would not change a file.
    assert main(["--check"]) == 0


def test_catalogs_ship_inside_the_package() -> None:
    # pyproject builds the wheel from the `portal` package: the .po files must live in it (no .mo needed).
    assert i18n.LOCALE_DIR.parent.name == "portal"
    for locale in TRANSLATED_LOCALES:
        assert i18n.catalog_path(locale).is_file()
