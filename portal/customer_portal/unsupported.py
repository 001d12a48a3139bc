"""Polar customer-portal endpoints for features Portal does not have — seats, members, wallets, meters — so
clients written against Polar's SDKs get a documented answer instead of a 404 or a silent empty success: after
authentication, 403 ``{"error": "NotSupported", "detail": "…"}`` (see ``errors.not_supported``). Payment
methods and payment retries live with their resources (``customers``, ``orders``)."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from portal.customer_portal.errors import BEARER, UNSUPPORTED_RESPONSES, not_supported
from portal.sessions.store import SessionContext

Ctx = NamedDependency[SessionContext]


class SeatsController(Controller):
    path = "/seats"
    tags = ["customer_portal.seats"]
    security = BEARER

    @get("/", summary="List Seats (not supported)", responses=UNSUPPORTED_RESPONSES)
    async def list_seats(self, api_customer: Ctx) -> None:
        raise not_supported("Seats")

    @post("/", summary="Assign Seat (not supported)", responses=UNSUPPORTED_RESPONSES)
    async def assign_seat(self, api_customer: Ctx) -> None:
        raise not_supported("Seats")

    @get("/subscriptions", summary="List Claimed Subscriptions (not supported)", responses=UNSUPPORTED_RESPONSES)
    async def claimed_subscriptions(self, api_customer: Ctx) -> None:
        raise not_supported("Seats")

    @delete("/{seat_id:str}", status_code=200, summary="Revoke Seat (not supported)", responses=UNSUPPORTED_RESPONSES)
    async def revoke_seat(self, api_customer: Ctx, seat_id: FromPath[str]) -> None:
        raise not_supported("Seats")

    @post("/{seat_id:str}/resend", summary="Resend Invitation (not supported)", responses=UNSUPPORTED_RESPONSES)
    async def resend_invitation(self, api_customer: Ctx, seat_id: FromPath[str]) -> None:
        raise not_supported("Seats")


class MembersController(Controller):
    path = "/members"
    tags = ["customer_portal.members"]
    security = BEARER

    @get("/", summary="List Members (not supported)", responses=UNSUPPORTED_RESPONSES)
    async def list_members(self, api_customer: Ctx) -> None:
        raise not_supported("Team members")

    @post("/", summary="Add Member (not supported)", responses=UNSUPPORTED_RESPONSES)
    async def add_member(self, api_customer: Ctx) -> None:
        raise not_supported("Team members")

    @patch("/{id:str}", summary="Update Member (not supported)", responses=UNSUPPORTED_RESPONSES)
    async def update_member(self, api_customer: Ctx, id: FromPath[str]) -> None:
        raise not_supported("Team members")

    @delete("/{id:str}", status_code=204, summary="Remove Member (not supported)", responses=UNSUPPORTED_RESPONSES)
    async def remove_member(self, api_customer: Ctx, id: FromPath[str]) -> None:
        raise not_supported("Team members")


class WalletsController(Controller):
    path = "/wallets"
    tags = ["customer_portal.wallets"]
    security = BEARER

    @get("/", summary="List Wallets (not supported)", responses=UNSUPPORTED_RESPONSES)
    async def list_wallets(self, api_customer: Ctx) -> None:
        raise not_supported("Wallets")

    @get("/{id:str}", summary="Get Wallet (not supported)", responses=UNSUPPORTED_RESPONSES)
    async def get_wallet(self, api_customer: Ctx, id: FromPath[str]) -> None:
        raise not_supported("Wallets")


class MetersController(Controller):
    path = "/meters"
    tags = ["customer_portal.customer_meters"]
    security = BEARER

    @get("/", summary="List Customer Meters (not supported)", responses=UNSUPPORTED_RESPONSES)
    async def list_meters(self, api_customer: Ctx) -> None:
        raise not_supported("Usage meters")

    @get("/{id:str}", summary="Get Customer Meter (not supported)", responses=UNSUPPORTED_RESPONSES)
    async def get_meter(self, api_customer: Ctx, id: FromPath[str]) -> None:
        raise not_supported("Usage meters")


CONTROLLERS = [SeatsController, MembersController, WalletsController, MetersController]
