"""``portal import stripe --org SLUG [--since DATE] [--dry-run] [--catalog]``: import a connected organization's
Stripe history (``portal.connectors.stripe.importer``), with a progress line per page on stderr and a summary on
stdout. Ctrl-C (or a crash) keeps every page already written; the same command again resumes after it."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from portal.admin.token_cli import _run
from portal.clock import Clock
from portal.connectors.names import PROCESSOR_LABELS
from portal.db import Database
from portal.organizations import queries as org_queries
from portal.settings import Settings

# The importers are imported by the commands that run them (see portal/connectors/cli.py for why).
if TYPE_CHECKING:
    from portal.connectors.stripe import importer

EXIT_INTERRUPTED = 130


def parse_since(value: str) -> datetime:
    """A date (``2025-01-31``, midnight UTC) or an ISO 8601 time; ``argparse`` reports anything else."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {value!r} (expected e.g. 2025-01-31)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class _ProgressLine:
    """One line per page on stderr: the stream, objects seen, pages, objects per second."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.tty = sys.stderr.isatty()

    def __call__(self, report: importer.StreamReport) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        line = f"{report.name}: {report.seen} objects, {report.pages} pages ({report.seen / elapsed:,.0f}/s)"
        if self.tty:
            print(f"\r\033[K{line}", end="", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)

    def end(self) -> None:
        if self.tty:
            print(file=sys.stderr)


def _summary(report: importer.ImportReport) -> None:
    head = "Dry run (nothing was written)" if report.dry_run else "Imported"
    print(f"{head} in {report.seconds:.1f} s:")
    for stream in report.streams:
        if stream.skipped:
            print(f"  {stream.name:<18} done in an earlier run")
            continue
        counts = ", ".join(f"{count} {status}" for status, count in sorted(stream.outcomes.items())) or "nothing"
        resumed = " (resumed)" if stream.resumed else ""
        print(f"  {stream.name:<18} {stream.seen} seen: {counts}{resumed}")
        for object_id, reason in stream.failures[:10]:
            print(f"    failed {object_id}: {reason}")
        if len(stream.failures) > 10:
            print(f"    … and {len(stream.failures) - 10} more failures")
    unmapped = report.unmapped
    if unmapped:
        print("Waiting for a price mapping (map these prices, or run again with --catalog, then import again):")
        for price_id, count in unmapped.most_common():
            print(f"  {price_id}: {count} object(s)")


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from portal.connectors import store
    from portal.connectors.lemonsqueezy import importer as lemonsqueezy_importer
    from portal.connectors.paddle import importer as paddle_importer
    from portal.connectors.stripe import importer

    progress = _ProgressLine()
    clock = Clock()

    async def work(db: Database) -> Any:
        organization = await org_queries.get_by_slug(db, args.org)
        if organization is None:
            return f"no organization with slug {args.org!r}"
        label = PROCESSOR_LABELS[args.processor]
        connection = await store.get_connection(db, organization.id, args.processor)
        if connection is None:
            return (
                f"{args.org} is not connected to {label}: run `portal connect {args.processor} --org {args.org}` first"
            )
        try:
            connection.secrets(settings.secret_key)
        except ValueError:
            return f"the {label} connection of {args.org} cannot be read with this instance secret: connect again"
        if args.processor == "paddle":
            return await paddle_importer.run_import(db, settings, connection, now=clock.now, progress=progress)
        if args.processor == "lemonsqueezy":
            return await lemonsqueezy_importer.run_import(db, settings, connection, now=clock.now, progress=progress)
        return await importer.run_import(
            db,
            settings,
            connection,
            now=clock.now,
            since=args.since,
            dry_run=args.dry_run,
            catalog=args.catalog,
            progress=progress,
        )

    try:
        result = _run(settings, work)
    except KeyboardInterrupt:
        progress.end()
        print("portal: import interrupted; the pages written are kept: run the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    progress.end()
    if isinstance(result, str):
        print(f"portal: {result}", file=sys.stderr)
        return 1
    _summary(result)
    if result.interrupted:
        print(f"portal: the import stopped: {result.interrupted}; run the same command to resume", file=sys.stderr)
        return 1
    return 0


def add_import_commands(sub: Any) -> None:
    command = sub.add_parser("import", help="import a payment processor's history (customers, orders, ...)")
    processors = command.add_subparsers(dest="processor", required=True)
    parser = processors.add_parser("stripe", help="import a connected organization's Stripe history")
    parser.add_argument("--org", required=True, help="organization slug (connected with `portal connect stripe`)")
    parser.add_argument("--since", type=parse_since, help="only objects created on or after this date (UTC)")
    parser.add_argument("--dry-run", action="store_true", help="count what would be imported; write nothing")
    parser.add_argument(
        "--catalog", action="store_true", help="create Portal products for Stripe prices without a mapping"
    )
    parser.set_defaults(func=cmd_import)
    lemon = processors.add_parser("lemonsqueezy", help="import a connected organization's Lemon Squeezy history")
    lemon.add_argument("--org", required=True, help="organization slug (connected with `portal connect lemonsqueezy`)")
    lemon.set_defaults(func=cmd_import)
    paddle = processors.add_parser("paddle", help="import a connected organization's Paddle Billing history")
    paddle.add_argument("--org", required=True, help="organization slug (connected with `portal connect paddle`)")
    paddle.set_defaults(func=cmd_import)
    polar = processors.add_parser("polar", help="import a connected organization's Polar history")
    polar.add_argument("--org", required=True, help="organization slug (connected with `portal connect polar`)")
    polar.set_defaults(func=cmd_import_polar)
    gumroad = processors.add_parser("gumroad", help="import a connected organization's Gumroad sales")
    gumroad.add_argument("--org", required=True, help="organization slug (connected with `portal connect gumroad`)")
    gumroad.set_defaults(func=cmd_import_gumroad)


def cmd_import_polar(args: argparse.Namespace, settings: Settings) -> int:
    """``portal import polar --org SLUG``: Polar's downloadables, customers, subscriptions, orders and license keys."""
    from portal.connectors import store
    from portal.connectors.polar import importer as polar_importer

    def progress(report: polar_importer.StreamReport) -> None:
        print(f"{report.name}: {report.seen} objects, {report.pages} pages", file=sys.stderr, flush=True)

    async def work(db: Database) -> Any:
        organization = await org_queries.get_by_slug(db, args.org)
        if organization is None:
            return f"no organization with slug {args.org!r}"
        connection = await store.get_connection(db, organization.id, "polar")
        if connection is None:
            return f"{args.org} is not connected to Polar: run `portal connect polar --org {args.org}` first"
        try:
            connection.secrets(settings.secret_key)
        except ValueError:
            return f"the Polar connection of {args.org} cannot be read with this instance secret: connect again"
        return await polar_importer.run_import(db, settings, connection, now=Clock().now, progress=progress)

    try:
        result = _run(settings, work)
    except KeyboardInterrupt:
        print("portal: import interrupted; the pages written are kept: run the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    if isinstance(result, str):
        print(f"portal: {result}", file=sys.stderr)
        return 1
    print("Imported from Polar:")
    for stream in result.streams:
        if stream.skipped:
            print(f"  {stream.name:<14} done in an earlier run")
            continue
        counts = ", ".join(f"{count} {status}" for status, count in sorted(stream.outcomes.items())) or "nothing"
        print(f"  {stream.name:<14} {stream.seen} seen: {counts}{' (resumed)' if stream.resumed else ''}")
        for object_id, reason in stream.failures[:10]:
            print(f"    failed {object_id}: {reason}")
    if result.interrupted:
        print(f"portal: the import stopped: {result.interrupted}; run the same command to resume", file=sys.stderr)
        return 1
    return 0


def cmd_import_gumroad(args: argparse.Namespace, settings: Settings) -> int:
    """``portal import gumroad --org SLUG``: Gumroad's sales (customers, orders, subscriptions, license keys)."""
    from portal.connectors import store
    from portal.connectors.gumroad import importer as gumroad_importer

    def progress(report: gumroad_importer.ImportReport) -> None:
        print(f"sales: {report.seen} objects, {report.pages} pages", file=sys.stderr, flush=True)

    async def work(db: Database) -> Any:
        organization = await org_queries.get_by_slug(db, args.org)
        if organization is None:
            return f"no organization with slug {args.org!r}"
        connection = await store.get_connection(db, organization.id, "gumroad")
        if connection is None:
            return f"{args.org} is not connected to Gumroad: run `portal connect gumroad --org {args.org}` first"
        try:
            connection.secrets(settings.secret_key)
        except ValueError:
            return f"the Gumroad connection of {args.org} cannot be read with this instance secret: connect again"
        return await gumroad_importer.run_import(db, settings, connection, now=Clock().now, progress=progress)

    try:
        result = _run(settings, work)
    except KeyboardInterrupt:
        print("portal: import interrupted; the pages written are kept: run the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    if isinstance(result, str):
        print(f"portal: {result}", file=sys.stderr)
        return 1
    counts = ", ".join(f"{count} {status}" for status, count in sorted(result.outcomes.items())) or "nothing"
    print(f"Imported from Gumroad: sales {result.seen} seen: {counts}{' (resumed)' if result.resumed else ''}")
    for object_id, reason in result.failures[:10]:
        print(f"    failed {object_id}: {reason}")
    if result.interrupted:
        print(f"portal: the import stopped: {result.interrupted}; run the same command to resume", file=sys.stderr)
        return 1
    return 0
