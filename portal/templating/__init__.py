"""Templating: the Jinja environment of pages and emails, and the machinery that makes rendering cheap.

=================== =================================================================================
``environment``     the page environment, its per-locale overlays (one set per process), the engine Litestar
                    renders with, ``template_config``
``filters``         ``money``/``date``/``datetime`` filters and gettext bound to the active locale
``gettext``         ``PrecompiledGettext``: ``_("literal")`` translated at compile time, per locale
``compiler``        ``PortalCodeGenerator`` and ``PortalTemplate`` (private Jinja APIs; jinja2 pinned)
``escaping``        ``output_escape``/``escape_text``: escaped output as plain ``str`` (markupsafe pinned)
``layout_shell``    ``LayoutShells``: signed-in pages rendered into a cached, seller-level layout shell
=================== =================================================================================

Imports go one way: ``environment`` → ``layout_shell``/``compiler``/``gettext``/``filters`` → ``escaping``. What each
mechanism gains, what it must keep true and which test guards it is in the speed mechanisms table of
``bench/README.md``.
"""

from portal.templating.environment import (
    LocalizedEnvironments,
    LocalizedJinjaEngine,
    build_environment,
    shared_environments,
    template_config,
)
from portal.templating.filters import install_i18n

__all__ = [
    "LocalizedEnvironments",
    "LocalizedJinjaEngine",
    "build_environment",
    "install_i18n",
    "shared_environments",
    "template_config",
]
