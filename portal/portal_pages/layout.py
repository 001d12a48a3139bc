"""The shared portal layout: what every signed-in page's template gets (org with a safe accent colour, customer,
nav, return link, locale, a notice picked from a fixed list by ``?done=``) and small helpers for controllers."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import msgspec
from litestar import Request
from litestar.datastructures import Cookie
from litestar.enums import MediaType
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template
from litestar.response.base import ASGIResponse

from portal.i18n import current_locale, gettext
from portal.i18n import lazy_gettext as _l
from portal.organizations.queries import Organization
from portal.portal_pages import text
from portal.sessions.store import SessionContext

NAV = (
    ("overview", _l("Overview"), ""),
    ("orders", _l("Orders"), "/orders"),
    ("subscriptions", _l("Subscriptions"), "/subscriptions"),
    ("benefits", _l("Benefits"), "/benefits"),
    ("billing", _l("Billing details"), "/settings"),
)

# Messages shown after a 303, chosen by a key so nothing from the URL is echoed into the page.
NOTICES = {
    "canceled": _l("Your subscription is canceled. You keep access until the end of the current period."),
    "uncanceled": _l("Your subscription is active again and will renew as usual."),
    "plan_changed": _l("Your plan has been changed."),
    "deactivated": _l("The activation was removed. You can use the license key on another device."),
    "billing_saved": _l("Billing details saved. They will appear on receipts of your next payments."),
    "locale_saved": _l("Language saved. Pages and emails will use it from now on."),
    "rotated": _l("Your license key was replaced. Use the new key shown below; the old one no longer works."),
    "email_change_sent": _l(
        "We sent a confirmation link to the new address. Open it within 30 minutes to finish the change: until "
        "then, your email address stays the same."
    ),
    "email_changed": _l("Your email address was changed. Use the new address to sign in from now on."),
    "invoice_needs_billing": _l(
        "An invoice needs your billing name and address. Add them here: once saved, we take you back to your invoice."
    ),
}

_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
DEFAULT_ACCENT = "#2563eb"


def safe_organization(organization: Organization) -> Organization:
    """The org with an accent colour that is safe to put in a ``<style>`` (anything odd falls back)."""
    if _COLOR.match(organization.accent_color or ""):
        return organization
    return msgspec.structs.replace(organization, accent_color=DEFAULT_ACCENT)


def safe_return_url(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def base_path(organization: Organization) -> str:
    return f"/{organization.slug}/portal"


def page_context(
    request: Request[Any, Any, Any], context: SessionContext, *, active: str, **extra: Any
) -> dict[str, Any]:
    organization = safe_organization(context.organization)
    done = request.query_params.get("done")
    root = base_path(organization)
    return {
        "organization": organization,
        "customer": context.customer,
        "locale": current_locale(),
        "portal_root": root,
        "nav": [(key, label, root + suffix) for key, label, suffix in NAV],
        "active": active,
        "return_url": safe_return_url(context.session.return_url),
        "notice": NOTICES.get(done) if done else None,
        "ui": text,
        **extra,
    }


class LayoutPage(Template):
    """A signed-in page: rendered as its own blocks inside the layout's cached shell
    (``portal.templating.layout_shell``)."""

    def to_asgi_response(
        self,
        app: Any,
        request: Request[Any, Any, Any],
        *,
        background: Any = None,
        cookies: Iterable[Cookie] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        media_type: MediaType | str | None = None,
        status_code: int | None = None,
        type_encoders: Any = None,
    ) -> ASGIResponse:
        shells = getattr(request.app.template_engine, "layout_shells", None)
        if shells is None or self.template_name is None:
            return super().to_asgi_response(
                app,
                request,
                background=background,
                cookies=cookies,
                encoded_headers=encoded_headers,
                headers=headers,
                is_head_response=is_head_response,
                media_type=media_type,
                status_code=status_code,
                type_encoders=type_encoders,
            )
        body = shells.render(self.template_name, self.create_template_context(request))
        return ASGIResponse(
            background=self.background or background,
            body=body.encode(self.encoding),
            content_length=None,
            cookies=self.cookies if cookies is None else itertools.chain(self.cookies, cookies),
            encoded_headers=encoded_headers,
            encoding=self.encoding,
            headers={**headers, **self.headers} if headers is not None else self.headers,
            is_head_response=is_head_response,
            media_type=self.media_type or media_type or MediaType.HTML,
            status_code=self.status_code or status_code,
        )


def render(
    template: str, request: Request[Any, Any, Any], context: SessionContext, *, active: str, **extra: Any
) -> Template:
    # The media type given: otherwise Litestar derives it from the file name (pathlib + mimetypes) per response.
    return LayoutPage(
        template_name=template,
        context=page_context(request, context, active=active, **extra),
        media_type=MediaType.HTML,
    )


def see_other(path: str) -> Redirect:
    return Redirect(path, status_code=303)


def not_found() -> NotFoundException:
    """Missing and not-yours answer the same."""
    return NotFoundException(gettext("We couldn't find that page. It may have moved, or belong to another account."))
