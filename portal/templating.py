"""The Jinja2 environment: templates directory, autoescape on, the filters pages use (money, dates) and gettext.

Translation (``jinja2.ext.i18n``, newstyle so ``_()`` and ``{% trans %}`` escape their variables) follows the
request's locale through ``portal.i18n``'s context variable. The ``money``/``date``/``datetime`` filters take an
optional locale; without one they use the template's ``locale`` variable, else the active locale.

The app's pages go through ``LocalizedJinjaEngine``: one compiled copy of each template per locale, in which every
``_("literal")`` (with or without keyword arguments) is translated once, at compile time (``PrecompiledGettext``),
so a page does not pay a gettext call, a ``Markup`` and a ``%`` per message on every render (bench/README.md). The
output is the same as the runtime newstyle gettext's: the translation is trusted markup, keyword values are
escaped. ``{% trans %}`` blocks and ``ngettext``/``pgettext`` stay runtime calls.

Templates are ``PortalTemplate``s, which make ``{% from … import %}`` cheap, compiled by ``PortalCodeGenerator``,
which escapes ``{{ … }}`` output to plain strings instead of ``Markup`` objects (see their docstrings)."""

from __future__ import annotations

import re
from collections import ChainMap
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from babel.dates import format_date, format_datetime
from jinja2 import Environment, FileSystemLoader, TemplateNotFound, pass_context, select_autoescape
from jinja2 import Template as JinjaTemplate
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.environment import TemplateModule
from jinja2.ext import Extension
from jinja2.lexer import Token, TokenStream
from jinja2.nodes import Expr, Getattr, Template
from jinja2.runtime import Context, new_context
from litestar.exceptions import TemplateNotFoundException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig
from markupsafe import escape

from portal import i18n
from portal.clock import parse_iso
from portal.money import format_money
from portal.resources import templates_dir


def _as_datetime(value: str | datetime | None) -> datetime | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, datetime) else parse_iso(value)


# ISO-8601 text whose first ten characters are the calendar date (in the text's own offset, which is the date
# Babel formats): those are formatted once per (day, locale, format), not once per row (~20 µs each).
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
    return money_filter(amount, currency, locale or context.get("locale") or i18n.current_locale())


@pass_context
def _date(context: Context, value: str | datetime | None, locale: str | None = None, fmt: str = "medium") -> str:
    return date_filter(value, locale or context.get("locale") or i18n.current_locale(), fmt)


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


try:  # MarkupSafe's C escaper, the one escape() wraps in a Markup
    from markupsafe import _escape_inner
except ImportError:  # pragma: no cover - other MarkupSafe versions: the same text, one step slower

    def _escape_inner(value: str) -> str:
        return str.__str__(escape(value))


def output_escape(value: object) -> str:
    """What ``markupsafe.escape`` returns, as a plain ``str``: for text a template writes out (``{{ … }}``), where
    the result is only ever joined into the page or a macro's buffer (which Jinja itself wraps in ``Markup``). Saves
    creating a ``Markup`` object (a Python-level ``__new__``) per expression: 100-200 per page (bench/README.md)."""
    if type(value) is str:
        return _escape_inner(value)
    html = getattr(value, "__html__", None)
    if html is not None:
        return str.__str__(html())
    return _escape_inner(str(value))


escape_text = _escape_inner  # the name compiled templates use for the ``str`` case of ``output_escape``


