"""The seller audit log (``seller_audit_log``, migration 17): every seller action, written in the transaction of
the action itself (no action without its entry, no entry without its action), and read back filtered.

An entry names who (seller id and email, copied: the log outlives the account), in which role, in which
organization (None: instance-level, e.g. signing in), the action (a dotted name such as ``team.invite``), its
target, details (JSON), the time and the client address.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from portal.clock import iso, new_id
from portal.db import Database, Transaction, row_dict


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    seller_id: str | None
    seller_email: str
    role: str
    organization_id: str | None
    action: str
    target: str | None
    details: str
    client_ip: str | None
    created_at: str


class Actor(msgspec.Struct, frozen=True, kw_only=True):
    """Who acts: the signed-in seller, the role they act in, and from where."""

    seller_id: str | None
    email: str
    role: str  # owner | support | admin | cli
    client_ip: str | None


async def record(
    tx: Transaction,
    actor: Actor,
    *,
    organization_id: str | None,
    action: str,
    target: str | None = None,
    details: dict[str, Any] | None = None,
    now: datetime,
) -> None:
    """Write one entry in the caller's transaction."""
    await tx.execute(
        """
        INSERT INTO seller_audit_log
            (id, seller_id, seller_email, role, organization_id, action, target, details, client_ip, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        (
            new_id(),
            actor.seller_id,
            actor.email,
            actor.role,
            organization_id,
            action,
            target,
            msgspec.json.encode(details or {}).decode(),
            actor.client_ip,
            iso(now),
        ),
    )


async def entries(
    db: Database,
    organization_id: str,
    *,
    action: str | None = None,
    seller_email: str | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """The organization's newest entries, optionally only one action (or action prefix, ``team.``) or seller."""
    sql = """
        SELECT id, seller_id, seller_email, role, organization_id, action, target, details, client_ip, created_at
        FROM seller_audit_log
        WHERE organization_id = ?
    """
    params: list[Any] = [organization_id]
    if action:
        sql += " AND (action = ? OR action LIKE ? ESCAPE '\\')"
        escaped = action.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params += [action, escaped.rstrip(".") + ".%"]
    if seller_email:
        sql += " AND seller_email = ? COLLATE NOCASE"
        params.append(seller_email.strip())
    sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
    params.append(limit)
    rows = await db.fetchall(sql, tuple(params))
    return [msgspec.convert(row_dict(row), AuditEntry, strict=False) for row in rows]


async def actions_of(db: Database, organization_id: str) -> list[str]:
    """The distinct actions recorded in the organization (the filter's choices)."""
    rows = await db.fetchall(
        "SELECT DISTINCT action FROM seller_audit_log WHERE organization_id = ? ORDER BY action", (organization_id,)
    )
    return [str(row["action"]) for row in rows]


async def entries_about(db: Database, organization_id: str, target: str, limit: int = 50) -> list[AuditEntry]:
    """The organization's newest entries whose target is ``target`` (a customer's id: ``seller_audit_log_target``)."""
    rows = await db.fetchall(
        """
        SELECT id, seller_id, seller_email, role, organization_id, action, target, details, client_ip, created_at
        FROM seller_audit_log
        WHERE organization_id = ? AND target = ?
        ORDER BY created_at DESC
        LIMIT ?
        """,
        (organization_id, target, limit),
    )
    return [msgspec.convert(row_dict(row), AuditEntry, strict=False) for row in rows]
