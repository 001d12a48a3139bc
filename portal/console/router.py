"""``console_router``: every console route in one Litestar router (the package docstring maps them). Kept out of
the package's ``__init__`` so that ``portal seller invite`` (``portal.console.cli``), whose parser every CLI call
builds, imports no web framework."""

from __future__ import annotations

from litestar import Router

from portal.console.access import ConsoleSignInRequired, sign_in_redirect


def console_router() -> Router:
    """Every console route, with the handler that sends a signed-out seller to ``/console``."""
    from portal.console import (
        catalog_pages,
        commerce_pages,
        customer_pages,
        order_pages,
        org_pages,
        settings_pages,
        signin_pages,
        webhook_pages,
    )

    return Router(
        path="/",
        route_handlers=[
            *signin_pages.ROUTES,
            *org_pages.ROUTES,
            *customer_pages.ROUTES,
            *order_pages.ROUTES,
            *commerce_pages.ROUTES,
            *catalog_pages.ROUTES,
            *settings_pages.ROUTES,
            *webhook_pages.ROUTES,
        ],
        exception_handlers={ConsoleSignInRequired: sign_in_redirect},
    )
