"""Redis-backed response cache (aiocache): generation-keyed, stampede-safe, never in the way.

Every key holds the current generation, a number each committed write bumps, so the next read
after a write misses in every process. Redis slow or down only turns hits into misses: each
operation has a short timeout, and after a failure the cache is skipped for a while.
"""

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
import redis
import redis.asyncio
from aiocache import RedisCache
from aiocache.lock import RedLock
from aiocache.serializers import BaseSerializer

from trends_gql.settings import Settings

log = logging.getLogger(__name__)

GENERATION = "generation"  # aiocache stores it as "<namespace>:generation"
T = TypeVar("T")
FAILURES_BEFORE_PAUSE = 3


class _Bytes(BaseSerializer):
    DEFAULT_ENCODING = None

    def dumps(self, value: bytes) -> bytes:
        return value

    def loads(self, value: bytes | None) -> bytes | None:
        return value


def _pool_for(url: str, timeout: float) -> Callable[..., redis.asyncio.ConnectionPool]:
    # aiocache builds its pool from host and port only; this takes any URL (unix sockets too).
    def make(**_: Any) -> redis.asyncio.ConnectionPool:
        return redis.asyncio.ConnectionPool.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )

    return make


def invalidate(settings: Settings) -> bool:
    """Bump the generation after a committed write; False (logged) when Redis is unreachable."""
    if settings.cache_ttl <= 0:
        return True
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.incr(f"{settings.cache_namespace}:{GENERATION}")
        return True
    except redis.RedisError as exc:
        log.error(
            "cache not invalidated after a write (Redis: %s): stale for up to %d s",
            exc,
            settings.cache_ttl,
        )
        return False
    finally:
        client.close()


class ResponseCache:
    """Whole GraphQL responses by document, variables, role and generation."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = settings.cache_ttl
        self.enabled = self.ttl > 0
        self.clock = clock
        self.retry_after = settings.cache_retry_seconds
        self.closed_until = 0.0
        self.failures = 0
        self.problem: str | None = None
        self.backend = RedisCache(
            namespace=settings.cache_namespace,
            serializer=_Bytes(),
            timeout=settings.cache_timeout,
            connection_pool_class=_pool_for(settings.redis_url, settings.cache_timeout),
        )

    @property
    def status(self) -> str:
        """For /healthz: ok, off, or why the cache is being skipped."""
        if not self.enabled:
            return "off"
        return f"degraded: {self.problem}" if self.skipping() else "ok"

    def skipping(self) -> bool:
        return self.clock() < self.closed_until

    def _fail(self, exc: BaseException) -> None:
        # One slow answer on a busy machine is a miss; a few in a row mean Redis is in trouble.
        self.failures += 1
        self.problem = repr(exc)
        if self.failures < FAILURES_BEFORE_PAUSE or self.skipping():
            return
        log.warning(
            "cache unavailable, reads go to the database for %.0f s: %r", self.retry_after, exc
        )
        self.closed_until = self.clock() + self.retry_after

    async def _call(self, operation: Awaitable[T]) -> T | None:
        try:
            result = await operation
        except Exception as exc:  # a timeout, a refused connection, a Redis error: all a miss
            self._fail(exc)
            return None
        self.failures = 0
        return result

    async def key(self, parts: Any, role: str) -> str | None:
        """The cache key of a request, or None when the cache cannot be used now."""
        if not self.enabled or self.skipping():
            return None
        generation = await self._call(self.backend.get(GENERATION))
        if self.skipping():
            return None
        digest = hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()
        return f"response:{int(generation or 0)}:{role}:{digest}"

    async def get(self, key: str) -> bytes | None:
        """A cached response, or None."""
        return await self._call(self.backend.get(key))

    async def set(self, key: str, body: bytes) -> None:
        """Keep a response for the TTL."""
        await self._call(self.backend.set(key, body, ttl=self.ttl))

    async def get_or_compute(
        self, key: str, compute: Callable[[], Awaitable[tuple[bytes | None, T]]]
    ) -> tuple[bytes | None, T | None]:
        """(cached body, None), or (None, computed result) while concurrent misses of the key wait.

        `compute` returns the body to cache (None: not cacheable) and its result; it runs once
        whatever Redis does, and its own exceptions propagate.
        """
        lock = RedLock(self.backend, key, lease=1.0)
        try:
            await lock.__aenter__()
        except Exception as exc:
            self._fail(exc)
            return None, (await compute())[1]
        try:
            cached = await self.get(key)
            if cached is not None:
                return cached, None
            body, result = await compute()
            if body is not None:
                await self.set(key, body)
            return None, result
        finally:
            await self._call(lock.__aexit__(None, None, None))

    async def aclose(self) -> None:
        await self._call(self.backend.client.aclose())
