"""The admin API under ``/v1``: bearer API tokens (organization or instance admin), Polar-shaped CRUD for
organizations, products, benefits, files, customers, orders, subscriptions and benefit grants, whole-document
seeding (``POST /v1/admin/seed``) and Polar's ``POST /v1/customer-sessions/``.

``admin_router()`` is what ``portal.app`` mounts; every route below it passes the API-token guard."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # Litestar is imported where the router is built: `portal token ...` (and the `portal serve`
    # supervisor, which only builds the CLI parser) should not load the web framework.
    from litestar import Request, Response, Router

SECURITY_SCHEME_NAME = "bearerAuth"


def integrity_error(request: Request[Any, Any, Any], exc: sqlite3.IntegrityError) -> Response[Any]:
    """A uniqueness rule the services did not pre-check (e.g. a duplicate ``external_id``): 409, never 500."""
    from portal.web import api_error

    return api_error(409, "conflicts with existing data (a unique field is already used)")


def admin_router() -> Router:
    from litestar import Router
    from litestar.di import Provide

    from portal.admin import (
        benefits,
        customer_sessions,
        customers,
        files,
        grants,
        license_keys,
        orders,
        organizations,
        products,
        seed,
        subscriptions,
    )
    from portal.admin.auth import provide_principal, require_api_token
    from portal.admin.webhooks import WebhookController
    from portal.connectors.admin_api import ConnectorController

    return Router(
        path="/v1",
        guards=[require_api_token],
        security=[{"bearerAuth": []}],
        dependencies={"principal": Provide(provide_principal, sync_to_thread=False)},
        exception_handlers={sqlite3.IntegrityError: integrity_error},
        route_handlers=[
            organizations.OrganizationController,
            products.ProductController,
            benefits.BenefitController,
            files.FileController,
            customers.CustomerController,
            orders.OrderController,
            subscriptions.SubscriptionController,
            grants.BenefitGrantController,
            license_keys.LicenseKeyController,
            customer_sessions.CustomerSessionController,
            seed.SeedController,
            WebhookController,
            ConnectorController,
        ],
    )
