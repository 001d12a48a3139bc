"""HTTP plumbing shared by every area: the app state, dependencies, security headers, client IP, errors.

Error answers: ``/v1/...`` gets JSON in Polar's shapes (``{"error": ..., "detail": ...}``, and for validation
``{"detail": [{"loc": [...], "msg": ..., "type": ...}]}`` with status 422); every other path gets an HTML page.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import (
    HTTPException,
    InternalServerException,
    NotFoundException,
    SerializationException,
    ValidationException,
)
from litestar.response import Redirect
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from markupsafe import Markup

from portal import i18n
from portal.clock import Clock
from portal.db import Database
from portal.errors import Conflict, DomainError, InvalidInput, NotFound
from portal.fields import readable_message
from portal.limits import is_too_deep
from portal.sessions import next_path
from portal.sessions.auth import SignInRequired
from portal.settings import Settings

log = logging.getLogger("portal")

# One step of a domain error's field: ``items[0].product_price_id`` -> "items", 0, "product_price_id".
_FIELD_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def field_loc(field: str | None) -> list[str | int]:
    """FastAPI's ``loc`` for a domain error's field, list indexes as integers (as Polar answers)."""
    loc: list[str | int] = ["body"]
    for name, index in _FIELD_STEP.findall(field or ""):
        loc.append(int(index) if index else name)
    return loc


@dataclass
class PortalState:
    """Everything a request handler may need, built once by ``create_app``."""

    settings: Settings
    db: Database
    clock: Clock
    mailer: Any = None


def portal_state(state: State) -> PortalState:
    return state.portal


# The three app-wide dependencies form a chain (settings, then clock, then db; the customer providers come after
# db): Litestar resolves dependencies that wait on nothing else together in an anyio task group, which costs a
# request 3 turns of the event loop (each a wait behind every other ready request under a flood); chained, every
# handler resolves them one by one, at once. Figures: bench/README.md, "Writes under floods".


def provide_settings(state: State) -> Settings:
    return state.portal.settings


def provide_clock(state: State, settings: NamedDependency[Settings]) -> Clock:
    return state.portal.clock


def provide_db(state: State, clock: NamedDependency[Clock]) -> Database:
    return state.portal.db


# Content-Security-Policy: no inline script anywhere (the copy-to-clipboard helper is a static file).
CSP = (
    "default-src 'self'; img-src 'self' data: https:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)

HTML_SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def apply_security_headers(response: Response[Any]) -> Response[Any]:
    """Security headers on every answer; no-store unless the handler chose a cache policy."""
    for name, value in HTML_SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


async def add_security_headers(response: Response[Any]) -> Response[Any]:
    """``after_request`` hook (exception-handler answers skip it; ``error_handler`` applies them itself)."""
    return apply_security_headers(response)


def client_ip(request: Request[Any, Any, Any], settings: Settings) -> str:
    """The socket peer, or the first untrusted hop of ``X-Forwarded-For`` when the peer is a trusted proxy."""
    return scope_client_ip(request.scope, settings.trusted_proxy_set)


def scope_client_ip(scope: Any, trusted: frozenset[str]) -> str:
    """``client_ip`` from the ASGI scope itself (the request log calls it for every request)."""
    client = scope.get("client")
    peer = client[0] if client else "unknown"
    if peer not in trusted:
        return peer
    forwarded = ", ".join(
        value.decode("latin-1") for name, value in scope.get("headers", ()) if name == b"x-forwarded-for"
    )
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop
    return peer


def is_api_path(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


def _validation_detail(exc: ValidationException) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    extra = exc.extra if isinstance(exc.extra, list) else []
    for problem in extra:
        if not isinstance(problem, dict):
            continue
        source = problem.get("source") or "body"
        key = problem.get("key")
        # ``items[0].label`` -> "items", 0, "label": list indexes as integers, as for domain errors.
        loc: list[Any] = [source, *field_loc(str(key))[1:]] if key else [source]
        items.append({"loc": loc, "msg": readable_message(problem.get("message", "invalid")), "type": "value_error"})
    if not items:
        items.append({"loc": ["body"], "msg": exc.detail or "invalid input", "type": "value_error"})
    return items


def _misattributed_detail(cause: msgspec.ValidationError) -> list[dict[str, Any]]:
    """Polar's 422 items from msgspec's message, e.g. "Expected `object`, got `int` - at `$.data.settings`"."""
    message, _, where = str(cause).partition(" - at `$.")
    path = where.rstrip("`").split(".") if where else []
    loc = ["body", *(path[1:] if path[:1] == ["data"] else path)]
    return [{"loc": loc, "msg": readable_message(message), "type": "value_error"}]


_ERROR_NAMES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "NotPermitted",
    404: "ResourceNotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "RequestEntityTooLarge",
    422: "RequestValidationError",
    429: "TooManyRequests",
}


def api_error(status: int, detail: Any, error: str | None = None, **headers: str) -> Response[Any]:
    body = {"error": error or _ERROR_NAMES.get(status, "Error"), "detail": detail}
    return Response(body, status_code=status, headers=headers or None)


def domain_error_status(exc: DomainError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, InvalidInput):
        return 422
    return 400


def error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The one app-level handler: JSON for ``/v1``, an HTML page (in the org's layout if known) otherwise."""
    return apply_security_headers(_error_response(request, exc))


