"""Sliding-window limits in Redis: request rates, and login attempts that never count alone."""

import asyncio
import bisect
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

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

# Login attempts, under several limits at once: all of them take the attempt or none does. Per
# limit, two KEYS: its attempts (score: clock time, member: token) and those of them still being
# checked (score: the time after which an attempt never settled counts as failed). ARGV: now,
# cutoff (now - window), token, TTL in ms, that time, then per limit: the limit, and tokens of
# attempts this process was refused without an answer (",".join), which are removed: a call that
# timed out may still have run. Returns {1}, or {0, then per limit: count, in flight, the time of
# the attempt whose expiry lets a new one in (or '')}.
_RESERVE = """
local now, cutoff, token, ttl, deadline = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local n = #KEYS / 2
local reply, allowed = {0}, true
for i = 1, n do
  local hits, checking = KEYS[2 * i - 1], KEYS[2 * i]
  local limit = tonumber(ARGV[4 + 2 * i])
  for stale in string.gmatch(ARGV[5 + 2 * i], '[^,]+') do
    redis.call('ZREM', hits, stale)
    redis.call('ZREM', checking, stale)
  end
  redis.call('ZREMRANGEBYSCORE', hits, '-inf', cutoff)
  redis.call('ZREMRANGEBYSCORE', checking, '-inf', now)
  local count = redis.call('ZCARD', hits)
  local inflight = 0
  for _, member in ipairs(redis.call('ZRANGE', checking, 0, -1)) do
    if redis.call('ZSCORE', hits, member) then
      inflight = inflight + 1
    else
      redis.call('ZREM', checking, member)
    end
  end
  local blocking = ''
  if count >= limit then
    allowed = false
    blocking = redis.call('ZRANGE', hits, count - limit, count - limit, 'WITHSCORES')[2]
  end
  table.insert(reply, count)
  table.insert(reply, inflight)
  table.insert(reply, blocking)
end
if not allowed then
  return reply
end
for i = 1, n do
  redis.call('ZADD', KEYS[2 * i - 1], now, token)
  redis.call('ZADD', KEYS[2 * i], deadline, token)
  redis.call('PEXPIRE', KEYS[2 * i - 1], ttl)
  redis.call('PEXPIRE', KEYS[2 * i], ttl)
end
return {1}
"""

# How long a password check may take before its attempt counts as failed without being settled
# (its process died, say), and how long an attempt waits for those in flight before giving up.
CHECK_SECONDS = 30.0
WAIT_SECONDS = 10.0
# Retry-After of an attempt refused only because others are being checked.
IN_FLIGHT_RETRY = 1.0

# Errors that mean "Redis cannot answer now", as opposed to a bug of ours.
_UNAVAILABLE = (aioredis.RedisError, OSError, asyncio.TimeoutError)


@dataclass(frozen=True)
class Decision:
    """The outcome of one hit."""

    allowed: bool
    retry_after: float
    count: int
    degraded: bool


@dataclass(frozen=True)
class Attempt:
    """The answer to a login attempt: allowed (then settle it), or refused and why."""

    allowed: bool
    retry_after: float = 0.0
    keys: tuple[str, ...] = ()
    token: str = ""
    in_flight: bool = False  # refused only because other attempts are still being checked
    unavailable: bool = False  # refused because Redis does not answer


