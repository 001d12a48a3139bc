"""The language switcher of signed-in pages: ``POST /<slug>/portal/locale`` (CSRF-checked) saves the customer's
choice in ``customers.locale`` and answers 303 back to the page it came from (only ever a page of this portal)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl, urlencode, urlsplit

import msgspec
from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from portal import i18n
from portal.clock import Clock
from portal.db import Database
from portal.portal_pages.layout import base_path, see_other
from portal.sessions.store import SessionContext


class LocaleForm(msgspec.Struct, kw_only=True):
    locale: str = ""
    next: str = ""


def back_to(root: str, target: str) -> str:
    """``target`` if it is a path inside this portal (minus any ``locale`` query, which would override the saved
    choice), else the portal's home; never another host or portal."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not (parts.path == root or parts.path.startswith(root + "/")):
        return root
    if "//" in parts.path or "\\" in parts.path:
        return root
    query = [(key, value) for key, value in parse_qsl(parts.query) if key not in ("locale", "done")]
    query.append(("done", "locale_saved"))
    return f"{parts.path}?{urlencode(query)}"


class LanguageController(Controller):
    path = "/{slug:str}/portal/locale"
    include_in_schema = False

    @post("/", name="portal.locale.save", status_code=303)
    async def save(
        self,
        db: NamedDependency[Database],
        clock: NamedDependency[Clock],
        portal_customer: NamedDependency[SessionContext],
        data: Annotated[LocaleForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect:
        ctx = portal_customer
        root = base_path(ctx.organization)
        locale = i18n.normalize(data.locale)
        if locale is not None:
            await i18n.save_customer_locale(db, ctx.organization.id, ctx.customer.id, locale, now=clock.now())
        return see_other(back_to(root, data.next) if locale else root)
