"""The customer-portal JSON API under ``/v1/customer-portal``, wire-compatible with Polar's (paths, methods, query
parameters, field names, pagination, status codes and error shapes of ``polar-sdk``'s ``customer_portal``
services). Authentication: a customer-session token as Bearer (dependency ``api_customer``); the organization
page and the license-key validate/activate/deactivate endpoints are public. The customer-session endpoints
(request/authenticate/introspect/user) are ``portal.sessions.api``'s.

``ROUTES`` is what ``create_app`` registers: this router plus the cookie-less signed document routes and the
invoice pages."""

from __future__ import annotations

from litestar import Router
from litestar.types import ControllerRouterHandler

from portal.customer_portal.benefit_grants import BenefitGrantsController
from portal.customer_portal.customers import CustomersController
from portal.customer_portal.downloadables import DownloadablesController
from portal.customer_portal.errors import PolarAPIError, polar_error_handler
from portal.customer_portal.license_keys import LicenseKeysController
from portal.customer_portal.orders import OrdersController
from portal.customer_portal.organizations import OrganizationsController
from portal.customer_portal.subscriptions import SubscriptionsController
from portal.customer_portal.unsupported import CONTROLLERS as UNSUPPORTED
from portal.invoices.pages import ROUTES as INVOICE_ROUTES


def customer_portal_router() -> Router:
    return Router(
        path="/v1/customer-portal",
        route_handlers=[
            OrganizationsController,
            CustomersController,
            OrdersController,
            SubscriptionsController,
            BenefitGrantsController,
            LicenseKeysController,
            DownloadablesController,
            *UNSUPPORTED,
        ],
        exception_handlers={PolarAPIError: polar_error_handler},
    )


def routes() -> list[ControllerRouterHandler]:
    return [customer_portal_router(), *INVOICE_ROUTES]
