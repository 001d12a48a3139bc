"""The frame every page of one organization in the console shares: its section navigation, the page template's
common context, the 303 back to a page after an action, and the notice that page shows for ``?done=<action>``.

Each page module (``org_pages``, and one module per further section) renders through :func:`page` and names its
own notices; the navigation lists every section once, here.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar.enums import MediaType
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from portal import i18n
from portal.console.access import OrgAccess
from portal.console.signin_pages import role_labels

Done = Annotated[str | None, QueryParameter(name="done", max_length=20)]


def nav(access_: OrgAccess) -> list[tuple[str, str, str]]:
    """The sections of an organization this seller may open: (key, label, href)."""
    _ = i18n.gettext
    base = f"/console/{access_.organization.slug}"
    items = [
        ("home", _("Home"), base),
        ("customers", _("Customers"), f"{base}/customers"),
        ("catalog", _("Catalog"), f"{base}/catalog"),
        ("team", _("Team"), f"{base}/team"),
        ("emails", _("Emails"), f"{base}/emails"),
        ("webhooks", _("Webhooks"), f"{base}/webhooks"),
        ("processors", _("Processors"), f"{base}/processors"),
    ]
    if access_.can_manage:
        items += [("tokens", _("API tokens"), f"{base}/tokens"), ("settings", _("Settings"), f"{base}/settings")]
    items.append(("audit", _("Audit log"), f"{base}/audit"))
    return items


def page(access_: OrgAccess, name: str, active: str, context: dict[str, Any], status_code: int = 200) -> Template:
    """``templates/console/<name>.html`` with the console frame's context; ``active`` is the nav key shown current."""
    notice = context.pop("notice", None)
    return Template(
        template_name=f"console/{name}.html",
        context={
            "seller": access_.seller,
            "org": access_.organization,
            "access": access_,
            "role_label": role_labels()[access_.role],
            "role_labels": role_labels(),
            "console_nav": nav(access_),
            "active": active,
            "base": f"/console/{access_.organization.slug}",
            "notice": notice,
            **context,
        },
        status_code=status_code,
        media_type=MediaType.HTML,
    )


def back(access_: OrgAccess, path: str, done: str) -> Redirect:
    """303 back to a page of the organization, with which action was done (the page says so)."""
    return Redirect(f"/console/{access_.organization.slug}{path}?done={done}", status_code=303)


def done_notice(done: str | None, notices: dict[str, str]) -> str | None:
    """The sentence for ``?done=<action>`` among a page module's ``notices``; None for anything else."""
    return notices.get(done or "")
