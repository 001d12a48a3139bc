"""The console's settings page (owners), ``/console/<slug>/settings``: branding (name, accent colour refused below
WCAG AA contrast, logo) with live previews of what customers see (``portal.console.previews``), sender name and
reply-to, which emails are sent, which customer actions are allowed (plan change, email change, cancel, license-key
rotation), and invoice details (seller address, VAT/tax ID). Everything is written through the organizations
service (``portal.organizations.service.update_organization``) with its audit entry in the same transaction.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, QueryParameter

from portal import i18n
from portal.console import access, audit, layout, logos, previews
from portal.console.access import OrgAccess
from portal.customers.tax_ids import InvalidTaxID, validate_tax_id
from portal.errors import DomainError
from portal.fields import single_line_problem
from portal.notifications.org_settings import SETTINGS_KEY, email_settings
from portal.organizations import service as org_service
from portal.organizations.customer_actions import SETTINGS_KEY as ACTIONS_KEY
from portal.organizations.customer_actions import customer_actions
from portal.organizations.queries import INVOICE_SETTINGS_KEY, Organization
from portal.templating.accent import LIGHT_SURFACE, MIN_CONTRAST, contrast
from portal.web import portal_state


def _notice(done: str | None) -> str | None:
    return layout.done_notice(done, {"saved": i18n.gettext("Settings saved.")})


# The customer-action switches: form field -> key of ``settings.customer_actions``.
_ACTION_SWITCHES = {"allow_cancel": "cancel", "allow_key_rotation": "license_key_rotation"}
_ACCENT = re.compile(r"#[0-9a-f]{6}")
_EMAIL_SWITCHES = (
    "order_receipt",
    "order_refund",
    "subscription_canceled",
    "subscription_uncanceled",
    "subscription_updated",
    "renewal_reminder",
    "subscription_payment_failed",
)


def _invoice_settings(org: Organization) -> dict[str, str]:
    value = msgspec.json.decode(org.settings or "{}")
    invoice = value.get(INVOICE_SETTINGS_KEY) if isinstance(value, dict) else None
    return {k: str(v) for k, v in invoice.items()} if isinstance(invoice, dict) else {}


def _preview_urls(access_: OrgAccess, name: str, accent: str) -> dict[str, str]:
    """The preview frames' addresses for these (possibly unsaved) branding values."""
    query = urlencode({"name": name, "accent_color": accent})
    base = f"/console/{access_.organization.slug}/settings/preview"
    return {kind: f"{base}/{kind}?{query}" for kind in previews.KINDS}


def _settings_context(access_: OrgAccess) -> dict[str, Any]:
    org = access_.organization
    switches = email_settings(org.settings)
    return {
        "previews": _preview_urls(access_, org.name, org.accent_color),
        "values": {
            "name": org.name,
            "support_email": org.support_email or "",
            "email_sender_name": org.email_sender_name or "",
            "email_reply_to": org.email_reply_to or "",
            "accent_color": org.accent_color,
            "address": org.address or "",
            "tax_country": _invoice_settings(org).get("country", ""),
            "tax_id": _invoice_settings(org).get("tax_id", ""),
            "allow_plan_change": org.allow_plan_change,
            "allow_email_change": org.allow_email_change,
            "allow_cancel": org.allow_cancel,
            "allow_key_rotation": org.allow_key_rotation,
            "emails": {key: getattr(switches, key) for key in _EMAIL_SWITCHES},
        },
        "switch_labels": _switch_labels(),
        "preview_titles": _preview_titles(),
        "errors": {},
    }


def _preview_titles() -> list[tuple[str, str]]:
    _ = i18n.gettext
    titles = {
        "signin": _("the sign-in page of your portal"),
        "portal": _("a portal page (orders)"),
        "receipt": _("a receipt"),
        "email": _("the sign-in code email"),
        "receipt_email": _("the order receipt email"),
    }
    return [(kind, titles[kind]) for kind in previews.KINDS]


def _switch_labels() -> dict[str, str]:
    _ = i18n.gettext
    return {
        "order_receipt": _("Receipt when an order is paid"),
        "order_refund": _("Refund receipt"),
        "subscription_canceled": _("Subscription canceled"),
        "subscription_uncanceled": _("Subscription resumed"),
        "subscription_updated": _("Plan changed"),
        "renewal_reminder": _("Renewal reminder"),
        "subscription_payment_failed": _("Renewal payment failed"),
    }


@get("/console/{slug:str}/settings", name="console.settings", include_in_schema=False)
async def settings_page(
    request: Request[Any, Any, Any], slug: FromPath[str], done: layout.Done = None
) -> Response[Any]:
    access_ = await access.require_org(request, slug, manage=True)
    return layout.page(access_, "settings", "settings", _settings_context(access_) | {"notice": _notice(done)})


