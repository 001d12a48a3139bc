"""Runtime settings: one declared table of every ``PORTAL_*`` variable and the frozen Settings built from it.

The table (``SETTINGS``) is the single source of truth: ``Settings.from_env`` reads it, the README documents it
(a test checks that every row appears there), and ``portal check`` validates it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import msgspec


@dataclass(frozen=True, slots=True)
class SettingSpec:
    """One row of the settings table."""

    env: str
    field: str
    default: str
    help: str
    kind: Literal["str", "int", "float", "bool", "path", "secret"] = "str"


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec(
        "PORTAL_DATA_DIR",
        "data_dir",
        "./portal-data",
        "Directory holding `portal.db`, `files/` (downloadables), `outbox/` (dev mail) and `secret_key`.",
        "path",
    ),
    SettingSpec(
        "PORTAL_BASE_URL",
        "base_url",
        "http://127.0.0.1:8000",
        "Public URL customers reach Portal at; its scheme decides Secure cookies and links in emails.",
    ),
    SettingSpec(
        "PORTAL_SECRET_KEY",
        "secret_key",
        "",
        "Instance secret for HMACs (tokens, codes, signed links). Empty: generated once into "
        "`<data dir>/secret_key`. Never logged.",
        "secret",
    ),
    SettingSpec(
        "PORTAL_SECRET_KEY_FILE",
        "secret_key_file",
        "",
        "Read the instance secret from this file instead (Docker/systemd secrets).",
        "path",
    ),
    SettingSpec(
        "PORTAL_SQLITE_SYNCHRONOUS",
        "sqlite_synchronous",
        "NORMAL",
        "SQLite `synchronous` pragma: NORMAL (WAL-safe, may lose the last commits on power loss) "
        "or FULL (durable on power loss, slower writes).",
    ),
    SettingSpec(
        "PORTAL_DB_READERS",
        "db_readers",
        "4",
        "Number of read-only SQLite connections per process (writes use one separate connection).",
        "int",
    ),
    SettingSpec(
        "PORTAL_MAIL_BACKEND",
        "mail_backend",
        "outbox",
        "`outbox` (dev: print codes and write `.eml` files under the data dir) or `smtp`.",
    ),
    SettingSpec("PORTAL_SMTP_HOST", "smtp_host", "localhost", "SMTP server host.", "str"),
    SettingSpec("PORTAL_SMTP_PORT", "smtp_port", "587", "SMTP server port.", "int"),
    SettingSpec(
        "PORTAL_SMTP_SECURITY",
        "smtp_security",
        "starttls",
        "`starttls`, `tls` (implicit TLS, usually port 465) or `none` (loopback/dev only).",
    ),
    SettingSpec("PORTAL_SMTP_USERNAME", "smtp_username", "", "SMTP username (empty: no AUTH)."),
    SettingSpec("PORTAL_SMTP_PASSWORD", "smtp_password", "", "SMTP password.", "secret"),
    SettingSpec(
        "PORTAL_SMTP_PASSWORD_FILE",
        "smtp_password_file",
        "",
        "Read the SMTP password from this file instead.",
        "path",
    ),
    SettingSpec(
        "PORTAL_SMTP_TIMEOUT",
        "smtp_timeout",
        "10",
        "Seconds before an SMTP connection or command gives up.",
        "int",
    ),
    SettingSpec(
        "PORTAL_MAIL_FROM",
        "mail_from",
        "Portal <portal@localhost>",
        "From address of every email Portal sends.",
    ),
    SettingSpec(
        "PORTAL_LOGIN_CODE_TTL",
        "login_code_ttl",
        "900",
        "Seconds a login code stays valid (10–15 minutes recommended).",
        "int",
    ),
    SettingSpec(
        "PORTAL_SESSION_IDLE_TIMEOUT",
        "session_idle_timeout",
        "86400",
        "Seconds of inactivity after which a browser session ends.",
        "int",
    ),
    SettingSpec(
        "PORTAL_SESSION_MAX_AGE",
        "session_max_age",
        "604800",
        "Absolute lifetime of a browser session or API customer-session token from a login, in seconds.",
        "int",
    ),
    SettingSpec(
        "PORTAL_CUSTOMER_SESSION_TTL",
        "customer_session_ttl",
        "3600",
        "Lifetime in seconds of tokens minted by `POST /v1/customer-sessions/` (pre-authenticated links).",
        "int",
    ),
    SettingSpec(
        "PORTAL_TRUSTED_PROXIES",
        "trusted_proxies",
        "",
        "Comma-separated proxy addresses whose `X-Forwarded-For` is trusted for client IPs.",
    ),
    SettingSpec(
        "PORTAL_LOG_FORMAT",
        "log_format",
        "text",
        "`text` or `json`: one line per request either way.",
    ),
    SettingSpec(
        "PORTAL_MAX_BODY_BYTES",
        "max_body_bytes",
        "10485760",
        "Largest accepted request body in bytes (uploads included); larger answers 413.",
        "int",
    ),
    SettingSpec(
        "PORTAL_WORKER_POLL_INTERVAL",
        "worker_poll_interval",
        "1",
        "Seconds between the background workers' looks for due emails and webhook deliveries.",
        "float",
    ),
    SettingSpec(
        "PORTAL_RETRY_BACKOFF_BASE",
        "retry_backoff_base",
        "30",
        "Seconds before the first retry of a failed email or webhook delivery; doubles after each failure "
        "(at most 6 hours apart).",
        "float",
    ),
    SettingSpec(
        "PORTAL_RETRY_MAX_ATTEMPTS",
        "retry_max_attempts",
        "12",
        "Attempts before an email or webhook delivery is given up as `failed` (`portal outbox --retry ID` "
        "re-queues an email).",
        "int",
    ),
    SettingSpec(
        "PORTAL_WEBHOOK_TIMEOUT",
        "webhook_timeout",
        "10",
        "Whole budget in seconds of one webhook delivery (connect, send and the answer); past it the delivery "
        "counts as failed.",
        "float",
    ),
    SettingSpec(
        "PORTAL_WEBHOOK_PRIVATE_ADDRESSES",
        "webhook_private_addresses",
        "false",
        "`true` lets webhook endpoints point to loopback, private-network, link-local and other non-public "
        "addresses (a receiver on this machine or its LAN). Off, such URLs are refused when saved, and a delivery "
        "whose host name resolves to one is refused, so no organization can make Portal reach what only the "
        "server can.",
        "bool",
    ),
    SettingSpec(
        "PORTAL_RENEWAL_SCAN_INTERVAL",
        "renewal_scan_interval",
        "3600",
        "Seconds between scans for subscriptions due a renewal reminder email.",
        "float",
    ),
    SettingSpec(
        "PORTAL_CONNECTOR_EVENT_RETENTION_DAYS",
        "connector_event_retention_days",
        "90",
        "Days a processor's event that Portal applied or ignored stays stored (its payload included, shown on the "
        "console's Processors page), then it is deleted; `0` keeps them all. Events still waiting (a price not "
        "mapped yet, a failure) stay until they are applied. At least 7: a redelivered event is known as a "
        "duplicate only while it is stored, and processors retry for up to a few days.",
        "int",
    ),
    SettingSpec(
        "PORTAL_HEADER_TIMEOUT",
        "header_timeout",
        "10",
        "Seconds a client has, from connecting (or from the first byte of a next request), to send complete "
        "request headers; slower connections are closed.",
        "float",
    ),
    SettingSpec(
        "PORTAL_KEEPALIVE_TIMEOUT",
        "keepalive_timeout",
        "5",
        "Seconds an idle keep-alive connection stays open between requests.",
        "int",
    ),
    SettingSpec(
        "PORTAL_MAX_CONNECTIONS",
        "max_connections",
        "0",
        "Open client connections per server process; past it the oldest idle one is closed (or the new one, "
        "when none is idle). 0: the open-file limit (`RLIMIT_NOFILE`) minus 128, and never more than that.",
        "int",
    ),
    SettingSpec(
        "PORTAL_STRIPE_API_BASE",
        "stripe_api_base",
        "https://api.stripe.com",
        "Base URL of Stripe's API for the Stripe connector (tests and staging point it at another server).",
    ),
    SettingSpec(
        "PORTAL_LEMONSQUEEZY_API_BASE",
        "lemonsqueezy_api_base",
        "https://api.lemonsqueezy.com",
        "Base URL of Lemon Squeezy's API for the Lemon Squeezy connector (tests point it at another server).",
    ),
    SettingSpec(
        "PORTAL_PADDLE_API_BASE",
        "paddle_api_base",
        "https://api.paddle.com",
        "Base URL of Paddle Billing's API for the Paddle connector (`https://sandbox-api.paddle.com` for sandbox).",
    ),
    SettingSpec(
        "PORTAL_POLAR_API_BASE",
        "polar_api_base",
        "https://api.polar.sh",
        "Base URL of Polar's API for the Polar connector (its sandbox, or another Portal: Portal's API is Polar's).",
    ),
    SettingSpec(
        "PORTAL_GUMROAD_API_BASE",
        "gumroad_api_base",
        "https://api.gumroad.com",
        "Base URL of Gumroad's API for the Gumroad connector (tests and staging point it at another server).",
    ),
)


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every runtime setting; build with ``Settings.from_env()`` or directly in tests."""

    data_dir: Path = Path("./portal-data")
    base_url: str = "http://127.0.0.1:8000"
    secret_key: str = ""
    secret_key_file: Path | None = None
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    db_readers: int = 4
    mail_backend: Literal["outbox", "smtp"] = "outbox"
    smtp_host: str = "localhost"
    smtp_port: int = 587
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_password_file: Path | None = None
    smtp_timeout: int = 10
    mail_from: str = "Portal <portal@localhost>"
    login_code_ttl: int = 900
    session_idle_timeout: int = 86400
    session_max_age: int = 604800
    customer_session_ttl: int = 3600
    trusted_proxies: str = ""
    log_format: Literal["text", "json"] = "text"
    max_body_bytes: int = 10 * 1024 * 1024
    worker_poll_interval: float = 1.0
    retry_backoff_base: float = 30.0
    retry_max_attempts: int = 12
    webhook_timeout: float = 10.0
    webhook_private_addresses: bool = False
    renewal_scan_interval: float = 3600.0
    connector_event_retention_days: int = 90
    header_timeout: float = 10.0
    keepalive_timeout: int = 5
    max_connections: int = 0
    stripe_api_base: str = "https://api.stripe.com"
    lemonsqueezy_api_base: str = "https://api.lemonsqueezy.com"
    paddle_api_base: str = "https://api.paddle.com"
    polar_api_base: str = "https://api.polar.sh"
    gumroad_api_base: str = "https://api.gumroad.com"
    # Test hooks (not environment settings): argon2 cost profile.
    argon2_profile: Literal["default", "test"] = "default"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every row of ``SETTINGS`` from ``environ`` (default ``os.environ``)."""
        env = os.environ if environ is None else environ
        raw: dict[str, object] = {}
        for spec in SETTINGS:
            value = env.get(spec.env)
            if value is None or value == "":
                continue
            raw[spec.field] = value
        try:
            paths = {
                spec.field: Path(str(raw.pop(spec.field)))
                for spec in SETTINGS
                if spec.kind == "path" and spec.field in raw
            }
            return msgspec.structs.replace(msgspec.convert(raw, cls, strict=False), **paths)
        except msgspec.ValidationError as exc:
            # Name the environment variable, not the struct field.
            message = str(exc)
            for spec in SETTINGS:
                message = message.replace(f"`$.{spec.field}`", spec.env)
            raise SettingsError(message) from None

    @property
    def db_path(self) -> Path:
        return self.data_dir / "portal.db"

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def is_https(self) -> bool:
        return urlsplit(self.base_url).scheme == "https"

    @property
    def public_base_url(self) -> str:
        return self.base_url.rstrip("/")

    @property
    def trusted_proxy_set(self) -> frozenset[str]:
        return frozenset(p.strip() for p in self.trusted_proxies.split(",") if p.strip())

    def validate(self) -> list[str]:
        """Problems a running instance would hit; empty when the settings are usable."""
        problems: list[str] = []
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            problems.append(f"PORTAL_BASE_URL: expected an http(s) URL, got {self.base_url!r}")
        if not 60 <= self.login_code_ttl <= 3600:
            problems.append("PORTAL_LOGIN_CODE_TTL: expected 60..3600 seconds")
        if self.db_readers < 1:
            problems.append("PORTAL_DB_READERS: expected at least 1")
        if self.worker_poll_interval <= 0 or self.retry_backoff_base <= 0 or self.renewal_scan_interval <= 0:
            problems.append("PORTAL_WORKER_POLL_INTERVAL, _RETRY_BACKOFF_BASE, _RENEWAL_SCAN_INTERVAL: expected > 0")
        if self.connector_event_retention_days != 0 and self.connector_event_retention_days < 7:
            problems.append("PORTAL_CONNECTOR_EVENT_RETENTION_DAYS: expected 0 (keep every event) or at least 7 days")
        if not 0 < self.header_timeout <= 300:
            problems.append("PORTAL_HEADER_TIMEOUT: expected more than 0 and at most 300 seconds")
        if not 1 <= self.keepalive_timeout <= 300:
            problems.append("PORTAL_KEEPALIVE_TIMEOUT: expected 1..300 seconds")
        if self.max_connections < 0:
            problems.append("PORTAL_MAX_CONNECTIONS: expected 0 (automatic) or a positive number")
        if self.retry_max_attempts < 1:
            problems.append("PORTAL_RETRY_MAX_ATTEMPTS: expected at least 1")
        if self.secret_key_file and not self.secret_key_file.is_file():
            problems.append(f"PORTAL_SECRET_KEY_FILE: no such file {self.secret_key_file}")
        if self.smtp_password_file and not self.smtp_password_file.is_file():
            problems.append(f"PORTAL_SMTP_PASSWORD_FILE: no such file {self.smtp_password_file}")
        return problems

    def resolve_secrets(self) -> Settings:
        """Fill ``secret_key`` (file, env or generated into the data dir) and the SMTP password file."""
        changes: dict[str, object] = {}
        if self.secret_key_file:
            changes["secret_key"] = self.secret_key_file.read_text().strip()
        elif not self.secret_key:
            changes["secret_key"] = load_or_create_secret(self.data_dir)
        if self.smtp_password_file:
            changes["smtp_password"] = self.smtp_password_file.read_text().strip()
        return msgspec.structs.replace(self, **changes) if changes else self

    def __repr__(self) -> str:  # never print secrets
        return f"Settings(data_dir={str(self.data_dir)!r}, base_url={self.base_url!r})"


class SettingsError(ValueError):
    """A ``PORTAL_*`` variable holds a value of the wrong type or shape."""


def load_or_create_secret(data_dir: Path) -> str:
    """Read ``<data_dir>/secret_key``, creating it (mode 0600) with 32 random bytes on first run."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(48)
    temporary = data_dir / f".secret_key.{os.getpid()}.{secrets.token_hex(6)}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    try:
        # Atomic and exclusive: when two processes start on a fresh data dir, both end up with the winner's key.
        os.link(temporary, path)
    except FileExistsError:
        return path.read_text().strip()
    finally:
        temporary.unlink()
    return key


def settings_markdown_table() -> str:
    """The settings table as Markdown, for the README."""
    lines = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    for spec in SETTINGS:
        default = f"`{spec.default}`" if spec.default else "(empty)"
        lines.append(f"| `{spec.env}` | {default} | {spec.help} |")
    return "\n".join(lines)
