"""``portal link --org SLUG --email E``: print a pre-authenticated portal link for one customer, from the command
line. It mints the same seller-made customer session as ``POST /v1/customer-sessions/`` (``origin='seller'``,
``PORTAL_CUSTOMER_SESSION_TTL``), so the link opens the portal signed in, once per browser, until it expires."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from portal.admin.token_cli import _run
from portal.clock import Clock
from portal.db import Database
from portal.organizations import queries as org_queries
from portal.settings import Settings


def cmd_link(args: argparse.Namespace, settings: Settings) -> int:
    # Imported here: they pull in Litestar, which the CLI's other commands (and `portal serve`'s supervisor,
    # which builds this parser) never need; see portal/cli.py.
    from portal.customers import reads as customer_reads
    from portal.scope import Scope
    from portal.sessions.store import create_session, customer_portal_url

    async def work(db: Database) -> tuple[bool, str]:
        org = await org_queries.get_by_slug(db, args.org)
        if org is None:
            return False, f"portal: no organization with slug {args.org!r}"
        customer = await customer_reads.get_customer_by_email(db, Scope.of_organization(org.id), args.email)
        if customer is None:
            return False, f"portal: organization {args.org!r} has no customer with email {args.email!r}"
        async with db.write() as tx:
            token, _ = await create_session(
                tx,
                secret=settings.secret_key,
                kind="api",
                organization_id=org.id,
                customer_id=customer.id,
                now=Clock().now(),
                ttl_seconds=settings.customer_session_ttl,
                origin="seller",
            )
        return True, customer_portal_url(settings.public_base_url, org.slug, token, customer.email)

    ok, result = _run(settings, work)
    if not ok:
        print(result, file=sys.stderr)
        return 1
    minutes = settings.customer_session_ttl // 60
    print(f"Sign-in link for {args.email} (valid {minutes} minutes, keep it private):", file=sys.stderr)
    print(result, flush=True)
    return 0


def add_link_command(sub: Any) -> None:
    """Register ``portal link`` on the CLI's subparsers."""
    link = sub.add_parser("link", help="print a pre-authenticated portal link for a customer")
    link.add_argument("--org", metavar="SLUG", required=True, help="the organization's slug")
    link.add_argument("--email", metavar="EMAIL", required=True, help="the customer's email")
    link.set_defaults(func=cmd_link)