class PortalCodeGenerator(CodeGenerator):
    """Jinja's compiler, writing the two most frequent operations of a page without a Python-level call each (a
    page has 150-300 of them; each call costs more than the work it does, bench/README.md):

    * autoescaped output ``{{ x }}``, compiled by Jinja to ``escape(x)`` (a ``Markup`` per expression), becomes
      ``(escape_text(_o) if type(_o := (x)) is str else output_escape(_o))``: MarkupSafe's C escaper straight on
      text, ``output_escape`` for anything else (numbers, ``Markup``, objects with ``__html__``);
    * attribute access ``x.name``, compiled to ``environment.getattr(x, 'name')``, becomes
      ``(_g if (_g := getattr((_b := x), 'name', missing)) is not missing else environment.getattr(_b, 'name'))``:
      the builtin ``getattr`` first, Jinja's own lookup (item access, then ``Undefined``) only when the object has
      no such attribute, as Jinja's does.

    Both give exactly what Jinja gives (``tests/test_render_paths.py``). The walrus names are locals of each
    generated function and are read only right after being bound, so nesting (``a.b.c``) is safe."""

    def visit_Template(self, node: Template, frame: Frame | None = None) -> None:
        self.writeline("from portal.templating import escape_text, output_escape")
        super().visit_Template(node, frame)

    def _fast_output(self, frame: Frame) -> bool:
        return bool(frame.eval_ctx.autoescape) and not frame.eval_ctx.volatile

    def _output_child_pre(self, node: Expr, frame: Frame, finalize: Any) -> None:
        if not self._fast_output(frame):
            super()._output_child_pre(node, frame, finalize)
            return
        self.write("(escape_text(_o) if type(_o := (")
        if finalize.src is not None:
            self.write(finalize.src)

    def _output_child_post(self, node: Expr, frame: Frame, finalize: Any) -> None:
        if not self._fast_output(frame):
            super()._output_child_post(node, frame, finalize)
            return
        if finalize.src is not None:
            self.write(")")
        self.write(")) is str else output_escape(_o))")

    @optimizeconst
    def visit_Getattr(self, node: Getattr, frame: Frame) -> None:
        if self.environment.is_async or self.environment.sandboxed:
            CodeGenerator.visit_Getattr(self, node, frame)
            return
        self.write("(_g if (_g := getattr((_b := ")
        self.visit(node.node, frame)
        self.write(f"), {node.attr!r}, missing)) is not missing else environment.getattr(_b, {node.attr!r}))")


class PortalTemplate(JinjaTemplate):
    """A Jinja template that remembers the names of its globals. On every ``{% from … import %}`` Jinja checks
    whether the importing page has globals the imported template lacks, as ``ctx.globals_keys -
    self.globals.keys()``: a Python-level set difference over a ``ChainMap``, about 15 µs per import and four
    imports per page (bench/README.md). Here it is a C-level subset test against a frozen copy of the names; when
    that fails (a global was added later) Jinja's own check runs, so the result is the same. Globals are only ever
    added, at startup, never removed."""

    _global_names: frozenset[str] | None = None
    _flat_globals: tuple[tuple[int, ...], dict[str, Any]] | None = None

    def _get_default_module(self, ctx: Context | None = None) -> TemplateModule:
        if ctx is not None:
            names = self._global_names
            if names is None:
                names = self._global_names = frozenset(self.globals)
            if not ctx.globals_keys <= names:
                return super()._get_default_module(ctx)
        return super()._get_default_module(None)

    def new_context(
        self, vars: dict[str, Any] | None = None, shared: bool = False, locals: Mapping[str, Any] | None = None
    ) -> Context:
        """Jinja's, with the globals as a plain dict: Jinja copies its ``ChainMap`` of template and environment
        globals on every render, a Python-level walk of ~20 names (~12 µs a page). The flat copy is made again
        whenever a layer of the chain gains or loses a name; a global is never re-assigned after startup."""
        chain = self.globals
        if not isinstance(chain, ChainMap):
            return super().new_context(vars, shared, locals)
        sizes = tuple(len(layer) for layer in chain.maps)
        flat = self._flat_globals
        if flat is None or flat[0] != sizes:
            flat = self._flat_globals = (sizes, dict(chain))
        return new_context(self.environment, self.name, self.blocks, vars, shared, flat[1], locals)


