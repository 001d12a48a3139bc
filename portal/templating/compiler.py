"""How templates are compiled and instantiated: ``PortalCodeGenerator`` (Jinja's compiler with cheaper output and
attribute access) and ``PortalTemplate`` (cheaper imports and contexts).

Both override **private Jinja APIs** (``CodeGenerator._output_child_pre/_post``, ``visit_Getattr``,
``Template._get_default_module``, ``Template.new_context``'s use of ``jinja2.runtime.new_context``): ``jinja2`` is
pinned to the 3.1 series in ``pyproject.toml`` for them, and ``tests/test_render_paths.py`` compares their output with
stock Jinja's on every page, so a Jinja upgrade that changes those internals fails there first. The gain of each is in
the speed mechanisms table of ``bench/README.md``.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping
from typing import Any

from jinja2 import Template as JinjaTemplate
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.environment import TemplateModule
from jinja2.nodes import Expr, Getattr, Template
from jinja2.runtime import Context, new_context


class PortalCodeGenerator(CodeGenerator):
    """Jinja's compiler, writing the two most frequent operations of a page without a Python-level call each (a
    page has 150-300 of them; each call costs more than the work it does):

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
        self.writeline("from portal.templating.escaping import escape_text, output_escape")
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
    self.globals.keys()``: a Python-level set difference over a ``ChainMap``, measurable with four imports per
    page (bench/README.md, speed mechanisms). Here it is a C-level subset test against a frozen copy of the names; when
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
        globals on every render, a Python-level walk of ~20 names per page. The flat copy is made again
        whenever a layer of the chain gains or loses a name; a global is never re-assigned after startup."""
        chain = self.globals
        if not isinstance(chain, ChainMap):
            return super().new_context(vars, shared, locals)
        sizes = tuple(len(layer) for layer in chain.maps)
        flat = self._flat_globals
        if flat is None or flat[0] != sizes:
            flat = self._flat_globals = (sizes, dict(chain))
        return new_context(self.environment, self.name, self.blocks, vars, shared, flat[1], locals)
