"""``create_app(settings)``: the only place that wires Portal together. Nothing is computed at import time."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ControllerRouterHandler

from portal import customer_portal, i18n, portal_pages, system
from portal.admin import admin_router
from portal.api_docs import SwaggerUIFromPackage, docs_router
from portal.clock import Clock
from portal.connectors import inbound_api as connector_inbound
from portal.console.router import console_router
from portal.db import Database, connect_sync
from portal.limits import BodyLimitMiddleware, ThrottledAnswerHold
from portal.logging_setup import configure_logging
from portal.mail import build_mailer
from portal.migrations import migrate
from portal.notifications.background import BackgroundTasks
from portal.request_log import RequestLogMiddleware
from portal.sessions import api as session_api
from portal.sessions import email_link_pages, rate_limit
from portal.sessions import pages as session_pages
from portal.sessions.auth import provide_api_customer, provide_portal_customer
from portal.sessions.view_as import ViewAsGuard
from portal.settings import Settings
from portal.static_files import static_router
from portal.templating import template_config
from portal.web import (
    PortalState,
    add_security_headers,
    error_handler,
    provide_clock,
    provide_db,
    provide_settings,
)


def create_app(
    settings: Settings, *, clock: Clock | None = None, mailer: object = None, freeze_gc: bool = False
) -> Litestar:
    """Build the ASGI app for ``settings``; the database is opened (and migrated) on startup.

    ``freeze_gc``: the app owns its process (``portal serve``'s workers, via ``portal.asgi``), so on startup it
    moves every object that exists then out of the cyclic collector's way. Off for apps that share a process with
    others (tests, embedding): there a full collection per startup walks everyone else's objects too."""
    state = new_state(settings, clock=clock, mailer=mailer)
    # What is built into the app itself sees only the settings ``baked_settings`` keeps; the rest of an instance is
    # ``app.state.portal``, read at startup and by every request.
    settings = baked_settings(settings)
    configure_logging(settings.log_format)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        state: PortalState = app.state.portal
        settings, db = state.settings, state.db
        configure_logging(settings.log_format)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        settings.files_dir.mkdir(parents=True, exist_ok=True)
        conn = connect_sync(settings.db_path, settings.sqlite_synchronous)
        try:
            migrate(conn)  # refuses a newer schema (SchemaTooNewError) before serving anything
        finally:
            conn.close()
        await db.open()
        # Email outbox, webhook deliveries, renewal reminders; stopped before the database closes.
        background = BackgroundTasks(db, settings, state.clock, state.mailer)
        background.start()
        # What exists once started (modules, routes, compiled templates) lives as long as the process: out of the
        # cyclic collector's way (gc.freeze), so its rare full passes do not walk ~90k objects mid-request.
        if freeze_gc:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if freeze_gc:
                gc.unfreeze()
            await background.stop()
            await rate_limit.limiter(db).close()  # throttle counts still in memory
            await db.close()

    route_handlers: list[ControllerRouterHandler] = [
        system.landing,
        system.healthz,
        system.readyz,
        static_router(),
        *session_pages.ROUTES,
        *email_link_pages.ROUTES,
        *session_api.ROUTES,
        console_router(),
        *portal_pages.ROUTES,
        *connector_inbound.ROUTES,
        admin_router(),
        *customer_portal.routes(),
    ]

    app = Litestar(
        route_handlers=route_handlers,
        lifespan=[lifespan],
        state=_state(state),
        dependencies={
            "db": Provide(provide_db, sync_to_thread=False),
            "settings": Provide(provide_settings, sync_to_thread=False),
            "clock": Provide(provide_clock, sync_to_thread=False),
            "portal_customer": Provide(provide_portal_customer),
            "api_customer": Provide(provide_api_customer),
        },
        template_config=template_config(),
        csrf_config=CSRFConfig(
            secret=settings.secret_key,
            cookie_name="__Host-csrftoken" if settings.is_https else "csrftoken",
            cookie_secure=settings.is_https,
            cookie_httponly=True,
            cookie_samesite="lax",
            exclude=["^/v1/"],
        ),
        exception_handlers={Exception: error_handler},
        # A 404 under a known organization's slug is its branded 404 (the handler above cannot await the lookup).
        after_exception=[session_pages.brand_not_found],
        before_request=i18n.start_request,
        after_request=add_security_headers,
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Portal API",
            version="1.0.0",
            description="Polar-compatible customer-portal, customer-session and admin API.",
            path="/docs",
            # Swagger UI from an installed package, under its own CSP (portal/api_docs.py): no CDN.
            render_plugins=[SwaggerUIFromPackage()],
            openapi_router=docs_router(),
            components=Components(
                security_schemes={"bearerAuth": SecurityScheme(type="http", scheme="bearer", bearer_format="opaque")}
            ),
        ),
        debug=False,
        logging_config=None,  # Portal's own (portal.logging_setup): one line per request, text or JSON
    )
    # Body limits per route (portal.limits); raised inside Litestar's handling, so 413s get the usual error answers.
    app.asgi_handler = BodyLimitMiddleware(app.asgi_handler, settings)
    # A seller viewing the portal as a customer: writes refused, pages bannered (before routing: every route).
    app.asgi_handler = ViewAsGuard(app.asgi_handler, app)
    # Throttled answers (429) wait a quarter second: a client ignoring Retry-After cannot flood the CPUs.
    app.asgi_handler = ThrottledAnswerHold(app.asgi_handler)
    # Outermost, around routing too, so that unmatched paths (404/405) are logged as well.
    app.asgi_handler = RequestLogMiddleware(app.asgi_handler, settings)
    return app


def new_state(settings: Settings, *, clock: Clock | None = None, mailer: object = None) -> PortalState:
    """What one running instance of the app serves: its settings (secrets resolved), its database (opened on
    startup), its clock and mailer. ``app.state.portal``; the lifespan and every request read it from there."""
    settings = settings.resolve_secrets()
    db = Database(settings.db_path, synchronous=settings.sqlite_synchronous, readers=settings.db_readers)
    return PortalState(settings=settings, db=db, clock=clock or Clock(), mailer=mailer or build_mailer(settings))


def baked_settings(settings: Settings) -> Settings:
    """The only settings ``create_app`` builds into the app itself (the CSRF secret and cookie, the body limit,
    trusted proxies, the log format); every other field is left at its default, so construction cannot depend on
    it. Two settings with equal ``baked_settings`` give apps that differ only in ``app.state.portal``
    (``new_state``): ``tests/apps.py`` reuses apps on that."""
    resolved = settings.resolve_secrets()
    return Settings(
        data_dir=Path("/dev/null/not-baked"),  # an instance's place is its state's: any use here fails loudly
        base_url="https://baked.invalid" if resolved.is_https else "http://baked.invalid",
        secret_key=resolved.secret_key,
        trusted_proxies=resolved.trusted_proxies,
        log_format=resolved.log_format,
        max_body_bytes=resolved.max_body_bytes,
    )


def _state(state: PortalState):  # type: ignore[no-untyped-def]
    from litestar.datastructures import State

    return State({"portal": state})
