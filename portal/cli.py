"""The ``portal`` command: serve, migrate, seed, check, routes (and the subcommands later areas add).

Every subcommand reads settings from ``PORTAL_*`` variables (see the README table); flags only override what a
subcommand needs (host, port, workers).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from portal.db import Database, connect_sync
from portal.migrations import LATEST_VERSION, SchemaTooNewError, check_version, migrate
from portal.resources import demo_seed_path
from portal.settings import Settings, SettingsError

if TYPE_CHECKING:
    from portal.seeding.models import SeedDemoAccount

Command = Callable[[argparse.Namespace, Settings], int]


def _settings() -> Settings:
    try:
        return Settings.from_env().resolve_secrets()
    except SettingsError as exc:
        print(f"portal: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    conn = connect_sync(settings.db_path, settings.sqlite_synchronous)
    try:
        applied = migrate(conn)
    except SchemaTooNewError as exc:
        print(f"portal: {exc}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    if applied:
        print(f"Applied migrations {', '.join(map(str, applied))}; schema is at version {LATEST_VERSION}.")
    else:
        print(f"Nothing to do; schema is at version {LATEST_VERSION}.")
    return 0


async def _load_seed(settings: Settings, path: Path, document: bytes) -> dict[str, int]:
    from portal.clock import Clock
    from portal.seeding.loader import load_seed

    db = await Database(settings.db_path, synchronous=settings.sqlite_synchronous, readers=1).open()
    try:
        result = await load_seed(
            db,
            document,
            seed_dir=path.parent,
            files_dir=settings.files_dir,
            now=Clock().now(),
        )
    finally:
        await db.close()
    return dict(result.counts)


def cmd_seed(args: argparse.Namespace, settings: Settings) -> int:
    from portal.seeding.loader import SeedError

    if cmd_migrate(args, settings):
        return 1
    path = Path(args.path)
    if not path.is_file():
        print(f"portal: no such seed file {path}", file=sys.stderr)
        return 2
    try:
        counts = asyncio.run(_load_seed(settings, path, path.read_bytes()))
    except SeedError as exc:
        print(f"portal: the seed document was not loaded ({len(exc.errors)} errors):", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        return 1
    print("Loaded " + ", ".join(f"{n} {name}" for name, n in counts.items()))
    return 0


def _database_is_empty(settings: Settings) -> bool:
    conn = connect_sync(settings.db_path, settings.sqlite_synchronous)
    try:
        return conn.execute("SELECT COUNT(*) FROM organizations").fetchone()[0] == 0
    finally:
        conn.close()


def demo_accounts() -> list[SeedDemoAccount]:
    """The accounts seed/demo.json suggests signing in with (its ``demo_accounts``)."""
    # Imported here, like every subcommand's own modules: the seed models pull in the domain services (and
    # Litestar), which `portal serve`'s supervisor process and the small commands never need.
    from portal.seeding.models import SeedDocument

    return msgspec.json.decode(demo_seed_path().read_bytes(), type=SeedDocument).demo_accounts


def _print_demo_banner(settings: Settings, host: str, port: int) -> None:
    conn = connect_sync(settings.db_path, settings.sqlite_synchronous)
    try:
        orgs = conn.execute("SELECT slug, name FROM organizations ORDER BY name").fetchall()
        emails = {
            row["slug"]: row["email"]
            for row in conn.execute(
                "SELECT o.slug, MIN(c.email) AS email FROM customers c "
                "JOIN organizations o ON o.id = c.organization_id GROUP BY o.slug"
            )
        }
    finally:
        conn.close()
    accounts = demo_accounts()
    for account in reversed(accounts):  # each organization's hint: the first suggested account of it
        for slug in account.organizations:
            emails[slug] = account.email
    base = settings.public_base_url
    print("")
    print("Portal demo is ready.")
    for org in orgs:
        hint = f"  (try {emails[org['slug']]})" if org["slug"] in emails else ""
        print(f"  {org['name']}: {base}/{org['slug']}/portal{hint}")
    if accounts:
        print("Accounts to sign in with:")
        for account in accounts:
            print(f"  {account.email} ({', '.join(account.organizations)}): {account.shows}")
    if settings.mail_backend == "outbox":
        print(f"Login codes are printed here and written as .eml files to {settings.outbox_dir}")
    else:
        print(f"Login codes are sent by SMTP via {settings.smtp_host}:{settings.smtp_port}")
    print(f"Listening on http://{host}:{port}  (API docs at {base}/docs)")
    print("", flush=True)


def report_problems(problems: Sequence[str]) -> int:
    """Print one ``problem:`` line per setting or database problem (``portal check`` and ``serve``); 1 if any."""
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if problems else 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from portal.serve_guard import GuardedHttpToolsProtocol
    from portal.serve_sockets import EVENT_LOOP, serve_workers

    if args.demo and "PORTAL_BASE_URL" not in os.environ:
        os.environ["PORTAL_BASE_URL"] = f"http://{args.host}:{args.port}"
        settings = _settings()
    # The same validation as `portal check`: a server never starts on settings check refuses.
    if report_problems(settings.validate()):
        return 1
    from portal import instance_lock
    from portal.logging_setup import uvicorn_log_config

    try:  # held (shared) while serving, so `portal restore` can tell this data dir is live
        lock = instance_lock.acquire(settings.data_dir, exclusive=False, wait_seconds=5)
    except instance_lock.InstanceBusy as exc:
        print(f"portal: {exc}", file=sys.stderr)
        return 1
    if cmd_migrate(args, settings):
        return 1
    if args.demo:
        if _database_is_empty(settings):
            seed_args = argparse.Namespace(path=str(demo_seed_path()))
            if cmd_seed(seed_args, settings):
                return 1
        _print_demo_banner(settings, args.host, args.port)
    served = serve_workers(
        "portal.asgi:app_from_env",
        args.host,
        args.port,
        args.workers,
        dict(
            proxy_headers=False,  # client IPs come from PORTAL_TRUSTED_PROXIES, see portal.web.client_ip
            server_header=False,
            access_log=False,
            http=GuardedHttpToolsProtocol,  # header deadline and connection cap (portal/serve_guard.py)
            factory=True,
            loop=EVENT_LOOP,  # the standard loop, not uvloop (portal/serve_sockets.py)
            timeout_keep_alive=settings.keepalive_timeout,
            timeout_graceful_shutdown=20,
            log_level="info",
            log_config=uvicorn_log_config(settings.log_format),
        ),
    )
    lock.release()
    return served


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    problems = settings.validate()
    if settings.db_path.exists():
        conn = connect_sync(settings.db_path, settings.sqlite_synchronous)
        try:
            version = check_version(conn)
            if version < LATEST_VERSION:
                problems.append(f"database: schema version {version}, run `portal migrate` (latest {LATEST_VERSION})")
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
            if result != "ok":
                problems.append(f"database: integrity_check says {result}")
        except SchemaTooNewError as exc:
            problems.append(f"database: {exc}")
        finally:
            conn.close()
    else:
        problems.append(f"database: {settings.db_path} does not exist yet, run `portal migrate`")
    if getattr(args, "smtp", False):
        from portal.smtp_check import check_smtp

        smtp_problems = check_smtp(settings)
        problems.extend(smtp_problems)
        if not smtp_problems:
            print(f"ok: SMTP {settings.smtp_host}:{settings.smtp_port} ({settings.smtp_security}) accepted us")
    if report_problems(problems):
        return 1
    print(f"ok: settings valid, database {settings.db_path} at schema version {LATEST_VERSION}")
    return 0


def route_table(settings: Settings) -> list[tuple[str, str, str]]:
    """Every route of the app ``portal serve`` runs, as ``(methods, path, handler)`` sorted by path: the routes are
    spread over the areas' routers and controllers, and this is the one list of them. Litestar's automatic
    ``OPTIONS`` answers are left out."""
    from litestar.routes import HTTPRoute

    from portal.app import create_app

    table = []
    for route in create_app(settings).routes:
        handlers = route.route_handlers if isinstance(route, HTTPRoute) else [route.route_handler]
        for handler in handlers:
            methods = sorted(getattr(handler, "http_methods", None) or {"ASGI"})
            fn = handler.fn
            name = f"{fn.__module__}.{fn.__qualname__}"
            if name.startswith("litestar.routes."):  # the OPTIONS handler Litestar adds to every path
                continue
            table.append((",".join(methods), route.path, name))
    return sorted(table, key=lambda row: (row[1], row[0]))


def cmd_routes(args: argparse.Namespace, settings: Settings) -> int:
    """Print every route, one a line: methods, path, handler (tab-separated)."""
    for methods, path, name in route_table(settings):
        print(f"{methods}\t{path}\t{name}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="portal", description="Self-hosted customer portal.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the web server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--demo", action="store_true", help="load seed/demo.json into an empty data dir")
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="apply pending schema migrations").set_defaults(func=cmd_migrate)

    seed = sub.add_parser("seed", help="load a seed document (JSON) in one transaction")
    seed.add_argument("path")
    seed.set_defaults(func=cmd_seed)

    check = sub.add_parser("check", help="validate settings and the database")
    check.add_argument("--smtp", action="store_true", help="also connect (and log in) to the SMTP server")
    check.set_defaults(func=cmd_check)

    sub.add_parser("routes", help="list every route: methods, path, handler").set_defaults(func=cmd_routes)

    from portal.backup import add_backup_commands

    add_backup_commands(sub)

    from portal.admin.token_cli import add_token_commands

    add_token_commands(sub)

    from portal.admin.link_cli import add_link_command

    add_link_command(sub)

    from portal.notifications.cli import add_outbox_command

    add_outbox_command(sub)

    from portal.connectors.cli import add_connect_commands

    add_connect_commands(sub)

    from portal.connectors.import_cli import add_import_commands

    add_import_commands(sub)

    from portal.console.cli import add_seller_commands

    add_seller_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = _settings()
    func: Command = args.func
    return func(args, settings)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
