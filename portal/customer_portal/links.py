"""Short-lived signed URLs for documents the JSON API hands out (receipts, invoices): they open without a
cookie until they expire, like Polar's presigned URLs. The signature binds organization, customer and document,
so a link never opens another customer's document and cannot be re-pointed at one."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from portal.security import sign, verify_signature
from portal.settings import Settings

DOCUMENT_LINK_TTL = 3600  # seconds


def _payload(kind: str, organization_id: str, customer_id: str, document_id: str) -> str:
    return f"{kind}|{organization_id}|{customer_id}|{document_id}"


def document_url(
    settings: Settings,
    kind: str,
    *,
    organization_id: str,
    customer_id: str,
    document_id: str,
    now: datetime,
    ttl_seconds: int = DOCUMENT_LINK_TTL,
) -> str:
    """``{base}/r/{kind}s/{id}?signature=…`` (``kind`` is ``receipt`` or ``invoice``)."""
    expires = int(now.timestamp()) + ttl_seconds
    signature = sign(settings.secret_key, _payload(kind, organization_id, customer_id, document_id), expires)
    return f"{settings.public_base_url}/r/{kind}s/{quote(document_id)}?signature={quote(signature)}"


def check_document_signature(
    settings: Settings,
    kind: str,
    *,
    organization_id: str,
    customer_id: str,
    document_id: str,
    signature: str,
    now: datetime,
) -> bool:
    return verify_signature(
        settings.secret_key, _payload(kind, organization_id, customer_id, document_id), signature, now.timestamp()
    )
