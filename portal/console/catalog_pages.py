"""The Catalog section of the console, ``/console/<slug>/catalog…``: products and their prices, benefits with a
typed form per benefit type, downloadable files (upload, replace, hide from new customers), custom notes with a
preview, and which products grant which benefits.

Who may do what: every seller of the organization may look (support sellers get the same pages, read-only, with
the forms left out); every write, and every form page, requires the owner role (``access.require_org(...,
manage=True)``: 403 for support). Reads go through the areas' ``reads`` modules with ``Scope.of_organization``, so
another organization's id answers 404 like a missing one.

Writes go through the same service functions as the admin API (``portal.products.service``,
``portal.benefits.service``, ``portal.admin.deletions``), whose checks (``portal.references`` for benefit and file
ids) apply unchanged; each POST is CSRF-checked by the app, validates the whole form first (400: the page again,
each refused field named, nothing written), then writes and records its audit entry in one transaction. Product
writes queue no webhook (Portal has no ``product.*`` events, as for the admin API); deleting a benefit revokes its
grants, which queues ``benefit_grant.revoked`` exactly as ``DELETE /v1/benefits/{id}`` does.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import FormMultiDict, UploadFile
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, QueryParameter
from litestar.response import Template

from portal import i18n
from portal.admin import deletions
from portal.benefits import grants
from portal.benefits import reads as benefit_reads
from portal.benefits import service as benefit_service
from portal.benefits.reads import BenefitRecord
from portal.console import access, audit, layout
from portal.console.access import OrgAccess
from portal.db import Transaction
from portal.errors import DomainError
from portal.fields import AMOUNT_MAX, fold_header, single_line_problem
from portal.money import minor_unit_digits, to_decimal
from portal.organizations.service import currency_problem
from portal.portal_pages import text
from portal.products import reads as product_reads
from portal.products import service as product_service
from portal.products.reads import ProductRecord
from portal.scope import Scope
from portal.web import portal_state

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PRICE_ROWS = 8  # price rows a product form accepts (one per currency)
LIST_LIMIT = 100  # products / benefits listed per page of the catalog
# Room for the multipart envelope and the other fields around an uploaded file: the body limit of the upload routes
# is ``PORTAL_MAX_BODY_BYTES`` (``portal.limits``), the file itself may use the rest.
FORM_OVERHEAD = 64 * 1024
BILLING = ("once", "day", "week", "month", "year")
VISIBILITIES = ("public", "private", "draft")
BENEFIT_VISIBILITIES = ("public", "private")
PERMISSIONS = ("pull", "triage", "push", "maintain", "admin")
TIMEFRAMES = ("day", "month", "year")

# The form fields of each benefit type (besides description and visibility), in form order.
BENEFIT_FIELDS: dict[str, tuple[str, ...]] = {
    "custom": ("note",),
    "license_keys": (
        "prefix",
        "expires_ttl",
        "expires_timeframe",
        "activations_limit",
        "activations_customer_admin",
        "limit_usage",
        "allow_customer_rotation",
    ),
    "downloadables": (),
    "discord": ("invite_url", "guild_id", "role_id", "kick_member"),
    "github_repository": ("repository_owner", "repository_name", "permission", "invite_url"),
    "meter_credit": ("units", "meter_id", "rollover"),
    "feature_flag": ("metadata",),
}
CHECKBOXES = frozenset(
    {"activations_customer_admin", "allow_customer_rotation", "kick_member", "rollover", "is_public"}
)


def _notice(done: str | None) -> str | None:
    _ = i18n.gettext
    return layout.done_notice(
        done,
        {
            "created": _("Product created."),
            "saved": _("Product saved."),
            "archived": _("Product archived: it is no longer offered; its orders and subscriptions stay."),
            "unarchived": _("Product restored."),
            "benefits": _("Benefits of the product saved."),
            "benefit_created": _("Benefit created."),
            "benefit_saved": _("Benefit saved."),
            "benefit_deleted": _("Benefit deleted; the customers who held it lost it."),
            "uploaded": _("File uploaded."),
            "replaced": _("File replaced: customers who hold it now download the new file."),
            "file_hidden": _("File hidden from new customers."),
            "file_shown": _("File offered to new customers again."),
        },
    )


def _labels() -> dict[str, Any]:
    """Labels of the choices the templates show (translated per request)."""
    _ = i18n.gettext
    return {
        "billing": {
            "once": _("One-time purchase"),
            "day": _("Every day"),
            "week": _("Every week"),
            "month": _("Every month"),
            "year": _("Every year"),
        },
        "visibility": {
            "public": _("Public"),
            "private": _("Private"),
            "draft": _("Draft"),
        },
        "amount_type": {"fixed": _("Fixed price"), "custom": _("Pay what you want"), "free": _("Free")},
        "timeframe": {"day": _("days"), "month": _("months"), "year": _("years")},
        "permission": {
            "pull": _("Read"),
            "triage": _("Triage"),
            "push": _("Write"),
            "maintain": _("Maintain"),
            "admin": _("Admin"),
        },
    }


def _scope(access_: OrgAccess) -> Scope:
    return Scope.of_organization(access_.organization.id)


def _not_found() -> NotFoundException:
    return NotFoundException(i18n.gettext("Not found"))


async def _product(request: Request[Any, Any, Any], access_: OrgAccess, product_id: str) -> ProductRecord:
    db = portal_state(request.app.state).db
    found = await product_reads.get_product_record(db, _scope(access_), product_id) if _ID.match(product_id) else None
    if found is None:
        raise _not_found()
    return found


async def _benefit(request: Request[Any, Any, Any], access_: OrgAccess, benefit_id: str) -> BenefitRecord:
    db = portal_state(request.app.state).db
    found = await benefit_reads.get_benefit_record(db, _scope(access_), benefit_id) if _ID.match(benefit_id) else None
    if found is None:
        raise _not_found()
    return found


async def _form(request: Request[Any, Any, Any]) -> FormMultiDict:
    return await request.form()


def _field(form: FormMultiDict, name: str, limit: int = 5000) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


async def _record(
    access_: OrgAccess, tx: Transaction, action: str, target: str, details: dict[str, Any], now: datetime
) -> None:
    """The action's audit entry, in the action's own transaction."""
    await audit.record(
        tx,
        access_.actor,
        organization_id=access_.organization.id,
        action=action,
        target=target,
        details=details,
        now=now,
    )


# --- overview -------------------------------------------------------------------------------------------------


@get("/console/{slug:str}/catalog", name="console.catalog", include_in_schema=False)
async def catalog(
    request: Request[Any, Any, Any],
    slug: FromPath[str],
    done: layout.Done = None,
    products_page: Annotated[int, QueryParameter(ge=1, le=100_000)] = 1,
    benefits_page: Annotated[int, QueryParameter(ge=1, le=100_000)] = 1,
) -> Response[Any]:
    """The products (newest first; active, then archived) with their prices, and the benefits, a page of each."""
    access_ = await access.require_org(request, slug)
    db = portal_state(request.app.state).db
    scope = _scope(access_)
    products = await product_reads.list_product_records(
        db, scope, is_archived=None, is_recurring=None, page=products_page, limit=LIST_LIMIT
    )
    prices = await product_reads.price_rows_by_product(db, [p.id for p in products.records])
    benefits = await benefit_reads.list_benefit_records(db, scope, type=None, page=benefits_page, limit=LIST_LIMIT)
    return layout.page(
        access_,
        "catalog",
        "catalog",
        {
            "active_products": [p for p in products.records if not p.is_archived],
            "archived_products": [p for p in products.records if p.is_archived],
            "product_total": products.total,
            "prices": prices,
            "benefits": benefits.records,
            "benefit_total": benefits.total,
            "limit": LIST_LIMIT,
            "products_page": products_page,
            "benefits_page": benefits_page,
            "benefit_types": benefit_service.BENEFIT_TYPES,
            "labels": _labels(),
            "notice": _notice(done),
        },
    )


# --- products -------------------------------------------------------------------------------------------------


class PriceRow(msgspec.Struct, kw_only=True):
    """One price row of the product form, as typed (amounts in major units: ``19.99``)."""

    currency: str = ""
    amount_type: str = "fixed"
    amount: str = ""
    remove: bool = False
    existing: bool = False


class ProductForm(msgspec.Struct, kw_only=True):
    name: str = ""
    description: str = ""
    visibility: str = "public"
    billing: str = "once"
    interval_count: str = "1"
    prices: list[PriceRow] = []


def _amount_text(amount: int, currency: str) -> str:
    return str(to_decimal(amount, currency))


def _form_of(product: ProductRecord, prices: list[product_reads.PriceRecord]) -> ProductForm:
    rows = [
        PriceRow(
            currency=price.price_currency,
            amount_type=price.amount_type,
            amount=_amount_text(price.price_amount, price.price_currency),
            existing=True,
        )
        for price in prices
    ]
    return ProductForm(
        name=product.name,
        description=product.description or "",
        visibility=product.visibility,
        billing=(product.recurring_interval or "once") if product.is_recurring else "once",
        interval_count=str(product.recurring_interval_count),
        prices=rows,
    )


def _with_blank_row(form: ProductForm) -> ProductForm:
    """The form with one empty row to add a price in another currency (while there is room)."""
    if len(form.prices) < PRICE_ROWS and all(row.currency or row.amount for row in form.prices):
        return msgspec.structs.replace(form, prices=[*form.prices, PriceRow()])
    return form


def _minor_units(text_amount: str, currency: str) -> int | None:
    """``"19.99"`` in ``usd`` -> 1999; None unless a non-negative amount with at most the currency's decimals."""
    cleaned = text_amount.strip().replace(" ", "").replace(",", ".") or "0"
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not value.is_finite() or value < 0:
        return None
    scaled = value.scaleb(minor_unit_digits(currency))
    if scaled != scaled.to_integral_value() or scaled > AMOUNT_MAX:
        return None
    return int(scaled)


