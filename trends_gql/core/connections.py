"""Synchronous Redis clients shared within a process, one per URL and timeout.

The hooks that run after each committed write (core/generation.bump, core/changes.publish) used
to connect for each commit: connecting, the client's set-up and closing cost about six times
the commands they send. A shared client keeps its connections in a pool instead. redis-py's
pools are safe across threads, and reset themselves in a forked child (RQ's work horses), so
one client per process is enough.
"""

from functools import lru_cache

import redis


@lru_cache(maxsize=32)
def shared_client(url: str, timeout: float) -> redis.Redis:
    """The process's client of the Redis at `url`, connecting and answering within `timeout`."""
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
