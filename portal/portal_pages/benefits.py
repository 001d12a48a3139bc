"""Benefits: license keys (copy, usage, activations with deactivate when allowed), downloads (signed links),
custom notes (escaped, links clickable) and invite links; plus the signed download route itself."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.enums import MediaType
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, QueryParameter
from litestar.response import File, Redirect, Template

from portal import i18n
from portal.benefits import license_key_api
from portal.benefits.customer_actions import deactivate_activation
from portal.benefits.downloads import EXPIRED_DOWNLOAD, download_link, open_download
from portal.benefits.reads import Grant, get_live_grant_file, list_held_grants, list_past_grants
from portal.clock import Clock
from portal.db import Database
from portal.errors import NotFound
from portal.orders.reads import get_order_detail
from portal.organizations.queries import Organization, get_by_slug
from portal.portal_pages.layout import base_path, not_found, render, safe_organization, see_other
from portal.scope import Scope
from portal.sessions.auth import browser_session
from portal.sessions.store import SessionContext
from portal.settings import Settings
from portal.subscriptions.reads import list_subscriptions


class GrantGroup(msgspec.Struct, frozen=True, kw_only=True):
    """The grants one subscription or one order gave, under that product's name (the Benefits page's sections)."""

    key: str
    title: str
    kind: str  # "subscription", "order" or "other"
    href: str | None
    status: str | None
    grants: list[Grant]


async def _grouped(db: Database, ctx: SessionContext, grants: list[Grant]) -> list[GrantGroup]:
    """Grants grouped by the subscription or order that granted them, in the order they were first granted."""
    root = base_path(ctx.organization)
    subscriptions = {
        sub.id: sub for sub in await list_subscriptions(db, Scope.of_customer(ctx.organization.id, ctx.customer.id))
    }
    groups: dict[str, GrantGroup] = {}
    for grant in grants:
        if grant.subscription_id and grant.subscription_id in subscriptions:
            sub = subscriptions[grant.subscription_id]
            key, kind, title = f"s-{sub.id}", "subscription", sub.product_name
            href, status = f"{root}/subscriptions/{sub.id}", sub.status
        elif grant.order_id:
            key, kind, href, status = f"o-{grant.order_id}", "order", f"{root}/orders/{grant.order_id}", None
            if key in groups:
                title = groups[key].title
            else:
                order = await get_order_detail(
                    db, Scope.of_customer(ctx.organization.id, ctx.customer.id), grant.order_id
                )
                title = (order.product_name if order else None) or i18n.gettext("Your purchase")
        else:
            key, kind, title, href, status = "other", "other", i18n.gettext("Other benefits"), None, None
        group = groups.get(key) or GrantGroup(key=key, title=title, kind=kind, href=href, status=status, grants=[])
        group.grants.append(grant)
        groups[key] = group
    return list(groups.values())


def _rotatable(organization: Organization, grants: list[Grant]) -> set[str]:
    """Ids of the keys the seller lets the customer rotate now (the rule itself: ``license_key_api.rotate``)."""
    if not organization.allow_key_rotation:
        return set()
    return {
        key.id
        for grant in grants
        if grant.benefit_props.get("allow_customer_rotation")
        for key in grant.license_keys
        if key.status in license_key_api.ROTATABLE_STATUSES
    }


class BenefitsController(Controller):
    path = "/{slug:str}/portal/benefits"
    include_in_schema = False

    @get("/", name="portal.benefits")
    async def benefits(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        portal_customer: NamedDependency[SessionContext],
    ) -> Template:
        ctx = portal_customer
        now = clock.now()
        grants = await list_held_grants(db, Scope.of_customer(ctx.organization.id, ctx.customer.id))
        links = {
            (grant.id, file.id): download_link(settings, ctx.organization, grant.id, file.id, now=now).path
            for grant in grants
            for file in grant.files
        }
        past = await list_past_grants(db, Scope.of_customer(ctx.organization.id, ctx.customer.id))
        return render(
            "portal/benefits.html",
            request,
            ctx,
            active="benefits",
            grants=grants,
            groups=await _grouped(db, ctx, grants),
            rotatable=_rotatable(ctx.organization, grants),
            links=links,
            past_grants=past,
        )

    @get(
        "/license-keys/{license_key_id:str}/activations/{activation_id:str}/deactivate",
        name="portal.activation.deactivate_confirm",
    )
    async def deactivate_confirm(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        portal_customer: NamedDependency[SessionContext],
        license_key_id: FromPath[str],
        activation_id: FromPath[str],
    ) -> Template:
        """Deactivating asks first (issue 22): which device, which key, what happens; the POST does it."""
        ctx = portal_customer
        for grant in await list_held_grants(db, Scope.of_customer(ctx.organization.id, ctx.customer.id)):
            if not grant.customer_can_deactivate:
                continue
            for key in grant.license_keys:
                for activation in key.activations if key.id == license_key_id else ():
                    if activation.id == activation_id:
                        return render(
                            "portal/deactivate_activation.html",
                            request,
                            ctx,
                            active="benefits",
                            grant=grant,
                            key=key,
                            activation=activation,
                        )
        raise not_found()

    @get("/license-keys/{license_key_id:str}/rotate", name="portal.license_key.rotate_confirm")
    async def rotate_confirm(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        portal_customer: NamedDependency[SessionContext],
        license_key_id: FromPath[str],
    ) -> Template:
        """Rotating asks first: the old key stops working at once (where the seller allows rotation)."""
        ctx = portal_customer
        grants = await list_held_grants(db, Scope.of_customer(ctx.organization.id, ctx.customer.id))
        if license_key_id in _rotatable(ctx.organization, grants):
            for grant in grants:
                for key in grant.license_keys:
                    if key.id == license_key_id:
                        return render(
                            "portal/rotate_license_key.html", request, ctx, active="benefits", grant=grant, key=key
                        )
        raise not_found()

    @post("/license-keys/{license_key_id:str}/rotate", name="portal.license_key.rotate")
    async def rotate(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        portal_customer: NamedDependency[SessionContext],
        license_key_id: FromPath[str],
    ) -> Redirect:
        """A new key string through the API's own rule (``license_key_api.rotate``); back to Benefits."""
        ctx = portal_customer
        try:
            await license_key_api.rotate(
                db,
                organization_id=ctx.organization.id,
                customer_id=ctx.customer.id,
                license_key_id=license_key_id,
                now=clock.now(),
            )
        except license_key_api.KeyNotFound:
            raise not_found() from None
        return see_other(f"{base_path(ctx.organization)}/benefits?done=rotated")

    @post(
        "/license-keys/{license_key_id:str}/activations/{activation_id:str}/deactivate",
        name="portal.activation.deactivate",
    )
    async def deactivate(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        portal_customer: NamedDependency[SessionContext],
        license_key_id: FromPath[str],
        activation_id: FromPath[str],
    ) -> Redirect:
        try:
            await deactivate_activation(db, portal_customer, license_key_id, activation_id, now=clock.now())
        except NotFound:
            raise not_found() from None
        return see_other(f"{base_path(portal_customer.organization)}/benefits?done=deactivated")


