"""Signed-in portal pages as a cached layout shell around the page's own blocks.

Every signed-in page extends ``portal/_layout.html`` (itself extending ``base.html``): the document head, the
header with the seller's name and logo, the account box, the navigation, the footer and the language switcher.
Rendering that chrome through Jinja costs about as much as a page's own content (~0.1 ms, 40% of the rendering;
bench/README.md), and it is the same for every customer of a seller: only a few values differ.

So for each (page template, locale, organization, active tab, which optional parts show) the layout is rendered
*once*, with unique markers in place of the per-request values, and kept as a format string (the *shell*). A
request then renders only the page's ``title`` and ``page`` blocks (the page template compiled against a two-block
stand-in for the layout, so its imports and blocks run exactly as usual) and fills the shell's slots:

========== ==========================================================
``title``  the page's ``title`` block, as rendered
``page``   the page's ``page`` block, as rendered
``email``  the customer's email, escaped
``return_url`` / ``notice`` the return link and the notice, escaped (present or not is part of the key)
``csrf_input`` the CSRF form field (trusted markup, as the layout prints it)
``next``   where the language switcher sends the customer back to, escaped
========== ==========================================================

**It cannot silently differ from Jinja's own output.** The first time a shell is built, the page is also rendered
in full the ordinary way and the two are compared; if they differ (a customized layout that uses those values in
some other way than printing them), that template is rendered the ordinary way from then on and a warning is
logged. ``tests/test_layout_shell.py`` compares both for every signed-in page, with hostile values in every slot.
The key holds the whole (frozen) organization row, so a change to the seller's name, logo or colour is a new key;
templates never change while the process runs (``auto_reload`` is off).
"""

from __future__ import annotations

import logging
import secrets
from collections import OrderedDict
from typing import Any

from jinja2 import BaseLoader, Environment
from jinja2 import Template as JinjaTemplate

from portal import i18n
from portal.templating import escape_text, output_escape

LAYOUT = "portal/_layout.html"
SLOTS = ("title", "page", "email", "return_url", "notice", "csrf_input", "next")
MAX_SHELLS = 512

log = logging.getLogger("portal.layout_shell")

_TOKEN = secrets.token_hex(8)
MARKERS = {slot: f"\x00shell-{_TOKEN}-{slot}\x00" for slot in SLOTS}
_SEPARATOR = f"\x00shell-{_TOKEN}-separator\x00"
# The stand-in for the layout when only the page's blocks are wanted.
_PARTS_SOURCE = "{% block title %}{% endblock %}" + _SEPARATOR + "{% block page %}{% endblock %}"
_SHELL_SOURCE = (
    '{% extends "' + LAYOUT + '" %}{% block title %}' + MARKERS["title"] + "{% endblock %}"
    "{% block page %}" + MARKERS["page"] + "{% endblock %}"
)


class _PartsLoader(BaseLoader):
    """The environment's loader, except that the layout is the two-block stand-in."""

    def __init__(self, inner: BaseLoader) -> None:
        self.inner = inner

    def get_source(self, environment: Environment, template: str) -> tuple[str, str | None, Any]:
        if template == LAYOUT:
            return _PARTS_SOURCE, None, lambda: True
        return self.inner.get_source(environment, template)


class _ShellCustomer:
    """The customer as the shell sees it: only the email is printed, as a marker."""

    email = MARKERS["email"]


class _NoQuery:
    def multi_items(self) -> list[tuple[str, str]]:
        return []


class _ShellRequest:
    """The request as the language switcher sees it in a shell: a path that is a marker, no query."""

    scope = {"path": MARKERS["next"]}
    query_params = _NoQuery()


def _format_string(shell: str) -> str | None:
    """The rendered shell as a ``str.format_map`` string with one ``{slot}`` per marker, or None when the title or
    the page is not there exactly once (a layout this module does not understand)."""
    if shell.count(MARKERS["title"]) != 1 or shell.count(MARKERS["page"]) != 1 or "\x00" in _strip(shell):
        return None
    text = shell.replace("{", "{{").replace("}", "}}")
    for slot, marker in MARKERS.items():
        text = text.replace(marker, "{" + slot + "}")
    return text


