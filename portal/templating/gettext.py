"""``PrecompiledGettext``: ``_("literal")`` translated once, when a template is compiled for a locale.

A page then pays no gettext call, ``Markup`` and ``%`` per message on every render. The output is the same as the
runtime newstyle gettext's: the translation is trusted markup, keyword values are escaped. ``{% trans %}`` blocks
and ``ngettext``/``pgettext`` stay runtime calls. Works on Jinja's token stream (public extension API).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from jinja2.ext import Extension
from jinja2.lexer import Token, TokenStream

from portal import i18n


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
