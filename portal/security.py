"""Secrets: random tokens, HMAC-SHA256 digests for high-entropy secrets, argon2 (in a worker thread) for
low-entropy ones, and short-lived signed links.

High-entropy tokens (sessions, API tokens) are stored as HMAC-SHA256(instance secret, token): O(1) lookup by
digest, and a stolen database alone does not yield usable tokens. argon2 is only for low-entropy secrets and
never runs on the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
import weakref
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# Bounded concurrency for argon2: each hash costs tens of ms of CPU and MiBs of memory. One semaphore per event
# loop (a semaphore binds to the loop it is first awaited on).
_ARGON2_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _argon2_slots() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slots = _ARGON2_SLOTS.get(loop)
    if slots is None:
        slots = _ARGON2_SLOTS[loop] = asyncio.Semaphore(2)
    return slots


def new_token(nbytes: int = 32) -> str:
    """A URL-safe random token with ``nbytes`` of entropy (32 bytes by default)."""
    return secrets.token_urlsafe(nbytes)


def hmac_digest(secret: str, value: str, purpose: str = "token") -> str:
    """Hex HMAC-SHA256 of ``value`` keyed by the instance secret and a purpose label (domain separation)."""
    inner, outer = _hmac_pads(purpose, secret)
    digest = inner.copy()
    digest.update(value.encode())
    result = outer.copy()
    result.update(digest.digest())
    return result.hexdigest()


@lru_cache(maxsize=64)
def _hmac_pads(purpose: str, secret: str) -> tuple[hashlib._Hash, hashlib._Hash]:
    """HMAC (RFC 2104) with the key's inner and outer pads hashed once per purpose and secret: a digest then costs
    two hash copies instead of a keyed setup; the session lookup runs it on every request (bench/README.md, speed
    mechanisms)."""
    key = hashlib.sha256(f"{purpose}:{secret}".encode()).digest().ljust(64, b"\0")
    return hashlib.sha256(bytes(b ^ 0x36 for b in key)), hashlib.sha256(bytes(b ^ 0x5C for b in key))


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


@lru_cache(maxsize=2)
def password_hasher(profile: str = "default") -> PasswordHasher:
    if profile == "test":
        return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    # OWASP's 19 MiB / t=2 profile: ~23 ms per hash on a small VPS.
    return PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


async def argon2_hash(value: str, profile: str = "default") -> str:
    async with _argon2_slots():
        return await asyncio.to_thread(password_hasher(profile).hash, value)


async def argon2_verify(hashed: str, value: str, profile: str = "default") -> bool:
    async with _argon2_slots():
        try:
            return await asyncio.to_thread(password_hasher(profile).verify, hashed, value)
        except (VerificationError, InvalidHashError):
            return False


def sign(secret: str, payload: str, expires_at: int) -> str:
    """A signature over ``payload`` valid until unix time ``expires_at``: ``<expires>.<b64 hmac>``."""
    mac = hmac.new(
        hashlib.sha256(f"signed-link:{secret}".encode()).digest(),
        f"{payload}|{expires_at}".encode(),
        hashlib.sha256,
    ).digest()
    return f"{expires_at}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def verify_signature(secret: str, payload: str, signature: str, now: float | None = None) -> bool:
    try:
        expires_text, _ = signature.split(".", 1)
        expires_at = int(expires_text)
    except ValueError:
        return False
    if expires_at < (time.time() if now is None else now):
        return False
    return constant_time_equal(sign(secret, payload, expires_at), signature)
