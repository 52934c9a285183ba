"""The generation watch: a generation read stays current until Redis publishes a bump."""

import time
from collections.abc import Iterator

import pytest
import redis
from conftest import wait_for, with_settings

from trends_gql.cache.watch import GenerationWatch
from trends_gql.core import generation
from trends_gql.core.settings import Settings


@pytest.fixture
def settings(sqlite_settings: Settings) -> Settings:
    """Settings with a generation and a channel of the test's own."""
    return with_settings(sqlite_settings, cache_namespace=f"watch-{time.monotonic_ns()}")


@pytest.fixture
def watch(settings: Settings) -> Iterator[GenerationWatch]:
    """A watch of the settings' generation, subscribed."""
    watch = GenerationWatch(settings.redis_url, generation.channel(settings), retry_after=0.05)
    wait_for("subscribed", lambda: watch.current() is None and watch.watching)
    yield watch
    watch.close()


def read_now(watch: GenerationWatch, value: int) -> None:
    watch.read(value, watch.started())


def test_a_generation_read_is_current_until_a_bump_is_published(
    watch: GenerationWatch, settings: Settings
) -> None:
    read_now(watch, 7)
    assert watch.current() == 7
    assert watch.current() == 7
    assert generation.bump(settings)  # answered after the message reached the watch's socket
    assert watch.current() is None
    read_now(watch, 8)
    assert watch.current() == 8


def test_a_generation_asked_for_before_a_bump_arrived_is_not_kept(
    watch: GenerationWatch, settings: Settings
) -> None:
    started = watch.started()  # a read of the generation goes out...
    assert generation.bump(settings)  # ...a bump overtakes its answer...
    assert watch.current() is None  # ...another read sees the bump...
    watch.read(7, started)  # ...and the first answer, older, is not kept
    assert watch.current() is None


def test_a_subscription_that_redis_closes_is_opened_again(
    watch: GenerationWatch, settings: Settings
) -> None:
    read_now(watch, 7)
    client = redis.Redis.from_url(settings.redis_url)
    try:
        (mine,) = [c for c in client.client_list() if c["name"] == watch.name.decode()]
        client.client_kill_filter(_id=mine["id"])
    finally:
        client.close()
    wait_for("closed", lambda: watch.current() is None and not watch.watching, 5)
    wait_for("subscribed again", lambda: watch.current() is None and watch.watching)
    read_now(watch, 9)
    assert watch.current() == 9


def test_without_redis_the_watch_knows_no_generation(settings: Settings) -> None:
    watch = GenerationWatch("redis://127.0.0.1:1/0", generation.channel(settings), 0.01)
    try:
        for _ in range(20):
            read_now(watch, 7)
            assert watch.current() is None
            time.sleep(0.01)
        assert not watch.watching
    finally:
        watch.close()


def test_a_redis_url_over_tls_is_not_watched(settings: Settings) -> None:
    watch = GenerationWatch("rediss://127.0.0.1:6379/0", generation.channel(settings))
    read_now(watch, 7)
    assert watch.current() is None
    assert watch.opening is None
