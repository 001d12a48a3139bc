"""Load a seed document (``portal.seeding.models``) into the database, all or nothing.

Two passes. First the whole document is checked without touching the database — types (msgspec, strict),
then meaning (references, duplicates, currencies, totals, refunds vs. status, files) — and EVERY problem is
collected as ``organizations[0].orders[3].amount: expected int, got str``; any problem raises ``SeedError``.
Then everything is written through the domain services inside ONE ``db.write()`` transaction, so receipt
numbers, grants and license keys are the real thing, and a failure rolls the whole document back (files
already copied for it are deleted again).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from portal.benefits.license_keys import add_interval, record_activation
from portal.benefits.service import (
    BenefitInput,
    LicenseKeysProperties,
    check_benefit,
    create_benefit,
    find_benefit_id,
    parse_properties,
    register_file,
    update_benefit,
    validation_problem,
)
from portal.clock import parse_iso
from portal.customers.service import (
    CustomerInput,
    check_customer,
    create_customer,
    find_customer_id,
    update_customer,
)
from portal.db import Database, Transaction
from portal.errors import DomainError
from portal.fields import moment_problem
from portal.notifications.mute import muted
from portal.orders import reads as order_reads
from portal.orders.service import (
    OrderInput,
    OrderItemInput,
    check_order,
    compute_totals,
    create_order,
    find_order_id,
    get_order_row,
    mark_order_paid,
    refund_order,
    void_order,
)
from portal.organizations.service import (
    OrganizationInput,
    check_organization,
    create_organization,
    currency_problem,
    find_organization_id,
    update_organization,
)
from portal.products.service import (
    PriceInput,
    ProductInput,
    check_product,
    create_product,
    find_product_id,
    set_product_benefits,
    update_product,
)
from portal.seeding.models import (
    SeedActivation,
    SeedBenefit,
    SeedDocument,
    SeedOrder,
    SeedOrganization,
    SeedSubscription,
)
from portal.subscriptions.service import (
    SubscriptionInput,
    check_subscription,
    create_subscription,
    find_subscription_id,
    update_subscription,
)

PAID_STATUSES = frozenset({"paid", "refunded", "partially_refunded"})
_RELATIVE_RE = re.compile(r"^now((?:[+-]\d+[yMwdhm])*)$")
_STEP_RE = re.compile(r"([+-])(\d+)([yMwdhm])")


class SeedError(Exception):
    """The document was refused; ``errors`` lists every problem as ``path: message``."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


class SeedResult(msgspec.Struct, kw_only=True):
    """Objects of the document written (created or updated); ``grants``/``license_keys`` are the totals
    the loaded organizations now hold."""

    organizations: int = 0
    benefits: int = 0
    files: int = 0
    products: int = 0
    customers: int = 0
    subscriptions: int = 0
    orders: int = 0
    refunds: int = 0
    activations: int = 0
    grants: int = 0
    license_keys: int = 0
    organization_slugs: list[str] = []

    @property
    def counts(self) -> dict[str, int]:
        """The counts by name (everything but ``organization_slugs``), for printing."""
        return {name: getattr(self, name) for name in self.__struct_fields__ if name != "organization_slugs"}


def resolve_time(text: str, now: datetime) -> datetime:
    """ISO-8601 (naive = UTC), or ``now`` with steps like ``-30d``, ``+1M`` (see ``models``)."""
    match = _RELATIVE_RE.match(text.strip())
    if match is None:
        return parse_iso(text)
    moment = now
    for sign, number, unit in _STEP_RE.findall(match.group(1)):
        amount = int(number) * (-1 if sign == "-" else 1)
        if unit in ("y", "M"):
            moment = add_interval(moment, "year" if unit == "y" else "month", amount)
        else:
            key = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}[unit]
            moment += timedelta(**{key: amount})
    return moment


# ---------------------------------------------------------------------------------------------- decoding


def _format(exc: msgspec.ValidationError, prefix: str) -> str:
    path, message = validation_problem(exc, prefix)
    return f"{path or 'document'}: {message}"


