"""``portal seller invite``: bootstrap the console's first seller of an organization (``--org SLUG EMAIL [--role]``)
or an instance admin (``--admin EMAIL``, who sees every organization). Prints what it did, emails the invitation,
and writes an audit entry (role ``cli``)."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from portal.admin.token_cli import _run
from portal.clock import Clock
from portal.console import store
from portal.db import Database
from portal.fields import EMAIL_ADDRESS_PATTERN
from portal.organizations import queries as org_queries
from portal.settings import Settings

_EMAIL = re.compile(EMAIL_ADDRESS_PATTERN)


def cmd_seller_invite(args: argparse.Namespace, settings: Settings) -> int:
    # Imported here: the invitation email is rendered with the templating package (Jinja2, Babel), which the CLI's
    # other commands and `portal serve`'s supervisor (it builds this parser) never need.
    from portal.console import audit, mail
    from portal.mail import build_mailer

    email = args.email.strip()
    if len(email) > 320 or not _EMAIL.match(email):
        print(f"portal: not an email address: {email!r}", file=sys.stderr)
        return 2
    if not args.admin and not args.org:
        print("portal: give --org SLUG (or --admin for an instance admin)", file=sys.stderr)
        return 2

    async def work(db: Database) -> tuple[str, Any] | None:
        now = Clock().now()
        organization = None
        if not args.admin:
            organization = await org_queries.get_by_slug(db, args.org)
            if organization is None:
                return None
        async with db.write() as tx:
            seller = await store.ensure_seller(tx, email, now, admin=args.admin)
            if organization is not None:
                await store.set_membership(tx, seller.id, organization.id, args.role, now, invited_by=None)
            await audit.record(
                tx,
                audit.Actor(seller_id=None, email="cli", role="cli", client_ip=None),
                organization_id=None if organization is None else organization.id,
                action="team.invite",
                target=seller.email,
                details={"role": "admin" if args.admin else args.role},
                now=now,
            )
        message = mail.invitation_email(
            settings,
            to=seller.email,
            organization_name=organization.name if organization else "Portal",
            role="owner" if args.admin else args.role,
            invited_by="Portal",
        )
        await build_mailer(settings).send(message)
        return seller.email, organization

    result = _run(settings, work)
    if result is None:
        print(f"portal: no organization with slug {args.org!r}", file=sys.stderr)
        return 1
    invited, organization = result
    if organization is None:
        print(f"{invited} is an instance admin: every organization at {settings.public_base_url}/console")
    else:
        print(
            f"{invited} is {args.role} of {organization.slug}: {settings.public_base_url}/console/{organization.slug}"
        )
    return 0


def add_seller_commands(sub: Any) -> None:
    seller = sub.add_parser("seller", help="seller console accounts")
    seller_sub = seller.add_subparsers(dest="seller_command", required=True)
    invite = seller_sub.add_parser("invite", help="give an email address access to the seller console")
    target = invite.add_mutually_exclusive_group(required=True)
    target.add_argument("--org", help="organization slug")
    target.add_argument("--admin", action="store_true", help="an instance admin: every organization")
    invite.add_argument("--role", choices=store.ROLES, default="owner", help="role in --org (default owner)")
    invite.add_argument("email")
    invite.set_defaults(func=cmd_seller_invite)


__all__ = ["add_seller_commands"]
