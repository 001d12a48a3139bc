"""The page environment and Litestar's engine around it.

``build_environment()`` is the one Jinja environment (templates directory, autoescape on, ``PortalTemplate`` compiled
by ``PortalCodeGenerator``, the ``ui`` helpers, locale-aware filters and gettext). ``LocalizedEnvironments`` keeps one
overlay of it per locale with ``PrecompiledGettext`` (and the layout shells' parts overlay of each);
``LocalizedJinjaEngine`` picks the one of the active locale when a page renders; ``template_config()`` wires the
engine and its ``LayoutShells`` into the app.

The environment depends on the templates directory alone (no setting, no seller), and templates never change while
the process runs (``auto_reload`` off), so every app of a process renders through one ``LocalizedEnvironments``
(``shared_environments()``) and each template is compiled once per process and locale. A process serves one app; the
test suite builds hundreds, which would otherwise compile the same templates again for each.
"""

from __future__ import annotations

import functools

from jinja2 import Environment, FileSystemLoader, TemplateNotFound, select_autoescape
from jinja2 import Template as JinjaTemplate
from litestar.exceptions import TemplateNotFoundException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from portal import i18n
from portal.resources import templates_dir
from portal.templating.accent import accent_style, light_accent
from portal.templating.compiler import PortalCodeGenerator, PortalTemplate
from portal.templating.filters import install_i18n
from portal.templating.gettext import PrecompiledGettext
from portal.templating.layout_shell import LayoutShells, parts_overlay


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
    from portal.portal_pages import text  # here, not at import time: portal_pages imports this package's users

    # Display helpers as a global, so imported macros need no context and Jinja caches their modules.
    env.globals["ui"] = text
    # A filter as well: Jinja calls filters directly, but ``ui.status_badge(…)`` through ``Context.call``.
    env.filters["status_badge"] = text.status_badge
    # The seller's accent for both colour schemes, contrast-checked (portal/templating/accent.py).
    env.filters["accent_style"] = accent_style
    env.filters["accent_light"] = light_accent
    return install_i18n(env)


class LocalizedEnvironments:
    """An environment and its overlays, made on first use: per locale one with ``PrecompiledGettext`` (same loader,
    globals and filters; its own template cache), and the layout shells' parts overlay of that one."""

    def __init__(self, base: Environment) -> None:
        self.base = base
        self._localized: dict[str, Environment] = {}
        self._parts: dict[str, Environment] = {}

    def full(self, locale: str) -> Environment:
        env = self._localized.get(locale)
        if env is None:
            env = self.base.overlay(extensions=[PrecompiledGettext], cache_size=400)
            env.compiled_locale = locale  # type: ignore[attr-defined]
            # Two threads may both make one; either is whole, and the dict keeps the last.
            self._localized[locale] = env
        return env

    def parts(self, locale: str) -> Environment:
        env = self._parts.get(locale)
        if env is None:
            env = parts_overlay(self.full(locale))
            self._parts[locale] = env
        return env


@functools.cache
def shared_environments() -> LocalizedEnvironments:
    """This process's environments, shared by every app it builds (see the module docstring)."""
    return LocalizedEnvironments(build_environment())


class LocalizedJinjaEngine(JinjaTemplateEngine):
    """Litestar's Jinja engine, picking the compiled copy of a template for the active locale
    (``portal.i18n.current_locale()`` when the page is rendered) from its ``LocalizedEnvironments``."""

    def __init__(self, environments: LocalizedEnvironments) -> None:
        super().__init__(engine_instance=environments.base)
        self.environments = environments
        self.layout_shells: LayoutShells | None = None  # set by template_config(); None renders every page in full

    def environment_for(self, locale: str) -> Environment:
        return self.environments.full(locale)

    def get_template(self, template_name: str) -> JinjaTemplate:
        try:
            return self.environment_for(i18n.current_locale()).get_template(template_name)
        except TemplateNotFound as exc:
            raise TemplateNotFoundException(template_name=template_name) from exc


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    environments = shared_environments()
    engine = LocalizedJinjaEngine(environments)
    # The shells themselves are the app's (its sellers'); the compiled templates they come from are the process's.
    engine.layout_shells = LayoutShells(environments.full, environments.parts)
    return TemplateConfig(instance=engine)