def _list_item_struct(annotation: Any) -> type[msgspec.Struct] | None:
    if getattr(annotation, "__origin__", None) is list:
        (inner,) = annotation.__args__
        if isinstance(inner, type) and issubclass(inner, msgspec.Struct):
            return inner
    return None


def _convert_collecting(value: Any, struct: type[Any], prefix: str, errors: list[str]) -> Any:
    """Convert like msgspec, but on failure descend into lists of Structs so that every broken object
    reports its (first) problem, not just the first one in the document."""
    try:
        return msgspec.convert(value, struct, strict=True)
    except msgspec.ValidationError as exc:
        if not isinstance(value, dict):
            errors.append(_format(exc, prefix))
            return None
        before = len(errors)
        shallow = dict(value)
        for info in msgspec.structs.fields(struct):
            inner = _list_item_struct(info.type)
            items = value.get(info.encode_name)
            if inner is None or not isinstance(items, list):
                continue
            for index, item in enumerate(items):
                _convert_collecting(item, inner, f"{prefix}.{info.encode_name}[{index}]", errors)
            shallow[info.encode_name] = []
        try:
            msgspec.convert(shallow, struct, strict=True)
        except msgspec.ValidationError as shallow_exc:
            errors.append(_format(shallow_exc, prefix))
        if len(errors) == before:  # defensive: never swallow a failure
            errors.append(_format(exc, prefix))
        return None


def decode_document(document: bytes | str | dict[str, Any]) -> SeedDocument:
    """Decode and type-check a seed document; ``SeedError`` lists every type problem found."""
    if isinstance(document, bytes | str):
        try:
            raw = msgspec.json.decode(document)
        except msgspec.DecodeError as exc:
            raise SeedError([f"document: invalid JSON: {exc}"]) from None
    else:
        raw = document
    errors: list[str] = []
    decoded = _convert_collecting(raw, SeedDocument, "", errors)
    if errors or decoded is None:
        raise SeedError(errors or ["document: invalid"])
    return decoded


# ---------------------------------------------------------------------------------------------- checking


@dataclass
class _FileData:
    name: str
    mime_type: str
    content: bytes
    version: str | None


@dataclass
class _OrgPlan:
    path: str
    seed: SeedOrganization
    organization: OrganizationInput
    files: dict[int, list[_FileData]] = field(default_factory=dict)  # benefit index -> files
    customer_created: dict[str, datetime] = field(default_factory=dict)
    subscriptions: list[tuple[int, SubscriptionInput, datetime]] = field(default_factory=list)
    orders: list[tuple[int, OrderInput, datetime]] = field(default_factory=list)


