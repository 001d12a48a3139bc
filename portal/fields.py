"""Shared input types: the constraints every boundary (admin API, customer API, seed documents, forms) puts on
text, times and integers, so a class of bad input is refused the same way everywhere (issue 17.7, 17.8).

* ``SingleLine``: text that can become an email header or subject, a log line or a file name (names, labels,
  email addresses, ids). No line breaks of any kind (CR, LF, U+0085, U+2028, U+2029) and no other control
  character (Unicode category Cc): a stored "Acme\\r\\nBcc: …" would otherwise break or forge every email of its
  organization. msgspec refuses it at decoding with a 422 naming the field.
* ``Moment``: a datetime with its offset (``…Z`` or ``…+02:00``). A naive one is ambiguous and cannot be
  compared with stored UTC times (that was a 500); msgspec refuses it with a 422 naming the field.
  ``moment_problem`` bounds the year, so adding a period or converting to UTC can never overflow.
* ``DbInt`` / ``NonNegative`` / ``Amount``: integers SQLite can store (64-bit), and amounts small enough that a
  quantity times an amount summed over an order's items still fits.

``single_line_problem`` and ``fold_header`` serve code that checks or emits text which did not come through a
decoder (HTML forms handled by hand, rows written before these rules, the mail builder).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

import msgspec

# Cc (U+0000-U+001F, U+007F-U+009F: CR, LF, TAB, NEL U+0085 included) and the Unicode line/paragraph
# separators. ``\Z``, not ``$``: ``$`` also matches before a final "\n".
# Written as regex escapes (a raw string), so msgspec's error message shows them readably.
CONTROL_CHARACTERS = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
SINGLE_LINE_PATTERN = rf"^[^{CONTROL_CHARACTERS}]*\Z"
_CONTROL_RE = re.compile(f"[{CONTROL_CHARACTERS}]")
_CONTROL_RUN_RE = re.compile(f"[{CONTROL_CHARACTERS}]+")

SingleLine = Annotated[
    str,
    msgspec.Meta(
        pattern=SINGLE_LINE_PATTERN,
        max_length=2048,  # room for long URLs (avatar, website)
        description="One line of text: no line breaks or control characters.",
    ),
]
# One address, as the sign-in and email-change forms take it: one "@", no whitespace, no control characters
# (it becomes a To header and the SMTP envelope).
EMAIL_ADDRESS_PATTERN = rf"^[^@\s{CONTROL_CHARACTERS}]+@[^@\s{CONTROL_CHARACTERS}]+\Z"
# The same with a dot in the domain (the customer API's shape, as Polar's).
DOTTED_EMAIL_ADDRESS_PATTERN = (
    rf"^[^@\s{CONTROL_CHARACTERS}]+@[^@\s{CONTROL_CHARACTERS}]+\.[^@\s{CONTROL_CHARACTERS}]+\Z"
)
# An email address as the admin and customer APIs take it: one line, at most 320 characters.
EmailLine = Annotated[str, msgspec.Meta(pattern=SINGLE_LINE_PATTERN, max_length=320)]

Moment = Annotated[datetime, msgspec.Meta(tz=True, description="An ISO-8601 time with its offset (Z or +hh:mm).")]
# Years a stored time may have: any period Portal adds (at most 365 intervals of a year) stays below 9999.
MIN_YEAR = 1
MAX_YEAR = 9000

INT64_MAX = 2**63 - 1
DbInt = Annotated[int, msgspec.Meta(ge=-INT64_MAX - 1, le=INT64_MAX)]
# Money in the currency's smallest unit: up to 10^12 (ten billion dollars); with quantities up to 10^6 an
# item's amount stays below 2^63.
AMOUNT_MAX = 10**12
NonNegative = Annotated[int, msgspec.Meta(ge=0, le=AMOUNT_MAX)]
Positive = Annotated[int, msgspec.Meta(gt=0, le=AMOUNT_MAX)]
Quantity = Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]


def has_control_characters(text: str) -> bool:
    return _CONTROL_RE.search(text) is not None


def single_line_problem(text: str) -> str | None:
    """Why ``text`` is not one line of text (for checks outside a msgspec decoder), or None."""
    if has_control_characters(text):
        return "must not contain line breaks or control characters"
    return None


def fold_header(text: str) -> str:
    """``text`` safe for an email header: each run of control characters or line breaks becomes one space.

    For values stored before the rules above (or reaching the mail builder any other way): a legacy
    "Acme\\r\\nBcc: …" organization name must not break, or add headers to, its sign-in emails."""
    return _CONTROL_RUN_RE.sub(" ", text).strip()


def escape_controls(text: str) -> str:
    """``text`` with each control character or line break shown as an escape (``\\r``, ``\\n``, ``\\x00``,
    ``\\u2028``), for log lines: a decoded URL path must not start a forged line."""
    return _CONTROL_RE.sub(_escape_one, text)


def _escape_one(match: re.Match[str]) -> str:
    char = match.group()
    named = {"\r": "\\r", "\n": "\\n", "\t": "\\t"}
    if char in named:
        return named[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def moment_problem(moment: datetime) -> str | None:
    """Why ``moment`` cannot be stored (naive, or a year outside 1-9000 once in UTC), or None."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        return "expected a time with its offset (Z or +hh:mm)"
    try:
        year = moment.astimezone(UTC).year
    except OverflowError:
        return "out of range"
    if not MIN_YEAR <= year <= MAX_YEAR:
        return f"out of range (years {MIN_YEAR}-{MAX_YEAR})"
    return None


def readable_message(message: str) -> str:
    """msgspec's message for a ``SingleLine`` field, in words (it quotes the pattern otherwise)."""
    if SINGLE_LINE_PATTERN in message or SINGLE_LINE_PATTERN.replace("\\", "\\\\") in message:
        return "must be one line: no line breaks or control characters"
    return message
