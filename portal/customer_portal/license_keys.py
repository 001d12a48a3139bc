"""``/v1/customer-portal/license-keys``: the caller's keys (list, get with activations, rotate) and the public
``validate``/``activate``/``deactivate`` that the seller's software calls with the key itself (no token).
Rules and their race-safety live in ``portal.benefits.license_key_api``.

As in Polar, ``GET /{id}`` lists activations only when the benefit lets customers manage them
(``activations.enable_customer_admin``)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from portal.benefits import license_key_api
from portal.benefits import reads as benefit_reads
from portal.clock import Clock
from portal.customer_portal.common import Limit, Page, clamp_limit, listing
from portal.customer_portal.errors import BEARER, PolarAPIError, not_found, responses
from portal.customer_portal.inputs import LicenseKeyActivate, LicenseKeyDeactivate, LicenseKeyValidate
from portal.customers.reads import get_customer
from portal.db import Database
from portal.pagination import ListResource
from portal.polar import convert
from portal.polar.models import (
    GrantedLicenseKey,
    LicenseKeyActivationCreated,
    LicenseKeyRead,
    LicenseKeyWithActivations,
    ValidatedLicenseKey,
)
from portal.scope import EVERY_ORGANIZATION, Scope
from portal.sessions.store import SessionContext

NOT_FOUND = "License key not found."


def _polar(exc: license_key_api.LicenseKeyError) -> PolarAPIError:
    return PolarAPIError(exc.status_code, exc.error, exc.message)


async def _key_fields(db: Database, organization_id: str, key_id: str, customer_id: str) -> dict:  # type: ignore[type-arg]
    customer = await get_customer(db, Scope.of_organization(organization_id), customer_id)
    row = await benefit_reads.get_license_key_row(db, EVERY_ORGANIZATION, key_id)
    if customer is None or row is None:
        raise not_found(NOT_FOUND)
    source = convert.license_key_source(await benefit_reads.license_key_source(db, key_id))
    return convert.license_key_fields(row, convert.key_holder_out(customer)) | source


async def _activation(db: Database, activation_id: str) -> benefit_reads.Row:
    row = await benefit_reads.get_activation_row(db, activation_id)
    if row is None:
        raise not_found("Activation not found.")
    return row


class LicenseKeysController(Controller):
    path = "/license-keys"
    tags = ["customer_portal.license_keys"]

    @get("/", summary="List License Keys", responses=responses(found=False), security=BEARER)
    async def list_keys(
        self,
        db: NamedDependency[Database],
        api_customer: NamedDependency[SessionContext],
        benefit_id: Annotated[str | None, QueryParameter(description="Filter by a specific benefit.")] = None,
        page: Page = 1,
        limit: Limit = 10,
    ) -> ListResource[LicenseKeyRead]:
        limit = clamp_limit(limit)
        ctx = api_customer
        rows, total = await benefit_reads.list_license_key_rows(
            db,
            Scope.of_customer(ctx.organization.id, ctx.customer.id),
            benefit_id=benefit_id,
            page_number=page,
            limit=limit,
        )
        return listing([convert.license_key_out(row, ctx.customer) for row in rows], total, limit)

    @get("/{id:str}", summary="Get License Key", responses=responses(), security=BEARER)
    async def get_key(
        self, db: NamedDependency[Database], api_customer: NamedDependency[SessionContext], id: FromPath[str]
    ) -> LicenseKeyWithActivations:
        ctx = api_customer
        row = await benefit_reads.get_license_key_row(db, Scope.of_customer(ctx.organization.id, ctx.customer.id), id)
        if row is None:
            raise not_found(NOT_FOUND)
        admin = (msgspec.json.decode(row["benefit_properties"] or "{}").get("activations") or {}).get(
            "enable_customer_admin"
        )
        activations = await benefit_reads.activation_rows(db, id) if admin else []
        return LicenseKeyWithActivations(
            **convert.license_key_fields(row, convert.key_holder_out(ctx.customer)),
            activations=[convert.activation_out(a) for a in activations],
        )

    @post(
        "/{id:str}/rotate",
        status_code=200,
        summary="Rotate License Key",
        description=(
            "A new key string for the same license key; the old one stops validating at once. Allowed, as in "
            "Polar, for keys that are granted or disabled, unless the seller switched the benefit's "
            "`allow_customer_rotation` off."
        ),
        responses=responses(
            (
                400,
                "`RotateNotPermitted`: the key's status is not granted or disabled, or the seller "
                "switched customer rotation off.",
            )
        ),
        security=BEARER,
    )
    async def rotate(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        api_customer: NamedDependency[SessionContext],
        id: FromPath[str],
    ) -> LicenseKeyRead:
        ctx = api_customer
        try:
            await license_key_api.rotate(
                db, organization_id=ctx.organization.id, customer_id=ctx.customer.id, license_key_id=id,
                now=clock.now(),
            )  # fmt: skip
        except license_key_api.LicenseKeyError as exc:
            raise _polar(exc) from None
        row = await benefit_reads.get_license_key_row(db, Scope.of_customer(ctx.organization.id, ctx.customer.id), id)
        assert row is not None
        return convert.license_key_out(row, ctx.customer)

    # --- public: called by the seller's software with the key --------------------------------------------

    @post(
        "/validate",
        status_code=200,
        summary="Validate License Key",
        description="No authentication: the key is the credential. Counts a validation; may increment usage.",
        responses=responses(
            (400, "`BadRequest`: `increment_usage` exceeds the remaining usage."),
            (404, "`ResourceNotFound`: unknown, revoked, disabled or expired key; conditions or owner mismatch."),
            auth=False,
            found=False,
        ),
    )
    async def validate(
        self, request: Request[Any, Any, Any], db: NamedDependency[Database], data: JSONBody[LicenseKeyValidate]
    ) -> ValidatedLicenseKey:
        clock = request.app.state.portal.clock
        try:
            outcome = await license_key_api.validate(
                db,
                organization_id=data.organization_id,
                key=data.key,
                now=clock.now(),
                activation_id=data.activation_id,
                benefit_id=data.benefit_id,
                customer_id=data.customer_id,
                increment_usage=data.increment_usage,
                conditions=data.conditions,
            )
        except license_key_api.LicenseKeyError as exc:
            raise _polar(exc) from None
        fields = await _key_fields(db, data.organization_id, outcome.key_id, outcome.customer_id)
        activation = None
        if outcome.activation_id:
            activation = convert.activation_out(await _activation(db, outcome.activation_id))
        return ValidatedLicenseKey(**fields, activation=activation)

    @post(
        "/activate",
        status_code=200,
        summary="Activate License Key",
        description="No authentication. Reserves one of the key's activations (race-safe against its limit).",
        responses=responses(
            (403, "`NotPermitted`: inactive or expired key, no activations, or the limit is reached."),
            auth=False,
        ),
    )
    async def activate(
        self, db: NamedDependency[Database], clock: NamedDependency[Clock], data: JSONBody[LicenseKeyActivate]
    ) -> LicenseKeyActivationCreated:
        try:
            outcome = await license_key_api.activate(
                db,
                organization_id=data.organization_id,
                key=data.key,
                label=data.label,
                now=clock.now(),
                conditions=data.conditions,
                meta=data.meta,
            )
        except license_key_api.LicenseKeyError as exc:
            raise _polar(exc) from None
        assert outcome.activation_id is not None
        activation = convert.activation_out(await _activation(db, outcome.activation_id))
        fields = await _key_fields(db, data.organization_id, outcome.key_id, outcome.customer_id)
        key = GrantedLicenseKey(**fields)
        return LicenseKeyActivationCreated(**msgspec.structs.asdict(activation), license_key=key)

    @post(
        "/deactivate",
        status_code=204,
        summary="Deactivate License Key",
        description="No authentication. Frees one activation of the key.",
        responses=responses(auth=False),
    )
    async def deactivate(
        self, db: NamedDependency[Database], clock: NamedDependency[Clock], data: JSONBody[LicenseKeyDeactivate]
    ) -> Response[None]:
        try:
            await license_key_api.deactivate(
                db,
                organization_id=data.organization_id,
                key=data.key,
                activation_id=data.activation_id,
                now=clock.now(),
            )
        except license_key_api.LicenseKeyError as exc:
            raise _polar(exc) from None
        return Response(None, status_code=204)
