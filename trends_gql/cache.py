"""A Redis cache (aiocache) of responses and resolver results: generation-keyed, stampede-safe.

Every key holds the current generation, a number each committed write bumps, so the next read
after a write misses in every process. Redis slow or down only turns hits into misses: each
operation has a short timeout, and after a failure the cache is skipped for a while.
"""

import asyncio
import dataclasses
import enum
import hashlib
import logging
import pickle
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import orjson
import redis
import redis.asyncio
from aiocache import RedisCache
from aiocache.lock import RedLock
from aiocache.serializers import BaseSerializer

from trends_gql.memory import MemoryCache
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


def normalize(value: Any) -> Any:
    """`value` as JSON-able data, equal for equal arguments (sets and field order aside)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: normalize(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return normalize(value.value)
    if isinstance(value, set | frozenset):
        return sorted(normalize(v) for v in value)
    if isinstance(value, list | tuple):
        return [normalize(v) for v in value]
    if isinstance(value, dict):
        return {str(k): normalize(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"no cache key for a {type(value).__name__}")


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
    """Whole GraphQL responses, and root resolvers' results, under the current generation."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = settings.cache_ttl
        self.enabled = self.ttl > 0
        self.clock = clock
        self.retry_after = settings.cache_retry_seconds
        self.closed_until = 0.0
        self.failures = 0
        self.problem: str | None = None
        self.namespace = settings.cache_namespace
        self.timeout = settings.cache_timeout
        self.memory = MemoryCache(settings.cache_memory_mb << 20, clock)
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

    async def generation(self) -> int | None:
        """The current generation, or None when the cache cannot be used now."""
        if not self.enabled or self.skipping():
            return None
        try:
            value = await self.backend.get(GENERATION)
        except Exception as exc:  # unknown, so no key is safe: a stale entry may match
            self._fail(exc)
            return None
        self.failures = 0
        return int(value or 0)

    def key(self, generation: int, kind: str, parts: Any) -> str:
        """The key of an entry of `kind` (a response, a resolver's result) for `parts`."""
        digest = hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()
        return f"{kind}:{generation}:{digest}"

    async def get(self, key: str) -> bytes | None:
        """A cached body, from this process's memory or from Redis; None on a miss."""
        body = self.memory.get(key)
        if body is not None:
            return body
        found = await self._call(self._get_with_ttl(key))
        if found is None:
            return None
        body, ttl_ms = found
        if body is not None and ttl_ms > 0:
            self.memory.put(key, body, ttl_ms / 1000)  # no longer than Redis keeps it
        return body

    async def _get_with_ttl(self, key: str) -> tuple[bytes | None, int]:
        name = f"{self.namespace}:{key}"  # aiocache's key for `key` in our namespace
        async with self.backend.client.pipeline(transaction=False) as pipe:
            pipe.get(name).pttl(name)
            body, ttl_ms = await asyncio.wait_for(pipe.execute(), self.timeout)
        return body, int(ttl_ms)

    async def set(self, key: str, body: bytes) -> None:
        """Keep a body for the TTL."""
        self.memory.put(key, body, self.ttl)
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

    async def remember(
        self, generation: int | None, name: str, args: Any, compute: Callable[[], Awaitable[T]]
    ) -> T:
        """A resolver's result for `args`: kept, or computed once (and kept) on a miss.

        Results are pickled: the cache's Redis is the job queue's, which RQ already trusts with
        pickled jobs. Without a generation (cache off or unreachable) it just computes.
        """
        if generation is None:
            return await compute()
        key = self.key(generation, f"resolver:{name}", normalize(args))
        cached = await self.get(key)
        if cached is None:

            async def keep() -> tuple[bytes, T]:
                result = await compute()
                return pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL), result

            cached, result = await self.get_or_compute(key, keep)
            if cached is None:
                return cast(T, result)
        return cast(T, pickle.loads(cached))

    async def remember_many(
        self,
        generation: int | None,
        name: str,
        keys: list[Any],
        compute: Callable[[list[Any]], Awaitable[list[T]]],
    ) -> list[T]:
        """Like `remember` for a batch of arguments: one look-up, then `compute` of the misses."""
        if generation is None:
            return await compute(keys)
        entries = [self.key(generation, f"resolver:{name}", normalize(k)) for k in keys]
        found = await self._call(self.backend.multi_get(entries)) or [None] * len(keys)
        results = [None if body is None else pickle.loads(body) for body in found]
        missing = [i for i, body in enumerate(found) if body is None]
        if missing:
            computed = await compute([keys[i] for i in missing])
            kept = []
            for i, value in zip(missing, computed, strict=True):
                results[i] = value
                kept.append((entries[i], pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)))
            await self._call(self.backend.multi_set(kept, ttl=self.ttl))
        return cast(list[T], results)

    async def aclose(self) -> None:
        await self._call(self.backend.client.aclose())