def _parse_product(
    form: FormMultiDict, current: product_service.ProductInput | None
) -> tuple[ProductForm, product_service.ProductInput | None, dict[str, str]]:
    """The typed form, the ``ProductInput`` it makes (None if refused) and the refused fields, each named."""
    _ = i18n.gettext
    errors: dict[str, str] = {}
    typed = ProductForm(
        name=_field(form, "name", 300),
        description=_field(form, "description", 5000),
        visibility=_field(form, "visibility", 20) or "public",
        billing=_field(form, "billing", 20),
        interval_count=_field(form, "interval_count", 10).strip() or "1",
        prices=[
            PriceRow(
                currency=_field(form, f"price-{i}-currency", 10).strip().lower(),
                amount_type=_field(form, f"price-{i}-type", 20) or "fixed",
                amount=_field(form, f"price-{i}-amount", 30).strip(),
                remove=form.get(f"price-{i}-remove") == "on",
                existing=form.get(f"price-{i}-existing") == "1",
            )
            for i in range(PRICE_ROWS)
            if f"price-{i}-currency" in form
        ],
    )
    name = typed.name.strip()
    if not name:
        errors["name"] = _("Enter a name.")
    elif len(name) > 200 or single_line_problem(name) is not None:
        errors["name"] = _("Use one line of at most 200 characters.")
    if typed.visibility not in VISIBILITIES:
        errors["visibility"] = _("Choose public, private or draft.")
    if typed.billing not in BILLING:
        errors["billing"] = _("Choose one-time or a billing interval.")
    count = int(typed.interval_count) if typed.interval_count.isdigit() else 0
    if typed.billing != "once" and not 1 <= count <= 365:
        errors["interval_count"] = _("Enter a whole number from 1 to 365.")
    prices: list[product_service.PriceInput] = []
    seen: set[str] = set()
    for index, row in enumerate(typed.prices):
        if row.remove or (not row.currency and not row.amount):
            continue
        key = f"price-{index}"
        if currency_problem(row.currency) is not None:
            errors[f"{key}-currency"] = _("Use a three-letter currency code such as usd or eur.")
            continue
        if row.currency in seen:
            errors[f"{key}-currency"] = _("One price per currency.")
            continue
        seen.add(row.currency)
        if row.amount_type not in ("fixed", "custom", "free"):
            errors[f"{key}-type"] = _("Choose fixed, pay what you want or free.")
            continue
        amount = 0 if row.amount_type == "free" else _minor_units(row.amount, row.currency)
        if amount is None or (row.amount_type == "fixed" and not row.amount):
            errors[f"{key}-amount"] = _("Enter an amount such as 19.99 (at most %(digits)d decimals).") % {
                "digits": minor_unit_digits(row.currency)
            }
            continue
        prices.append(product_service.PriceInput(amount=amount, currency=row.currency, amount_type=row.amount_type))  # type: ignore[arg-type]
    if not prices and not any(key.startswith("price-") for key in errors):
        errors["prices"] = _("Add at least one price.")
    if errors:
        return typed, None, errors
    base = current or product_service.ProductInput(name=name)
    data = msgspec.structs.replace(
        base,
        name=name,
        description=typed.description.strip() or None,
        visibility=typed.visibility,
        recurring_interval=None if typed.billing == "once" else typed.billing,
        recurring_interval_count=count if typed.billing != "once" else 1,
        prices=prices,
    )
    for problem in product_service.check_product(data):  # the service's own rules (already covered above)
        errors[_product_error_key(problem.field)] = problem.message
    return typed, (None if errors else data), errors


