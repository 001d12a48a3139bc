"""Who is calling the admin API: the Bearer API-token guard (401 otherwise), the admin-only guard (403), and
the organization scoping rules every controller applies.

Scoping: an organization token acts on its own organization only — ``organization_id`` is implied, and another
organization's objects answer 404 exactly like missing ones. An admin token sees every organization and must name
``organization_id`` when creating something that belongs to one.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from portal.admin.tokens import ApiToken, authenticate
from portal.db import Transaction
from portal.errors import InvalidInput, NotFound
from portal.references import Reader, UnknownReference, owner_of, require_owned
from portal.sessions.auth import bearer_token


async def require_api_token(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Router guard: a live API token as ``Authorization: Bearer``, else 401."""
    state = connection.app.state.portal
    token = bearer_token(connection)  # type: ignore[arg-type]
    if token is None:
        raise NotAuthorizedException("Missing API token (Authorization: Bearer portal_oat_…).")
    record = await authenticate(state.db, secret=state.settings.secret_key, token=token, now=state.clock.now())
    if record is None:
        raise NotAuthorizedException("Invalid or revoked API token.")
    connection.state.api_principal = Principal(record)


async def require_admin_token(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Handler guard (after ``require_api_token``): only an instance admin token, else 403."""
    principal: Principal | None = getattr(connection.state, "api_principal", None)
    if principal is None or not principal.is_admin:
        raise PermissionDeniedException("This endpoint needs an admin token (portal token create --admin).")


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """Dependency ``principal``: what ``require_api_token`` found."""
    return request.state.api_principal


class Principal:
    """The authenticated token and the organization rules that follow from it."""

    def __init__(self, token: ApiToken) -> None:
        self.token = token

    @property
    def is_admin(self) -> bool:
        return self.token.is_admin

    @property
    def organization_id(self) -> str | None:
        return self.token.organization_id

    def can_see(self, organization_id: str) -> bool:
        return self.is_admin or organization_id == self.token.organization_id

    def check(self, record: Any, what: str) -> Any:
        """``record`` if it exists and is visible to this token; else ``NotFound`` (404)."""
        if record is None or not self.can_see(record.organization_id):
            raise NotFound(f"{what} not found")
        return record

    def list_filter(self, requested: str | None) -> str | None:
        """The ``organization_id`` a list is filtered by. An organization token asking for another organization
        gets an empty list (filtering by an id that cannot match), as Polar does."""
        if self.is_admin:
            return requested
        if requested is not None and requested != self.token.organization_id:
            return "~none~"
        return self.token.organization_id

    async def target_organization(self, tx: Transaction, requested: str | None) -> str:
        """The organization a new object belongs to; 422 on ``organization_id`` when it is missing (admin
        token) or not accessible (unknown or another organization's: answered alike)."""
        if not self.is_admin:
            if requested is not None and requested != self.token.organization_id:
                raise UnknownReference("organization", "organization_id")
            assert self.token.organization_id is not None
            return self.token.organization_id
        if requested is None:
            raise InvalidInput("required with an admin token", "organization_id")
        await require_owned(tx, "organization", requested, requested, "organization_id")
        return requested

    async def customer_organization(self, reader: Reader, customer_id: str, field: str = "customer_id") -> str:
        """The organization of the customer a body names (what the new order, subscription, grant or session
        belongs to); 422 on ``field`` when the customer is unknown, deleted or not visible to this token."""
        owner = await owner_of(reader, "customer", customer_id)
        if owner is None or not self.can_see(owner):
            raise UnknownReference("customer", field)
        return owner