def _preview_org(access_: OrgAccess, name: str | None, accent: str | None) -> Organization:
    """The organization with unsaved branding values, each kept only if valid (a preview never shows a refused
    value as if it were fine)."""
    org = access_.organization
    changes: dict[str, str] = {}
    if name and name.strip() and len(name) <= 100 and single_line_problem(name) is None:
        changes["name"] = name.strip()
    if accent and _ACCENT.fullmatch(accent.lower()) and contrast(accent.lower(), LIGHT_SURFACE) >= MIN_CONTRAST:
        changes["accent_color"] = accent.lower()
    return msgspec.structs.replace(org, **changes)


@get("/console/{slug:str}/settings/preview/{kind:str}", name="console.settings_preview", include_in_schema=False)
async def settings_preview(
    request: Request[Any, Any, Any],
    slug: FromPath[str],
    kind: FromPath[str],
    name: Annotated[str | None, QueryParameter(name="name", max_length=200)] = None,
    accent_color: Annotated[str | None, QueryParameter(name="accent_color", max_length=16)] = None,
) -> Response[Any]:
    """What customers would see with these branding values: the sign-in page, a portal page, a receipt, the
    sign-in email or the receipt email (``previews.KINDS``), with sample data."""
    access_ = await access.require_org(request, slug, manage=True)
    if kind not in previews.KINDS:
        raise NotFoundException(i18n.gettext("Not found"))
    state = portal_state(request.app.state)
    return previews.render_preview(
        request,
        kind,
        _preview_org(access_, name, accent_color),
        settings=state.settings,
        seller_email=access_.seller.email,
        now=state.clock.now(),
    )


@post("/console/{slug:str}/settings/preview", name="console.settings_preview_form", include_in_schema=False)
async def settings_preview_form(request: Request[Any, Any, Any], slug: FromPath[str]) -> Response[Any]:
    """The settings page again, with the values as typed (nothing saved) and the previews showing them."""
    access_ = await access.require_org(request, slug, manage=True)
    form = await _settings_form(request)
    context = _settings_context(access_)
    context["values"] |= {key: form.get(key, "") for key in context["values"] if key not in ("emails",)}
    context["values"]["allow_plan_change"] = form.get("allow_plan_change") == "on"
    context["values"]["allow_email_change"] = form.get("allow_email_change") == "on"
    for field in _ACTION_SWITCHES:
        context["values"][field] = form.get(field) == "on"
    context["values"]["emails"] = {key: form.get(f"emails_{key}") == "on" for key in _EMAIL_SWITCHES}
    context["previews"] = _preview_urls(access_, form.get("name", ""), form.get("accent_color", ""))
    context["previewing"] = True
    return layout.page(access_, "settings", "settings", context)


@post("/console/{slug:str}/settings/logo", name="console.settings_logo", include_in_schema=False, status_code=303)
async def settings_logo(request: Request[Any, Any, Any], slug: FromPath[str]) -> Response[Any]:
    """Upload the organization's logo (PNG or JPEG, at most 48 KiB; SVG is refused, see ``logos``), or remove it
    (``remove``)."""
    access_ = await access.require_org(request, slug, manage=True)
    _ = i18n.gettext
    state = portal_state(request.app.state)
    form = await request.form()
    org = access_.organization
    avatar_url: str | None = None
    if form.get("remove") != "on":
        upload = form.get("logo")
        content = await upload.read(logos.MAX_LOGO_BYTES + 1) if isinstance(upload, UploadFile) else b""
        extension = logos.kind_of(content)
        problem = None
        if not content:
            problem = _("Choose a PNG or JPEG file.")
        elif len(content) > logos.MAX_LOGO_BYTES:
            problem = _("The logo is too large: at most 48 KB.")
        elif extension is None:
            problem = _("The logo must be a PNG or JPEG image.")
        if problem is not None or extension is None:
            context = _settings_context(access_) | {"errors": {"logo": problem}}
            return layout.page(access_, "settings", "settings", context, status_code=400)
        relative = logos.relative_path(org.id, content, extension)
        await logos.store(state.settings.files_dir, relative, content)
        avatar_url = f"{state.settings.public_base_url}/{relative}"
    now = state.clock.now()
    async with state.db.write() as tx:
        await org_service.update_organization(
            tx, org.id, org_service.OrganizationUpdate(avatar_url=avatar_url), now=now
        )
        await audit.record(
            tx,
            access_.actor,
            organization_id=org.id,
            action="settings.logo",
            target=org.slug,
            details={"avatar_url": avatar_url},
            now=now,
        )
    return layout.back(access_, "/settings", "saved")


async def _settings_form(request: Request[Any, Any, Any]) -> dict[str, str]:
    form = await request.form()
    return {key: str(form.get(key) or "") for key in form}


def _optional(value: str) -> str | None:
    value = value.strip()
    return value or None