def _product_error_key(field: str | None) -> str:
    """A service error's field (``prices[0].currency``) as the form's (``prices``: rows may have been skipped)."""
    if not field:
        return "form"
    return "prices" if field.startswith("prices") else field.split(".")[0]


async def _product_page(
    request: Request[Any, Any, Any],
    access_: OrgAccess,
    product: ProductRecord | None,
    *,
    form: ProductForm | None = None,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
    benefit_errors: dict[str, str] | None = None,
) -> Template:
    db = portal_state(request.app.state).db
    scope = _scope(access_)
    context: dict[str, Any] = {
        "product": product,
        "errors": errors or {},
        "benefit_errors": benefit_errors or {},
        "labels": _labels(),
        "notice": notice,
        "billing_choices": BILLING,
        "visibility_choices": VISIBILITIES,
        "price_rows": PRICE_ROWS,
    }
    if product is not None:
        context["prices"] = await product_reads.list_price_records(db, product.id)
        context["granted"] = await product_reads.list_product_benefits(db, scope, product.id)
        every = await benefit_reads.list_benefit_records(db, scope, type=None, page=1, limit=LIST_LIMIT)
        context["all_benefits"] = every.records
        context["granted_ids"] = {benefit.id for benefit in context["granted"]}
        form = form or _form_of(product, context["prices"])
    context["form"] = _with_blank_row(form or ProductForm(prices=[]))
    status = 400 if errors or benefit_errors else 200
    return layout.page(access_, "catalog_product", "catalog", context, status_code=status)


@get("/console/{slug:str}/catalog/products/new", name="console.product_new", include_in_schema=False)
async def product_new(request: Request[Any, Any, Any], slug: FromPath[str]) -> Response[Any]:
    access_ = await access.require_org(request, slug, manage=True)
    return await _product_page(request, access_, None)


@post("/console/{slug:str}/catalog/products", name="console.product_create", include_in_schema=False, status_code=303)
async def product_create(request: Request[Any, Any, Any], slug: FromPath[str]) -> Response[Any]:
    """Create a product with its prices (``products.service.create_product``, as ``POST /v1/products``)."""
    access_ = await access.require_org(request, slug, manage=True)
    typed, data, errors = _parse_product(await _form(request), None)
    if data is None:
        return await _product_page(request, access_, None, form=typed, errors=errors)
    state = portal_state(request.app.state)
    now = state.clock.now()
    async with state.db.write() as tx:
        product_id = await product_service.create_product(tx, access_.organization.id, data, now=now)
        await _record(access_, tx, "product.create", product_id, _product_details(data), now)
    return layout.back(access_, f"/catalog/products/{product_id}", "created")


def _product_details(data: product_service.ProductInput) -> dict[str, Any]:
    return {
        "name": data.name,
        "visibility": data.visibility,
        "recurring_interval": data.recurring_interval,
        "prices": [f"{p.amount_type} {p.amount} {p.currency}" for p in data.prices],
    }


@get("/console/{slug:str}/catalog/products/{product_id:str}", name="console.product", include_in_schema=False)
async def product_page(
    request: Request[Any, Any, Any], slug: FromPath[str], product_id: FromPath[str], done: layout.Done = None
) -> Response[Any]:
    access_ = await access.require_org(request, slug)
    product = await _product(request, access_, product_id)
    return await _product_page(request, access_, product, notice=_notice(done))


