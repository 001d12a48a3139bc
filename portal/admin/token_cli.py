"""``portal token create|list|revoke``: manage admin-API tokens from the command line. The token is printed
once, on creation; the database keeps only its HMAC."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from portal.admin import tokens
from portal.clock import Clock
from portal.db import Database
from portal.migrations import migrate
from portal.organizations import queries as org_queries
from portal.settings import Settings

T = TypeVar("T")


def _run(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    from portal.db import connect_sync

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    conn = connect_sync(settings.db_path, settings.sqlite_synchronous)
    try:
        migrate(conn)
    finally:
        conn.close()

    async def main() -> T:
        db = await Database(settings.db_path, synchronous=settings.sqlite_synchronous, readers=1).open()
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(main())


def cmd_token_create(args: argparse.Namespace, settings: Settings) -> int:
    async def work(db: Database) -> tuple[str, tokens.ApiToken] | None:
        organization_id = None
        if not args.admin:
            org = await org_queries.get_by_slug(db, args.org)
            if org is None:
                return None
            organization_id = org.id
        async with db.write() as tx:
            return await tokens.create_token(
                tx,
                secret=settings.secret_key,
                name=args.name or ("admin" if args.admin else args.org),
                organization_id=organization_id,
                now=Clock().now(),
            )

    created = _run(settings, work)
    if created is None:
        print(f"portal: no organization with slug {args.org!r}", file=sys.stderr)
        return 1
    token, record = created
    scope = "admin (all organizations)" if record.is_admin else f"organization {args.org}"
    print(f"Created token {record.id} ({record.name}), scope: {scope}.", file=sys.stderr)
    print("It is shown only this once; send it as 'Authorization: Bearer <token>':", file=sys.stderr)
    print(token, flush=True)
    return 0


def cmd_token_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(db: Database) -> list[tuple[tokens.ApiToken, str]]:
        rows = []
        for record in await tokens.list_tokens(db):
            slug = "*"
            if record.organization_id is not None:
                org = await org_queries.get_by_id(db, record.organization_id)
                slug = org.slug if org else "?"
            rows.append((record, slug))
        return rows

    for record, slug in _run(settings, work):
        state = f"revoked {record.revoked_at}" if record.revoked_at else "active"
        print(
            f"{record.id}  {record.scope:<12} {slug:<20} {record.name:<20} "
            f"created {record.created_at}  last used {record.last_used_at or 'never'}  {state}"
        )
    return 0


def cmd_token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    async def work(db: Database) -> bool:
        async with db.write() as tx:
            return await tokens.revoke_token(tx, args.id, now=Clock().now())

    if not _run(settings, work):
        print(f"portal: no active token with id {args.id}", file=sys.stderr)
        return 1
    print(f"Revoked token {args.id}.")
    return 0


def add_token_commands(sub: Any) -> None:
    """Register ``portal token …`` on the CLI's subparsers."""
    token = sub.add_parser("token", help="manage admin-API tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser("create", help="mint a token (printed once)")
    scope = create.add_mutually_exclusive_group(required=True)
    scope.add_argument("--org", metavar="SLUG", help="an organization token, limited to this organization")
    scope.add_argument("--admin", action="store_true", help="an instance-wide admin token")
    create.add_argument("--name", help="a label to recognise the token by")
    create.set_defaults(func=cmd_token_create)
    token_sub.add_parser("list", help="list tokens (never their values)").set_defaults(func=cmd_token_list)
    revoke = token_sub.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("id")
    revoke.set_defaults(func=cmd_token_revoke)
