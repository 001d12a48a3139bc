"""Signed-in portal pages as a cached layout shell around the page's own blocks.

Every signed-in page extends ``portal/_layout.html`` (itself extending ``base.html``): the document head, the
header with the seller's name and logo, the account box, the navigation, the footer and the language switcher.
Rendering that chrome through Jinja costs about as much as a page's own content, and it is the same for every
customer of a seller: only a few values differ.

So for each (page template, locale, seller-level values, which optional parts show) the layout is rendered *once*,
with unique markers in place of the per-request values, and kept as a format string (the *shell*). A request then
renders only the page's ``title`` and ``page`` blocks (the page template compiled against a two-block stand-in for
the layout, so its imports and blocks run exactly as usual) and fills the shell's slots:

================ ==========================================================
``title``        the page's ``title`` block, as rendered
``page``         the page's ``page`` block, as rendered
``email``        the customer's email, escaped
``return_url``   the return link, escaped (present or not is part of the key)
``notice``       the notice, escaped (present or not is part of the key)
``csrf_input``   the CSRF form field (trusted markup, as the layout prints it)
``next``         where the language switcher sends the customer back to, escaped
================ ==========================================================

**Safe by construction: a shell is a function of its key alone.** It is built from an explicit allow-list of
seller-level values (``SELLER_LEVEL``: the organization row, the locale, the portal root, the navigation and the
active tab), which are also the key, plus stand-ins for the slots. Nothing else of the request is there when a shell
is built, so a layout that prints anything per customer cannot end up in a shell that other customers get:

* a layout (or a template it extends, includes or imports) that names any other context variable, even only in an
  ``is defined`` test, is never shelled (checked on its source, once per template);
* the customer and request stand-ins answer only the slots' attributes (``customer.email``, the request's path):
  any other attribute raises while the shell is built, and the page falls back to plain Jinja;
* a page template that overrides a layout block other than ``title`` and ``page`` is never shelled.

The first build is also compared with Jinja's full render of the same request (a check of the slots' escaping); a
difference falls back too. Every fallback is permanent for that template and logged once as a warning.
``tests/test_layout_shell.py`` compares both paths for every signed-in page, with hostile values in every slot, and
shows that a layout printing a per-customer value gives each customer their own. Templates never change while the
process runs (``auto_reload`` is off).
"""

from __future__ import annotations

import logging
import secrets
from collections import OrderedDict
from typing import Any

from jinja2 import BaseLoader, Environment, meta, nodes
from jinja2 import Template as JinjaTemplate

from portal import i18n
from portal.templating.escaping import escape_text, output_escape

LAYOUT = "portal/_layout.html"
SLOTS = ("title", "page", "email", "return_url", "notice", "csrf_input", "next")
# The context values a shell is built from, and its key: the same for every customer of a seller (``page_context``
# in ``portal/portal_pages/layout.py`` makes them from the seller, the locale and the tab alone). Nothing else of a
# request's context is there when a shell is built.
SELLER_LEVEL = ("organization", "locale", "portal_root", "nav", "active", "ui")
# The context names the slots stand for; their stand-ins answer only what the slot needs.
SLOT_NAMES = ("customer", "request", "return_url", "notice", "csrf_input")
# Blocks a page may fill inside a shell; a page that overrides any other block of the layout is not shelled.
PAGE_BLOCKS = frozenset({"title", "page"})
MAX_SHELLS = 512

log = logging.getLogger("portal.templating.layout_shell")

_TOKEN = secrets.token_hex(8)
MARKERS = {slot: f"\x00shell-{_TOKEN}-{slot}\x00" for slot in SLOTS}
_SEPARATOR = f"\x00shell-{_TOKEN}-separator\x00"
# The stand-in for the layout when only the page's blocks are wanted.
_PARTS_SOURCE = "{% block title %}{% endblock %}" + _SEPARATOR + "{% block page %}{% endblock %}"
_SHELL_SOURCE = (
    '{% extends "' + LAYOUT + '" %}{% block title %}' + MARKERS["title"] + "{% endblock %}"
    "{% block page %}" + MARKERS["page"] + "{% endblock %}"
)


class Unshellable(Exception):
    """This page cannot be rendered through a shell; the reason says why (it is logged once)."""


class _PartsLoader(BaseLoader):
    """The environment's loader, except that the layout is the two-block stand-in."""

    def __init__(self, inner: BaseLoader) -> None:
        self.inner = inner

    def get_source(self, environment: Environment, template: str) -> tuple[str, str | None, Any]:
        if template == LAYOUT:
            return _PARTS_SOURCE, None, lambda: True
        return self.inner.get_source(environment, template)


class _SlotStandIn:
    """A stand-in that answers only the attributes its slot needs; any other use while a shell is built raises
    (not ``AttributeError``, which Jinja would turn into an empty ``Undefined``), so the page falls back."""

    _slot = ""

    def __getattr__(self, name: str) -> Any:
        raise Unshellable(f"the layout reads {self._slot}.{name}, which is not a slot")

    def __getitem__(self, name: object) -> Any:
        raise Unshellable(f"the layout reads {self._slot}[{name!r}], which is not a slot")

    def __iter__(self) -> Any:
        raise Unshellable(f"the layout iterates over {self._slot}")

    def __str__(self) -> str:
        raise Unshellable(f"the layout prints {self._slot} itself")

    __html__ = __str__


