"""``GET /v1/customer-portal/organizations/{slug}``: public; the organization's portal settings and its public
products (Polar's ``CustomerOrganizationData``)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from portal.customer_portal.errors import not_found, responses
from portal.db import Database
from portal.organizations.queries import get_by_slug
from portal.polar import convert, loaders
from portal.polar.models import CustomerOrganizationData


class OrganizationsController(Controller):
    path = "/organizations"
    tags = ["customer_portal.organizations"]

    @get(
        "/{slug:str}",
        summary="Get Organization",
        description="The organization's customer-portal settings and public products. No authentication.",
        responses=responses(auth=False),
    )
    async def get_organization(self, db: NamedDependency[Database], slug: FromPath[str]) -> CustomerOrganizationData:
        organization = await get_by_slug(db, slug)
        if organization is None:
            raise not_found("Organization not found.")
        return CustomerOrganizationData(
            organization=convert.customer_organization_out(organization),
            products=await loaders.public_products(db, organization),
        )