@post(
    "/console/{slug:str}/catalog/products/{product_id:str}",
    name="console.product_update",
    include_in_schema=False,
    status_code=303,
)
async def product_update(
    request: Request[Any, Any, Any], slug: FromPath[str], product_id: FromPath[str]
) -> Response[Any]:
    """Save name, description, visibility, billing and prices (``update_product``, as ``PATCH /v1/products``: a
    changed amount archives the old price, so past orders keep pointing at what was paid)."""
    access_ = await access.require_org(request, slug, manage=True)
    product = await _product(request, access_, product_id)
    form = await _form(request)
    state = portal_state(request.app.state)
    now = state.clock.now()
    async with state.db.write() as tx:
        current = await product_service.current_input(tx, product.id)
        typed, data, errors = _parse_product(form, current)
        if data is not None:
            await product_service.update_product(tx, product.id, data, now=now)
            await _record(access_, tx, "product.update", product.id, _product_details(data), now)
    if data is None:
        return await _product_page(request, access_, product, form=typed, errors=errors)
    return layout.back(access_, f"/catalog/products/{product.id}", "saved")


@post(
    "/console/{slug:str}/catalog/products/{product_id:str}/archive",
    name="console.product_archive",
    include_in_schema=False,
    status_code=303,
)
async def product_archive(
    request: Request[Any, Any, Any], slug: FromPath[str], product_id: FromPath[str]
) -> Response[Any]:
    """Archive (``archived=true``, as ``DELETE /v1/products/{id}``) or restore (``archived=false``) a product."""
    access_ = await access.require_org(request, slug, manage=True)
    product = await _product(request, access_, product_id)
    form = await _form(request)
    archived = _field(form, "archived", 10)
    if archived not in ("true", "false"):
        error = {"archived": i18n.gettext("Choose to archive or to restore the product.")}
        return await _product_page(request, access_, product, errors=error)
    state = portal_state(request.app.state)
    now = state.clock.now()
    async with state.db.write() as tx:
        current = await product_service.current_input(tx, product.id)
        changed = msgspec.structs.replace(current, is_archived=archived == "true")
        await product_service.update_product(tx, product.id, changed, now=now)
        action = "product.archive" if archived == "true" else "product.unarchive"
        await _record(access_, tx, action, product.id, {"name": product.name}, now)
    return layout.back(access_, f"/catalog/products/{product.id}", "archived" if archived == "true" else "unarchived")


@post(
    "/console/{slug:str}/catalog/products/{product_id:str}/benefits",
    name="console.product_benefits",
    include_in_schema=False,
    status_code=303,
)
async def product_benefits(
    request: Request[Any, Any, Any], slug: FromPath[str], product_id: FromPath[str]
) -> Response[Any]:
    """Which benefits the product grants (``set_product_benefits``, as ``POST /v1/products/{id}/benefits``): the
    kept ones keep their order, new ones come last. Grants already given are untouched (see the page); with
    ``grant_existing``, the added benefits are also granted now to those who already hold the product."""
    access_ = await access.require_org(request, slug, manage=True)
    product = await _product(request, access_, product_id)
    form = await _form(request)
    chosen = [str(value)[:64] for value in form.getall("benefit", []) if isinstance(value, str)]
    state = portal_state(request.app.state)
    now = state.clock.now()
    try:
        async with state.db.write() as tx:
            current = await product_service.get_product_benefit_ids(tx, product.id)
            wanted = [b for b in current if b in chosen] + [b for b in dict.fromkeys(chosen) if b not in current]
            await product_service.set_product_benefits(tx, product.id, wanted, now=now)
            added = [b for b in wanted if b not in current]
            granted = 0
            if form.get("grant_existing") == "on":
                # The rule imports follow (``grants.grant_to_product_holders``): each paid one-time order and each
                # active or trialing subscription of the product gets the added benefits now, once.
                for benefit_id in added:
                    granted += await grants.grant_to_product_holders(tx, product.id, benefit_id, now=now)
            details = {
                "added": added,
                "removed": [b for b in current if b not in wanted],
                "granted_to_holders": granted,
            }
            await _record(access_, tx, "product.benefits", product.id, details, now)
    except DomainError:
        # An id that is not one of this organization's live benefits (``portal.references``): nothing was written.
        error = {"benefits": i18n.gettext("Choose among this organization's benefits.")}
        return await _product_page(request, access_, product, benefit_errors=error)
    return layout.back(access_, f"/catalog/products/{product.id}", "benefits")


# --- benefits -------------------------------------------------------------------------------------------------


def _benefit_values(benefit_type: str, props: dict[str, Any]) -> dict[str, Any]:
    """The form's values of a benefit's stored properties."""
    expires = props.get("expires") or {}
    activations = props.get("activations") or {}
    values: dict[str, Any] = {
        "note": props.get("note") or "",
        "prefix": props.get("prefix") or "",
        "expires_ttl": str(expires.get("ttl") or ""),
        "expires_timeframe": expires.get("timeframe") or "year",
        "activations_limit": str(activations.get("limit") or ""),
        "activations_customer_admin": bool(activations.get("enable_customer_admin")),
        "limit_usage": str(props.get("limit_usage") or ""),
        "allow_customer_rotation": bool(props.get("allow_customer_rotation", True)),
        "invite_url": props.get("invite_url") or "",
        "guild_id": props.get("guild_id") or "",
        "role_id": props.get("role_id") or "",
        "kick_member": bool(props.get("kick_member")),
        "repository_owner": props.get("repository_owner") or "",
        "repository_name": props.get("repository_name") or "",
        "permission": props.get("permission") or "pull",
        "units": str(props.get("units") or ""),
        "meter_id": props.get("meter_id") or "",
        "rollover": bool(props.get("rollover")),
        "metadata": "\n".join(f"{key}={value}" for key, value in (props.get("metadata") or {}).items()),
    }
    return values