class _ShellCustomer(_SlotStandIn):
    """The customer as the shell sees it: only the email, printed as a marker."""

    _slot = "customer"
    email = MARKERS["email"]


class _NoQuery:
    def multi_items(self) -> list[tuple[str, str]]:
        return []


class _ShellRequest(_SlotStandIn):
    """The request as the language switcher sees it in a shell: a path that is a marker, no query."""

    _slot = "request"
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


def _frozen(value: Any) -> Any:
    """``value`` as part of a dict key: lists and tuples element by element; anything unhashable is refused."""
    if isinstance(value, list | tuple):
        return tuple(_frozen(item) for item in value)
    try:
        hash(value)
    except TypeError:
        raise Unshellable(f"a seller-level value is not hashable: {type(value).__name__}") from None
    return value


def _layout_chain(env: Environment) -> tuple[set[str], set[str]]:
    """The context names the layout and every template it extends, includes or imports refer to (``is defined``
    tests included), and the blocks they define. A template named by an expression cannot be followed: refused."""
    names: set[str] = set()
    blocks: set[str] = set()
    seen: set[str] = set()
    pending = [LAYOUT]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        if env.loader is None:
            raise Unshellable("the environment has no loader")
        ast = env.parse(env.loader.get_source(env, name)[0])
        names |= meta.find_undeclared_variables(ast)
        blocks |= {block.name for block in ast.find_all(nodes.Block)}
        for referenced in meta.find_referenced_templates(ast):
            if referenced is None:
                raise Unshellable(f"{name} includes or imports a template named by an expression")
            pending.append(referenced)
    return names, blocks


def parts_overlay(full: Environment) -> Environment:
    """``full`` with the layout replaced by the two-block stand-in: a page compiled here renders its blocks only."""
    if full.loader is None:
        raise ValueError("layout shells need an environment that loads templates")
    return full.overlay(loader=_PartsLoader(full.loader), cache_size=400)


class LayoutShells:
    """The shells of one template engine (one full and one parts environment per locale)."""

    def __init__(self, environment_for: Any, parts_for: Any = None) -> None:
        self._environment_for = environment_for  # locale -> the full (localized) environment
        self._parts_for = parts_for  # locale -> its parts overlay, when shared (else made here, per locale)
        self._parts: dict[str, Environment] = {}
        self._shells: OrderedDict[tuple[Any, ...], str] = OrderedDict()
        self._disabled: set[str] = set()
        self._checked: set[tuple[str, str]] = set()  # (locale, template) whose templates passed the static check

    def _parts_environment(self, locale: str) -> Environment:
        if self._parts_for is not None:
            return self._parts_for(locale)
        env = self._parts.get(locale)
        if env is None:
            env = parts_overlay(self._environment_for(locale))
            self._parts[locale] = env
        return env

    def render(self, template_name: str, context: dict[str, Any]) -> str:
        """The page ``template_name`` (which extends the layout) rendered with ``context``: the page's blocks plus
        its cached shell, or Jinja's full render when the page cannot be shelled."""
        locale = i18n.current_locale()
        full = self._environment_for(locale)
        if template_name in self._disabled:
            return full.get_template(template_name).render(context)
        try:
            key = (
                template_name,
                locale,
                tuple(_frozen(context.get(name)) for name in SELLER_LEVEL),
                bool(context.get("return_url")),
                bool(context.get("notice")),
                bool(context.get("csrf_input")),
            )
        except Unshellable as why:
            self._disable(template_name, str(why))
            return full.get_template(template_name).render(context)
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

    def _check(self, full: Environment, locale: str, template_name: str) -> None:
        """Refuses a page whose layout refers to anything but seller-level values, slots and globals, or which
        overrides a layout block other than its own two."""
        if (locale, template_name) in self._checked:
            return
        names, layout_blocks = _layout_chain(full)
        unlisted = names - set(SELLER_LEVEL) - set(SLOT_NAMES) - set(full.globals)
        if unlisted:
            raise Unshellable("the layout uses values that are not seller-level: " + ", ".join(sorted(unlisted)))
        overridden = (set(full.get_template(template_name).blocks) & layout_blocks) - PAGE_BLOCKS
        if overridden:
            raise Unshellable("the page overrides layout blocks: " + ", ".join(sorted(overridden)))
        self._checked.add((locale, template_name))

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
        stand_ins = {name: context[name] for name in SELLER_LEVEL if name in context}
        stand_ins.update(
            customer=_ShellCustomer(),
            request=_ShellRequest(),
            return_url=MARKERS["return_url"] if context.get("return_url") else None,
            notice=MARKERS["notice"] if context.get("notice") else None,
            csrf_input=MARKERS["csrf_input"] if context.get("csrf_input") else "",
        )
        try:
            self._check(full, key[1], template_name)
            shell_template: JinjaTemplate = full.from_string(_SHELL_SOURCE)
            shell = _format_string(shell_template.render(stand_ins))
            filled = None if shell is None else shell.format_map(self._values(title, page, context))
        except Unshellable as why:
            self._disable(template_name, str(why))
            return expected
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
