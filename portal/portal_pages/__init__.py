"""The signed-in portal pages, one Controller per area (overview, orders, receipts, subscriptions, benefits,
billing details). ``ROUTES`` is what ``create_app`` registers."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from portal.portal_pages.benefits import BenefitsController, DownloadsController
from portal.portal_pages.billing import BillingController
from portal.portal_pages.email_change import confirm_email_change, email_change_link, request_email_change
from portal.portal_pages.language import LanguageController
from portal.portal_pages.orders import OrdersController
from portal.portal_pages.receipts import ReceiptsController
from portal.portal_pages.subscriptions import SubscriptionsController

ROUTES: list[ControllerRouterHandler] = [
    OrdersController,
    ReceiptsController,
    SubscriptionsController,
    BenefitsController,
    DownloadsController,
    BillingController,
    LanguageController,
    request_email_change,
    email_change_link,
    confirm_email_change,
]
