"""Schema fuzzing: schemathesis generates requests for every operation of ``/docs/openapi.json`` (admin API,
customer-portal API, customer-session and license-key endpoints) and sends each one to a uvicorn-served app
over the demo data, with a valid token and without one, and again with real object ids in the path.

Every answer must be: not a 5xx (``not_a_server_error``), a status the schema documents for the operation
(``status_code_conformance``), and a body that matches the documented schema (``response_schema_conformance``,
``content_type_conformance``). Both generation modes run: positive (schema-valid data) and negative (data the
schema forbids, which must be refused with a documented 4xx). Bounded and deterministic: ``max_examples`` per
operation and mode, derandomized, no shrinking, no example database, so CI sees the same requests every run.
Hypothesis also mixes in literal constants from the project's modules loaded at the time (test files are skipped)
and rescans when more are loaded. The fixture imports every ``portal`` module first: the requests then hardly
depend on which tests ran before in the process (only a bench script one of them loaded adds a few constants),
and nothing the server imports mid-run changes them, so a failing example replays as the same request.

Each operation's strategy is driven with ``@given`` here rather than through ``schema.parametrize()``: the lazy
fixture-based loader of schemathesis 4.x reads a private pytest attribute that pytest 9 no longer has. Every
operation's failure is collected, not only the first. Schema-valid bodies are often still refused (422) by rules
the schema does not express (an email's shape, a known currency); the real-id pass is what reaches the handlers'
success paths, and ``_assert_exercised`` checks that it did.
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import re
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import portal
from portal.clock import Clock
from portal.db import Database, connect_sync
from portal.sessions.store import create_session
from portal.settings import Settings
from tests.admin_support import free_port, mint_token, serve
from tests.apps import app_for
from tests.browser_helpers import seed_demo

POSITIVE_EXAMPLES = 8
NEGATIVE_EXAMPLES = 4
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
OWNER = "alex@example.com"


@dataclass
class FuzzTarget:
    """The served app, its tokens and real ids to put in paths."""

    base_url: str
    spec: dict[str, Any]
    admin_token: str
    customer_token: str
    real_ids: dict[str, str] = field(default_factory=dict)
    session: requests.Session = field(default_factory=requests.Session)
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))


def _import_every_portal_module() -> None:
    """Load all of ``portal`` (its ``__main__`` runs the CLI, so not that): Hypothesis draws some values from the
    constants of the loaded project modules, and rescans when ``sys.modules`` grows, so without this the generated
    requests (and the replay of a failing one) would change with what earlier tests or the server imported."""
    for module in pkgutil.walk_packages(portal.__path__, "portal."):
        if not module.name.endswith(".__main__"):
            importlib.import_module(module.name)


def _one(conn: Any, sql: str, params: tuple[Any, ...] = ()) -> str:
    row = conn.execute(sql, params).fetchone()
    assert row is not None, sql
    return str(row[0])


def _real_ids(settings: Settings) -> dict[str, str]:
    """Path prefix (up to the parameter) → an id that exists: the owner's objects for the customer portal."""
    conn = connect_sync(settings.db_path)
    try:
        acme = _one(conn, "SELECT id FROM organizations WHERE slug = 'acme'")
        owner = _one(conn, "SELECT id FROM customers WHERE organization_id = ? AND email = ?", (acme, OWNER))
        order = _one(conn, "SELECT id FROM orders WHERE customer_id = ? AND receipt_number IS NOT NULL", (owner,))
        sub = _one(conn, "SELECT id FROM subscriptions WHERE customer_id = ?", (owner,))
        grant = _one(conn, "SELECT id FROM benefit_grants WHERE customer_id = ?", (owner,))
        key = _one(conn, "SELECT id FROM license_keys WHERE customer_id = ?", (owner,))
        return {
            "/v1/organizations/{id}": acme,
            "/v1/products/{id}": _one(conn, "SELECT id FROM products WHERE organization_id = ?", (acme,)),
            "/v1/benefits/{id}": _one(conn, "SELECT id FROM benefits WHERE organization_id = ?", (acme,)),
            "/v1/files/{id}": _one(conn, "SELECT id FROM files"),
            "/v1/customers/{id}": owner,
            "/v1/customers/external/{external_id}": "acme-alex",
            "/v1/orders/{id}": order,
            "/v1/subscriptions/{id}": sub,
            "/v1/benefit-grants/{id}": grant,
            "/v1/customer-portal/organizations/{slug}": "acme",
            "/v1/customer-portal/orders/{id}": order,
            "/v1/customer-portal/subscriptions/{id}": sub,
            "/v1/customer-portal/benefit-grants/{id}": grant,
            "/v1/customer-portal/license-keys/{id}": key,
            "/v1/license-keys/{id}": key,
        }
    finally:
        conn.close()


def _api_session(settings: Settings) -> str:
    conn = connect_sync(settings.db_path)
    try:
        acme = _one(conn, "SELECT id FROM organizations WHERE slug = 'acme'")
        owner = _one(conn, "SELECT id FROM customers WHERE organization_id = ? AND email = ?", (acme, OWNER))
    finally:
        conn.close()

    async def work() -> str:
        db = await Database(settings.db_path, readers=1).open()
        try:
            async with db.write() as tx:
                token, _ = await create_session(
                    tx,
                    secret=settings.secret_key,
                    kind="api",
                    organization_id=acme,
                    customer_id=owner,
                    now=Clock().now(),
                    ttl_seconds=86400,
                )
            return token
        finally:
            await db.close()

    return asyncio.run(work())


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory, template_db: Path) -> Iterator[FuzzTarget]:
    _import_every_portal_module()
    data_dir = tmp_path_factory.mktemp("fuzz") / "data"
    data_dir.mkdir()
    shutil.copy(template_db, data_dir / "portal.db")
    port = free_port()
    settings = Settings(
        data_dir=data_dir,
        base_url=f"http://127.0.0.1:{port}",
        secret_key="fuzz-secret-key-not-for-production",
        argon2_profile="test",
        # Background workers would race the fuzzer's writes for nothing: no mail or webhooks to deliver here.
        worker_poll_interval=3600,
    )
    seed_demo(settings, Clock().now())
    target_ids = _real_ids(settings)
    admin = mint_token(settings)
    customer = _api_session(settings)
    with serve(app_for(settings), port) as base_url:
        spec = httpx.get(f"{base_url}/docs/openapi.json", timeout=30).json()
        target = FuzzTarget(base_url, spec, admin, customer, target_ids)
        yield target
        target.session.close()


def _token_for(target: FuzzTarget, path: str) -> str:
    return target.customer_token if path.startswith("/v1/customer-portal/") else target.admin_token


def _real_path_parameters(target: FuzzTarget, case: Case) -> dict[str, Any] | None:
    """The case's path parameters with a real id, for operations on one object (never an admin DELETE: it
    would remove the objects every later operation is fuzzed against)."""
    if not case.path_parameters:
        return None
    if case.method.upper() == "DELETE" and not case.path.startswith("/v1/customer-portal/"):
        return None
    for prefix, value in target.real_ids.items():
        name = prefix.rsplit("{", 1)[1].rstrip("}")
        if case.path.startswith(prefix) and name in case.path_parameters:
            return {**case.path_parameters, name: value}
    return None


def _call(target: FuzzTarget, case: Case, token: str | None) -> requests.Response:
    headers = dict(case.headers or {})
    headers.pop("Authorization", None)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    original = case.headers
    case.headers = headers
    try:
        response = case.call(base_url=target.base_url, session=target.session, timeout=30)
        target.statuses[case.operation.label][response.status_code] += 1
        case.validate_response(response, checks=CHECKS)
    finally:
        case.headers = original
    return response


def _exercise(target: FuzzTarget, case: Case) -> None:
    token = _token_for(target, case.path)
    _call(target, case, token)
    _call(target, case, None)
    real = _real_path_parameters(target, case)
    if real is not None:
        original = case.path_parameters
        case.path_parameters = real
        try:
            _call(target, case, token)
        finally:
            case.path_parameters = original


def _fuzz(target: FuzzTarget, operation: APIOperation, mode: GenerationMode, examples: int) -> None:
    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],  # no shrinking: the failure report names the request as sent
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Case) -> None:
        _exercise(target, case)

    run()


def test_every_operation_answers_as_documented(fuzz_target: FuzzTarget) -> None:
    api_schema = schemathesis.openapi.from_dict(fuzz_target.spec)
    failures: list[str] = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        for mode, examples in (
            (GenerationMode.POSITIVE, POSITIVE_EXAMPLES),
            (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES),
        ):
            try:
                _fuzz(fuzz_target, operation, mode, examples)
            except Unsatisfiable:
                pass  # nothing to negate (an operation without parameters or body)
            except (Exception, BaseExceptionGroup) as exc:  # every operation's failure, not only the first
                failures.append(f"{operation.label} [{mode}]: {_describe(exc)}")
    assert not failures, "\n\n".join(failures)
    _assert_exercised(fuzz_target, api_schema)


def _describe(exc: BaseException) -> str:
    """The failure and, for a group (Hypothesis reports a flaky example as one), each exception inside it."""
    text = f"{type(exc).__name__}: {exc}"
    for inner in getattr(exc, "exceptions", ()):
        text += "\n  " + _describe(inner).replace("\n", "\n  ")
    return text


def _describe(exc: BaseException) -> str:
    """The failure and, for a group (Hypothesis reports a flaky example as one), each exception inside it."""
    text = f"{type(exc).__name__}: {exc}"
    for inner in getattr(exc, "exceptions", ()):
        text += "\n  " + _describe(inner).replace("\n", "\n  ")
    return text


def _assert_exercised(target: FuzzTarget, api_schema: Any) -> None:
    """The run reached the handlers: every operation was called, every token-protected one refused the
    anonymous calls with 401, and real ids got successful answers from many operations."""
    labels = {result.ok().label for result in api_schema.get_all_operations()}
    assert len(labels) >= 100, len(labels)
    assert labels == set(target.statuses), labels ^ set(target.statuses)
    protected = {
        f"{method.upper()} {path}"
        for path, item in target.spec["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and operation.get("security")
    }
    assert protected
    assert {label for label in protected if target.statuses[label][401] == 0} == set()
    successful = {label for label, counter in target.statuses.items() if any(200 <= s < 300 for s in counter)}
    assert len(successful) >= 45, sorted(labels - successful)


# --- hostile values by class (issue 17.7) ----------------------------------------------------------------------

HOSTILE_EXAMPLES = 2
_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _replace_leaves(value: Any, pick: Any) -> Any:
    """``value`` with every leaf ``pick`` returns a replacement for (``None``: kept) replaced, recursively."""
    if isinstance(value, dict):
        return {key: _replace_leaves(item, pick) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace_leaves(item, pick) for item in value]
    replacement = pick(value)
    return value if replacement is None else replacement


# Each class of value that once answered 500: naive and far-out times, integers past 64 bits, NUL/control
# characters and over-long strings (in bodies and path segments).
BODY_VARIANTS: dict[str, Any] = {
    "naive time": lambda v: "2026-01-01T00:00:00" if isinstance(v, str) and _ISO_TIME.match(v) else None,
    "year 9999": lambda v: "9999-12-31T23:59:59Z" if isinstance(v, str) and _ISO_TIME.match(v) else None,
    "year 1 east": lambda v: "0001-01-01T00:00:00+05:00" if isinstance(v, str) and _ISO_TIME.match(v) else None,
    "2**64": lambda v: 2**64 if isinstance(v, int) and not isinstance(v, bool) else None,
    "-10**30": lambda v: -(10**30) if isinstance(v, int) and not isinstance(v, bool) else None,
    "NUL and CRLF": lambda v: v + "\x00\r\n\u2028" if isinstance(v, str) else None,
}
PATH_VARIANTS = {"NUL": "a\x00b", "CRLF": "a\r\nb", "control": "a\x1b\x7f\u2028b", "long": "a" * 5000}


_BODY_IDS = {
    "organization_id": "/v1/organizations/{id}",
    "customer_id": "/v1/customers/{id}",
    "product_id": "/v1/products/{id}",
    "subscription_id": "/v1/subscriptions/{id}",
    "benefit_id": "/v1/benefits/{id}",
    "order_id": "/v1/orders/{id}",
}


def _with_real_ids(target: FuzzTarget, body: Any) -> Any:
    if isinstance(body, list):
        return [_with_real_ids(target, item) for item in body]
    if not isinstance(body, dict):
        return body
    return {
        key: target.real_ids[_BODY_IDS[key]] if key in _BODY_IDS else _with_real_ids(target, value)
        for key, value in body.items()
    }


def _send_variant(target: FuzzTarget, case: Case, body: Any, path_parameters: dict[str, Any] | None) -> None:
    original_body, original_path = case.body, case.path_parameters
    case.body = body
    if path_parameters is not None:
        case.path_parameters = path_parameters
    try:
        response = _call(target, case, _token_for(target, case.path))
    finally:
        case.body, case.path_parameters = original_body, original_path
    if response.status_code == 422:
        # A refusal must say which field: "value out of range" at ["body"] tells the caller nothing.
        for problem in response.json()["detail"]:
            assert len(problem["loc"]) >= 2, (case.method, case.path, body, response.text)


def _hostile(target: FuzzTarget, operation: APIOperation) -> None:
    @settings(
        max_examples=HOSTILE_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    def run(case: Case) -> None:
        real = _real_path_parameters(target, case)
        if isinstance(case.body, dict | list):
            # Real ids where the body names objects, so hostile values get past "unknown customer" to the code
            # that compares, advances and stores them.
            base = _with_real_ids(target, case.body)
            for pick in BODY_VARIANTS.values():
                body = _replace_leaves(base, pick)
                if body != base:
                    _send_variant(target, case, body, real)
        for name in case.path_parameters or {}:
            for value in PATH_VARIANTS.values():
                _send_variant(target, case, case.body, {**(real or case.path_parameters or {}), name: value})

    run()


def test_hostile_values_of_every_class_answer_as_documented(fuzz_target: FuzzTarget) -> None:
    """Every operation, with each class of hostile value put into its body (every time, integer, string leaf)
    and its path parameters: never a 5xx, only documented statuses and bodies."""
    api_schema = schemathesis.openapi.from_dict(fuzz_target.spec)
    failures: list[str] = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        if operation.method.upper() == "DELETE" and not operation.path.startswith("/v1/customer-portal/"):
            continue  # would remove the objects the other operations are fuzzed against
        try:
            _hostile(fuzz_target, operation)
        except Unsatisfiable:
            pass
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