def _strip(shell: str) -> str:
    for marker in MARKERS.values():
        shell = shell.replace(marker, "")
    return shell


class LayoutShells:
    """The shells of one template engine (one full and one parts environment per locale)."""

    def __init__(self, environment_for: Any) -> None:
        self._environment_for = environment_for  # locale -> the full (localized) environment
        self._parts: dict[str, Environment] = {}
        self._shells: OrderedDict[tuple[Any, ...], str] = OrderedDict()
        self._disabled: set[str] = set()

    def _parts_environment(self, locale: str) -> Environment:
        env = self._parts.get(locale)
        if env is None:
            full = self._environment_for(locale)
            env = full.overlay(loader=_PartsLoader(full.loader), cache_size=400)
            self._parts[locale] = env
        return env

    def render(self, template_name: str, context: dict[str, Any]) -> str:
        """The page ``template_name`` (which extends the layout) rendered with ``context``: the page's blocks plus
        its cached shell, or Jinja's full render when the shell is not (yet) known to give the same bytes."""
        locale = i18n.current_locale()
        full = self._environment_for(locale)
        if template_name in self._disabled:
            return full.get_template(template_name).render(context)
        key = (
            template_name,
            locale,
            context.get("organization"),
            context.get("active"),
            context.get("portal_root"),
            bool(context.get("return_url")),
            bool(context.get("notice")),
            bool(context.get("csrf_input")),
        )
        shell = self._shells.get(key)
        parts = self._parts_environment(locale).get_template(template_name).render(context)
        title, separator, page = parts.partition(_SEPARATOR)
        if not separator:  # not a page of the layout: nothing to fill
            self._disable(template_name, "it does not extend " + LAYOUT)
            return full.get_template(template_name).render(context)
        if shell is not None:
            self._shells.move_to_end(key)
            return shell.format_map(self._values(title, page, context))
        return self._build(key, full, template_name, context, title, page)

    def _values(self, title: str, page: str, context: dict[str, Any]) -> dict[str, str]:
        customer = context.get("customer")
        request = context.get("request")
        return {
            "title": title,
            "page": page,
            "email": escape_text(customer.email) if customer is not None else "",
            "return_url": output_escape(context.get("return_url")),
            "notice": output_escape(context.get("notice")),
            "csrf_input": context.get("csrf_input") or "",
            "next": escape_text(i18n.page_without_locale(request)) if request is not None else "",
        }

    def _build(
        self,
        key: tuple[Any, ...],
        full: Environment,
        template_name: str,
        context: dict[str, Any],
        title: str,
        page: str,
    ) -> str:
        expected = full.get_template(template_name).render(context)
        stand_ins = {
            **context,
            "customer": _ShellCustomer(),
            "request": _ShellRequest(),
            "return_url": MARKERS["return_url"] if context.get("return_url") else None,
            "notice": MARKERS["notice"] if context.get("notice") else None,
            "csrf_input": MARKERS["csrf_input"] if context.get("csrf_input") else "",
        }
        shell_template: JinjaTemplate = full.from_string(_SHELL_SOURCE)
        try:
            shell = _format_string(shell_template.render(stand_ins))
            filled = None if shell is None else shell.format_map(self._values(title, page, context))
        except Exception:  # a customized layout that does more with the stand-ins than print them
            log.exception("layout shell for %s could not be built", template_name)
            shell = filled = None
        if shell is None or filled != expected:
            self._disable(template_name, "the shell does not reproduce the page")
            return expected
        self._shells[key] = shell
        if len(self._shells) > MAX_SHELLS:
            self._shells.popitem(last=False)
        return expected

    def _disable(self, template_name: str, why: str) -> None:
        if template_name not in self._disabled:
            log.warning("rendering %s without a layout shell: %s", template_name, why)
            self._disabled.add(template_name)
