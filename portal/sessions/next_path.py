"""Where to go after signing in: the ``next`` parameter that carries a signed-out visitor's deep link (an order, a
receipt, a benefit, the target of a used or expired email link) through the sign-in pages.

``safe_next`` is the one gate: a path of the SAME organization's portal (``/<slug>/portal/...``), relative (no
scheme, no host, no ``//`` that a browser would read as a host, no backslash, no ``.``/``..`` segments, in plain
or percent-encoded form), without control characters. Anything else is dropped, never "fixed": an open redirect
must not be reachable by any spelling.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit

MAX_NEXT_LENGTH = 1000
# Control characters and spaces: browsers strip tabs/newlines from URLs, which can turn "/\t/evil" into "//evil".
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")
# Paths that only answer POST or that are the sign-in flow itself: landing there after signing in is pointless.
_SKIPPED = ("/request", "/authenticate", "/logout", "/switch", "/link", "/locale")


def safe_next(slug: str, value: str | None) -> str | None:
    """``value`` if it is a path inside ``/<slug>/portal`` (with its query, without a fragment), else None."""
    if not value or len(value) > MAX_NEXT_LENGTH:
        return None
    decoded = unquote(value)
    if _UNSAFE.search(value) or _UNSAFE.search(decoded):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/"):
        return None
    root = f"/{slug}/portal"
    path = parts.path
    for candidate in (path, unquote(path)):
        if "//" in candidate:
            return None
        if not (candidate == root or candidate.startswith(root + "/")):
            return None
        if any(segment in (".", "..") for segment in candidate.split("/")):
            return None
    if path == root or path == root + "/":
        return None  # the home page: nothing to come back to
    if any(path == root + suffix or path.startswith(root + suffix + "/") for suffix in _SKIPPED):
        return None
    return path + (f"?{parts.query}" if parts.query else "")


def next_of(path: str, query: str) -> str:
    """The ``next`` value for a request to ``path`` with the raw ``query`` (sign-in redirects)."""
    return path + (f"?{query}" if query else "")


def with_next(url: str, next_path: str | None) -> str:
    """``url`` with ``next`` appended (already validated by ``safe_next``, or nothing appended)."""
    if not next_path:
        return url
    return f"{url}{'&' if '?' in url else '?'}next={quote(next_path, safe='/')}"
