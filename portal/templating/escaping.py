"""Escaping for template output as plain ``str`` (not one ``Markup`` object per expression).

Compiled templates (``compiler.PortalCodeGenerator``) and the layout shell (``layout_shell``) both use these, so
they give exactly the bytes ``markupsafe.escape`` gives. Leans on MarkupSafe's private ``_escape_inner`` (the C
escaper ``escape`` wraps), pinned in ``pyproject.toml``; other versions fall back to the public ``escape``.
"""

from __future__ import annotations

from markupsafe import escape

try:  # MarkupSafe's C escaper, the one escape() wraps in a Markup (private API: markupsafe pinned to 3.0.x)
    from markupsafe import _escape_inner  # type: ignore[attr-defined]  # private: not in markupsafe's exports
except ImportError:  # pragma: no cover - other MarkupSafe versions: the same text, one step slower

    def _escape_inner(value: str, /) -> str:
        return str.__str__(escape(value))


def output_escape(value: object) -> str:
    """What ``markupsafe.escape`` returns, as a plain ``str``: for text a template writes out (``{{ … }}``), where
    the result is only ever joined into the page or a macro's buffer (which Jinja itself wraps in ``Markup``). Saves
    creating a ``Markup`` object (a Python-level ``__new__``) per expression (see the speed mechanisms table in
    bench/README.md)."""
    if type(value) is str:
        return _escape_inner(value)
    html = getattr(value, "__html__", None)
    if html is not None:
        return str.__str__(html())
    return _escape_inner(str(value))


escape_text = _escape_inner  # the name compiled templates use for the ``str`` case of ``output_escape``
