"""Update the message catalogs from the sources: ``python -m portal.i18n_catalogs`` (in a source checkout).

It extracts every translatable string (``babel.cfg``: Python under ``portal/``, Jinja templates under
``templates/``), writes the template ``portal/locale/messages.pot`` and merges it into each
``portal/locale/<lang>/LC_MESSAGES/messages.po``: new strings arrive untranslated (or fuzzy, when Babel finds a
similar old one), removed ones are dropped. Translate the empty and fuzzy entries (remove the ``fuzzy`` flag once
checked), then run the tests: ``tests/test_i18n_catalogs.py`` fails while any string lacks a translation.

The pybabel equivalent::

    pybabel extract -F babel.cfg -k lazy_gettext -k _l -k noop --ignore-dirs=".* node_modules" \
        -o portal/locale/messages.pot .
    pybabel update -i portal/locale/messages.pot -d portal/locale --ignore-obsolete

``--check`` only reports (exit status 1) when a catalog lacks a string of the sources or keeps one they dropped.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

from portal.i18n import DEFAULT_LOCALE, DOMAIN, LOCALE_DIR, SUPPORTED_LOCALES, catalog_path

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "pgettext": ((1, "c"), 2),
    "npgettext": ((1, "c"), 2, 3),
    "lazy_gettext": None,
    "_l": None,
    "noop": None,
}
# Babel skips directories starting with "_" by default: templates/_partials must be searched too.
SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "tests", "bench", "portal-data", "test-artifacts"})
TRANSLATED_LOCALES = tuple(locale for locale in SUPPORTED_LOCALES if locale != DEFAULT_LOCALE)


def _searched(dirpath: str) -> bool:
    name = Path(dirpath).name
    return not name.startswith(".") and name not in SKIPPED_DIRS


def extract(root: Path = ROOT) -> Catalog:
    """Every translatable string of the sources, as a catalog template (with source locations)."""
    with (root / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    template = Catalog(project="Portal", domain=DOMAIN, charset="utf-8", fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
        root,
        method_map,
        options_map,
        keywords=KEYWORDS,
        strip_comment_tags=True,
        directory_filter=_searched,
    ):
        template.add(message, locations=[(filename, lineno)], auto_comments=comments, context=context)
    return template


def _po_bytes(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    # File names without line numbers: edits elsewhere in a template do not churn every catalog.
    write_po(
        buffer, catalog, width=120, ignore_obsolete=True, include_previous=True, sort_output=True, include_lineno=False
    )
    return buffer.getvalue()


def _without_dates(data: bytes) -> bytes:
    skip = (b'"POT-Creation-Date', b'"PO-Revision')
    return b"\n".join(line for line in data.splitlines() if not line.startswith(skip))


def message_ids(catalog: Catalog) -> set[tuple[str | None, tuple[str, ...]]]:
    """(context, ids) of every message: what "up to date" is about (source locations may move freely)."""
    return {
        (message.context, tuple(message.id) if isinstance(message.id, (list, tuple)) else (message.id,))
        for message in catalog
        if message.id
    }


def stale_catalogs(template: Catalog) -> list[Path]:
    """The ``.po`` files whose messages differ from the sources' (missing or obsolete strings)."""
    wanted = message_ids(template)
    stale = []
    for locale in TRANSLATED_LOCALES:
        path = catalog_path(locale)
        if not path.is_file():
            stale.append(path)
            continue
        with path.open("rb") as handle:
            if message_ids(read_po(handle, locale=locale, domain=DOMAIN)) != wanted:
                stale.append(path)
    return stale


def updated(template: Catalog, locale: str) -> bytes:
    """The ``.po`` of ``locale`` merged with ``template``."""
    path = catalog_path(locale)
    if path.is_file():
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=locale, domain=DOMAIN)
    else:
        catalog = Catalog(locale=locale, domain=DOMAIN, project="Portal", charset="utf-8", fuzzy=False)
    catalog.update(template, update_creation_date=False)
    return _po_bytes(catalog)


def main(argv: list[str] | None = None) -> int:
    check = "--check" in (argv if argv is not None else sys.argv[1:])
    template = extract()
    outputs = {LOCALE_DIR / f"{DOMAIN}.pot": _po_bytes(template)}
    for locale in TRANSLATED_LOCALES:
        outputs[catalog_path(locale)] = updated(template, locale)
    stale = [
        path
        for path, data in outputs.items()
        if not path.is_file() or _without_dates(path.read_bytes()) != _without_dates(data)
    ]
    if check:
        # Only the messages count here: locations move with every edit of a template.
        stale = stale_catalogs(template)
        for path in stale:
            print(f"out of date: {path.relative_to(ROOT)}")
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(outputs[path])
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