def _whole(value: str, low: int, high: int, errors: dict[str, str], name: str) -> int | None:
    """An optional whole number from ``low`` to ``high``; the field is named in ``errors`` otherwise."""
    if not value:
        return None
    if not value.isdigit() or not low <= int(value) <= high:
        errors[name] = i18n.gettext("Enter a whole number from %(low)d to %(high)d.") % {"low": low, "high": high}
        return None
    return int(value)


def _flag_value(raw: str) -> str | int | float | bool:
    if raw in ("true", "false"):
        return raw == "true"
    if re.fullmatch(r"-?\d{1,15}", raw):
        return int(raw)
    return raw


def _properties(
    benefit_type: str, values: dict[str, Any], current: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    """The ``properties`` of the typed form (Polar's ``Benefit*Properties`` shape), refused fields in ``errors``."""
    _ = i18n.gettext
    if benefit_type == "custom":
        return {"note": values["note"] or None}
    if benefit_type == "license_keys":
        props: dict[str, Any] = {
            "prefix": values["prefix"] or None,
            "allow_customer_rotation": values["allow_customer_rotation"],
            "expires": None,
            "activations": None,
            "limit_usage": _whole(values["limit_usage"], 1, 10**9, errors, "limit_usage"),
        }
        if values["prefix"] and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{0,15}", values["prefix"]):
            errors["prefix"] = _("Use 1 to 16 letters, digits or dashes.")
        timeframe = values["expires_timeframe"]
        if timeframe not in TIMEFRAMES:
            errors["expires_timeframe"] = _("Choose days, months or years.")
        else:
            ttl = _whole(values["expires_ttl"], 1, benefit_service.MAX_KEY_TTL[timeframe], errors, "expires_ttl")
            props["expires"] = None if ttl is None else {"ttl": ttl, "timeframe": timeframe}
        limit = _whole(values["activations_limit"], 1, 50, errors, "activations_limit")
        if limit is not None:
            props["activations"] = {"limit": limit, "enable_customer_admin": values["activations_customer_admin"]}
        return props
    if benefit_type == "downloadables":
        # Files are managed on the benefit's page (upload, replace, hide); the form keeps them as they are.
        return {"files": current.get("files", []), "archived": current.get("archived", {})}
    if benefit_type == "discord":
        return {
            "invite_url": values["invite_url"] or None,
            "guild_id": values["guild_id"] or None,
            "role_id": values["role_id"] or None,
            "kick_member": values["kick_member"],
        }
    if benefit_type == "github_repository":
        if values["permission"] not in PERMISSIONS:
            errors["permission"] = _("Choose a permission.")
        for name in ("repository_owner", "repository_name"):
            if not values[name]:
                errors[name] = _("Required.")
        return {
            "repository_owner": values["repository_owner"],
            "repository_name": values["repository_name"],
            "permission": values["permission"] if values["permission"] in PERMISSIONS else "pull",
            "invite_url": values["invite_url"] or None,
        }
    if benefit_type == "meter_credit":
        units = _whole(values["units"], 1, AMOUNT_MAX, errors, "units")
        if units is None and "units" not in errors:
            errors["units"] = _("Required.")
        if not values["meter_id"]:
            errors["meter_id"] = _("Required.")
        return {"units": units or 1, "meter_id": values["meter_id"], "rollover": values["rollover"]}
    metadata: dict[str, Any] = {}
    for line in str(values["metadata"]).splitlines():
        if not line.strip():
            continue
        key, sep, raw = line.partition("=")
        if not sep or not key.strip():
            errors["metadata"] = _("Write one key=value per line.")
            break
        metadata[key.strip()] = _flag_value(raw.strip())
    return {"metadata": metadata}


def _typed_benefit(form: FormMultiDict, benefit_type: str) -> dict[str, Any]:
    values: dict[str, Any] = {
        "description": _field(form, "description", 300),
        "visibility": _field(form, "visibility", 20),
    }
    for name in BENEFIT_FIELDS.get(benefit_type, ()):
        values[name] = form.get(name) == "on" if name in CHECKBOXES else _field(form, name, 5000).strip()
    if benefit_type == "custom":
        values["note"] = _field(form, "note", 20000)  # the note keeps its own blank lines and indentation
    return values


def _service_error_key(benefit_type: str, field: str | None) -> str:
    """A service error's field (``properties.activations.limit``) as the form's (``activations_limit``)."""
    if not field:
        return "form"
    path = re.sub(r"\[\d+\]", "", field.removeprefix("properties.")).replace(".", "_")
    fields = {"description", "visibility", *BENEFIT_FIELDS.get(benefit_type, ())}
    for candidate in (path, path.split("_")[0], path.rsplit("_", 1)[0]):
        if candidate in fields:
            return candidate
    if path.startswith("expires"):
        return "expires_ttl"
    return "form"


def _parse_benefit(
    form: FormMultiDict, benefit_type: str, current: BenefitRecord | None
) -> tuple[dict[str, Any], benefit_service.BenefitInput | None, dict[str, str]]:
    _ = i18n.gettext
    values = _typed_benefit(form, benefit_type)
    errors: dict[str, str] = {}
    description = values["description"].strip()
    if not description or len(description) > 120 or single_line_problem(description) is not None:
        errors["description"] = _("Use one line of 1 to 120 characters.")
    visibility: str | None = values["visibility"] or None
    if benefit_type not in benefit_service.VISIBILITY_CONFIGURABLE:
        visibility = "public"
    elif visibility is not None and visibility not in BENEFIT_VISIBILITIES:  # None: the type's default
        errors["visibility"] = _("Choose shown or hidden.")
    current_props = msgspec.json.decode(current.properties) if current is not None else {}
    props = _properties(benefit_type, values, current_props, errors)
    data = benefit_service.BenefitInput(
        type=benefit_type,  # type: ignore[arg-type]
        description=description,
        properties=props,
        external_id=current.external_id if current is not None else None,
        metadata=msgspec.json.decode(current.metadata) if current is not None else {},
        visibility=visibility,  # type: ignore[arg-type]
    )
    if not errors:  # the service's own rules, for what the form's checks above do not cover
        for problem in benefit_service.check_benefit(data):
            errors.setdefault(_service_error_key(benefit_type, problem.field), problem.message)
    return values, (None if errors else data), errors


async def _benefit_page(
    request: Request[Any, Any, Any],
    access_: OrgAccess,
    benefit_type: str,
    benefit: BenefitRecord | None,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    file_errors: dict[str, str] | None = None,
    file_target: str | None = None,
    preview: str | None = None,
    notice: str | None = None,
) -> Template:
    state = portal_state(request.app.state)
    db = state.db
    scope = _scope(access_)
    props = msgspec.json.decode(benefit.properties) if benefit is not None else {}
    context: dict[str, Any] = {
        "benefit": benefit,
        "benefit_type": benefit_type,
        "fields": BENEFIT_FIELDS[benefit_type],
        "visibility_configurable": benefit_type in benefit_service.VISIBILITY_CONFIGURABLE,
        "values": values
        or {
            "description": benefit.description if benefit else "",
            "visibility": benefit.visibility if benefit else benefit_service.default_visibility(benefit_type),
            **_benefit_values(benefit_type, props),
        },
        "errors": errors or {},
        "file_errors": file_errors or {},
        "file_target": file_target,
        "labels": _labels(),
        "timeframes": TIMEFRAMES,
        "permissions": PERMISSIONS,
        "preview": preview,
        "notice": notice,
        "max_file_bytes": state.settings.max_body_bytes - FORM_OVERHEAD,
    }
    if benefit is not None:
        context["products"] = await product_reads.list_products_granting(db, scope, benefit.id)
        holders = await benefit_reads.list_grant_records(
            db, scope, benefit_id=benefit.id, order_id=None, subscription_id=None, is_granted=True, page=1, limit=1
        )
        context["holders"] = holders.total
        file_ids = [str(f) for f in props.get("files", [])]
        found = (
            await benefit_reads.list_file_records(db, scope, page=1, limit=LIST_LIMIT, ids=file_ids)
            if file_ids
            else None
        )
        by_id = {record.id: record for record in (found.records if found else [])}
        context["files"] = [by_id[f] for f in file_ids if f in by_id]
        context["hidden_files"] = {f for f, hidden in (props.get("archived") or {}).items() if hidden}
    status = 400 if errors or file_errors else 200
    return layout.page(access_, "catalog_benefit", "catalog", context, status_code=status)


def _benefit_type(value: str | None) -> str:
    if value not in BENEFIT_FIELDS:
        raise _not_found()
    return value


@get("/console/{slug:str}/catalog/benefits/new/{benefit_type:str}", name="console.benefit_new", include_in_schema=False)
async def benefit_new(
    request: Request[Any, Any, Any], slug: FromPath[str], benefit_type: FromPath[str]
) -> Response[Any]:
    access_ = await access.require_org(request, slug, manage=True)
    return await _benefit_page(request, access_, _benefit_type(benefit_type), None)


@post(
    "/console/{slug:str}/catalog/benefits/new/{benefit_type:str}",
    name="console.benefit_create",
    include_in_schema=False,
    status_code=303,
)
async def benefit_create(
    request: Request[Any, Any, Any], slug: FromPath[str], benefit_type: FromPath[str]
) -> Response[Any]:
    """Create a benefit of the type (``benefits.service.create_benefit``, as ``POST /v1/benefits``); with
    ``preview`` (the note's preview button), show the page again with the note as customers will see it."""
    access_ = await access.require_org(request, slug, manage=True)
    kind = _benefit_type(benefit_type)
    form = await _form(request)
    values, data, errors = _parse_benefit(form, kind, None)
    if form.get("preview") == "1":
        note = _typed_benefit(form, kind).get("note", "")
        return await _benefit_page(request, access_, kind, None, values=values, preview=text.linkify(note))
    if data is None:
        return await _benefit_page(request, access_, kind, None, values=values, errors=errors)
    state = portal_state(request.app.state)
    now = state.clock.now()
    async with state.db.write() as tx:
        benefit_id = await benefit_service.create_benefit(tx, access_.organization.id, data, now=now)
        await _record(access_, tx, "benefit.create", benefit_id, {"type": kind, "description": data.description}, now)
    return layout.back(access_, f"/catalog/benefits/{benefit_id}", "benefit_created")


@get("/console/{slug:str}/catalog/benefits/{benefit_id:str}", name="console.benefit", include_in_schema=False)
async def benefit_page(
    request: Request[Any, Any, Any], slug: FromPath[str], benefit_id: FromPath[str], done: layout.Done = None
) -> Response[Any]:
    access_ = await access.require_org(request, slug)
    benefit = await _benefit(request, access_, benefit_id)
    preview = text.linkify(msgspec.json.decode(benefit.properties).get("note")) if benefit.type == "custom" else None
    return await _benefit_page(request, access_, benefit.type, benefit, preview=preview, notice=_notice(done))


@post(
    "/console/{slug:str}/catalog/benefits/{benefit_id:str}",
    name="console.benefit_update",
    include_in_schema=False,
    status_code=303,
)
async def benefit_update(
    request: Request[Any, Any, Any], slug: FromPath[str], benefit_id: FromPath[str]
) -> Response[Any]:
    """Save the benefit (``update_benefit``, as ``PATCH /v1/benefits/{id}``); ``preview``: show the note as
    customers will see it, nothing saved. License keys already issued keep their limits and expiry (the settings
    apply to keys issued from now on); a changed note shows at once to everyone holding the benefit."""
    access_ = await access.require_org(request, slug, manage=True)
    benefit = await _benefit(request, access_, benefit_id)
    form = await _form(request)
    values, data, errors = _parse_benefit(form, benefit.type, benefit)
    if form.get("preview") == "1":
        note = values.get("note", "")
        return await _benefit_page(request, access_, benefit.type, benefit, values=values, preview=text.linkify(note))
    if data is None:
        return await _benefit_page(request, access_, benefit.type, benefit, values=values, errors=errors)
    state = portal_state(request.app.state)
    now = state.clock.now()
    async with state.db.write() as tx:
        await benefit_service.update_benefit(tx, benefit.id, data, now=now)
        await _record(
            access_, tx, "benefit.update", benefit.id, {"description": data.description, **data.properties}, now
        )
    return layout.back(access_, f"/catalog/benefits/{benefit.id}", "benefit_saved")


@post(
    "/console/{slug:str}/catalog/benefits/{benefit_id:str}/delete",
    name="console.benefit_delete",
    include_in_schema=False,
    status_code=303,
)
async def benefit_delete(
    request: Request[Any, Any, Any], slug: FromPath[str], benefit_id: FromPath[str]
) -> Response[Any]:
    """Delete the benefit (``deletions.delete_benefit``, as ``DELETE /v1/benefits/{id}``): it leaves its products,
    its live grants are revoked (license keys too; ``benefit_grant.revoked`` webhooks queued)."""
    access_ = await access.require_org(request, slug, manage=True)
    benefit = await _benefit(request, access_, benefit_id)
    state = portal_state(request.app.state)
    now = state.clock.now()
    async with state.db.write() as tx:
        live = await benefit_reads.list_grant_records(
            tx,
            _scope(access_),
            benefit_id=benefit.id,
            order_id=None,
            subscription_id=None,
            is_granted=True,
            page=1,
            limit=1,
        )
        await deletions.delete_benefit(tx, benefit.id, now=now)
        await _record(
            access_,
            tx,
            "benefit.delete",
            benefit.id,
            {"description": benefit.description, "revoked_grants": live.total},
            now,
        )
    return layout.back(access_, "/catalog", "benefit_deleted")


# --- downloadable files ---------------------------------------------------------------------------------------


async def _downloadables(request: Request[Any, Any, Any], access_: OrgAccess, benefit_id: str) -> BenefitRecord:
    benefit = await _benefit(request, access_, benefit_id)
    if benefit.type != "downloadables":
        raise _not_found()
    return benefit


async def _upload(
    request: Request[Any, Any, Any], form: FormMultiDict
) -> tuple[bytes, str, str, str | None, dict[str, str]]:
    """The uploaded file's bytes, name, MIME type and version, or the refused fields."""
    _ = i18n.gettext
    limit = portal_state(request.app.state).settings.max_body_bytes - FORM_OVERHEAD
    upload = form.get("file")
    content = await upload.read(limit + 1) if isinstance(upload, UploadFile) else b""
    errors: dict[str, str] = {}
    if not content:
        errors["file"] = _("Choose a file (it must not be empty).")
    elif len(content) > limit:
        errors["file"] = _("The file is too large: at most %(size)s.") % {"size": text.file_size(limit)}
    name = fold_header(upload.filename or "").strip() if isinstance(upload, UploadFile) else ""
    mime_type = (upload.content_type if isinstance(upload, UploadFile) else "") or "application/octet-stream"
    version = _field(form, "version", 100).strip() or None
    if version is not None and single_line_problem(version) is not None:
        errors["version"] = _("Use one line.")
    return content, name or "file", mime_type, version, errors


def _file_error_key(field: str | None) -> str:
    return "version" if field == "version" else "file"


@post(
    "/console/{slug:str}/catalog/benefits/{benefit_id:str}/files",
    name="console.benefit_file_upload",
    include_in_schema=False,
    status_code=303,
)
async def benefit_file_upload(
    request: Request[Any, Any, Any], slug: FromPath[str], benefit_id: FromPath[str]
) -> Response[Any]:
    """Upload a file and add it to the benefit (``register_file``, as ``POST /v1/files``, then the benefit's
    ``files``); customers who get the benefit from now on get it."""
    access_ = await access.require_org(request, slug, manage=True)
    benefit = await _downloadables(request, access_, benefit_id)
    content, name, mime_type, version, errors = await _upload(request, await _form(request))
    if errors:
        return await _benefit_page(request, access_, benefit.type, benefit, file_errors=errors, file_target="new")
    state = portal_state(request.app.state)
    now = state.clock.now()
    stored: benefit_service.StoredFile | None = None
    try:
        async with state.db.write() as tx:
            stored = await benefit_service.register_file(
                tx,
                access_.organization.id,
                name=name,
                content=content,
                mime_type=mime_type,
                files_dir=state.settings.files_dir,
                now=now,
                version=version,
            )
            row = await benefit_service.get_benefit_row(tx, benefit.id, organization_id=access_.organization.id)
            props = msgspec.json.decode(row["properties"])
            props["files"] = [*props.get("files", []), stored.id]
            await benefit_service.update_benefit(tx, benefit.id, _same_benefit(row, props), now=now)
            await _record(
                access_,
                tx,
                "benefit.file_upload",
                benefit.id,
                {"file_id": stored.id, "name": name, "size": len(content)},
                now,
            )
    except DomainError as exc:
        if stored is not None:  # the bytes landed before the refusal: nothing may stay half-written
            await asyncio.to_thread((state.settings.files_dir / stored.path).unlink, True)
        errors = {_file_error_key(exc.field): exc.message}
        return await _benefit_page(request, access_, benefit.type, benefit, file_errors=errors, file_target="new")
    except BaseException:
        if stored is not None:
            await asyncio.to_thread((state.settings.files_dir / stored.path).unlink, True)
        raise
    return layout.back(access_, f"/catalog/benefits/{benefit.id}", "uploaded")


def _same_benefit(row: Any, props: dict[str, Any]) -> benefit_service.BenefitInput:
    """The benefit row as ``update_benefit``'s input, with new ``properties``."""
    return benefit_service.BenefitInput(
        type=row["type"],
        description=row["description"],
        properties=props,
        external_id=row["external_id"],
        metadata=msgspec.json.decode(row["metadata"]),
        visibility=row["visibility"],
    )


def _listed_file(benefit: BenefitRecord, file_id: str) -> str:
    if file_id not in msgspec.json.decode(benefit.properties).get("files", []):
        raise _not_found()
    return file_id


@post(
    "/console/{slug:str}/catalog/benefits/{benefit_id:str}/files/{file_id:str}/replace",
    name="console.benefit_file_replace",
    include_in_schema=False,
    status_code=303,
)
async def benefit_file_replace(
    request: Request[Any, Any, Any], slug: FromPath[str], benefit_id: FromPath[str], file_id: FromPath[str]
) -> Response[Any]:
    """Replace a file's bytes, keeping its id (``benefits.service.replace_file``): everyone who holds it downloads
    the new file from now on. The old bytes are removed after the commit."""
    access_ = await access.require_org(request, slug, manage=True)
    benefit = await _downloadables(request, access_, benefit_id)
    file_id = _listed_file(benefit, file_id)
    content, name, mime_type, version, errors = await _upload(request, await _form(request))
    if errors:
        return await _benefit_page(request, access_, benefit.type, benefit, file_errors=errors, file_target=file_id)
    state = portal_state(request.app.state)
    now = state.clock.now()
    files_dir = state.settings.files_dir
    try:
        async with state.db.write() as tx:
            stored, old_path = await benefit_service.replace_file(
                tx,
                access_.organization.id,
                file_id,
                name=name,
                content=content,
                mime_type=mime_type,
                files_dir=files_dir,
                now=now,
                version=version,
            )
            try:
                await _record(
                    access_,
                    tx,
                    "benefit.file_replace",
                    benefit.id,
                    {"file_id": file_id, "name": name, "size": len(content)},
                    now,
                )
            except BaseException:
                await asyncio.to_thread((files_dir / stored.path).unlink, True)
                raise
    except DomainError as exc:
        errors = {_file_error_key(exc.field): exc.message}
        return await _benefit_page(request, access_, benefit.type, benefit, file_errors=errors, file_target=file_id)
    await asyncio.to_thread((files_dir / old_path).unlink, True)
    return layout.back(access_, f"/catalog/benefits/{benefit.id}", "replaced")


@post(
    "/console/{slug:str}/catalog/benefits/{benefit_id:str}/files/{file_id:str}/archive",
    name="console.benefit_file_archive",
    include_in_schema=False,
    status_code=303,
)
async def benefit_file_archive(
    request: Request[Any, Any, Any], slug: FromPath[str], benefit_id: FromPath[str], file_id: FromPath[str]
) -> Response[Any]:
    """Hide a file from customers who get the benefit from now on (``archived=true``; those who hold it keep it),
    or offer it again (``archived=false``): the benefit's ``archived`` map, as Polar's."""
    access_ = await access.require_org(request, slug, manage=True)
    benefit = await _downloadables(request, access_, benefit_id)
    file_id = _listed_file(benefit, file_id)
    archived = _field(await _form(request), "archived", 10)
    if archived not in ("true", "false"):
        errors = {"file": i18n.gettext("Choose to hide or to offer the file.")}
        return await _benefit_page(request, access_, benefit.type, benefit, file_errors=errors, file_target=file_id)
    state = portal_state(request.app.state)
    now = state.clock.now()
    async with state.db.write() as tx:
        row = await benefit_service.get_benefit_row(tx, benefit.id, organization_id=access_.organization.id)
        props = msgspec.json.decode(row["properties"])
        hidden = {k: v for k, v in (props.get("archived") or {}).items() if v and k != file_id}
        if archived == "true":
            hidden[file_id] = True
        props["archived"] = hidden
        await benefit_service.update_benefit(tx, benefit.id, _same_benefit(row, props), now=now)
        action = "benefit.file_hide" if archived == "true" else "benefit.file_show"
        await _record(access_, tx, action, benefit.id, {"file_id": file_id}, now)
    return layout.back(
        access_, f"/catalog/benefits/{benefit.id}", "file_hidden" if archived == "true" else "file_shown"
    )


ROUTES = [
    catalog,
    product_new,
    product_create,
    product_page,
    product_update,
    product_archive,
    product_benefits,
    benefit_new,
    benefit_create,
    benefit_page,
    benefit_update,
    benefit_delete,
    benefit_file_upload,
    benefit_file_replace,
    benefit_file_archive,
]
