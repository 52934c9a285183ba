"""Changed rows told through Redis pub/sub, so that any web process can relay them live.

After each commit that wrote import runs, the database of the settings publishes their ids
(core/db.py, Database.of): no write path publishes itself. A message says only which row
changed; a follower reads the row again, so that it shows what was committed whatever the
order in which messages of several processes arrive. Pub/sub keeps nothing: a follower hears
only of what is published after Redis confirmed its subscription, so it subscribes first and
reads after (`follow`).
"""

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import redis
import redis.asyncio as aioredis

from trends_gql.core.connections import shared_client
from trends_gql.core.errors import ServiceUnavailable
from trends_gql.core.settings import Settings

log = logging.getLogger(__name__)

# The channel of a write whose rows could not be told (an UPDATE without an id in its WHERE
# clause): every follower of the table reads its row again.
SOME = "some"
WARN_EVERY = 60.0  # seconds between two warnings that Redis does not answer
_warned_at: float | None = None
UNAVAILABLE = "Live updates are unavailable for now (Redis does not answer): read again later."


def channel(settings: Settings, table: str, row: int | str) -> str:
    """The channel of the changes of one row of `table` (or of SOME of its rows)."""
    return f"{settings.pubsub_namespace}:{table}:{row}"


def _warn(message: str, *args: object) -> None:
    # Once in a while: with Redis down, every progress write of an import would log one.
    global _warned_at
    now = time.monotonic()
    if _warned_at is None or now - _warned_at >= WARN_EVERY:
        _warned_at = now
        log.warning(message, *args)


def publish(settings: Settings, table: str, ids: frozenset[int] | None) -> bool:
    """Tell followers that these rows of `table` changed (None: some rows, not known which).

    False when Redis does not answer: the write stands, and followers see it at their next
    read (a warning is logged, at most once a minute).
    """
    rows: list[int | str] = sorted(ids) if ids is not None else [SOME]
    client = shared_client(settings.redis_url, settings.pubsub_timeout)
    try:
        with client.pipeline(transaction=False) as pipe:
            for row in rows:
                pipe.publish(channel(settings, table, row), b"")
            pipe.execute()
        return True
    except redis.RedisError as exc:
        _warn("changes of %s not told to live followers (Redis: %s)", table, exc)
        return False


class Follower:
    """A subscription to the changes of one row: `changed` waits for the next one told."""

    def __init__(self, pubsub: aioredis.client.PubSub) -> None:
        self.pubsub = pubsub

    async def changed(self, seconds: float) -> bool:
        """Whether a change was told within `seconds`; False when none was, or Redis is gone."""
        deadline = anyio.current_time() + seconds
        while (left := deadline - anyio.current_time()) > 0:
            try:
                message = await self.pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=left
                )
            except (redis.RedisError, OSError) as exc:
                _warn("live changes cannot be followed (Redis: %s): reading now and then", exc)
                await anyio.sleep(left)
                return False
            if message is not None:
                return True
        return False


@asynccontextmanager
async def follow(settings: Settings, table: str, row: int) -> AsyncIterator[Follower]:
    """Subscribed to the changes of one row of `table`, as soon as Redis confirmed it.

    SERVICE_UNAVAILABLE when Redis does not answer.
    """
    channels = [channel(settings, table, row), channel(settings, table, SOME)]
    timeout = settings.pubsub_timeout
    client = aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=timeout)
    async with client, client.pubsub() as pubsub:
        try:
            with anyio.fail_after(timeout):
                await pubsub.subscribe(*channels)
                confirmed = 0
                while confirmed < len(channels):  # Redis confirms them before any message
                    message = await pubsub.get_message(timeout=timeout)
                    if message is not None and message["type"] == "subscribe":
                        confirmed += 1
        except (redis.RedisError, OSError, TimeoutError) as exc:
            _warn("live changes cannot be followed (Redis: %s)", exc)
            raise ServiceUnavailable(UNAVAILABLE) from exc
        yield Follower(pubsub)
