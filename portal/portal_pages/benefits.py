"""Benefits: license keys (copy, usage, activations with deactivate when allowed), downloads (signed links),
custom notes (escaped, links clickable) and invite links; plus the signed download route itself."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, QueryParameter
from litestar.response import File, Redirect, Template

from portal.benefits.customer_actions import deactivate_activation
from portal.benefits.downloads import download_link, open_download
from portal.benefits.reads import list_held_grants, list_past_grants
from portal.clock import Clock
from portal.db import Database
from portal.errors import NotFound
from portal.organizations.queries import get_by_slug
from portal.portal_pages.layout import base_path, not_found, render, see_other
from portal.scope import Scope
from portal.sessions.store import SessionContext
from portal.settings import Settings


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
            "portal/benefits.html", request, ctx, active="benefits", grants=grants, links=links, past_grants=past
        )

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
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        slug: FromPath[str],
        grant_id: FromPath[str],
        file_id: FromPath[str],
        sig: Annotated[str, QueryParameter(name="sig", max_length=200)] = "",
    ) -> File:
        organization = await get_by_slug(db, slug)
        if organization is None:
            raise NotFoundException("Not found")
        try:
            file, path = await open_download(db, settings, organization, grant_id, file_id, sig, now=clock.now())
        except NotFound as exc:
            raise NotFoundException(exc.message) from None
        return File(
            path=path,
            filename=file.name,
            media_type=file.mime_type,
            content_disposition_type="attachment",
            headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
        )
