"""The sliding-window limiter on real Redis: request rates with an in-process fallback, and
login attempts, on a Redis that stalls, stops and restarts for real."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis
from conftest import TEST_REDIS_URL, FakeClock
from private_redis import PrivateRedis, private_redis
from redis.asyncio.connection import parse_url

from trends_gql.core.ratelimit import (
    CHECK_SECONDS,
    IN_FLIGHT_RETRY,
    Attempt,
    Decision,
    RateLimiter,
)

pytestmark = pytest.mark.anyio

NOWHERE = "redis://127.0.0.1:1/0"  # nothing listens on port 1
DEGRADED = "rate limiting degraded"


@pytest.fixture
async def limiter(clock: FakeClock, rate_namespace: str) -> AsyncIterator[RateLimiter]:
    rl = RateLimiter(TEST_REDIS_URL, namespace=rate_namespace, clock=clock)
    yield rl
    await rl.aclose()


def degraded_warnings(caplog: pytest.LogCaptureFixture) -> int:
    return sum(DEGRADED in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


async def test_hits_are_allowed_up_to_the_limit_then_refused(
    limiter: RateLimiter, clock: FakeClock
) -> None:
    first = await limiter.hit("k", 3, 60)
    assert first == Decision(True, 0.0, 1, False)
    assert [(await limiter.hit("k", 3, 60)).count for _ in range(2)] == [2, 3]
    refused = await limiter.hit("k", 3, 60)
    assert refused == Decision(False, 60.0, 3, False)


async def test_retry_after_is_the_time_until_the_oldest_hit_leaves_the_window(
    limiter: RateLimiter, clock: FakeClock
) -> None:
    for _ in range(3):
        assert (await limiter.hit("k", 3, 60)).allowed
        clock.advance(10)
    refused = await limiter.hit("k", 3, 60)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(30)
    clock.advance(29.5)
    assert (await limiter.hit("k", 3, 60)).retry_after == pytest.approx(0.5)


async def test_the_window_slides_with_the_clock(limiter: RateLimiter, clock: FakeClock) -> None:
    for _ in range(2):
        await limiter.hit("k", 2, 60)
    clock.advance(59.999)
    assert not (await limiter.hit("k", 2, 60)).allowed
    clock.advance(0.001)
    again = await limiter.hit("k", 2, 60)
    assert again.allowed
    assert again.count == 1
    assert await limiter.count("k", 60) == 1


async def test_keys_are_independent_and_live_under_the_namespace_with_an_expiry(
    limiter: RateLimiter, rate_namespace: str
) -> None:
    await limiter.hit("a", 1, 60)
    assert not (await limiter.hit("a", 1, 60)).allowed
    assert (await limiter.hit("b", 1, 60)).allowed
    client = aioredis.Redis.from_url(TEST_REDIS_URL)
    try:
        keys = sorted(await client.keys(f"{rate_namespace}:*"))
        assert keys == [f"{rate_namespace}:a".encode(), f"{rate_namespace}:b".encode()]
        assert 0 < await client.pttl(keys[0]) <= 60_000
    finally:
        await client.aclose()


# What the concurrency tests are about is Redis's atomicity, not its timeout: on a busy machine
# thirty connections opened at once may take longer than the limiter's 0.25 s, and a limiter that
# gives up on Redis rightly falls back to counting in its own process.
BUSY_MACHINE_TIMEOUT = 10.0


async def test_concurrent_hits_from_two_processes_never_exceed_the_limit(
    clock: FakeClock, rate_namespace: str
) -> None:
    one, other = (
        RateLimiter(
            TEST_REDIS_URL, namespace=rate_namespace, clock=clock, timeout=BUSY_MACHINE_TIMEOUT
        )
        for _ in range(2)
    )
    try:
        decisions = await asyncio.gather(
            *(rl.hit("k", 5, 60) for _ in range(15) for rl in (one, other))
        )
    finally:
        await one.aclose()
        await other.aclose()
    assert not any(d.degraded for d in decisions)
    assert sum(d.allowed for d in decisions) == 5
    assert sorted(d.count for d in decisions if d.allowed) == [1, 2, 3, 4, 5]


async def test_without_redis_the_process_still_limits_and_warns_once(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = RateLimiter(NOWHERE, clock=clock)
    try:
        with caplog.at_level(logging.WARNING, logger="trends_gql.core.ratelimit"):
            decisions = [await limiter.hit("k", 2, 60) for _ in range(3)]
            clock.advance(10)  # beyond retry_redis_after: Redis is tried again, and fails again
            late = await limiter.hit("k", 2, 60)
            assert await limiter.count("k", 60) == 2
    finally:
        await limiter.aclose()
    assert [d.allowed for d in decisions] == [True, True, False]
    assert all(d.degraded for d in [*decisions, late])
    assert decisions[2].retry_after == pytest.approx(60)
    assert late.retry_after == pytest.approx(50)
    assert degraded_warnings(caplog) == 1


class RedisProxy:
    """A TCP forwarder to the test Redis that a test can take down and bring back."""

    def __init__(self) -> None:
        url = parse_url(TEST_REDIS_URL)
        self.target = (url.get("host", "127.0.0.1"), url.get("port", 6379))
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._connect, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        self.writers.clear()
        await self.server.wait_closed()

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers += [writer, up_writer]
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


async def test_after_an_outage_redis_is_tried_again_only_after_the_pause(
    clock: FakeClock, rate_namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = RedisProxy()
    await proxy.start()
    db = TEST_REDIS_URL.rsplit("/", 1)[1]
    limiter = RateLimiter(
        f"redis://127.0.0.1:{proxy.port}/{db}", namespace=rate_namespace, clock=clock
    )
    try:
        with caplog.at_level(logging.INFO, logger="trends_gql.core.ratelimit"):
            assert not (await limiter.hit("k", 10, 60)).degraded
            await proxy.stop()
            assert (await limiter.hit("k", 10, 60)).degraded
            await proxy.start()
            clock.advance(4.9)
            assert (await limiter.hit("k", 10, 60)).degraded
            clock.advance(0.1)
            back = await limiter.hit("k", 10, 60)
            assert not back.degraded
            assert back.count == 2  # the hits of the outage stayed in the process
            assert "rate limiting restored" in caplog.text
            await proxy.stop()
            assert (await limiter.hit("k", 10, 60)).degraded
    finally:
        await limiter.aclose()
    assert degraded_warnings(caplog) == 2  # one per outage


async def test_limit_and_window_must_be_positive(limiter: RateLimiter) -> None:
    with pytest.raises(ValueError, match="positive"):
        await limiter.hit("k", 0, 60)


# Login attempts: taken before the password is checked, settled after, refused without Redis.


async def test_attempts_count_while_checked_and_a_success_is_taken_back(
    limiter: RateLimiter,
) -> None:
    first, second = [await limiter.reserve({"e": 2}, 60) for _ in range(2)]
    assert first.allowed
    assert second.allowed
    assert first.keys == ("e",)
    busy = await limiter.reserve({"e": 2}, 60, wait=0)
    assert busy == Attempt(False, IN_FLIGHT_RETRY, in_flight=True)
    await limiter.settle(first, failed=False)
    third = await limiter.reserve({"e": 2}, 60)
    assert third.allowed
    await limiter.settle(second, failed=True)
    await limiter.settle(third, failed=True)
    assert await limiter.reserve({"e": 2}, 60, wait=0) == Attempt(False, 60.0)


async def test_an_attempt_refused_by_attempts_in_flight_waits_for_them_to_settle(
    limiter: RateLimiter,
) -> None:
    first = await limiter.reserve({"e": 1}, 60)
    waiting = asyncio.create_task(limiter.reserve({"e": 1}, 60, wait=5))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    await limiter.settle(first, failed=False)
    second = await waiting
    assert second.allowed
    waiting = asyncio.create_task(limiter.reserve({"e": 1}, 60, wait=5))
    await asyncio.sleep(0.1)
    await limiter.settle(second, failed=True)
    assert await waiting == Attempt(False, 60.0)


async def test_waiting_for_attempts_in_flight_is_bounded(limiter: RateLimiter) -> None:
    assert (await limiter.reserve({"e": 1}, 60)).allowed
    started = time.monotonic()
    refused = await limiter.reserve({"e": 1}, 60, wait=0.2)
    # Unbounded, it would wait WAIT_SECONDS (10 s); the margin is for a busy machine.
    assert 0.2 <= time.monotonic() - started < 3
    assert refused.in_flight
    assert not refused.allowed


async def test_every_limit_takes_the_attempt_or_none_does(
    limiter: RateLimiter, rate_namespace: str
) -> None:
    await limiter.settle(await limiter.reserve({"ann": 5, "client": 1}, 60), failed=True)
    assert not (await limiter.reserve({"bob": 5, "client": 1}, 60, wait=0)).allowed
    client = aioredis.Redis.from_url(TEST_REDIS_URL)
    try:
        assert await client.zcard(f"{rate_namespace}:ann") == 1
        assert await client.zcard(f"{rate_namespace}:bob") == 0
    finally:
        await client.aclose()
    assert (await limiter.reserve({"bob": 5}, 60)).allowed


async def test_concurrent_attempts_from_two_processes_never_exceed_the_limit(
    clock: FakeClock, rate_namespace: str
) -> None:
    limiter, other = (
        RateLimiter(
            TEST_REDIS_URL, namespace=rate_namespace, clock=clock, timeout=BUSY_MACHINE_TIMEOUT
        )
        for _ in range(2)
    )
    try:
        attempts = await asyncio.gather(
            *(rl.reserve({"e": 5}, 60, wait=0) for _ in range(15) for rl in (limiter, other))
        )
        assert not any(a.unavailable for a in attempts)
        limiters = [limiter, other] * 15
        allowed = [(rl, a) for rl, a in zip(limiters, attempts, strict=True) if a.allowed]
        assert len(allowed) == 5
        for rl, attempt in allowed:
            await rl.settle(attempt, failed=True)
        assert not (await other.reserve({"e": 5}, 60, wait=0)).in_flight
    finally:
        await limiter.aclose()
        await other.aclose()


async def test_an_attempt_never_settled_counts_as_failed_after_the_check_time(
    limiter: RateLimiter, clock: FakeClock, rate_namespace: str
) -> None:
    other = RateLimiter(TEST_REDIS_URL, namespace=rate_namespace, clock=clock)
    try:
        assert (await limiter.reserve({"e": 1}, 600)).allowed  # its process dies: never settled
        assert (await other.reserve({"e": 1}, 600, wait=0)).in_flight
        clock.advance(CHECK_SECONDS)
        assert await other.reserve({"e": 1}, 600, wait=0) == Attempt(False, 600 - CHECK_SECONDS)
        assert await limiter.reserve({"e": 1}, 600, wait=0) == Attempt(False, 600 - CHECK_SECONDS)
    finally:
        await other.aclose()


async def test_without_redis_every_attempt_is_refused(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = RateLimiter(NOWHERE, clock=clock)
    try:
        with caplog.at_level(logging.WARNING, logger="trends_gql.core.ratelimit"):
            attempts = [await limiter.reserve({f"e{i}": 5}, 60) for i in range(3)]
    finally:
        await limiter.aclose()
    assert attempts == [Attempt(False, 5.0, unavailable=True)] * 3
    assert degraded_warnings(caplog) == 1


@pytest.fixture
def server() -> Iterator[PrivateRedis]:
    with private_redis() as redis_server:
        yield redis_server


async def fail(limiter: RateLimiter, n: int, limits: dict[str, int]) -> None:
    """`n` attempts that are checked and fail."""
    for _ in range(n):
        attempt = await limiter.reserve(limits, 60, wait=0)
        assert attempt.allowed
        await limiter.settle(attempt, failed=True)


async def test_attempts_refused_while_redis_stalls_are_not_counted_once_it_answers(
    clock: FakeClock, server: PrivateRedis
) -> None:
    limiter = RateLimiter(server.url, clock=clock)
    limits = {"e": 5, "client": 20}
    try:
        await fail(limiter, 2, limits)
        with server.stalled():
            stalled = await asyncio.gather(*(limiter.reserve(limits, 60) for _ in range(4)))
        assert all(a.unavailable for a in stalled)
        await asyncio.sleep(0.2)  # Redis runs what it received while stalled: it may count them
        await fail(limiter, 3, limits)
        assert await limiter.reserve(limits, 60, wait=0) == Attempt(False, 60.0)
    finally:
        await limiter.aclose()


async def test_a_redis_restarted_empty_does_not_forget_this_processs_attempts(
    clock: FakeClock, server: PrivateRedis
) -> None:
    limiter = RateLimiter(server.url, clock=clock)
    try:
        await fail(limiter, 3, {"e": 5})
        clock.advance(10)
        server.stop()
        assert (await limiter.reserve({"e": 5}, 60)).unavailable
        server.start()
        await fail(limiter, 2, {"e": 5})
        assert await limiter.reserve({"e": 5}, 60, wait=0) == Attempt(False, 50.0)
    finally:
        await limiter.aclose()


async def test_attempt_limits_and_window_must_be_positive(limiter: RateLimiter) -> None:
    with pytest.raises(ValueError, match="positive"):
        await limiter.reserve({"e": 0}, 60)
    with pytest.raises(ValueError, match="positive"):
        await limiter.reserve({"e": 1}, 0)