def _error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    status = HTTP_500_INTERNAL_SERVER_ERROR
    detail: Any = "Internal server error"
    headers: dict[str, str] = {}
    if isinstance(exc, SignInRequired):
        if is_api_path(request.url.path):
            return api_error(401, exc.message or "Not authenticated")
        # A page asked for signed out comes back after signing in (a deep link: an order, a receipt, benefits).
        location = f"/{exc.slug}/portal"
        if request.method in ("GET", "HEAD"):
            wanted = next_path.safe_next(exc.slug, next_path.next_of(request.url.path, request.url.query))
            location = next_path.with_next(location, wanted)
        return Redirect(location, status_code=303)
    if isinstance(exc, DomainError):
        status = domain_error_status(exc)
        detail = exc.message
        if status == 422 and is_api_path(request.url.path):
            return Response(
                {"detail": [{"loc": field_loc(exc.field), "msg": exc.message, "type": "value_error"}]},
                status_code=422,
            )
    elif (isinstance(exc.__cause__, SerializationException) or is_too_deep(exc)) and is_api_path(request.url.path):
        # A body that is not JSON at all (or nested past the decoder's limit): Polar (FastAPI) answers 422
        # ``json_invalid``, not a bare 400 (nor a 500).
        message = "JSON is nested too deeply" if is_too_deep(exc) else str(exc.__cause__)
        problem = {"loc": ["body"], "msg": message, "type": "json_invalid"}
        return Response({"detail": [problem]}, status_code=422)
    elif is_too_deep(exc):
        status, detail = 400, "Invalid input"
    elif isinstance(exc, OverflowError):
        # A date or number valid in JSON but out of range here (year 1 at +05:00 in UTC, an int SQLite cannot
        # store): the input's fault, so 422 rather than 500; logged in case it is ours.
        log.warning("value out of range on %s %s: %s", request.method, request.url.path, exc)
        if is_api_path(request.url.path):
            problem = {"loc": ["body"], "msg": "value out of range", "type": "value_error"}
            return Response({"detail": [problem]}, status_code=422)
        status, detail = 400, "Invalid input"
    elif isinstance(exc, InternalServerException) and isinstance(exc.__cause__, msgspec.ValidationError):
        # Litestar takes an invalid body field named like a dependency (``settings`` of an organization) for a
        # broken dependency and raises a bare 500; it is the client's input.
        if is_api_path(request.url.path):
            return Response({"detail": _misattributed_detail(exc.__cause__)}, status_code=422)
        status, detail = 400, "Invalid input"
    elif isinstance(exc, ValidationException):
        status = 422 if is_api_path(request.url.path) else 400
        if is_api_path(request.url.path):
            return Response({"detail": _validation_detail(exc)}, status_code=422)
        detail = "; ".join(
            f"{p.get('key') or 'input'}: {p.get('message')}"
            for p in (exc.extra if isinstance(exc.extra, list) else [])
            if isinstance(p, dict)
        ) or (exc.detail or "Invalid input")
    elif isinstance(exc, HTTPException):
        status = exc.status_code
        detail = exc.detail
        headers = dict(exc.headers or {})
        if status == 403 and "CSRF" in str(exc.detail):
            detail = i18n.gettext("Your form expired or was sent from another site. Go back, reload and try again.")
    else:
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    if isinstance(exc, NotFoundException) and not exc.detail:
        detail = "Not found"
    if is_api_path(request.url.path):
        return api_error(status, detail, **headers)
    org = getattr(request.state, "organization", None) if hasattr(request, "state") else None
    return _html_error(request, status, detail, org, headers)


