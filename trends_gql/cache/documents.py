"""Documents of automatic persisted queries (APQ), kept by the SHA-256 of their text.

In Redis, so that every web process finds a document a client sent to any of them; recent ones
also in this process's memory, where a document is found without asking Redis (a hash names
one text for good). Redis slow or down only makes documents unknown: the client then sends the
text again, which runs.
"""

import asyncio
import logging
import time
from collections.abc import Callable

import redis.asyncio

from trends_gql.cache.memory import MemoryCache
from trends_gql.core.settings import Settings

log = logging.getLogger(__name__)

MEMORY_BYTES = 8 << 20  # per process; one document may use an eighth (1 MiB, the body limit)
WARN_EVERY = 60.0  # seconds between two warnings that Redis does not answer


class DocumentStore:
    """GraphQL documents by the hex SHA-256 of their text, for PERSISTED_QUERIES_TTL seconds."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.namespace = settings.persisted_queries_namespace
        self.ttl = settings.persisted_queries_ttl
        self.timeout = settings.cache_timeout
        self.clock = clock
        self.memory = MemoryCache(MEMORY_BYTES, clock)
        self.client = redis.asyncio.Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.cache_timeout,
            socket_connect_timeout=settings.cache_timeout,
        )
        self.warned_at: float | None = None

    async def get(self, sha256: str) -> str | None:
        """The document with this hash; None when it is unknown or Redis does not answer."""
        kept = self.memory.get(sha256)
        if kept is not None:
            return kept.decode()
        name = f"{self.namespace}:{sha256}"
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.get(name)
                pipe.expire(name, self.ttl)  # a document in use does not expire
                found, _ = await asyncio.wait_for(pipe.execute(), self.timeout)
        except Exception as exc:  # refused, timed out, a Redis error: all unknown
            self._warn(exc)
            return None
        if found is None:
            return None
        self.memory.put(sha256, found, self.ttl)
        return bytes(found).decode()

    async def put(self, sha256: str, text: str) -> None:
        """Keep a document under its hash (the caller checked that it is the text's)."""
        body = text.encode()
        self.memory.put(sha256, body, self.ttl)
        try:
            stored = self.client.set(f"{self.namespace}:{sha256}", body, ex=self.ttl)
            await asyncio.wait_for(stored, self.timeout)
        except Exception as exc:  # other processes will not find it: their clients resend it
            self._warn(exc)

    def _warn(self, exc: BaseException) -> None:
        now = self.clock()
        if self.warned_at is None or now - self.warned_at >= WARN_EVERY:
            self.warned_at = now
            log.warning("persisted queries unavailable in Redis, clients resend texts: %r", exc)

    async def aclose(self) -> None:
        await self.client.aclose()
