"""Sliding-window rate limits in Redis, answered in-process while Redis is unavailable."""

import asyncio
import bisect
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

log = logging.getLogger(__name__)

T = TypeVar("T")

# KEYS[1]: the sorted set of a key's hits (score: clock time, member: token). ARGV: now, the
# cutoff (now - window), limit, token, TTL in ms. Times stay strings: Lua would round them to 14
# digits. Returns {1, count, ""} or {0, count, time of the hit whose expiry lets a new one in}.
_HIT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local count = redis.call('ZCARD', KEYS[1])
local limit = tonumber(ARGV[3])
if count < limit then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return {1, count + 1, ''}
end
local blocking = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
return {0, count, blocking[2]}
"""

# Errors that mean "Redis cannot answer now", as opposed to a bug of ours.
_UNAVAILABLE = (aioredis.RedisError, OSError, asyncio.TimeoutError)


@dataclass(frozen=True)
class Decision:
    """The outcome of one hit."""

    allowed: bool
    retry_after: float
    count: int
    token: str | None
    degraded: bool


class _MemoryWindows:
    """The same sliding windows, kept in this process."""

    _SWEEP_EVERY = 1024

    def __init__(self) -> None:
        self._hits: dict[str, list[tuple[float, str]]] = {}
        self._expires: dict[str, float] = {}
        self._since_sweep = 0

    def _live(self, key: str, now: float, window: float) -> list[tuple[float, str]]:
        hits = self._hits.get(key, [])
        del hits[: bisect.bisect_right(hits, (now - window, "\uffff"))]
        return hits

    def hit(
        self, key: str, limit: int, window: float, now: float, token: str
    ) -> tuple[bool, int, float]:
        """(allowed, count, time of the hit whose expiry lets a new one in or 0)."""
        self._sweep(now)
        hits = self._live(key, now, window)
        if len(hits) < limit:
            bisect.insort(hits, (now, token))
            self._hits[key] = hits
            self._expires[key] = max(self._expires.get(key, now), now + window)
            return True, len(hits), 0.0
        return False, len(hits), hits[len(hits) - limit][0]

    def undo(self, key: str, token: str) -> None:
        if key in self._hits:
            self._hits[key] = [h for h in self._hits[key] if h[1] != token]

    def count(self, key: str, window: float, now: float) -> int:
        return len(self._live(key, now, window))

    def _sweep(self, now: float) -> None:
        # Keys of clients that went away would otherwise stay forever.
        self._since_sweep += 1
        if self._since_sweep < self._SWEEP_EVERY:
            return
        self._since_sweep = 0
        for key in [k for k, expires in self._expires.items() if expires <= now]:
            del self._expires[key]
            self._hits.pop(key, None)


class RateLimiter:
    """Sliding-window limits shared by all processes through Redis."""

    def __init__(
        self,
        redis_url: str,
        *,
        namespace: str = "trends:rl",
        clock: Callable[[], float] = time.time,
        timeout: float = 0.25,
        retry_redis_after: float = 5.0,
    ) -> None:
        self.namespace = namespace
        self.clock = clock
        self.retry_redis_after = retry_redis_after
        # No retries: a limiter that waits for Redis would slow every request during an outage.
        self._redis = aioredis.Redis.from_url(
            redis_url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self._hit_script = self._redis.register_script(_HIT)
        self._memory = _MemoryWindows()
        self._down_until: float | None = None

    def _key(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    async def _redis_call(self, call: Callable[[], Awaitable[T]]) -> T | None:
        """The answer of Redis, or None while it is unavailable (logged once per outage)."""
        if self._down_until is not None and self.clock() < self._down_until:
            return None
        try:
            result = await call()
        except _UNAVAILABLE as exc:
            if self._down_until is None:
                log.warning(
                    "rate limiting degraded: limiting per process until Redis answers: %s", exc
                )
            self._down_until = self.clock() + self.retry_redis_after
            return None
        if self._down_until is not None:
            log.info("rate limiting restored: Redis answers again")
            self._down_until = None
        return result

    async def hit(self, key: str, limit: int, window: float) -> Decision:
        """Atomically: drop hits `window` seconds old; record one if fewer than `limit` remain."""
        if limit < 1 or window <= 0:
            raise ValueError("limit and window must be positive")
        now = self.clock()
        token = uuid.uuid4().hex
        ttl_ms = math.ceil(window * 1000)
        args = [repr(float(now)), repr(float(now - window)), limit, token, ttl_ms]
        reply = await self._redis_call(lambda: self._hit_script(keys=[self._key(key)], args=args))
        degraded = reply is None
        if reply is None:
            allowed, count, blocking = self._memory.hit(key, limit, window, now, token)
        else:
            allowed, count, blocking = bool(reply[0]), int(reply[1]), float(reply[2] or 0)
        if allowed:
            return Decision(True, 0.0, count, token, degraded)
        return Decision(False, max(blocking + window - now, 0.0), count, None, degraded)

    async def undo(self, key: str, token: str) -> None:
        """Forget one recorded hit (e.g. a login that turned out to succeed)."""
        self._memory.undo(key, token)
        await self._redis_call(lambda: self._redis.zrem(self._key(key), token))

    async def count(self, key: str, window: float) -> int:
        """Hits of `key` within the last `window` seconds."""
        now = self.clock()
        reply = await self._redis_call(
            lambda: self._redis.zcount(self._key(key), f"({now - window!r}", "+inf")
        )
        return self._memory.count(key, window, now) if reply is None else int(reply)

    async def aclose(self) -> None:
        """Close the connections to Redis."""
        await self._redis.aclose()
