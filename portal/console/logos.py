"""Organization logos uploaded in the console: checked (PNG or JPEG by their leading bytes, at most
``MAX_LOGO_BYTES``; SVG is refused, since a script inside it would run wherever it is opened), stored under
``<files dir>/logos/<organization id>/<sha256 prefix>.<ext>`` and served publicly at ``/logos/...`` (portal pages
and emails show it), content-addressed so that it can be cached for good."""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path
from typing import Any

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from portal.web import portal_state

# Under the 64 KiB request-body limit of ordinary forms (portal.limits), with room for the multipart envelope.
MAX_LOGO_BYTES = 48 * 1024
_KINDS = {b"\x89PNG\r\n\x1a\n": ("png", "image/png"), b"\xff\xd8\xff": ("jpg", "image/jpeg")}
_MEDIA = {"png": "image/png", "jpg": "image/jpeg"}
_NAME = re.compile(r"^[0-9a-f]{16}\.(png|jpg)$")
_ORG = re.compile(r"^[A-Za-z0-9-]{1,64}$")


def kind_of(content: bytes) -> str | None:
    """``png`` or ``jpg`` from the file's leading bytes (never its name or declared type), else None."""
    for magic, (extension, _media) in _KINDS.items():
        if content.startswith(magic):
            return extension
    return None


def relative_path(organization_id: str, content: bytes, extension: str) -> str:
    return f"logos/{organization_id}/{hashlib.sha256(content).hexdigest()[:16]}.{extension}"


async def store(files_dir: Path, relative: str, content: bytes) -> None:
    def write() -> None:
        target = files_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(".part")
        temporary.write_bytes(content)
        temporary.replace(target)  # whole or absent, never half a file

    await asyncio.to_thread(write)


@get("/logos/{organization_id:str}/{name:str}", name="console.logo", include_in_schema=False)
async def logo(request: Request[Any, Any, Any], organization_id: FromPath[str], name: FromPath[str]) -> Response[Any]:
    """A stored logo (public: the portal's sign-in page and the emails show it)."""
    if not _ORG.match(organization_id) or not (match := _NAME.match(name)):
        raise NotFoundException("Not found")
    path = portal_state(request.app.state).settings.files_dir / "logos" / organization_id / name
    try:
        content = await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError:
        raise NotFoundException("Not found") from None
    return Response(
        content,
        media_type=_MEDIA[match.group(1)],
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )
