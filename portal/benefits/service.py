"""Write side of benefits: create/update a benefit with type-specific ``properties`` (validated by the Structs
below, Polar's ``Benefit*Properties`` names) and register downloadable files on disk."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from portal.clock import iso, new_id
from portal.db import Transaction
from portal.errors import DomainError, InvalidInput, NotFound
from portal.fields import Positive, SingleLine, has_control_characters, readable_message, single_line_problem
from portal.references import require_all_owned

BenefitType = Literal[
    "custom",
    "license_keys",
    "downloadables",
    "discord",
    "github_repository",
    "meter_credit",
    "feature_flag",
]
BENEFIT_TYPES: tuple[str, ...] = BenefitType.__args__  # type: ignore[attr-defined]

_PREFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,15}$")


class _Properties(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=False):
    pass


class CustomProperties(_Properties, kw_only=True):
    """``custom``: a note (Markdown, may hold links) shown to customers who hold the benefit."""

    note: str | None = None


# The longest key lifetime per timeframe (a century): a key's expiry is computed at every grant, and a larger ttl
# would overflow the date there, failing every later order of the product instead of this benefit's write.
MAX_KEY_TTL = {"year": 100, "month": 1200, "day": 36600}


class LicenseKeyExpiration(_Properties, kw_only=True):
    ttl: Positive
    timeframe: Literal["year", "month", "day"]

    def __post_init__(self) -> None:
        if self.ttl > MAX_KEY_TTL[self.timeframe]:
            raise ValueError(f"ttl: at most {MAX_KEY_TTL[self.timeframe]} for timeframe {self.timeframe!r}")


class LicenseKeyActivations(_Properties, kw_only=True):
    limit: Annotated[int, msgspec.Meta(ge=1, le=50)]
    enable_customer_admin: bool = False  # customers may deactivate their own activations


class LicenseKeysProperties(_Properties, kw_only=True):
    prefix: str | None = None
    expires: LicenseKeyExpiration | None = None
    activations: LicenseKeyActivations | None = None
    limit_usage: Positive | None = None
    # Customers may rotate their key (new key string; the old one stops validating at once), as in Polar, where
    # every customer may; Portal lets the seller switch it off per benefit.
    allow_customer_rotation: bool = True


class DownloadablesProperties(_Properties, kw_only=True):
    files: list[str] = []  # file ids, in display order
    archived: dict[str, bool] = {}  # file id -> hidden from new grants


class DiscordProperties(_Properties, kw_only=True):
    """Self-hosted Portal cannot run Discord's OAuth: ``invite_url`` is the link customers follow."""

    guild_id: str | None = None
    role_id: str | None = None
    kick_member: bool = False
    invite_url: str | None = None


class GitHubRepositoryProperties(_Properties, kw_only=True):
    repository_owner: str
    repository_name: str
    permission: Literal["pull", "triage", "push", "maintain", "admin"] = "pull"
    invite_url: str | None = None


class MeterCreditProperties(_Properties, kw_only=True):
    units: Positive
    meter_id: str
    rollover: bool = False


class FeatureFlagProperties(_Properties, kw_only=True):
    metadata: dict[str, str | int | float | bool] = {}


BenefitProperties = (
    CustomProperties
    | LicenseKeysProperties
    | DownloadablesProperties
    | DiscordProperties
    | GitHubRepositoryProperties
    | MeterCreditProperties
    | FeatureFlagProperties
)

PROPERTIES_TYPES: dict[str, type[_Properties]] = {
    "custom": CustomProperties,
    "license_keys": LicenseKeysProperties,
    "downloadables": DownloadablesProperties,
    "discord": DiscordProperties,
    "github_repository": GitHubRepositoryProperties,
    "meter_credit": MeterCreditProperties,
    "feature_flag": FeatureFlagProperties,
}


Visibility = Literal["public", "private", "draft"]
# Polar's rule: only benefits that need nothing from the customer in the portal may be hidden from it; the others
# (Discord, GitHub, downloads) stay public. Feature flags are private unless said otherwise.
VISIBILITY_CONFIGURABLE = frozenset({"custom", "license_keys", "meter_credit", "feature_flag"})
VISIBILITY_NOT_CONFIGURABLE = "Visibility is not configurable for this benefit type and must be public."


def default_visibility(benefit_type: str) -> Visibility:
    return "private" if benefit_type == "feature_flag" else "public"


class BenefitInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    type: BenefitType
    description: SingleLine
    properties: dict[str, Any] = {}
    external_id: SingleLine | None = None
    metadata: dict[str, Any] = {}
    # Polar's benefit visibility in the customer portal: only public benefits are shown there (grants, the
    # benefits of products, emails). None: the type's default.
    visibility: Visibility | None = None


def resolve_visibility(data: BenefitInput) -> Visibility:
    """The visibility to store; ``InvalidInput`` at ``visibility`` (Polar's message) for a type that must stay
    public."""
    if data.type not in VISIBILITY_CONFIGURABLE:
        if data.visibility not in (None, "public"):
            raise InvalidInput(VISIBILITY_NOT_CONFIGURABLE, "visibility")
        return "public"
    return data.visibility or default_visibility(data.type)


def validation_problem(exc: msgspec.ValidationError, prefix: str) -> tuple[str, str]:
    """Turn msgspec's ``Expected `int`, got `str` - at `$.a[0].b``` into (``prefix.a[0].b``, ``expected int,
    got str``). Missing/unknown fields move into the path: (``prefix.name``, ``required field missing``)."""
    text = str(exc)
    message, _, where = text.partition(" - at `")
    path = where.rstrip("`").removeprefix("$")
    if message.startswith("Object missing required field `"):
        path += "." + message.split("`")[1]
        message = "required field missing"
    elif message.startswith("Object contains unknown field `"):
        path += "." + message.split("`")[1]
        message = "unknown field"
    elif (readable := readable_message(message)) != message:
        message = readable
    else:
        message = message.replace("`", "")
        message = message[:1].lower() + message[1:]
    full = (prefix + path).lstrip(".") if prefix else path.lstrip(".")
    return full, message


def parse_properties(benefit_type: str, raw: dict[str, Any] | _Properties) -> BenefitProperties:
    """Validate ``raw`` against the Struct for ``benefit_type``; ``InvalidInput`` names ``properties.<path>``."""
    struct = PROPERTIES_TYPES.get(benefit_type)
    if struct is None:
        raise InvalidInput(f"unknown benefit type {benefit_type!r}", "type")
    if isinstance(raw, struct):
        props = raw
    else:
        try:
            props = msgspec.convert(raw, struct, strict=True)
        except msgspec.ValidationError as exc:
            field, message = validation_problem(exc, "properties")
            raise InvalidInput(message, field) from None
    for problem in _property_problems(props):
        raise problem
    return props  # type: ignore[return-value]


def _property_problems(props: _Properties) -> list[DomainError]:
    problems: list[DomainError] = []
    for field in ("invite_url",):
        url = getattr(props, field, None)
        if url is not None and not url.startswith("https://"):
            problems.append(InvalidInput("expected an https:// URL", f"properties.{field}"))
    if isinstance(props, DiscordProperties) and not (props.invite_url or props.guild_id):
        problems.append(InvalidInput("give invite_url or guild_id", "properties.invite_url"))
    prefix = props.prefix if isinstance(props, LicenseKeysProperties) else None
    if prefix is not None and not _PREFIX_RE.match(prefix):
        problems.append(InvalidInput("expected 1-16 letters, digits or dashes", "properties.prefix"))
    if isinstance(props, DownloadablesProperties):
        for file_id in props.archived:
            if file_id not in props.files:
                problems.append(InvalidInput("archived file is not in files", f"properties.archived.{file_id}"))
    return problems


def load_properties(benefit_type: str, text: str) -> BenefitProperties:
    """Decode a stored ``properties`` column (already validated when written)."""
    return msgspec.json.decode(text, type=PROPERTIES_TYPES[benefit_type])  # type: ignore[return-value]


def check_benefit(data: BenefitInput) -> list[DomainError]:
    problems: list[DomainError] = []
    description = data.description.strip()
    if not 1 <= len(description) <= 120:
        problems.append(InvalidInput("expected 1-120 characters", "description"))
    try:
        parse_properties(data.type, data.properties)
    except DomainError as exc:
        problems.append(exc)
    try:
        resolve_visibility(data)
    except DomainError as exc:
        problems.append(exc)
    return problems


async def _check_files(tx: Transaction, organization_id: str, props: BenefitProperties) -> None:
    if not isinstance(props, DownloadablesProperties):
        return
    await require_all_owned(tx, "file", props.files, organization_id, "properties.files")


def _encode(props: BenefitProperties) -> str:
    return msgspec.json.encode(props).decode()


async def create_benefit(tx: Transaction, organization_id: str, data: BenefitInput, *, now: datetime) -> str:
    """Insert a benefit; returns its id. Downloadables' file ids must belong to the organization."""
    problems = check_benefit(data)
    if problems:
        raise problems[0]
    props = parse_properties(data.type, data.properties)
    visibility = resolve_visibility(data)
    await _check_files(tx, organization_id, props)
    benefit_id = new_id()
    await tx.execute(
        """
        INSERT INTO benefits (
            id,
            organization_id,
            type,
            description,
            properties,
            external_id,
            metadata,
            visibility,
            created_at
        ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        (
            benefit_id,
            organization_id,
            data.type,
            data.description.strip(),
            _encode(props),
            data.external_id,
            msgspec.json.encode(data.metadata).decode(),
            visibility,
            iso(now),
        ),
    )
    return benefit_id


async def update_benefit(tx: Transaction, benefit_id: str, data: BenefitInput, *, now: datetime) -> None:
    """Replace description/properties/metadata/visibility (None: the type's default, as Polar resolves it). The
    type of a benefit never changes (grants depend on it)."""
    row = await get_benefit_row(tx, benefit_id)
    if row["type"] != data.type:
        raise InvalidInput(f"a {row['type']} benefit cannot become {data.type}", "type")
    problems = check_benefit(data)
    if problems:
        raise problems[0]
    props = parse_properties(data.type, data.properties)
    visibility = resolve_visibility(data)
    await _check_files(tx, row["organization_id"], props)
    await tx.execute(
        """
        UPDATE benefits SET
            description = ?,
            properties = ?,
            external_id = ?,
            metadata = ?,
            visibility = ?,
            modified_at = ?
        WHERE id = ?
        """,
        (
            data.description.strip(),
            _encode(props),
            data.external_id,
            msgspec.json.encode(data.metadata).decode(),
            visibility,
            iso(now),
            benefit_id,
        ),
    )


async def get_benefit_row(tx: Transaction, benefit_id: str, *, organization_id: str | None = None) -> sqlite3.Row:
    row = await tx.fetchone("SELECT * FROM benefits WHERE id = ? AND deleted_at IS NULL", (benefit_id,))
    if row is None or (organization_id is not None and row["organization_id"] != organization_id):
        raise NotFound("benefit not found")
    return row


async def find_benefit_id(tx: Transaction, organization_id: str, external_id: str) -> str | None:
    return await tx.fetchval(
        "SELECT id FROM benefits WHERE organization_id = ? AND external_id = ?",
        (organization_id, external_id),
    )


class StoredFile(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    path: str  # relative to files_dir
    size: int
    checksum_sha256_hex: str


def _write_file(target: Path, content: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    with open(partial, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(target)


def _file_name_problems(name: str, mime_type: str, version: str | None) -> None:
    if not name.strip() or "/" in name or "\\" in name or len(name) > 255:
        raise InvalidInput("expected a plain file name", "name")
    if (message := single_line_problem(name)) is not None:
        raise InvalidInput(message, "name")  # it is shown, logged and sent as Content-Disposition
    if "/" not in mime_type or has_control_characters(mime_type):  # sent back as Content-Type
        raise InvalidInput("expected a MIME type like text/plain", "mime_type")
    if version is not None and (message := single_line_problem(version)) is not None:
        raise InvalidInput(message, "version")


async def register_file(
    tx: Transaction,
    organization_id: str,
    *,
    name: str,
    content: bytes,
    mime_type: str,
    files_dir: Path,
    now: datetime,
    version: str | None = None,
) -> StoredFile:
    """Write ``content`` to ``files_dir/<org_id>/<file_id>`` and record it (size, mime type, sha256).

    The bytes land on disk before the row commits: if the transaction rolls back, the caller may delete
    ``files_dir / stored.path`` (the seed loader does); an orphan file is harmless otherwise."""
    _file_name_problems(name, mime_type, version)
    file_id = new_id()
    relative = f"{organization_id}/{file_id}"
    await asyncio.to_thread(_write_file, files_dir / relative, content)
    stored = StoredFile(
        id=file_id,
        path=relative,
        size=len(content),
        checksum_sha256_hex=hashlib.sha256(content).hexdigest(),
    )
    await tx.execute(
        """
        INSERT INTO files (
            id,
            organization_id,
            name,
            path,
            mime_type,
            size,
            checksum_sha256_hex,
            version,
            created_at
        ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        (
            file_id,
            organization_id,
            name,
            relative,
            mime_type,
            stored.size,
            stored.checksum_sha256_hex,
            version,
            iso(now),
        ),
    )
    return stored


async def replace_file(
    tx: Transaction,
    organization_id: str,
    file_id: str,
    *,
    name: str,
    content: bytes,
    mime_type: str,
    files_dir: Path,
    now: datetime,
    version: str | None = None,
) -> tuple[StoredFile, str]:
    """Give the file ``file_id`` new bytes (and name, MIME type, version), keeping its id: every grant that lists
    it, and every benefit, now hands out the new bytes. The bytes go to a new path (the old ones stay readable
    until the commit); returns the stored file and the old relative path, for the caller to unlink after the
    commit (a rolled-back replace never loses the old bytes)."""
    row = await tx.fetchone("SELECT path FROM files WHERE id = ? AND organization_id = ?", (file_id, organization_id))
    if row is None:
        raise NotFound("file not found")
    _file_name_problems(name, mime_type, version)
    relative = f"{organization_id}/{file_id}.{new_id()}"
    await asyncio.to_thread(_write_file, files_dir / relative, content)
    stored = StoredFile(
        id=file_id, path=relative, size=len(content), checksum_sha256_hex=hashlib.sha256(content).hexdigest()
    )
    await tx.execute(
        """
        UPDATE files SET
            name = ?,
            path = ?,
            mime_type = ?,
            size = ?,
            checksum_sha256_hex = ?,
            version = ?,
            modified_at = ?
        WHERE id = ?
        """,
        (name, relative, mime_type, stored.size, stored.checksum_sha256_hex, version, iso(now), file_id),
    )
    return stored, str(row["path"])