class _Checker:
    def __init__(self, now: datetime, seed_dir: Path | None) -> None:
        self.now = now
        self.seed_dir = seed_dir
        self.errors: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def add_domain(self, path: str, problems: list[DomainError]) -> None:
        for problem in problems:
            self.add(f"{path}.{problem.field}" if problem.field else path, problem.message)

    def time(self, path: str, text: str | None, *, report: bool = True) -> datetime | None:
        if text is None:
            return None
        try:
            moment = resolve_time(text, self.now)
        except (ValueError, OverflowError):  # "now+99999y" overflows: the input's problem, not a traceback
            if report:
                self.add(path, f"expected an ISO-8601 time or 'now-30d', got {text!r}")
            return None
        if (problem := moment_problem(moment)) is not None:  # it could not be stored (or advanced) otherwise
            if report:
                self.add(path, problem)
            return None
        return moment

    def duplicates(self, path: str, items: list[Any], key: Callable[[Any], Any], what: str) -> None:
        seen: set[Any] = set()
        for index, item in enumerate(items):
            value = key(item)
            if value in seen:
                self.add(f"{path}[{index}].{what}", f"duplicate {what} {value!r}")
            seen.add(value)

    def read_file(self, path: str, relative: str) -> bytes | None:
        if self.seed_dir is None:
            self.add(path, "files by path need a seed directory; use content_base64")
            return None
        base = self.seed_dir.resolve()
        target = (base / relative).resolve()
        if not target.is_relative_to(base):
            self.add(path, "must stay inside the seed directory")
            return None
        if not target.is_file():
            self.add(path, f"no such file {relative!r}")
            return None
        return target.read_bytes()

    def check(self, document: SeedDocument) -> list[_OrgPlan]:
        plans: list[_OrgPlan] = []
        orgs = document.organizations
        self.duplicates("organizations", orgs, lambda o: o.slug, "slug")
        self.duplicates(
            "organizations",
            [o for o in orgs if o.external_id is not None],
            lambda o: o.external_id,
            "external_id",
        )
        for index, org in enumerate(orgs):
            plans.append(self.check_organization(f"organizations[{index}]", org))
        return plans

    def check_organization(self, path: str, org: SeedOrganization) -> _OrgPlan:
        organization = OrganizationInput(
            slug=org.slug,
            name=org.name,
            avatar_url=org.avatar_url,
            website_url=org.website_url,
            support_email=org.support_email,
            address=org.address,
            receipt_prefix=org.receipt_prefix,
            default_currency=org.default_currency,
            default_locale=org.default_locale,
            accent_color=org.accent_color,
            allow_plan_change=org.allow_plan_change,
            allow_seats=org.allow_seats,
            show_usage=org.show_usage,
            allow_email_change=org.allow_email_change,
            email_sender_name=org.email_sender_name,
            email_reply_to=org.email_reply_to,
            resubscribe_url=org.resubscribe_url,
            settings=org.settings,
            external_id=org.external_id,
        )
        self.add_domain(path, check_organization(organization))
        plan = _OrgPlan(path=path, seed=org, organization=organization)
        for what in ("benefits", "products", "customers", "subscriptions", "orders"):
            self.duplicates(f"{path}.{what}", getattr(org, what), lambda o: o.external_id, "external_id")
        benefits = {b.external_id: b for b in org.benefits}
        for index, benefit in enumerate(org.benefits):
            self.check_benefit(plan, f"{path}.benefits[{index}]", index, benefit)
        products = {p.external_id: p for p in org.products}
        for index, product in enumerate(org.products):
            self.check_product(f"{path}.products[{index}]", product, benefits)
        self.duplicates(f"{path}.customers", org.customers, lambda c: c.email.lower(), "email")
        customers = {c.external_id for c in org.customers}
        for index, customer in enumerate(org.customers):
            self.check_customer(f"{path}.customers[{index}]", customer)
        subscriptions = {s.external_id: s for s in org.subscriptions}
        for index, subscription in enumerate(org.subscriptions):
            self.check_subscription(plan, f"{path}.subscriptions[{index}]", index, subscription, products, customers)
            self.check_activations(
                f"{path}.subscriptions[{index}]",
                subscription.activations,
                products.get(subscription.product),
                benefits,
                live=subscription.status in ("active", "trialing"),
            )
        for index, order in enumerate(org.orders):
            self.check_order(plan, f"{path}.orders[{index}]", index, order, products, customers, subscriptions)
            self.check_activations(
                f"{path}.orders[{index}]",
                order.activations,
                products.get(order.product),
                benefits,
                live=order.status in ("paid", "partially_refunded") and order.subscription is None,
            )
        # A customer is created when it first appears (orders and subscriptions may predate ``now``).
        for customer in org.customers:
            # Checked (and any problem reported at its path) by ``customer()``; here only its value is needed.
            explicit = self.time("", customer.created_at, report=False) if customer.created_at else None
            firsts = [moment for _, data, moment in plan.subscriptions if data.customer_id == customer.external_id] + [
                moment for _, data, moment in plan.orders if data.customer_id == customer.external_id
            ]
            plan.customer_created[customer.external_id] = explicit or min(firsts, default=self.now)
        return plan

    def check_benefit(self, plan: _OrgPlan, path: str, index: int, benefit: SeedBenefit) -> None:
        if benefit.type == "downloadables" and benefit.properties.get("files"):
            self.add(f"{path}.properties.files", "filled from `files`; leave it out")
        properties = {k: v for k, v in benefit.properties.items() if k != "files"}
        data = BenefitInput(
            type=benefit.type, description=benefit.description, properties=properties, visibility=benefit.visibility
        )
        self.add_domain(path, check_benefit(data))
        if benefit.files and benefit.type != "downloadables":
            self.add(f"{path}.files", "only downloadables benefits have files")
        files: list[_FileData] = []
        for number, seed_file in enumerate(benefit.files):
            file_path = f"{path}.files[{number}]"
            if not seed_file.name.strip() or "/" in seed_file.name:
                self.add(f"{file_path}.name", "expected a plain file name")
            if "/" not in seed_file.mime_type:
                self.add(f"{file_path}.mime_type", "expected a MIME type like text/plain")
            content: bytes | None = None
            if (seed_file.path is None) == (seed_file.content_base64 is None):
                self.add(file_path, "give exactly one of path or content_base64")
            elif seed_file.path is not None:
                content = self.read_file(f"{file_path}.path", seed_file.path)
            elif seed_file.content_base64 is not None:
                try:
                    content = base64.b64decode(seed_file.content_base64, validate=True)
                except (binascii.Error, ValueError):
                    self.add(f"{file_path}.content_base64", "invalid base64")
            if content is not None:
                files.append(_FileData(seed_file.name, seed_file.mime_type, content, seed_file.version))
        self.duplicates(f"{path}.files", benefit.files, lambda f: f.name, "name")
        plan.files[index] = files

    def check_product(self, path: str, product: Any, benefits: dict[str, SeedBenefit]) -> None:
        self.add_domain(path, check_product(_product_input(product)))
        for index, reference in enumerate(product.benefits):
            if reference not in benefits:
                self.add(f"{path}.benefits[{index}]", f"unknown benefit {reference!r}")
        self.duplicates(f"{path}.benefits", product.benefits, lambda b: b, "benefit")

    def check_customer(self, path: str, customer: Any) -> None:
        self.add_domain(path, check_customer(_customer_input(customer)))
        self.time(f"{path}.created_at", customer.created_at)

    def _currency(self, path: str, org: SeedOrganization, product: Any, currency: str | None) -> str | None:
        if currency is not None:
            if (problem := currency_problem(currency)) is not None:
                self.add(f"{path}.currency", problem)
                return None
            return currency
        currencies = [price.currency for price in product.prices]
        if org.default_currency in currencies or not currencies:
            return org.default_currency
        return currencies[0]

    def _reference(self, path: str, what: str, value: str, known: dict[str, Any] | set[str]) -> bool:
        if value not in known:
            self.add(f"{path}.{what}", f"unknown {what} {value!r}")
            return False
        return True

    def check_subscription(
        self,
        plan: _OrgPlan,
        path: str,
        index: int,
        sub: SeedSubscription,
        products: dict[str, Any],
        customers: set[str],
    ) -> None:
        ok = self._reference(path, "customer", sub.customer, customers)
        ok = self._reference(path, "product", sub.product, products) and ok
        times = {
            name: self.time(f"{path}.{name}", getattr(sub, name))
            for name in (
                "current_period_start",
                "current_period_end",
                "started_at",
                "trial_start",
                "trial_end",
                "canceled_at",
                "ends_at",
                "ended_at",
            )
        }
        if not ok or times["current_period_start"] is None:
            return
        product = products[sub.product]
        if product.recurring_interval is None:
            self.add(f"{path}.product", f"{sub.product!r} is not a recurring product")
            return
        currency = self._currency(path, plan.seed, product, sub.currency)
        if currency is None:
            return
        if sub.amount is None and currency not in {p.currency for p in product.prices}:
            self.add(f"{path}.currency", f"{sub.product!r} has no price in {currency}")
            return
        data = SubscriptionInput(
            customer_id=sub.customer,
            product_id=sub.product,
            status=sub.status,
            currency=currency,
            amount=sub.amount,
            cancel_at_period_end=sub.cancel_at_period_end,
            customer_cancellation_reason=sub.customer_cancellation_reason,
            customer_cancellation_comment=sub.customer_cancellation_comment,
            external_id=sub.external_id,
            metadata=sub.metadata,
            **times,  # type: ignore[arg-type]
        )
        problems = check_subscription(data)
        self.add_domain(path, problems)
        if not problems:
            start = data.started_at or data.trial_start or data.current_period_start
            plan.subscriptions.append((index, data, min(start, self.now)))

    def check_order(
        self,
        plan: _OrgPlan,
        path: str,
        index: int,
        order: SeedOrder,
        products: dict[str, Any],
        customers: set[str],
        subscriptions: dict[str, SeedSubscription],
    ) -> None:
        ok = self._reference(path, "customer", order.customer, customers)
        ok = self._reference(path, "product", order.product, products) and ok
        if order.subscription is not None:
            if self._reference(path, "subscription", order.subscription, subscriptions):
                if subscriptions[order.subscription].customer != order.customer:
                    self.add(f"{path}.subscription", "belongs to another customer")
            else:
                ok = False
        created_at = self.time(f"{path}.created_at", order.created_at)
        refund_times = [
            self.time(f"{path}.refunds[{n}].created_at", refund.created_at) for n, refund in enumerate(order.refunds)
        ]
        if not ok or created_at is None:
            return
        product = products[order.product]
        currency = self._currency(path, plan.seed, product, order.currency)
        if currency is None:
            return
        if order.items is not None:
            if order.amount is not None:
                self.add(f"{path}.amount", "give amount or items, not both")
            items = [
                OrderItemInput(
                    label=item.label,
                    unit_amount=item.unit_amount,
                    quantity=item.quantity,
                    tax_amount=item.tax_amount,
                    proration=item.proration,
                )
                for item in order.items
            ]
        else:
            amount = order.amount
            if amount is None:
                prices = {p.currency: p.amount for p in product.prices}
                if currency not in prices:
                    self.add(f"{path}.amount", f"{order.product!r} has no price in {currency}")
                    return
                amount = prices[currency]
            items = [OrderItemInput(label=product.name, unit_amount=amount)]
        reason = order.billing_reason or ("purchase" if order.subscription is None else "subscription_cycle")
        data = OrderInput(
            customer_id=order.customer,
            product_id=order.product,
            subscription_id=order.subscription,
            billing_reason=reason,
            currency=currency,
            items=items,
            discount_amount=order.discount_amount,
            tax_amount=order.tax_amount,
            external_id=order.external_id,
            metadata=order.metadata,
        )
        problems = check_order(data)
        self.add_domain(path, problems)
        if problems:
            return
        total = compute_totals(items, order.discount_amount, order.tax_amount).total_amount
        refunded = sum(refund.amount for refund in order.refunds)
        if order.refunds and order.status not in ("refunded", "partially_refunded"):
            self.add(f"{path}.refunds", f"a {order.status} order has no refunds")
        elif order.status == "refunded" and refunded != total:
            self.add(f"{path}.refunds", f"a refunded order's refunds sum to its total {total}")
        elif order.status == "partially_refunded" and not 0 < refunded < total:
            self.add(f"{path}.refunds", f"partial refunds sum to more than 0 and less than {total}")
        for number, moment in enumerate(refund_times):
            if moment is not None and moment < created_at:
                self.add(f"{path}.refunds[{number}].created_at", "before the order was created")
        plan.orders.append((index, data, created_at))

    def check_activations(
        self,
        path: str,
        activations: list[SeedActivation],
        product: Any,
        benefits: dict[str, SeedBenefit],
        *,
        live: bool,
    ) -> None:
        if not activations:
            return
        if not live:
            self.add(f"{path}.activations", "only live grants (paid purchases, active subscriptions)")
            return
        per_benefit: dict[str, int] = {}
        for index, activation in enumerate(activations):
            where = f"{path}.activations[{index}]"
            self.time(f"{where}.created_at", activation.created_at)
            benefit = benefits.get(activation.benefit)
            if benefit is None or benefit.type != "license_keys":
                self.add(f"{where}.benefit", f"unknown license_keys benefit {activation.benefit!r}")
                continue
            if product is None or activation.benefit not in product.benefits:
                self.add(f"{where}.benefit", "not a benefit of this product")
                continue
            if not activation.label.strip():
                self.add(f"{where}.label", "must not be empty")
            try:
                props = parse_properties("license_keys", benefit.properties)
            except DomainError:
                continue  # reported on the benefit itself
            assert isinstance(props, LicenseKeysProperties)
            per_benefit[activation.benefit] = per_benefit.get(activation.benefit, 0) + 1
            if props.activations is None:
                self.add(f"{where}.benefit", "this license key has no activations")
            elif per_benefit[activation.benefit] > props.activations.limit:
                self.add(where, f"more than the {props.activations.limit} activations allowed")


def _product_input(product: Any) -> ProductInput:
    return ProductInput(
        name=product.name,
        description=product.description,
        recurring_interval=product.recurring_interval,
        recurring_interval_count=product.recurring_interval_count,
        prices=[PriceInput(amount=p.amount, currency=p.currency, amount_type=p.amount_type) for p in product.prices],
        visibility=product.visibility,
        is_archived=product.is_archived,
        external_id=product.external_id,
        metadata=product.metadata,
    )


def _customer_input(customer: Any) -> CustomerInput:
    return CustomerInput(
        email=customer.email,
        name=customer.name,
        external_id=customer.external_id,
        billing_name=customer.billing_name,
        billing_address=customer.billing_address,
        tax_id=customer.tax_id,
        locale=customer.locale,
        email_verified=customer.email_verified,
        metadata=customer.metadata,
    )


# ---------------------------------------------------------------------------------------------- writing


class _Writer:
    def __init__(self, tx: Transaction, now: datetime, files_dir: Path) -> None:
        self.tx = tx
        self.now = now
        self.files_dir = files_dir
        self.where = "document"
        self.result = SeedResult()
        self.written_files: list[Path] = []

    async def organization(self, plan: _OrgPlan) -> None:
        tx, seed = self.tx, plan.seed
        self.where = plan.path
        org_id = await find_organization_id(tx, slug=seed.slug, external_id=seed.external_id)
        if org_id is None:
            org_id = await create_organization(tx, plan.organization, now=self.now)
        else:
            await update_organization(tx, org_id, plan.organization, now=self.now)
        self.result.organizations += 1
        self.result.organization_slugs.append(seed.slug)

        benefit_ids: dict[str, str] = {}
        for index, benefit in enumerate(seed.benefits):
            self.where = f"{plan.path}.benefits[{index}]"
            benefit_ids[benefit.external_id] = await self.benefit(org_id, benefit, plan.files.get(index, []))
        product_ids: dict[str, str] = {}
        for index, product in enumerate(seed.products):
            self.where = f"{plan.path}.products[{index}]"
            data = _product_input(product)
            product_id = await find_product_id(tx, org_id, product.external_id)
            if product_id is None:
                product_id = await create_product(tx, org_id, data, now=self.now)
            else:
                await update_product(tx, product_id, data, now=self.now)
            await set_product_benefits(tx, product_id, [benefit_ids[b] for b in product.benefits], now=self.now)
            product_ids[product.external_id] = product_id
            self.result.products += 1
        customer_ids: dict[str, str] = {}
        for index, customer in enumerate(seed.customers):
            self.where = f"{plan.path}.customers[{index}]"
            customer_data = _customer_input(customer)
            customer_id = await find_customer_id(tx, org_id, external_id=customer.external_id)
            if customer_id is None:
                created = plan.customer_created[customer.external_id]
                customer_id = await create_customer(tx, org_id, customer_data, now=created)
            else:
                # The document is the wanted state: a customer deleted since the last load comes back.
                await tx.execute(
                    "UPDATE customers SET deleted_at = NULL WHERE id = ? AND deleted_at IS NOT NULL",
                    (customer_id,),
                )
                await update_customer(tx, customer_id, customer_data, now=self.now)
            customer_ids[customer.external_id] = customer_id
            self.result.customers += 1
        subscription_ids: dict[str, str] = {}
        for index, sub_data, created in plan.subscriptions:
            self.where = f"{plan.path}.subscriptions[{index}]"
            seed_sub = seed.subscriptions[index]
            sub_data = msgspec.structs.replace(
                sub_data,
                customer_id=customer_ids[sub_data.customer_id],
                product_id=product_ids[sub_data.product_id],
            )
            subscription_id = await find_subscription_id(tx, org_id, seed_sub.external_id)
            if subscription_id is None:
                subscription_id = await create_subscription(tx, org_id, sub_data, now=created)
            else:
                await update_subscription(tx, subscription_id, sub_data, now=self.now)
            subscription_ids[seed_sub.external_id] = subscription_id
            self.result.subscriptions += 1
            await self.activations(seed_sub.activations, benefit_ids, subscription_id=subscription_id)
        # Receipt numbers follow payment order, so pay in creation order.
        for index, order_data, created in sorted(plan.orders, key=lambda entry: entry[2]):
            self.where = f"{plan.path}.orders[{index}]"
            order_data = msgspec.structs.replace(
                order_data,
                customer_id=customer_ids[order_data.customer_id],
                product_id=product_ids[order_data.product_id or ""],
                subscription_id=(
                    None if order_data.subscription_id is None else subscription_ids[order_data.subscription_id]
                ),
            )
            order_id = await self.order(org_id, seed.orders[index], order_data, created)
            await self.activations(seed.orders[index].activations, benefit_ids, order_id=order_id)
        self.where = plan.path
        self.result.grants += await tx.fetchval(
            "SELECT COUNT(*) FROM benefit_grants WHERE organization_id = ?", (org_id,)
        )
        self.result.license_keys += await tx.fetchval(
            "SELECT COUNT(*) FROM license_keys WHERE organization_id = ?", (org_id,)
        )

    async def benefit(self, org_id: str, benefit: SeedBenefit, files: list[_FileData]) -> str:
        tx = self.tx
        benefit_id = await find_benefit_id(tx, org_id, benefit.external_id)
        properties = dict(benefit.properties)
        if benefit.type == "downloadables":
            existing: dict[tuple[str, str], str] = {}
            if benefit_id is not None:
                row = await tx.fetchone("SELECT properties FROM benefits WHERE id = ?", (benefit_id,))
                assert row is not None
                old_ids = msgspec.json.decode(row["properties"]).get("files", [])
                for file_id in old_ids:
                    stored = await tx.fetchone(
                        "SELECT id, name, checksum_sha256_hex FROM files WHERE id = ?", (file_id,)
                    )
                    if stored is not None:
                        existing[(stored["name"], stored["checksum_sha256_hex"])] = stored["id"]
            file_ids: list[str] = []
            for data in files:
                checksum = _sha256(data.content)
                file_id = existing.get((data.name, checksum))
                if file_id is None:
                    stored_file = await register_file(
                        tx,
                        org_id,
                        name=data.name,
                        content=data.content,
                        mime_type=data.mime_type,
                        files_dir=self.files_dir,
                        now=self.now,
                        version=data.version,
                    )
                    self.written_files.append(self.files_dir / stored_file.path)
                    file_id = stored_file.id
                file_ids.append(file_id)
                self.result.files += 1
            properties["files"] = file_ids
        benefit_data = BenefitInput(
            type=benefit.type,
            description=benefit.description,
            properties=properties,
            external_id=benefit.external_id,
            metadata=benefit.metadata,
            visibility=benefit.visibility,
        )
        if benefit_id is None:
            benefit_id = await create_benefit(tx, org_id, benefit_data, now=self.now)
        else:
            await tx.execute(
                "UPDATE benefits SET deleted_at = NULL WHERE id = ? AND deleted_at IS NOT NULL",
                (benefit_id,),
            )
            await update_benefit(tx, benefit_id, benefit_data, now=self.now)
        self.result.benefits += 1
        return benefit_id

    async def order(self, org_id: str, seed: SeedOrder, data: OrderInput, created: datetime) -> str:
        tx = self.tx
        order_id = await find_order_id(tx, org_id, seed.external_id)
        if order_id is None:
            order_id = await create_order(tx, org_id, data, now=created)
        row = await get_order_row(tx, order_id)
        if row["status"] == "pending" and seed.status in PAID_STATUSES:
            await mark_order_paid(tx, order_id, now=created)
        elif row["status"] == "pending" and seed.status == "void":
            await void_order(tx, order_id, now=created)
        done = await order_reads.count_refunds(tx, order_id)
        for number, refund in enumerate(seed.refunds):
            if number < done:
                continue  # applied by an earlier load
            self.where = f"{self.where}.refunds[{number}]"
            await refund_order(
                tx,
                order_id,
                refund.amount,
                now=resolve_time(refund.created_at, self.now),
                reason=refund.reason,
            )
            self.where = self.where.rsplit(".refunds[", 1)[0]
            self.result.refunds += 1
        self.result.orders += 1
        return order_id

    async def activations(
        self,
        activations: list[SeedActivation],
        benefit_ids: dict[str, str],
        *,
        order_id: str | None = None,
        subscription_id: str | None = None,
    ) -> None:
        base = self.where
        for index, activation in enumerate(activations):
            self.where = f"{base}.activations[{index}]"
            license_key = await self.tx.fetchone(
                """
                SELECT lk.id
                FROM license_keys AS lk
                JOIN benefit_grants AS g ON g.id = lk.grant_id
                WHERE g.benefit_id = ?
                  AND g.order_id IS ?
                  AND g.subscription_id IS ?
                """,
                (benefit_ids[activation.benefit], order_id, subscription_id),
            )
            if license_key is None:
                raise DomainError("no license key was granted for this benefit", "benefit")
            exists = await self.tx.fetchval(
                """
                SELECT 1 FROM license_key_activations WHERE license_key_id = ? AND label = ?
                """,
                (license_key["id"], activation.label.strip()),
            )
            if exists is None:
                moment = self.now if activation.created_at is None else resolve_time(activation.created_at, self.now)
                await record_activation(
                    self.tx,
                    license_key["id"],
                    label=activation.label,
                    meta=activation.meta,
                    now=min(moment, self.now),
                )
            self.result.activations += 1
        self.where = base


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _delete_files(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


async def load_seed(
    db: Database,
    document: bytes | str | dict[str, Any],
    *,
    seed_dir: Path | None,
    files_dir: Path,
    now: datetime,
) -> SeedResult:
    """Check ``document`` completely, then write it in one transaction. Raises ``SeedError`` (nothing
    written) listing every problem. ``seed_dir`` resolves files' ``path`` (None: only ``content_base64``)."""
    document_struct = decode_document(document)
    checker = _Checker(now, seed_dir)
    plans = await asyncio.to_thread(checker.check, document_struct)
    if checker.errors:
        raise SeedError(checker.errors)
    writer: _Writer | None = None
    try:
        # Muted: loading demo or imported data must not email customers or call webhooks.
        with muted():
            async with db.write() as tx:
                writer = _Writer(tx, now, files_dir)
                for plan in plans:
                    await writer.organization(plan)
    except (DomainError, sqlite3.IntegrityError) as exc:
        await asyncio.to_thread(_delete_files, writer.written_files if writer else [])
        where = writer.where if writer else "document"
        if isinstance(exc, DomainError):
            message = f"{where}.{exc.field}: {exc.message}" if exc.field else f"{where}: {exc.message}"
        else:
            message = f"{where}: {exc}"
        raise SeedError([message]) from exc
    except BaseException:
        await asyncio.to_thread(_delete_files, writer.written_files if writer else [])
        raise
    assert writer is not None
    return writer.result


async def load_seed_file(db: Database, path: Path, *, files_dir: Path, now: datetime) -> SeedResult:
    """``load_seed`` for a JSON file on disk; its directory is the seed directory (``files`` paths)."""
    content = await asyncio.to_thread(Path(path).read_bytes)
    return await load_seed(db, content, seed_dir=Path(path).parent, files_dir=files_dir, now=now)
