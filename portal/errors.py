"""Domain errors raised by services; the web layer maps them to HTTP (404, 409, 422)."""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain refused the operation; ``field`` names the offending input, if any."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DomainError):
    """The object does not exist, or belongs to someone else (answered identically)."""


class Conflict(DomainError):
    """A uniqueness rule: e.g. the same email twice in one organization."""


class InvalidInput(DomainError):
    """Input that is well-typed but breaks a rule (refund larger than what remains, …)."""
