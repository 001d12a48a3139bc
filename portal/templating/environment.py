"""The page environment and Litestar's engine around it.

``build_environment()`` is the one Jinja environment (templates directory, autoescape on, ``PortalTemplate`` compiled
by ``PortalCodeGenerator``, the ``ui`` helpers, locale-aware filters and gettext). ``LocalizedJinjaEngine`` keeps one
overlay of it per locale with ``PrecompiledGettext``, and picks the one of the active locale when a page renders;
``template_config()`` wires the engine and its ``LayoutShells`` into the app.
"""

from __future__ import annotations

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
from portal.templating.layout_shell import LayoutShells


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


class LocalizedJinjaEngine(JinjaTemplateEngine):
    """Litestar's Jinja engine, picking the compiled copy of a template for the active locale
    (``portal.i18n.current_locale()`` when the page is rendered). Each locale has an overlay of the one environment
    (same loader, globals and filters; its own template cache) with ``PrecompiledGettext``."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(engine_instance=environment)
        self._localized: dict[str, Environment] = {}
        self.layout_shells: LayoutShells | None = None  # set by template_config(); None renders every page in full

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
    engine = LocalizedJinjaEngine(build_environment())
    engine.layout_shells = LayoutShells(engine.environment_for)
    return TemplateConfig(instance=engine)
