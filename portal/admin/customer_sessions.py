"""``POST /v1/customer-sessions/``, exactly as Polar's: mint a customer-session token for a customer (by id or
``external_customer_id``) and the pre-authenticated portal link ``{base}/{slug}/portal?customer_session_token=…``.
The token lives ``PORTAL_CUSTOMER_SESSION_TTL`` seconds (1 hour) and only its HMAC is stored."""

from __future__ import annotations

from urllib.parse import urlsplit

import msgspec
from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from portal.admin import responses
from portal.admin.auth import Principal
from portal.clock import Clock
from portal.customers import reads as customer_reads
from portal.db import Database
from portal.errors import Conflict, InvalidInput
from portal.fields import SingleLine
from portal.organizations import queries as org_queries
from portal.polar.convert import customer_out
from portal.polar.models import CustomerSessionOut
from portal.scope import EVERY_ORGANIZATION, Scope
from portal.sessions.store import create_session, customer_portal_url
from portal.settings import Settings


class CustomerSessionCreate(msgspec.Struct, kw_only=True):
    """Polar's ``CustomerSessionCustomerIDCreate`` | ``CustomerSessionCustomerExternalIDCreate``: exactly one
    of ``customer_id`` and ``external_customer_id``. Member ids are accepted and ignored (no member model)."""

    customer_id: str | None = None
    external_customer_id: str | None = None
    return_url: SingleLine | None = None
    member_id: str | None = None
    external_member_id: str | None = None


class AmbiguousExternalCustomerID(Conflict):
    """Polar's 409 when an admin token's ``external_customer_id`` matches customers of several organizations."""


async def _customer(db: Database, principal: Principal, data: CustomerSessionCreate) -> customer_reads.CustomerRecord:
    if (data.customer_id is None) == (data.external_customer_id is None):
        raise InvalidInput("give exactly one of customer_id and external_customer_id", "customer_id")
    if data.customer_id is not None:
        record = await customer_reads.get_customer_record(db, EVERY_ORGANIZATION, data.customer_id)
        if record is None or not principal.can_see(record.organization_id):
            raise InvalidInput("Customer does not exist.", "customer_id")
        return record
    assert data.external_customer_id is not None
    found = await customer_reads.find_customer_records_by_external_id(
        db, Scope(organization_id=principal.organization_id), data.external_customer_id
    )
    if not found:
        raise InvalidInput("Customer does not exist.", "external_customer_id")
    if len(found) > 1:
        raise AmbiguousExternalCustomerID(
            "The external customer ID matches customers in several organizations; use an organization token.",
            "external_customer_id",
        )
    return found[0]


class CustomerSessionController(Controller):
    path = "/customer-sessions"
    tags = ["customer-sessions"]

    @post("/", summary="Create a customer session (pre-authenticated portal link)", responses=responses.WRITE)
    async def create_customer_session(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        principal: NamedDependency[Principal],
        data: JSONBody[CustomerSessionCreate],
    ) -> CustomerSessionOut:
        if data.return_url is not None:
            parts = urlsplit(data.return_url)
            if parts.scheme not in ("http", "https") or not parts.netloc or len(data.return_url) > 2048:
                raise InvalidInput("expected an http(s) URL", "return_url")
        customer = await _customer(db, principal, data)
        org = await org_queries.get_by_id(db, customer.organization_id)
        assert org is not None
        now = clock.now()
        async with db.write() as tx:
            token, session = await create_session(
                tx,
                secret=settings.secret_key,
                kind="api",
                organization_id=org.id,
                customer_id=customer.id,
                now=now,
                ttl_seconds=settings.customer_session_ttl,
                return_url=data.return_url,
                origin="seller",
            )
        return CustomerSessionOut(
            id=session.id,
            created_at=session.created_at,
            modified_at=None,
            token=token,
            expires_at=session.expires_at,
            return_url=session.return_url,
            # As Polar's: the token and the customer's email, URL-encoded.
            customer_portal_url=customer_portal_url(settings.public_base_url, org.slug, token, customer.email),
            customer_id=customer.id,
            customer=customer_out(customer),
        )