@post("/console/{slug:str}/settings", name="console.settings_save", include_in_schema=False, status_code=303)
async def settings_save(request: Request[Any, Any, Any], slug: FromPath[str]) -> Response[Any]:
    """Save branding, email and customer-action settings through the organizations service; a refused field is
    named inline (400) and nothing is written."""
    access_ = await access.require_org(request, slug, manage=True)
    _ = i18n.gettext
    form = await _settings_form(request)
    org = access_.organization
    accent = form.get("accent_color", "").strip().lower()
    errors: dict[str, str] = {}
    if _ACCENT.fullmatch(accent) and contrast(accent, LIGHT_SURFACE) < MIN_CONTRAST:
        errors["accent_color"] = _(
            "This colour is too light for text on a white page (contrast %(ratio).1f:1, at least 4.5:1 needed)."
        ) % {"ratio": contrast(accent, LIGHT_SURFACE)}
    current_settings = msgspec.json.decode(org.settings) if org.settings else {}
    if not isinstance(current_settings, dict):
        current_settings = {}
    emails_now = msgspec.structs.asdict(email_settings(org.settings))
    emails_new = emails_now | {key: form.get(f"emails_{key}") == "on" for key in _EMAIL_SWITCHES}
    actions_now = msgspec.structs.asdict(customer_actions(org.settings))
    actions_new = {key: form.get(field) == "on" for field, key in _ACTION_SWITCHES.items()}
    tax_country = form.get("tax_country", "").strip().upper()
    tax_number = form.get("tax_id", "").strip()
    invoice: dict[str, str] | None = None
    if tax_number:
        if not re.fullmatch(r"[A-Z]{2}", tax_country):
            errors["tax_country"] = _("Enter the two-letter country code the tax ID belongs to (e.g. DE, FR, US).")
        else:
            try:
                compact, tax_format = validate_tax_id(tax_number[:64], tax_country)
            except InvalidTaxID:
                errors["tax_id"] = _("This is not a valid tax ID for %(country)s.") % {"country": tax_country}
            else:
                invoice = {"tax_id": compact, "tax_id_format": tax_format, "country": tax_country}
    new_settings = {k: v for k, v in current_settings.items() if k != INVOICE_SETTINGS_KEY}
    if invoice is not None:
        new_settings[INVOICE_SETTINGS_KEY] = invoice
    changes = org_service.OrganizationUpdate(
        name=form.get("name", "").strip(),
        support_email=_optional(form.get("support_email", "")),
        email_sender_name=_optional(form.get("email_sender_name", "")),
        email_reply_to=_optional(form.get("email_reply_to", "")),
        accent_color=accent,
        address=_optional(form.get("address", "")),
        allow_plan_change=form.get("allow_plan_change") == "on",
        allow_email_change=form.get("allow_email_change") == "on",
        settings=new_settings | {SETTINGS_KEY: emails_new, ACTIONS_KEY: actions_new},
    )
    state = portal_state(request.app.state)
    now = state.clock.now()
    if not errors:
        try:
            async with state.db.write() as tx:
                await org_service.update_organization(tx, org.id, changes, now=now)
                changed = {
                    field: getattr(changes, field)
                    for field in (
                        "name",
                        "support_email",
                        "email_sender_name",
                        "email_reply_to",
                        "accent_color",
                        "address",
                        "allow_plan_change",
                        "allow_email_change",
                    )
                    if getattr(changes, field) != getattr(org, field)
                }
                if actions_new != actions_now:
                    changed["customer_actions"] = {k: v for k, v in actions_new.items() if actions_now.get(k) != v}
                if emails_new != emails_now:
                    changed["emails"] = {k: v for k, v in emails_new.items() if emails_now.get(k) != v}
                if invoice != (current_settings.get(INVOICE_SETTINGS_KEY) or None):
                    changed["tax_id"] = None if invoice is None else invoice["tax_id"]
                await audit.record(
                    tx,
                    access_.actor,
                    organization_id=org.id,
                    action="settings.update",
                    target=org.slug,
                    details=changed,
                    now=now,
                )
        except DomainError as exc:
            errors[(exc.field or "name").split(".")[0]] = exc.message
    if errors:
        context = _settings_context(access_)
        context["values"] |= {key: form.get(key, "") for key in context["values"] if key != "emails"}
        context["values"]["allow_plan_change"] = changes.allow_plan_change
        context["values"]["allow_email_change"] = changes.allow_email_change
        for field, key in _ACTION_SWITCHES.items():
            context["values"][field] = actions_new[key]
        context["values"]["emails"] = {key: emails_new[key] for key in _EMAIL_SWITCHES}
        context["errors"] = errors
        return layout.page(access_, "settings", "settings", context, status_code=400)
    return layout.back(access_, "/settings", "saved")


ROUTES = [settings_page, settings_save, settings_preview, settings_preview_form, settings_logo, logos.logo]
