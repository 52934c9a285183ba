"""The in-process copy of cache entries: budget, recency and expiry."""

from conftest import FakeClock

from trends_gql.cache.memory import MemoryCache


def test_entries_expire_at_their_ttl() -> None:
    clock = FakeClock()
    memory = MemoryCache(1000, clock)
    memory.put("a", b"body", ttl=10)
    clock.advance(9.9)
    assert memory.get("a") == b"body"
    clock.advance(0.1)
    assert memory.get("a") is None
    assert memory.size == 0


def test_the_least_recently_used_go_first_when_over_budget() -> None:
    memory = MemoryCache(800, FakeClock())
    for key in "abcdefgh":
        memory.put(key, b"x" * 100, ttl=60)
    assert memory.get("a") == b"x" * 100  # now the most recently used
    memory.put("i", b"y" * 100, ttl=60)
    assert memory.get("b") is None
    assert memory.get("a") is not None
    assert memory.get("i") is not None
    assert memory.size == 800


def test_big_bodies_and_no_budget_keep_nothing() -> None:
    memory = MemoryCache(800, FakeClock())
    memory.put("big", b"x" * 101, ttl=60)  # over an eighth of the budget
    memory.put("gone", b"x", ttl=0)
    assert memory.get("big") is None
    assert memory.get("gone") is None
    off = MemoryCache(0, FakeClock())
    off.put("a", b"x", ttl=60)
    assert off.get("a") is None
    assert off.size == 0


def test_replacing_an_entry_counts_its_size_once() -> None:
    memory = MemoryCache(800, FakeClock())
    memory.put("a", b"x" * 50, ttl=60)
    memory.put("a", b"y" * 70, ttl=60)
    assert (memory.get("a"), memory.size) == (b"y" * 70, 70)
