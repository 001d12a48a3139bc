"""A per-process cache of the products the customer-portal API embeds in orders and subscriptions (with their
prices, benefits and organization), so a page of ten orders does not re-read and re-build the same few products.

Correct across processes without any messaging: the cache of an organization is keyed by its row as the request
read it, including ``catalog_version``, which SQLite triggers bump on every insert, update or delete of a product,
price, benefit or product-benefit link (migration 7) whoever writes it. A request that sees a new version (or any
change to the organization row, which the products embed) starts a fresh cache for that organization. Data is
loaded after the version was read, so a cached entry is never older than its key. One cache per ``Database``
(two data dirs in one process never share entries); products that do not exist are remembered as missing too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar
from weakref import WeakKeyDictionary

import msgspec

from portal.db import Database
from portal.organizations.queries import Organization

T = TypeVar("T")
Loader = Callable[[Database, Organization, Sequence[str]], Awaitable[dict[str, T]]]

MAX_PRODUCTS_PER_ORGANIZATION = 10_000  # past this (a huge catalog), the organization's cache starts over


class _OrganizationCache:
    __slots__ = ("encoded", "key", "products")

    def __init__(self, key: Organization) -> None:
        self.key = key
        self.products: dict[str, object | None] = {}
        self.encoded: dict[str, msgspec.Raw] = {}  # a product's JSON, made the first time a page embeds it encoded


_CACHES: WeakKeyDictionary[Database, dict[str, _OrganizationCache]] = WeakKeyDictionary()


async def cached_products(
    db: Database, organization: Organization, product_ids: Sequence[str | None], load: Loader[T]
) -> dict[str, T]:
    """``load(db, organization, ids)`` for the ids not cached yet under ``organization`` (row and version)."""
    return (await _cached(db, organization, product_ids, load))[1]


async def cached_products_encoded(
    db: Database, organization: Organization, product_ids: Sequence[str | None], load: Loader[T]
) -> dict[str, tuple[T, msgspec.Raw]]:
    """The same products as ``cached_products``, each with its JSON encoding (made once per cached product): for
    answers that embed a product many times, so it is encoded once instead of once per embedding."""
    cache, products = await _cached(db, organization, product_ids, load)
    encoded = cache.encoded
    out: dict[str, tuple[T, msgspec.Raw]] = {}
    for pid, product in products.items():
        raw = encoded.get(pid)
        if raw is None:
            raw = encoded[pid] = msgspec.Raw(_ENCODER.encode(product))
        out[pid] = (product, raw)
    return out


_ENCODER = msgspec.json.Encoder()


async def _cached(
    db: Database, organization: Organization, product_ids: Sequence[str | None], load: Loader[T]
) -> tuple[_OrganizationCache, dict[str, T]]:
    caches = _CACHES.get(db)
    if caches is None:
        caches = _CACHES[db] = {}
    cache = caches.get(organization.id)
    if cache is None or cache.key != organization or len(cache.products) > MAX_PRODUCTS_PER_ORGANIZATION:
        cache = caches[organization.id] = _OrganizationCache(organization)
    wanted = {pid for pid in product_ids if pid}
    missing = sorted(pid for pid in wanted if pid not in cache.products)
    if missing:
        loaded = await load(db, organization, missing)
        for pid in missing:
            cache.products[pid] = loaded.get(pid)
    products = {pid: product for pid in wanted if (product := cache.products[pid]) is not None}
    return cache, products  # type: ignore[return-value]
