"""A thin cache of hot lookups (product by SKU, location by code), scoped by tenant.

Redis when ``REDIS_URL`` is set (shared by every replica), else a small in-process map.
Keys start with the tenant (DESIGN §4). Redis trouble never changes an answer: the
lookup falls back to the database and ``wms_cache_redis_up`` says 0; after an outage
this process drops the keys, since invalidations it could not send may be missing.
Writers invalidate in their transaction and again after it commits, so a reader that
re-filled the key in between with the old row does not keep it.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import Any, Protocol

import structlog
from prometheus_client import Counter, Gauge
from redis import asyncio as aioredis
from redis.exceptions import RedisError

log = structlog.get_logger(__name__)
PREFIX = "wms"
REDIS_UP = Gauge("wms_cache_redis_up", "1 while the cache's Redis answers, 0 when it does not.")
HITS = Counter("wms_cache_hits_total", "Cache lookups answered from the cache.", ["kind"])
MISSES = Counter("wms_cache_misses_total", "Cache lookups that went to the database.", ["kind"])

_TENANT: ContextVar[int | None] = ContextVar("wms_cache_tenant", default=None)
_PENDING: ContextVar[list[str] | None] = ContextVar("wms_cache_pending", default=None)


class Backend(Protocol):
    """Where cached values live."""

    async def get(self, key: str) -> str | None: ...
    async def set(self, key: str, value: str, ttl: float) -> None: ...
    async def delete(self, keys: list[str]) -> None: ...
    async def close(self) -> None: ...


class LocalBackend:
    """In-process LRU with expiry (one process: no Redis configured)."""

    def __init__(self, max_entries: int = 50_000) -> None:
        self._items: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._max = max_entries

    async def get(self, key: str) -> str | None:
        item = self._items.get(key)
        if item is None or item[0] < time.monotonic():
            return None
        self._items.move_to_end(key)
        return item[1]

    async def set(self, key: str, value: str, ttl: float) -> None:
        self._items[key] = (time.monotonic() + ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self._max:
            self._items.popitem(last=False)

    async def delete(self, keys: list[str]) -> None:
        for key in keys:
            self._items.pop(key, None)

    async def close(self) -> None:
        self._items.clear()


class RedisBackend:
    """Redis with short timeouts; every error reads as a miss and is remembered."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._redis = client  # shared with the rate limiter; its owner closes it
        self._dirty = False
        REDIS_UP.set(1)

    async def _call(self, action: Callable[[], Awaitable[Any]]) -> Any:
        try:
            if self._dirty:
                await self._purge()
            result = await action()
        except (RedisError, OSError) as exc:
            if not self._dirty:
                log.warning("cache_redis_down", error=str(exc)[:200])
            self._dirty = True
            REDIS_UP.set(0)
            return None
        REDIS_UP.set(1)
        return result

    async def _purge(self) -> None:
        async for key in self._redis.scan_iter(match=f"{PREFIX}:*", count=1000):
            await self._redis.delete(key)
        self._dirty = False
        log.info("cache_redis_back")

    async def get(self, key: str) -> str | None:
        value = await self._call(lambda: self._redis.get(key))
        if isinstance(value, bytes):
            return value.decode()
        return str(value) if value is not None else None

    async def set(self, key: str, value: str, ttl: float) -> None:
        await self._call(lambda: self._redis.set(key, value, px=int(ttl * 1000)))

    async def delete(self, keys: list[str]) -> None:
        if keys:
            await self._call(lambda: self._redis.delete(*keys))

    async def close(self) -> None:
        """Nothing: the client belongs to the app."""


class _State:
    backend: Backend | None = None
    ttl: float = 300.0


def install(backend: Backend | None, ttl: float = 300.0) -> None:
    """Use ``backend`` for lookups from now on (the app lifespan); None turns caching off."""
    _State.backend = backend
    _State.ttl = ttl


def backend_for(client: aioredis.Redis | None) -> Backend:
    """Redis when the app has a client (``REDIS_URL``), else the in-process map."""
    return RedisBackend(client) if client is not None else LocalBackend()


@contextlib.contextmanager
def bound_tenant(tenant_id: int) -> Iterator[list[str]]:
    """Lookups inside are cached under ``tenant_id``; yields the keys to drop after commit."""
    pending: list[str] = []
    tenant_token = _TENANT.set(tenant_id)
    pending_token = _PENDING.set(pending)
    try:
        yield pending
    finally:
        _TENANT.reset(tenant_token)
        _PENDING.reset(pending_token)


@contextlib.asynccontextmanager
async def tenant_scope(tenant_id: int) -> AsyncIterator[None]:
    """``bound_tenant`` that drops the keys it collected on exit (after an inner commit)."""
    with bound_tenant(tenant_id) as stale_keys:
        try:
            yield
        finally:
            await drop(stale_keys)


def _key(kind: str, parts: tuple[object, ...]) -> str | None:
    tenant = _TENANT.get()
    if tenant is None:
        return None
    return ":".join([PREFIX, str(tenant), kind, *(str(p) for p in parts)])


async def lookup(
    kind: str, parts: tuple[object, ...], load: Callable[[], Awaitable[list[Any] | None]]
) -> list[Any] | None:
    """The cached JSON list of ``kind`` / ``parts``, or ``load()`` stored for next time.

    Misses (None) are not cached: a product created a moment later must be found.
    """
    backend, key = _State.backend, _key(kind, parts)
    if backend is None or key is None:
        return await load()
    cached = await backend.get(key)
    if cached is not None:
        HITS.labels(kind=kind).inc()
        value: list[Any] = json.loads(cached)
        return value
    MISSES.labels(kind=kind).inc()
    value_or_none = await load()
    if value_or_none is not None:
        await backend.set(key, json.dumps(value_or_none), _State.ttl)
    return value_or_none


async def invalidate(kind: str, *parts: object) -> None:
    """Drop a key now and, through ``bound_tenant``'s list, again after the commit."""
    await invalidate_many(kind, [parts])


async def invalidate_many(kind: str, many: list[tuple[object, ...]]) -> None:
    """``invalidate`` for many keys in one round trip (imports)."""
    backend = _State.backend
    keys = [key for parts in many if (key := _key(kind, parts)) is not None]
    if backend is None or not keys:
        return
    await backend.delete(keys)
    pending = _PENDING.get()
    if pending is not None:
        pending.extend(keys)


async def drop(keys: list[str]) -> None:
    """Drop keys collected by ``bound_tenant`` (the pipeline calls this after commit)."""
    if _State.backend is not None and keys:
        await _State.backend.delete(keys)
