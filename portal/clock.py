"""Time and identifiers: an injectable clock (tests move it forward), ISO-8601 UTC text, UUIDv4 ids."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta


class Clock:
    """Wall-clock time in UTC; ``advance()`` moves it forward (tests of expiry and timeouts)."""

    def __init__(self) -> None:
        self._offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += timedelta(seconds=seconds)


def iso(moment: datetime) -> str:
    """UTC ISO-8601 text with microseconds and ``Z``: fixed width, so text order is time order."""
    # Not strftime("%Y"): glibc writes year 478 as "478", which sorts wrong and which fromisoformat refuses.
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """Parse what ``iso`` writes (and any ISO-8601 with an offset); naive input is taken as UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def new_id() -> str:
    return str(uuid.uuid4())