def build_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(templates_dir()),
        autoescape=select_autoescape(enabled_extensions=("html", "htm", "xml"), default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.template_class = PortalTemplate
    env.code_generator_class = PortalCodeGenerator
    from portal.portal_pages import text  # here, not at import time: portal_pages imports this module's users

    # Display helpers as a global, so imported macros need no context and Jinja caches their modules.
    env.globals["ui"] = text
    # A filter as well: Jinja calls filters directly, but ``ui.status_badge(…)`` through ``Context.call``.
    env.filters["status_badge"] = text.status_badge
    return install_i18n(env)


class PrecompiledGettext(Extension):
    """Rewrites ``_("text")`` to the constant ``("translated"|safe)`` and ``_("text", k=v, ...)`` to
    ``("translated"|safe) % dict(k=v, ...)`` in the token stream, for the locale of the environment it is bound to
    (``environment.compiled_locale``); Jinja then folds the constants into the template's static text. Only in
    autoescaped templates, where this is exactly what the newstyle ``gettext`` returns at runtime."""

    def filter_stream(self, stream: TokenStream) -> Iterable[Token]:
        locale = getattr(self.environment, "compiled_locale", None)
        autoescape = self.environment.autoescape
        escaped = autoescape(stream.name) if callable(autoescape) else autoescape
        if locale is None or not escaped:
            return stream
        return _precompiled(list(stream), locale)


def _precompiled(tokens: list[Token], locale: str) -> Iterator[Token]:
    translations = i18n.translations_for(locale)
    i, end = 0, len(tokens)
    while i < end:
        token = tokens[i]
        is_call = (
            token.type == "name"
            and token.value == "_"
            and i + 3 < end
            and tokens[i + 1].type == "lparen"
            and tokens[i + 2].type == "string"
            and (i == 0 or tokens[i - 1].type != "dot")
        )
        if is_call:
            line, after = token.lineno, tokens[i + 3]
            translated = translations.gettext(tokens[i + 2].value)
            if after.type == "rparen":
                yield from _safe_string(line, translated % {})
                i += 4
                continue
            keywords = after.type == "comma" and i + 5 < end and tokens[i + 4].type == "name"
            if keywords and tokens[i + 5].type == "assign":
                # The keyword arguments and the closing parenthesis stay as they are: ``dict(k=v, ...)``.
                yield from _safe_string(line, translated)
                yield Token(line, "mod", "%")
                yield Token(line, "name", "dict")
                yield Token(line, "lparen", "(")
                i += 4
                continue
        yield token
        i += 1


def _safe_string(line: int, value: str) -> Iterator[Token]:
    yield Token(line, "lparen", "(")
    yield Token(line, "string", value)
    yield Token(line, "pipe", "|")
    yield Token(line, "name", "safe")
    yield Token(line, "rparen", ")")


class LocalizedJinjaEngine(JinjaTemplateEngine):
    """Litestar's Jinja engine, picking the compiled copy of a template for the active locale
    (``portal.i18n.current_locale()`` when the page is rendered). Each locale has an overlay of the one environment
    (same loader, globals and filters; its own template cache) with ``PrecompiledGettext``."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(engine_instance=environment)
        self._localized: dict[str, Environment] = {}
        self.layout_shells: Any = None  # portal.layout_shell.LayoutShells, set by template_config()

    def environment_for(self, locale: str) -> Environment:
        env = self._localized.get(locale)
        if env is None:
            env = self.engine.overlay(extensions=[PrecompiledGettext], cache_size=400)
            env.compiled_locale = locale  # type: ignore[attr-defined]
            self._localized[locale] = env
        return env

    def get_template(self, template_name: str) -> JinjaTemplate:
        try:
            return self.environment_for(i18n.current_locale()).get_template(template_name)
        except TemplateNotFound as exc:
            raise TemplateNotFoundException(template_name=template_name) from exc


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    from portal.layout_shell import LayoutShells  # it builds on this module's escapes

    engine = LocalizedJinjaEngine(build_environment())
    engine.layout_shells = LayoutShells(engine.environment_for)
    return TemplateConfig(instance=engine)
