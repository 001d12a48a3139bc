"""``portal connect <processor> --org SLUG``: connect an organization to a payment processor from the command line.

Secrets come from files (``--api-key-file``, ``--webhook-secret-file``) or the processor's environment variables
(``STRIPE_API_KEY``, ``STRIPE_WEBHOOK_SECRET``), never from flags (they would show in ``ps`` and shell history);
they are never printed."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from portal.admin.token_cli import _run
from portal.clock import Clock
from portal.connectors import connect as connect_service
from portal.connectors.base import ProcessorError, registry
from portal.connectors.store import Secrets
from portal.db import Database
from portal.errors import DomainError
from portal.organizations import queries as org_queries
from portal.settings import Settings


def _secret(path: str | None, env: str) -> str:
    if path:
        return Path(path).read_text().strip()
    return os.environ.get(env, "").strip()


def cmd_connect(args: argparse.Namespace, settings: Settings) -> int:
    processor = registry()[args.processor]
    prefix = processor.name.upper()
    try:
        secrets = Secrets(
            api_key=_secret(args.api_key_file, f"{prefix}_API_KEY"),
            webhook_secret=_secret(args.webhook_secret_file, f"{prefix}_WEBHOOK_SECRET"),
        )
    except OSError as exc:
        print(f"portal: cannot read a secret file: {exc.strerror} ({exc.filename})", file=sys.stderr)
        return 2
    if not secrets.api_key:
        print(f"portal: no API key: pass --api-key-file or set {prefix}_API_KEY", file=sys.stderr)
        return 2
    if not secrets.webhook_secret:
        print(
            f"portal: no webhook signing secret: pass --webhook-secret-file or set {prefix}_WEBHOOK_SECRET",
            file=sys.stderr,
        )
        return 2

    async def work(db: Database) -> Any:
        org = await org_queries.get_by_slug(db, args.org)
        if org is None:
            return None
        return await connect_service.connect(
            db,
            settings,
            processor,
            organization_id=org.id,
            secrets=secrets,
            connector_settings=None,
            now=Clock().now(),
        )

    try:
        connection = _run(settings, work)
    except ProcessorError as exc:
        print(f"portal: {processor.label} did not accept the connection: {exc.message}", file=sys.stderr)
        return 1
    except DomainError as exc:
        print(f"portal: {exc.field}: {exc.message}", file=sys.stderr)
        return 2
    if connection is None:
        print(f"portal: no organization with slug {args.org!r}", file=sys.stderr)
        return 1
    steps = connect_service.instructions(processor, settings, args.org)
    mode = "live" if connection.livemode else "test"
    print(f"Connected {args.org} to {processor.label} ({mode} mode); the secrets are stored encrypted.")
    print(f"Add a webhook endpoint in {processor.label}'s dashboard:")
    print(f"  URL: POST {steps.webhook_url}")
    print("  Events to select:")
    for event in steps.events:
        print(f"    {event}")
    return 0


def add_connect_commands(sub: Any) -> None:
    connect = sub.add_parser("connect", help="connect an organization to a payment processor")
    processors = connect.add_subparsers(dest="processor", required=True)
    for name, processor in registry().items():
        parser = processors.add_parser(name, help=f"connect an organization to {processor.label}")
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--api-key-file", help=f"file holding the secret key (else ${name.upper()}_API_KEY)")
        parser.add_argument(
            "--webhook-secret-file",
            help=f"file holding the webhook signing secret (else ${name.upper()}_WEBHOOK_SECRET)",
        )
        parser.set_defaults(func=cmd_connect)
