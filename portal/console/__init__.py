"""The seller console (issue 21): ``/console`` (sign-in, the organizations a seller may open) and
``/console/<slug>/…`` (team, audit log, settings, integrations).

=============== ==================================================================================
``store``       SQL of the console's own tables: seller accounts, memberships, codes, sessions, audit log
``signin``      sign-in rules (codes from ``portal.sessions.codes``, throttles from ``rate_limit``)
``access``      the seller of a request (cookie ``console_session``, path /console) and their role per organization
``audit``       writing the audit log (every seller action) and reading it back, filtered
``mail``        the console's emails: sign-in code, invitation
``layout``      the frame of an organization's pages: section nav, common context, notices after actions
``org_pages``   the HTML routes of home, team, audit, settings and integrations
``order_pages`` one order: items, refunds, source, documents; resend the receipt, refund (processor or local)
``cli``         ``portal seller invite``
=============== ==================================================================================
"""

from __future__ import annotations

from litestar import Router

from portal.console.access import ConsoleSignInRequired, sign_in_redirect


def console_router() -> Router:
    """Every console route, with the handler that sends a signed-out seller to ``/console``."""
    from portal.console import order_pages, org_pages, signin_pages

    return Router(
        path="/",
        route_handlers=[*signin_pages.ROUTES, *org_pages.ROUTES, *order_pages.ROUTES],
        exception_handlers={ConsoleSignInRequired: sign_in_redirect},
    )
