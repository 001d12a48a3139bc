"""The seller's brand in emails: the accent colour of buttons and links, and a logo mail clients can show.

Emails are always light, so the accent is the light-scheme one (``portal.templating.accent``: at least 4.5:1
against white, and under white button text). The logo is the organization's ``avatar_url`` when it is a raster
image on http(s); an SVG logo (``.svg``/``.svgz``, or a ``data:image/svg+xml`` URI) is left out, since most mail
clients (Gmail, Outlook) do not render SVG, and so is any ``data:`` URI (blocked by many clients). There is no PNG
variant to fall back to: the email then shows the seller's name only.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from portal.templating.accent import light_accent

_SVG_SUFFIXES = (".svg", ".svgz")


def email_logo(avatar_url: str | None) -> str | None:
    """``avatar_url`` if a mail client can show it (a raster image over http/https), else None."""
    if not avatar_url:
        return None
    parts = urlsplit(avatar_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    if parts.path.lower().endswith(_SVG_SUFFIXES):
        return None
    return avatar_url


def email_branding(organization: Any) -> dict[str, Any]:
    """``accent`` and ``logo_url`` for an email template, from an organization row, struct or snapshot dict."""

    def value(name: str) -> Any:
        return organization.get(name) if isinstance(organization, dict) else getattr(organization, name, None)

    return {"accent": light_accent(value("accent_color")), "logo_url": email_logo(value("avatar_url"))}