class _MemoryWindows:
    """The same sliding windows, kept in this process."""

    _SWEEP_EVERY = 1024

    def __init__(self) -> None:
        self._hits: dict[str, list[tuple[float, str]]] = {}
        self._expires: dict[str, float] = {}
        self._since_sweep = 0

    def live(self, key: str, now: float, window: float) -> list[tuple[float, str]]:
        """The hits of `key` within the window, oldest first."""
        hits = self._hits.get(key, [])
        del hits[: bisect.bisect_right(hits, (now - window, "\uffff"))]
        return hits

    def add(self, key: str, now: float, window: float, token: str) -> None:
        """Record a hit, whatever the count."""
        self._sweep(now)
        hits = self.live(key, now, window)
        bisect.insort(hits, (now, token))
        self._hits[key] = hits
        self._expires[key] = max(self._expires.get(key, now), now + window)

    def hit(
        self, key: str, limit: int, window: float, now: float, token: str
    ) -> tuple[bool, int, float]:
        """(allowed, count, time of the hit whose expiry lets a new one in or 0)."""
        hits = self.live(key, now, window)
        if len(hits) < limit:
            self.add(key, now, window, token)
            return True, len(hits) + 1, 0.0
        return False, len(hits), hits[len(hits) - limit][0]

    def remove(self, key: str, token: str) -> None:
        """Forget one hit."""
        if key in self._hits:
            self._hits[key] = [h for h in self._hits[key] if h[1] != token]

    def count(self, key: str, window: float, now: float) -> int:
        return len(self.live(key, now, window))

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
        self._reserve_script = self._redis.register_script(_RESERVE)
        self._memory = _MemoryWindows()
        self._down_until: float | None = None
        # Login attempts this process let through (and which are still being checked): a floor
        # under the counts of Redis, which a Redis restarted without its data would have lost.
        self._checks = _MemoryWindows()
        self._checking: set[str] = set()
        self._settled = asyncio.Event()  # set, and replaced, whenever an attempt here settles
        # Per key, attempts refused because Redis did not answer (token: clock time).
        self._unanswered: dict[str, dict[str, float]] = {}

    def _key(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    async def _redis_call(self, call: Callable[[], Awaitable[T]], pause: bool = True) -> T | None:
        """The answer of Redis, or None while it is unavailable (logged once per outage).

        After a failure, calls with `pause` do not try Redis for `retry_redis_after` seconds.
        """
        if pause and self._down_until is not None and self.clock() < self._down_until:
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
        args: list[str | int] = [repr(float(now)), repr(float(now - window)), limit, token, ttl_ms]
        reply = await self._redis_call(lambda: self._hit_script(keys=[self._key(key)], args=args))
        degraded = reply is None
        if reply is None:
            allowed, count, blocking = self._memory.hit(key, limit, window, now, token)
        else:
            allowed, count, blocking = bool(reply[0]), int(reply[1]), float(reply[2] or 0)
        if allowed:
            return Decision(True, 0.0, count, degraded)
        return Decision(False, max(blocking + window - now, 0.0), count, degraded)

    async def reserve(
        self, limits: Mapping[str, int], window: float, wait: float = WAIT_SECONDS
    ) -> Attempt:
        """Take a login attempt under every limit (key: limit), or under none; settle it after.

        An attempt counts from the moment it is taken, so concurrent ones cannot exceed a limit
        together; one refused only because others are still being checked waits for them, up to
        `wait` seconds. Without an answer from Redis it is refused: counts that cannot be shared
        must not let more attempts through.
        """
        if window <= 0 or any(limit < 1 for limit in limits.values()):
            raise ValueError("limit and window must be positive")
        give_up = time.monotonic() + wait
        pause = 0.005
        while True:
            settled = self._settled
            attempt = await self._try_reserve(limits, window)
            if not attempt.in_flight or time.monotonic() >= give_up:
                return attempt
            # Woken when an attempt of this process settles; other processes' are polled for.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(settled.wait(), pause)
            pause = min(2 * pause, 0.05)

    async def settle(self, attempt: Attempt, *, failed: bool) -> None:
        """End a checked attempt: a failure counts until it leaves the window, a success not."""
        self._checking.discard(attempt.token)
        if not failed:
            for key in attempt.keys:
                self._checks.remove(key, attempt.token)
        self._settled.set()
        self._settled = asyncio.Event()

        async def call() -> list[Any]:
            pipe = self._redis.pipeline()
            for key in attempt.keys:
                pipe.zrem(self._key(f"checking:{key}"), attempt.token)
                if not failed:
                    pipe.zrem(self._key(key), attempt.token)
            return await pipe.execute()

        # Unanswered, the attempt stays in Redis as a failure: it errs on refusing.
        await self._redis_call(call, pause=False)

    async def _try_reserve(self, limits: Mapping[str, int], window: float) -> Attempt:
        now = self.clock()
        # This process's own attempts first: no answer of Redis can lower those counts.
        mine = [self._own_attempts(key, limit, now, window) for key, limit in limits.items()]
        refusal = _refusal(limits, mine, now, window)
        if refusal is not None:
            return refusal
        token = uuid.uuid4().hex
        for key in limits:
            self._checks.add(key, now, window, token)
        self._checking.add(token)
        keys = [k for key in limits for k in (self._key(key), self._key(f"checking:{key}"))]
        args: list[Any] = [repr(float(now)), repr(float(now - window)), token]
        args += [math.ceil(window * 1000), repr(float(now + CHECK_SECONDS))]
        unanswered = {key: list(self._unanswered.get(key, ())) for key in limits}
        for key, limit in limits.items():
            args += [limit, ",".join(unanswered[key])]
        reply = await self._redis_call(
            lambda: self._reserve_script(keys=keys, args=args), pause=False
        )
        if reply is not None and reply[0]:
            self._drop_unanswered(unanswered, now, window)
            return Attempt(True, keys=tuple(limits), token=token)
        self._checking.discard(token)
        for key in limits:
            self._checks.remove(key, token)
        if reply is None:
            for key in limits:
                self._unanswered.setdefault(key, {})[token] = now
            self._drop_unanswered({}, now, window)
            return Attempt(False, self.retry_redis_after, unavailable=True)
        self._drop_unanswered(unanswered, now, window)
        per_key = reply[1:]
        counts = [
            (int(per_key[i]), int(per_key[i + 1]), float(per_key[i + 2] or 0))
            for i in range(0, len(per_key), 3)
        ]
        return _refusal(limits, counts, now, window) or Attempt(
            False, IN_FLIGHT_RETRY, in_flight=True
        )

    def _own_attempts(
        self, key: str, limit: int, now: float, window: float
    ) -> tuple[int, int, float]:
        """(count, how many are being checked, time of the one whose expiry lets a new one in)."""
        hits = self._checks.live(key, now, window)
        checking = sum(t in self._checking and at > now - CHECK_SECONDS for at, t in hits)
        return len(hits), checking, hits[len(hits) - limit][0] if len(hits) >= limit else 0.0

    def _drop_unanswered(self, removed: Mapping[str, list[str]], now: float, window: float) -> None:
        """Forget tokens Redis has removed, and those whose attempts left the window anyway."""
        for key in list(self._unanswered):
            tokens = self._unanswered[key]
            for token in removed.get(key, ()):
                tokens.pop(token, None)
            for token in [t for t, at in tokens.items() if at <= now - window]:
                del tokens[token]
            if not tokens:
                del self._unanswered[key]

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


def _refusal(
    limits: Mapping[str, int], counts: list[tuple[int, int, float]], now: float, window: float
) -> Attempt | None:
    """The refusal of an attempt given, per limit, (count, in flight, blocking time); or None."""
    over = [(limit, *c) for limit, c in zip(limits.values(), counts, strict=True) if c[0] >= limit]
    if not over:
        return None
    failed = [blocking + window - now for limit, n, flying, blocking in over if n - flying >= limit]
    if failed:
        return Attempt(False, max(0.0, *failed))
    return Attempt(False, IN_FLIGHT_RETRY, in_flight=True)
