"""A Redis cache (aiocache) of responses and resolver results: generation-keyed, stampede-safe.

Every key holds the current generation (core/generation.py), a number each committed write to
trends bumps, so the next read after a write misses in every process; and the identity of the
database and of the code, so that another database or another release sharing the Redis never
reads an entry of this one.
Redis slow or down only turns hits into misses: each operation has a short timeout, and after
a failure the cache is skipped for a while.
"""

import asyncio
import dataclasses
import enum
import hashlib
import importlib.metadata
import logging
import pickle
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, TypeVar, cast

import orjson
import redis
import redis.asyncio
from aiocache import RedisCache
from aiocache.serializers import BaseSerializer
from sqlalchemy.engine import make_url

from trends_gql.cache.memory import MemoryCache
from trends_gql.cache.watch import GenerationWatch
from trends_gql.core import generation as data_generation
from trends_gql.core.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
FAILURES_BEFORE_PAUSE = 3
# After timeouts, how long Redis may take to answer a PING and still count as up (a busy host).
PROBE_TIMEOUT = 1.0

# A miss holds its key's lock this long at most: concurrent misses of the key, in any process,
# wait for its answer that long (then compute it themselves), and a process that died while
# computing holds no one up longer. Reads are bounded by DB_STATEMENT_TIMEOUT_MS (5 s) anyway.
LOCK_LEASE = 5.0
LOCK_POLL = 0.02  # how often a waiting miss looks for the answer
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Libraries whose objects are pickled in resolver entries, or shape the answers.
_SHAPING_DISTRIBUTIONS = ("sqlalchemy", "strawberry-graphql", "graphql-core")


@cache
def code_version() -> str:
    """A digest of this package's source and of the libraries its cache entries depend on."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]  # trends_gql, from trends_gql/cache
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    for name in _SHAPING_DISTRIBUTIONS:
        digest.update(f"{name}=={importlib.metadata.version(name)}".encode())
    return digest.hexdigest()


def database_identity(url: str) -> str:
    """The database a URL names (driver, host, port, database, user), without its password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        parsed = parsed.set(database=str(Path(parsed.database or "").resolve()))
    return parsed.render_as_string(hide_password=True)


def scope_of(settings: Settings) -> str:
    """What every key of these settings holds: the database's identity and the code's version."""
    parts = f"{database_identity(settings.database_url)}\0{code_version()}"
    return hashlib.sha256(parts.encode()).hexdigest()[:16]


class _Bytes(BaseSerializer):  # type: ignore[misc]  # aiocache has no type hints: Any
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
    if isinstance(value, datetime):
        # One key per instant, whatever the offset it was given in (a naive one stays apart).
        return (value.astimezone(UTC) if value.utcoffset() is not None else value).isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"no cache key for a {type(value).__name__}")


class Cache:
    """Whole GraphQL responses, and root resolvers' results, under the current generation."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = settings.cache_ttl
        self.enabled = self.ttl > 0
        self.clock = clock
        self.retry_after = settings.cache_retry_seconds
        self.closed_until = 0.0
        self.url = settings.redis_url
        self.probe: asyncio.Task[None] | None = None
        self.failures = 0
        self.problem: str | None = None
        self.namespace = settings.cache_namespace
        self.scope = scope_of(settings) if self.enabled else ""
        self.timeout = settings.cache_timeout
        self.memory = MemoryCache(settings.cache_memory_mb << 20, clock)
        self.generation_key = data_generation.key(settings)
        self.channel = data_generation.channel(settings)
        self.watch = GenerationWatch(settings.redis_url, self.channel)
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
        # One slow answer on a busy machine is a miss; a few in a row mean Redis is in trouble,
        # or that this host is too busy to read its answers in time.
        self.failures += 1
        self.problem = repr(exc)
        if self.failures < FAILURES_BEFORE_PAUSE or self.skipping() or self.probe is not None:
            return
        if isinstance(exc, TimeoutError | redis.TimeoutError):
            self.probe = asyncio.get_running_loop().create_task(self._probe(exc))
            return
        self._pause(exc)

    async def _probe(self, exc: BaseException) -> None:
        """Ask Redis once more, with a longer bound: a late answer means a busy host."""
        client = redis.asyncio.Redis.from_url(
            self.url, socket_timeout=PROBE_TIMEOUT, socket_connect_timeout=PROBE_TIMEOUT
        )
        try:
            await asyncio.wait_for(client.ping(), PROBE_TIMEOUT)
        except Exception as probe_exc:  # silent or gone: skip it for a while
            self._pause(probe_exc)
        else:
            self.failures = 0
            log.info("cache answers slowly (%r), but answers: still in use", exc)
        finally:
            self.probe = None
            await client.aclose()

    def _pause(self, exc: BaseException) -> None:
        log.warning(
            "cache unavailable, reads go to the database for %.0f s: %r", self.retry_after, exc
        )
        self.problem = repr(exc)
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
        known = self.watch.current()
        if known is not None:
            return known
        started = self.watch.started()
        try:
            value = await asyncio.wait_for(
                self.backend.client.eval(
                    data_generation.CURRENT,
                    1,
                    self.generation_key,
                    data_generation.random_start(),
                    self.channel,
                ),
                self.timeout,
            )
        except Exception as exc:  # unknown, so no key is safe: a stale entry may match
            self._fail(exc)
            return None
        self.failures = 0
        self.watch.read(int(value), started)
        return int(value)

    def key(self, generation: int, kind: str, parts: Any) -> str:
        """The key of an entry of `kind` (a response, a resolver's result) for `parts`."""
        digest = hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()
        return f"{kind}:{self.scope}:{generation}:{digest}"

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

        The first miss takes a lock in Redis and computes; the others, in every process, wait
        for its answer (for LOCK_LEASE at most). `compute` returns the body to cache (None: not
        cacheable) and its result; it runs once whatever Redis does, and its exceptions propagate.
        """
        lock, token = f"{self.namespace}:{key}-lock", secrets.token_hex(16)
        deadline = time.monotonic() + LOCK_LEASE
        while True:
            acquired = await self._call(self._lock(lock, token))
            if acquired is None or time.monotonic() >= deadline:
                return None, (await compute())[1]  # Redis failed, or the holder is too slow
            if acquired:
                break
            await asyncio.sleep(LOCK_POLL)
            cached = await self.get(key)
            if cached is not None:
                return cached, None
        try:
            cached = await self.get(key)
            if cached is not None:
                return cached, None
            body, result = await compute()
            if body is not None:
                await self.set(key, body)
            return None, result
        finally:
            await self._call(
                asyncio.wait_for(self.backend.client.eval(_RELEASE, 1, lock, token), self.timeout)
            )

    async def _lock(self, name: str, token: str) -> bool:
        taken = self.backend.client.set(name, token, nx=True, px=int(LOCK_LEASE * 1000))
        return bool(await asyncio.wait_for(taken, self.timeout))

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
        self.watch.close()
        if self.probe is not None:
            self.probe.cancel()
        await self._call(self.backend.client.aclose())