class DownloadsController(Controller):
    """Signed links work without the session cookie (the JSON API hands out the same links)."""

    path = "/{slug:str}/portal/downloads"
    include_in_schema = False

    @get("/{grant_id:str}/{file_id:str}", name="portal.download")
    async def download(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        slug: FromPath[str],
        grant_id: FromPath[str],
        file_id: FromPath[str],
        sig: Annotated[str, QueryParameter(name="sig", max_length=200)] = "",
    ) -> Response[Any]:
        """The file of a live signed link. An expired link is no dead end (issue 22): a signed-in owner of the file
        is sent on to a fresh link at once; anyone else gets the organization's page pointing back to Benefits."""
        organization = await get_by_slug(db, slug)
        if organization is None:
            raise NotFoundException("Not found")
        request.state.organization = organization  # error pages in the organization's look
        now = clock.now()
        try:
            file, path = await open_download(db, settings, organization, grant_id, file_id, sig, now=now)
        except NotFound as exc:
            if exc.message != EXPIRED_DOWNLOAD:
                raise NotFoundException(exc.message) from None
            context = await browser_session(request, db, settings, clock, slug)
            if context is not None and await get_live_grant_file(
                db, Scope.of_customer(organization.id, context.customer.id), grant_id, file_id
            ):
                fresh = download_link(settings, organization, grant_id, file_id, now=now)
                return Redirect(fresh.path, status_code=303, headers={"Cache-Control": "no-store"})
            i18n.refine(org_default=organization.default_locale)
            return Template(
                template_name="errors/error.html",
                context={
                    "status": 404,
                    "title": i18n.gettext("This download link has expired"),
                    "detail": i18n.gettext(
                        "Download links work for a limited time. Open Benefits again for a fresh one "
                        "(sign in first if you are asked to)."
                    ),
                    "organization": safe_organization(organization),
                    "action_url": f"{base_path(organization)}/benefits",
                    "action_label": i18n.gettext("Back to Benefits"),
                },
                status_code=404,
                media_type=MediaType.HTML,
            )
        return File(
            path=path,
            filename=file.name,
            media_type=file.mime_type,
            content_disposition_type="attachment",
            headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
        )
