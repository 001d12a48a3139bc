"""The seller console (issue 21): ``/console`` (sign-in, the organizations a seller may open) and
``/console/<slug>/…`` (team, audit log, settings, integrations).

================== ==================================================================================
``store``          SQL of the console's own tables: seller accounts, memberships, codes, sessions, audit log
``signin``         sign-in rules (codes from ``portal.sessions.codes``, throttles from ``rate_limit``)
``access``         the seller of a request (cookie ``console_session``, path /console) and their role per organization
``audit``          writing the audit log (every seller action) and reading it back, filtered
``mail``           the console's emails: sign-in code, invitation
``layout``         the frame of an organization's pages: section nav, common context, notices after actions
``org_pages``      the HTML routes of home, team, audit, API tokens, email outbox and processors
``customer_search`` finding a customer by email, name, order/receipt/invoice number, ids, processor id, key prefix
``customer_pages`` the Customers section: search, a customer's page, sign-in links, sessions, email change
``commerce_pages`` a customer's subscription, license key and benefit grants, with their actions
``catalog_pages``  the Catalog section: products and prices, benefits per type, files, which products grant what
``settings_pages`` the settings page (branding, emails, customer actions, invoice details) and its previews
``previews``       the branding previews: real portal pages and emails rendered with sample data
``webhook_pages``  outgoing webhook endpoints (create, edit, delete, secret), their per-attempt log, redeliver
``cli``            ``portal seller invite``
================== ==================================================================================
"""

from __future__ import annotations

from litestar import Router

from portal.console.access import ConsoleSignInRequired, sign_in_redirect


def console_router() -> Router:
    """Every console route, with the handler that sends a signed-out seller to ``/console``."""
    from portal.console import (
        catalog_pages,
        commerce_pages,
        customer_pages,
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
            *commerce_pages.ROUTES,
            *catalog_pages.ROUTES,
            *settings_pages.ROUTES,
            *webhook_pages.ROUTES,
        ],
        exception_handlers={ConsoleSignInRequired: sign_in_redirect},
    )
