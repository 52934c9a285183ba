"""The data generation: a number in Redis that every committed write to trends bumps.

Caches key their entries on it (see cache/store.py), so the next read after a write misses in
every process. Database bumps it after each commit that wrote to the trend table (core/db.py):
no write path calls it itself. Each change is published, for the processes that keep the
generation they read until then (cache/watch.py).
"""

import logging
import secrets

import redis

from trends_gql.core.connections import shared_client
from trends_gql.core.settings import Settings

log = logging.getLogger(__name__)

NAME = "generation"  # stored as "<cache namespace>:generation" (aiocache's key for NAME)

# A generation key that is missing (Redis restarted empty, failed over, evicted it) starts again
# from a random number in a range of 2**62, never from 0: a number issued before the loss, whose
# entries may still be in a server's memory, is practically never issued again.
_START = (1 << 40, 1 << 62)
# Both return the generation as a string: Lua numbers are doubles and would round it.
# Each change is published on the generation's channel (ARGV[2]): processes that watch it keep
# the generation they read until then (cache/watch.py).
CURRENT = """
local value = redis.call('GET', KEYS[1])
if value then return value end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[1])
return ARGV[1]
"""
_BUMP = """
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[1]) end
local value = tostring(redis.call('INCR', KEYS[1]))
redis.call('PUBLISH', ARGV[2], value)
return value
"""


def random_start() -> str:
    """Where a lost generation starts again."""
    low, high = _START
    return str(low + secrets.randbelow(high - low))


def key(settings: Settings) -> str:
    """The Redis key of the settings' generation."""
    return f"{settings.cache_namespace}:{NAME}"


def channel(settings: Settings) -> str:
    """The Redis channel on which each change of the settings' generation is published."""
    return f"{settings.pubsub_namespace}:{key(settings)}"


def bump(settings: Settings) -> bool:
    """Bump the generation after a committed write; False (logged) when Redis is unreachable."""
    if settings.cache_ttl <= 0:
        return True
    client = shared_client(settings.redis_url, timeout=1)
    try:
        client.eval(_BUMP, 1, key(settings), random_start(), channel(settings))
        # Answered only after Redis has written the message of the bump to its subscribers'
        # sockets (in an earlier turn of its loop): the write's answer reaches its client after.
        client.ping()
        return True
    except redis.RedisError as exc:
        log.error(
            "cache not invalidated after a write (Redis: %s): stale for up to %d s",
            exc,
            settings.cache_ttl,
        )
        return False
