"""``/v1/customer-portal/benefit-grants``: the caller's live grants of every benefit type (revoked ones are
not listed and answer 404, as in Polar),
with Polar's filters, each with its type-specific ``benefit.properties`` and grant ``properties``.

PATCH is how Polar links a Discord or GitHub account to a grant (OAuth). Portal runs no OAuth: linking answers
403 ``NotPermitted`` pointing at the invite link in ``benefit.properties.invite_url``; a PATCH for other types
changes nothing and answers the grant, as Polar does."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, get, patch
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from portal.benefits import reads as benefit_reads
from portal.customer_portal.common import IdList, Limit, Page, Search, clamp_limit, listing
from portal.customer_portal.errors import BEARER, not_found, not_permitted, responses
from portal.customer_portal.inputs import CustomerBenefitGrantUpdate
from portal.db import Database
from portal.errors import InvalidInput
from portal.pagination import ListResource
from portal.polar import convert
from portal.polar.models import CustomerBenefitGrant
from portal.scope import Scope
from portal.sessions.store import SessionContext

BenefitType = Literal[
    "custom", "discord", "github_repository", "downloadables", "license_keys", "meter_credit", "feature_flag",
    "slack_shared_channel",
]  # fmt: skip
GrantSort = Literal[
    "granted_at", "-granted_at", "type", "-type", "organization", "-organization", "product_benefit",
    "-product_benefit",
]  # fmt: skip
NOT_FOUND = "Benefit grant not found."
OAUTH_TYPES = frozenset({"discord", "github_repository"})


class BenefitGrantsController(Controller):
    path = "/benefit-grants"
    tags = ["customer_portal.benefit_grants"]
    security = BEARER

    @get("/", summary="List Benefit Grants", responses=responses(found=False))
    async def list_grants(
        self,
        db: NamedDependency[Database],
        api_customer: NamedDependency[SessionContext],
        search: Search = None,
        type: Annotated[list[BenefitType] | None, QueryParameter(description="Filter by benefit type.")] = None,
        benefit_id: IdList = None,
        checkout_id: IdList = None,
        order_id: IdList = None,
        subscription_id: IdList = None,
        member_id: IdList = None,
        page: Page = 1,
        limit: Limit = 10,
        sorting: Annotated[list[GrantSort] | None, QueryParameter()] = None,
    ) -> ListResource[CustomerBenefitGrant]:
        limit = clamp_limit(limit)
        ctx = api_customer
        if checkout_id or member_id:
            # Portal has no checkouts or members: nothing matches such a filter.
            return listing([], 0, limit)
        rows, total = await benefit_reads.list_grant_rows(
            db,
            Scope.of_customer(ctx.organization.id, ctx.customer.id),
            query=search,
            types=type,
            benefit_id=benefit_id,
            order_id=order_id,
            subscription_id=subscription_id,
            sorting=sorting,
            page_number=page,
            limit=limit,
        )
        return listing([convert.customer_grant_out(row, ctx.customer, ctx.organization) for row in rows], total, limit)

    @get("/{id:str}", summary="Get Benefit Grant", responses=responses())
    async def get_grant(
        self, db: NamedDependency[Database], api_customer: NamedDependency[SessionContext], id: FromPath[str]
    ) -> CustomerBenefitGrant:
        ctx = api_customer
        row = await benefit_reads.get_grant_row(db, Scope.of_customer(ctx.organization.id, ctx.customer.id), id)
        if row is None:
            raise not_found(NOT_FOUND)
        return convert.customer_grant_out(row, ctx.customer, ctx.organization)

    @patch(
        "/{id:str}",
        summary="Update Benefit Grant",
        description=(
            "Linking a Discord or GitHub account answers 403 `NotPermitted`: Portal runs no OAuth; customers use "
            "the invite link in `benefit.properties.invite_url`. Other types: no change."
        ),
        responses=responses((403, "`NotPermitted`: account linking (Discord/GitHub OAuth) is not available.")),
    )
    async def update_grant(
        self,
        db: NamedDependency[Database],
        api_customer: NamedDependency[SessionContext],
        id: FromPath[str],
        data: JSONBody[CustomerBenefitGrantUpdate],
    ) -> CustomerBenefitGrant:
        ctx = api_customer
        row = await benefit_reads.get_grant_row(db, Scope.of_customer(ctx.organization.id, ctx.customer.id), id)
        if row is None:
            raise not_found(NOT_FOUND)
        if data.benefit_type != row["benefit_type"]:
            raise InvalidInput(f"this grant's benefit type is {row['benefit_type']}", "benefit_type")
        if row["benefit_type"] in OAUTH_TYPES:
            raise not_permitted(
                "Linking a Discord or GitHub account is not available in this Portal. "
                "Use the invite link in benefit.properties.invite_url."
            )
        return convert.customer_grant_out(row, ctx.customer, ctx.organization)
