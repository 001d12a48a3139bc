"""``Scope``: whose rows a read may return. Every area's read module (``portal/<area>/reads.py``) takes one, so
the customer portal (pages and API), the admin API, webhook payloads, connectors and the seller console read
through the same functions and differ only in the scope they pass.

- ``Scope.of_customer(org, customer)``: one customer of one organization (the customer portal). Another
  customer's row is indistinguishable from a missing one.
- ``Scope.of_organization(org)``: every customer of one organization (an organization token, the console).
- ``EVERY_ORGANIZATION``: no narrowing; for callers that check ownership themselves (the admin API's
  ``Principal.check`` on a record read by id, webhook payloads built inside the change's transaction).
"""

from __future__ import annotations

from typing import Any

import msgspec


class Scope(msgspec.Struct, frozen=True, kw_only=True):
    """``None`` in a field means "not narrowed by it". Build with the constructors below."""

    organization_id: str | None = None
    customer_id: str | None = None

    @classmethod
    def of_customer(cls, organization_id: str, customer_id: str) -> Scope:
        return cls(organization_id=organization_id, customer_id=customer_id)

    @classmethod
    def of_organization(cls, organization_id: str) -> Scope:
        return cls(organization_id=organization_id)

    def customer_ids(self) -> tuple[str, str]:
        """``(organization_id, customer_id)`` of a customer scope, for reads that only exist per customer (what a
        customer holds); ``ValueError`` for any other scope."""
        if self.organization_id is None or self.customer_id is None:
            raise ValueError("this read needs the scope of one customer")
        return self.organization_id, self.customer_id

    def filters(self, alias: str) -> dict[str, Any]:
        """``{"<alias>.organization_id": …, "<alias>.customer_id": …}`` for ``pagination.fetch_page`` (which skips
        the ``None`` values)."""
        return {f"{alias}.organization_id": self.organization_id, f"{alias}.customer_id": self.customer_id}

    def where(self, alias: str) -> tuple[list[str], list[Any]]:
        """The scope as ``WHERE`` clauses on the table aliased ``alias`` and their parameters (``1 = 1`` when it
        narrows nothing, so the clauses can always be joined with ``AND``)."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in self.filters(alias).items():
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        return clauses or ["1 = 1"], params


EVERY_ORGANIZATION = Scope()
