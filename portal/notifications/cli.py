"""``portal outbox``: the transactional emails queued, sent and failing (status, attempts, next attempt, last
error), newest first; ``--retry ID`` makes a failed message due again with a fresh attempt budget (a running
server's worker sends it within a poll interval)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from portal.clock import Clock
from portal.db import Database, connect_sync
from portal.migrations import migrate
from portal.notifications import outbox
from portal.settings import Settings

STATUSES = ("pending", "sending", "sent", "failed", "canceled")


async def _list(db: Database, args: argparse.Namespace) -> list[outbox.OutboxMessage]:
    return await outbox.list_messages(db, status=args.status, limit=args.limit)


async def _retry(db: Database, message_id: str) -> bool:
    async with db.write() as tx:
        return await outbox.requeue(tx, message_id, now=Clock().now())


def _run(settings: Settings, work: Any) -> Any:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    conn = connect_sync(settings.db_path, settings.sqlite_synchronous)
    try:
        migrate(conn)
    finally:
        conn.close()

    async def main() -> Any:
        db = await Database(settings.db_path, synchronous=settings.sqlite_synchronous, readers=1).open()
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(main())


def cmd_outbox(args: argparse.Namespace, settings: Settings) -> int:
    if args.retry:
        if not _run(settings, lambda db: _retry(db, args.retry)):
            print(f"portal: no failed or pending email with id {args.retry}", file=sys.stderr)
            return 1
        print(f"Email {args.retry} is queued again.")
        return 0
    messages = _run(settings, lambda db: _list(db, args))
    if not messages:
        print("The outbox is empty.")
        return 0
    print(f"{'ID':<36}  {'STATUS':<8} {'TRIES':>5}  {'KIND':<24} {'TO':<28} {'CREATED':<27} NEXT / SENT / ERROR")
    for message in messages:
        if message.status == "sent":
            detail = f"sent {message.sent_at}"
        elif message.status in ("pending", "sending"):
            detail = f"next {message.next_attempt_at}"
        else:
            detail = ""
        if message.last_error:
            detail = f"{detail}  error: {message.last_error}".strip()
        print(
            f"{message.id:<36}  {message.status:<8} {message.attempts:>5}  {message.kind:<24} "
            f"{message.to_address:<28} {message.created_at:<27} {detail}"
        )
    return 0


def add_outbox_command(sub: Any) -> None:
    """Register ``portal outbox`` on the CLI's subparsers."""
    parser = sub.add_parser("outbox", help="list transactional emails (status, attempts, errors); retry one")
    parser.add_argument("--status", choices=STATUSES, help="only messages with this status")
    parser.add_argument("--limit", type=int, default=50, help="how many, newest first (default 50)")
    parser.add_argument("--retry", metavar="ID", help="queue a failed email again, due now")
    parser.set_defaults(func=cmd_outbox)
