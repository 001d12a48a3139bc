"""``portal connect <processor> --org SLUG``: connect an organization to a payment processor from the command line.

Secrets come from files (``--api-key-file``, ``--webhook-secret-file``) or the processor's environment variables
(``STRIPE_API_KEY``, ``STRIPE_WEBHOOK_SECRET``), never from flags (they would show in ``ps`` and shell history);
they are never printed.

Also: ``portal connect status --org SLUG`` (last event, counts by type, failures, unmapped prices),
``portal connect map --org SLUG PRICE_ID PRODUCT_ID`` (map a processor price to a Portal product; the events that
waited on it are applied), and ``portal events list|show|replay [ID] --org SLUG`` (``--processor``, default
``stripe``)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from portal.admin.token_cli import _run
from portal.clock import Clock
from portal.connectors.names import PROCESSOR_LABELS
from portal.db import Database
from portal.errors import DomainError
from portal.organizations import queries as org_queries
from portal.settings import Settings

# The connector modules are imported by the commands that use them: they pull in the domain services, Litestar and
# an HTTP client, and this module's parser is built by every CLI call, `portal serve`'s supervisor included.
if TYPE_CHECKING:
    from portal.connectors import events, health
    from portal.connectors.base import Processor
    from portal.connectors.store import Connection


def _secret(path: str | None, env: str) -> str:
    if path:
        return Path(path).read_text().strip()
    return os.environ.get(env, "").strip()


def cmd_connect(args: argparse.Namespace, settings: Settings) -> int:
    from portal.connectors import connect as connect_service
    from portal.connectors.base import ProcessorError, registry
    from portal.connectors.store import Secrets

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


T = TypeVar("T")


class _Missing(Exception):
    """An organization or connection that does not exist (printed, exit status 1)."""


def _with_connection(
    args: argparse.Namespace, settings: Settings, work: Callable[[Database, Processor, Connection], Awaitable[T]]
) -> T:
    from portal.connectors import store
    from portal.connectors.base import registry

    processor = registry()[args.processor_name]

    async def run(db: Database) -> T:
        org = await org_queries.get_by_slug(db, args.org)
        if org is None:
            raise _Missing(f"no organization with slug {args.org!r}")
        connection = await store.get_connection(db, org.id, processor.name)
        if connection is None:
            raise _Missing(f"{args.org} is not connected to {processor.label}: run portal connect {processor.name}")
        return await work(db, processor, connection)

    return _run(settings, run)


def _guarded(command: Callable[[argparse.Namespace, Settings], int]) -> Callable[[argparse.Namespace, Settings], int]:
    def wrapped(args: argparse.Namespace, settings: Settings) -> int:
        try:
            return command(args, settings)
        except _Missing as exc:
            print(f"portal: {exc}", file=sys.stderr)
            return 1

    return wrapped


def _line(event: health.EventSummary) -> str:
    extra = f"  {event.reason}" if event.reason else ""
    price = f"  price {event.price_id}" if event.price_id and event.status == "unmapped" else ""
    return f"{event.received_at}  {event.event_id}  {event.type}  {event.status}{price}{extra}"


@_guarded
def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from portal.connectors import health

    async def work(db: Database, processor: Processor, connection: Connection) -> health.Health:
        return await health.health(db, connection)

    report = _with_connection(args, settings, work)
    mode = "live" if report.livemode else "test"
    print(f"{args.org}: connected to {args.processor_name} ({mode} mode)")
    print("Last event: " + (_line(report.last_event) if report.last_event else "none received yet"))
    if report.counts:
        print("Events by type:")
        for count in report.counts:
            print(f"  {count.type:<45} {count.status:<9} {count.count}")
    if report.failures:
        print("Failures (replay with: portal events replay ID --org SLUG):")
        for failure in report.failures:
            print("  " + _line(failure))
    if report.unmapped_prices:
        print("Unmapped prices (map with: portal connect map --org SLUG PRICE_ID PRODUCT_ID):")
        for price in report.unmapped_prices:
            print(f"  {price.price_id}  {price.events} event(s) waiting since {price.first_received_at}")
    return 0


@_guarded
def cmd_map(args: argparse.Namespace, settings: Settings) -> int:
    from portal.connectors import events

    async def work(db: Database, processor: Processor, connection: Connection) -> list[events.Received] | None:
        owner = await db.fetchval("SELECT organization_id FROM products WHERE id = ?", (args.product_id,))
        if owner != connection.organization_id:
            return None
        return await events.map_price(
            db, settings, processor, connection, args.price_id, args.product_id, now=Clock().now()
        )

    results = _with_connection(args, settings, work)
    if results is None:
        print(f"portal: no product {args.product_id} in {args.org}", file=sys.stderr)
        return 1
    print(f"Mapped {args.price_id} to product {args.product_id}.")
    for result in results:
        print(f"  {result.event_id}: {result.status}" + (f" ({result.reason})" if result.reason else ""))
    if not results:
        print("  No event was waiting on this price.")
    return 0


@_guarded
def cmd_events(args: argparse.Namespace, settings: Settings) -> int:
    from portal.connectors import events, health

    async def work(db: Database, processor: Processor, connection: Connection) -> int:
        if args.action == "list":
            items, total = await health.list_events(
                db, connection, status=args.status, event_type=args.type, limit=args.limit
            )
            for item in items:
                print(_line(item))
            print(f"{len(items)} of {total} event(s)")
            return 0
        if not args.id:
            print(f"portal: events {args.action} needs an event id", file=sys.stderr)
            return 2
        if args.action == "show":
            found = await health.get_event(db, connection, args.id)
            if found is None:
                print(f"portal: no event {args.id} for {args.org}", file=sys.stderr)
                return 1
            print(msgspec.json.format(msgspec.json.encode(found), indent=2).decode())
            return 0
        try:
            result = await events.replay(db, settings, processor, connection, args.id, now=Clock().now())
        except DomainError as exc:
            print(f"portal: {exc.message}", file=sys.stderr)
            return 1
        print(f"{result.event_id}: {result.status}" + (f" ({result.reason})" if result.reason else ""))
        return 1 if result.status == "failed" else 0

    return _with_connection(args, settings, work)


def add_connect_commands(sub: Any) -> None:
    connect = sub.add_parser("connect", help="connect an organization to a payment processor")
    processors = connect.add_subparsers(dest="processor", required=True)
    names = sorted(PROCESSOR_LABELS)
    status = processors.add_parser("status", help="a connection's health: last event, failures, unmapped prices")
    status.add_argument("--org", required=True, help="organization slug")
    status.add_argument("--processor", dest="processor_name", choices=names, default="stripe")
    status.set_defaults(func=cmd_status)
    mapper = processors.add_parser("map", help="map a processor price to a Portal product")
    mapper.add_argument("--org", required=True, help="organization slug")
    mapper.add_argument("--processor", dest="processor_name", choices=names, default="stripe")
    mapper.add_argument("price_id", help="the processor's price id (e.g. price_…)")
    mapper.add_argument("product_id", help="the Portal product id")
    mapper.set_defaults(func=cmd_map)
    inbound = sub.add_parser("events", help="a connection's inbound processor events: list, show, replay")
    inbound.add_argument("action", choices=["list", "show", "replay"])
    inbound.add_argument("id", nargs="?", help="event id (Portal's or the processor's) for show and replay")
    inbound.add_argument("--org", required=True, help="organization slug")
    inbound.add_argument("--processor", dest="processor_name", choices=names, default="stripe")
    inbound.add_argument("--status", choices=["applied", "ignored", "unmapped", "failed"])
    inbound.add_argument("--type", help="only events of this type (e.g. invoice.paid)")
    inbound.add_argument("--limit", type=int, default=50)
    inbound.set_defaults(func=cmd_events)
    for name, label in PROCESSOR_LABELS.items():
        parser = processors.add_parser(name, help=f"connect an organization to {label}")
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--api-key-file", help=f"file holding the secret key (else ${name.upper()}_API_KEY)")
        parser.add_argument(
            "--webhook-secret-file",
            help=f"file holding the webhook signing secret (else ${name.upper()}_WEBHOOK_SECRET)",
        )
        parser.set_defaults(func=cmd_connect)