# Details raised in English by code shared with the JSON API (domain errors, Litestar's own): translated when an
# HTML page shows them. Listed here (``noop``) so that extraction puts them in the catalogs.
_GENERIC_DETAILS = frozenset(
    {
        i18n.noop("Not found"),
        i18n.noop("Not Found"),
        i18n.noop("Internal server error"),
        i18n.noop("Invalid input"),
        i18n.noop("Method Not Allowed"),
        i18n.noop("No portal at this address."),
        i18n.noop("We couldn't find that page. It may have moved, or belong to another account."),
        i18n.noop("This download link has expired. Open the Benefits page again for a fresh one."),
        i18n.noop(
            "This link has expired or is not valid. Open the order again in the customer portal for a fresh one."
        ),
        i18n.noop("this subscription is already canceled or has ended"),
        i18n.noop("this subscription is not scheduled to cancel"),
        i18n.noop("only an active subscription that is not canceled can change plan"),
    }
)


def _html_error(
    request: Request[Any, Any, Any], status: int, detail: Any, org: Any, headers: dict[str, str]
) -> Response[Any]:
    engine = request.app.template_engine
    if engine is None:  # pragma: no cover - the app always has one
        return Response(str(detail), status_code=status, media_type="text/plain")
    # Errors raised before routing never ran the before_request hook: negotiate here, with the org if known.
    i18n.ensure_request(request)
    if org is not None:
        i18n.refine(org_default=org.default_locale)
    _ = i18n.gettext
    titles = {
        404: _("Page not found"),
        403: _("Not allowed"),
        429: _("Too many attempts"),
        500: _("Something broke"),
    }
    if isinstance(detail, str) and detail in _GENERIC_DETAILS:
        detail = _(detail)
    context: dict[str, Any] = {"organization": org, "request": request, **_signed_in_layout(request, org)}
    body = engine.get_template("errors/error.html").render(
        status=status,
        title=titles.get(status, _("Something went wrong")),
        detail=detail if status < 500 else _("An unexpected error happened. Please try again."),
        **context,
    )
    return Response(body, status_code=status, media_type="text/html", headers=headers or None)


def _signed_in_layout(request: Request[Any, Any, Any], org: Any) -> dict[str, Any]:
    """What the portal layout needs when the request was made by a signed-in customer of ``org``: an error page
    of theirs keeps the brand, the account menu and the navigation (issue 22). Empty otherwise."""
    context = getattr(request.state, "portal_session", None) if hasattr(request, "state") else None
    if context is None or org is None or context.organization.id != getattr(org, "id", None):
        return {}
    from litestar.utils.scope.state import ScopeState

    from portal.portal_pages.layout import page_context

    csrf_cookie = request.app.csrf_config.cookie_name if request.app.csrf_config else "csrftoken"
    token = ScopeState.from_scope(request.scope).csrf_token or request.cookies.get(csrf_cookie) or ""
    values = page_context(request, context, active="")
    values["notice"] = None
    values["csrf_input"] = Markup('<input type="hidden" name="_csrf_token" value="{}" />').format(token)
    return values
