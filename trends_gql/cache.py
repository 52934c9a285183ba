"""Redis-backed response cache (aiocache): generation-keyed, stampede-safe, never in the way.

Every key holds the current generation, a number each committed write bumps, so the next read
after a write misses in every process. Redis slow or down only turns hits into misses: each
operation has a short timeout, and after a failure the cache is skipped for a while.
"""

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from functools import cached_property
from typing import Any, TypeVar

import orjson
import redis
import redis.asyncio
from aiocache import RedisCache
from aiocache.lock import RedLock
from aiocache.serializers import BaseSerializer
from graphql import FieldNode, GraphQLError, OperationType, Visitor, get_operation_ast, parse, visit
from starlette.requests import Request
from starlette.responses import Response
from strawberry.types.unset import UNSET

from trends_gql.auth import current_user
from trends_gql.db import Database
from trends_gql.settings import Settings

log = logging.getLogger(__name__)

GENERATION = "generation"  # aiocache stores it as "<namespace>:generation"
CACHE_HEADER = "X-Trends-Cache"  # hit, miss, or bypass (the cache is off or unreachable)
T = TypeVar("T")


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
        if not self.skipping():
            log.warning(
                "cache unavailable, reads go to the database for %.0f s: %r", self.retry_after, exc
            )
        self.problem = repr(exc)
        self.closed_until = self.clock() + self.retry_after

    async def _call(self, operation: Awaitable[T]) -> T | None:
        try:
            return await operation
        except Exception as exc:  # a timeout, a refused connection, a Redis error: all a miss
            self._fail(exc)
            return None

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


class _FieldNames(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        self.names.add(node.name.value)


# Fields whose answer depends on who asks beyond the role: never in a shared response.
PERSONAL_FIELDS = frozenset({"me"})


def cacheable(query: str, operation_name: str | None) -> bool:
    """Whether a document is a read-only operation whose answer is the same for a whole role."""
    try:
        document = parse(query)
    except GraphQLError:
        return False
    operation = get_operation_ast(document, operation_name)
    if operation is None or operation.operation is not OperationType.QUERY:
        return False
    fields = _FieldNames()
    visit(document, fields)
    return not fields.names & PERSONAL_FIELDS


class CachedResponses:
    """Mixin for the Strawberry view: answer repeated read-only operations from the cache.

    Anonymous callers and signed-in non-staff share responses. Staff are never served from it,
    nor is what they get stored: their fields (import and export runs) change as jobs run.
    """

    cache: ResponseCache
    db: Database
    settings: Settings
    schema: Any

    @cached_property
    def variant(self) -> str:
        """What else shapes an answer: the schema, and settings that limit or hide parts of it."""
        s = self.settings
        shape = (
            str(self.schema),
            s.introspection_enabled,
            s.max_query_depth,
            s.max_query_tokens,
            s.max_query_aliases,
            s.max_page_size,
        )
        return hashlib.sha256(repr(shape).encode()).hexdigest()[:16]

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        run = super().run  # type: ignore[misc]
        parts = await _request_parts(request) if self.cache.enabled else None
        if parts is None:
            return await run(request, context, root_value)
        user = await current_user(request, self.db)
        if user is not None and user.is_staff:
            return _mark(await run(request, context, root_value), "bypass")
        key = await self.cache.key((self.variant, parts), "public")
        if key is None:
            return _mark(await run(request, context, root_value), "bypass")
        cached = await self.cache.get(key)
        if cached is None:

            async def compute() -> tuple[bytes | None, Response]:
                response = await run(request, context, root_value)
                ok = response.status_code == 200 and b'"errors"' not in response.body
                return (response.body if ok and cacheable(parts[0], parts[2]) else None), response

            cached, response = await self.cache.get_or_compute(key, compute)
            if cached is None:
                return _mark(response, "miss")
        return _mark(Response(cached, media_type="application/json"), "hit")


def _mark(response: Response, outcome: str) -> Response:
    response.headers[CACHE_HEADER] = outcome
    return response


async def _request_parts(request: Any) -> tuple[str, Any, str | None] | None:
    """(query, variables, operation name) of a single GraphQL request; None when not one."""
    if not isinstance(request, Request):
        return None
    if request.method == "GET":
        params = request.query_params
        if "query" not in params:
            return None
        return params["query"], params.get("variables"), params.get("operationName")
    if request.method != "POST":
        return None
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        return None
    try:
        data = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("query"), str):
        return None  # batches and malformed bodies go the usual way
    return data["query"], data.get("variables"), data.get("operationName")
