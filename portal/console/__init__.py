"""The seller console (issue 21): ``/console`` (sign-in, the organizations a seller may open) and
``/console/<slug>/…`` (team, audit log, settings, integrations).

================== ==========================================================================="""

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
