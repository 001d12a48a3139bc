"""``/v1/organizations/``: Polar's organization endpoints. Admin tokens list, create and delete any
organization; an organization token sees and updates only its own."""

from __future__ import annotations

import asyncio
import shutil
from typing import Annotated, Any

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from portal.admin import deletions, responses
from portal.admin.auth import Principal, require_admin_token
from portal.clock import Clock
from portal.db import Database
from portal.errors import NotFound
from portal.fields import EmailLine, SingleLine
from portal.organizations import admin_queries, queries
from portal.organizations import service as org_service
from portal.pagination import LimitParam, ListResource, PageParam, list_resource
from portal.polar.convert import organization_out
from portal.polar.models import OrganizationOut
from portal.settings import Settings


class PortalUsageSettingsIn(msgspec.Struct, kw_only=True):
    show: bool


class PortalSubscriptionSettingsIn(msgspec.Struct, kw_only=True):
    update_plan: bool
    update_seats: bool = False


class CustomerPortalSettingsIn(msgspec.Struct, kw_only=True):
    usage: PortalUsageSettingsIn | None = None
    subscription: PortalSubscriptionSettingsIn | None = None


class OrganizationCreate(msgspec.Struct, kw_only=True):
    """Polar's ``OrganizationCreate`` fields Portal uses, plus Portal's receipt/portal settings."""

    name: SingleLine
    slug: SingleLine
    avatar_url: SingleLine | None = None
    email: EmailLine | None = None
    website: SingleLine | None = None
    default_presentment_currency: SingleLine = "usd"
    customer_portal_settings: CustomerPortalSettingsIn | None = None
    address: str | None = None
    receipt_prefix: SingleLine | None = None
    default_locale: SingleLine = "en"
    accent_color: SingleLine = "#2563eb"
    allow_email_change: bool = False
    # Portal's: the From display name and Reply-To of this organization's emails (Reply-To defaults to `email`).
    email_sender_name: SingleLine | None = None
    email_reply_to: EmailLine | None = None
    resubscribe_url: SingleLine | None = None
    settings: dict[str, Any] = {}
    external_id: SingleLine | None = None


class OrganizationUpdate(msgspec.Struct, kw_only=True):
    """Fields to change; the ones left out keep their value."""

    name: SingleLine | msgspec.UnsetType = msgspec.UNSET
    slug: SingleLine | msgspec.UnsetType = msgspec.UNSET
    avatar_url: SingleLine | msgspec.UnsetType | None = msgspec.UNSET
    email: EmailLine | msgspec.UnsetType | None = msgspec.UNSET
    website: SingleLine | msgspec.UnsetType | None = msgspec.UNSET
    default_presentment_currency: SingleLine | msgspec.UnsetType = msgspec.UNSET
    customer_portal_settings: CustomerPortalSettingsIn | msgspec.UnsetType = msgspec.UNSET
    address: str | msgspec.UnsetType | None = msgspec.UNSET
    receipt_prefix: SingleLine | msgspec.UnsetType | None = msgspec.UNSET
    default_locale: SingleLine | msgspec.UnsetType = msgspec.UNSET
    accent_color: SingleLine | msgspec.UnsetType = msgspec.UNSET
    allow_email_change: bool | msgspec.UnsetType = msgspec.UNSET
    email_sender_name: SingleLine | msgspec.UnsetType | None = msgspec.UNSET
    email_reply_to: EmailLine | msgspec.UnsetType | None = msgspec.UNSET
    resubscribe_url: SingleLine | msgspec.UnsetType | None = msgspec.UNSET
    settings: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    external_id: SingleLine | msgspec.UnsetType | None = msgspec.UNSET


_RENAMED = {"email": "support_email", "website": "website_url", "default_presentment_currency": "default_currency"}


def _domain_fields(data: OrganizationCreate | OrganizationUpdate) -> dict[str, Any]:
    """Polar field names -> the domain's; ``customer_portal_settings`` -> the portal flags."""
    fields: dict[str, Any] = {}
    for name in data.__struct_fields__:
        value = getattr(data, name)
        if value is msgspec.UNSET:
            continue
        if name == "customer_portal_settings":
            if value is not None and value.usage is not None:
                fields["show_usage"] = value.usage.show
            if value is not None and value.subscription is not None:
                fields["allow_plan_change"] = value.subscription.update_plan
                fields["allow_seats"] = value.subscription.update_seats
            continue
        fields[_RENAMED.get(name, name)] = value
    return fields


async def _get(db: Database, settings: Settings, organization_id: str) -> OrganizationOut:
    org = await queries.get_by_id(db, organization_id)
    if org is None:
        raise NotFound("organization not found")
    return organization_out(org, settings.public_base_url)


class OrganizationController(Controller):
    path = "/organizations"
    tags = ["organizations"]

    @get("/", summary="List organizations", responses=responses.LIST)
    async def list_organizations(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        principal: NamedDependency[Principal],
        slug: Annotated[str | None, QueryParameter(max_length=64)] = None,
        page: PageParam = 1,
        limit: LimitParam = 10,
    ) -> ListResource[OrganizationOut]:
        result = await admin_queries.list_organizations(
            db, organization_id=principal.list_filter(None), slug=slug, page=page, limit=limit
        )
        items = [organization_out(org, settings.public_base_url) for org in result.records]
        return list_resource(items, result.total, limit)

    @post(
        "/",
        summary="Create an organization (admin token)",
        guards=[require_admin_token],
        responses=responses.errors(403, 409, 422),
    )
    async def create_organization(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        data: JSONBody[OrganizationCreate],
    ) -> OrganizationOut:
        async with db.write() as tx:
            organization_id = await org_service.create_organization(
                tx, org_service.OrganizationInput(**_domain_fields(data)), now=clock.now()
            )
        return await _get(db, settings, organization_id)

    @get("/{id:str}", summary="Get an organization", responses=responses.READ)
    async def get_organization(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        principal: NamedDependency[Principal],
        id: FromPath[str],
    ) -> OrganizationOut:
        if not principal.can_see(id):
            raise NotFound("organization not found")
        return await _get(db, settings, id)

    @patch("/{id:str}", summary="Update an organization", responses=responses.WRITE)
    async def update_organization(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        principal: NamedDependency[Principal],
        id: FromPath[str],
        data: JSONBody[OrganizationUpdate],
    ) -> OrganizationOut:
        if not principal.can_see(id):
            raise NotFound("organization not found")
        async with db.write() as tx:
            await org_service.update_organization(
                tx, id, org_service.OrganizationUpdate(**_domain_fields(data)), now=clock.now()
            )
        return await _get(db, settings, id)

    @delete(
        "/{id:str}",
        summary="Delete an organization and everything it owns (admin token)",
        guards=[require_admin_token],
        responses=responses.errors(403, 404),
    )
    async def delete_organization(
        self, db: NamedDependency[Database], settings: NamedDependency[Settings], id: FromPath[str]
    ) -> None:
        async with db.write() as tx:
            await deletions.delete_organization(tx, id)
        # Its files go after the commit: a rollback must never lose bytes still referenced.
        await asyncio.to_thread(shutil.rmtree, settings.files_dir / id, True)
