"""A bounded in-process copy of cache entries: a hit costs no transfer of the body from Redis."""

import time
from collections import OrderedDict
from collections.abc import Callable


class MemoryCache:
    """Least recently used entries up to `max_bytes` of bodies, each until its expiry."""

    def __init__(self, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self.clock = clock
        self.entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self.size = 0

    def get(self, key: str) -> bytes | None:
        """The body kept under `key`, or None when there is none or it has expired."""
        entry = self.entries.get(key)
        if entry is None:
            return None
        expires, body = entry
        if self.clock() >= expires:
            self._drop(key)
            return None
        self.entries.move_to_end(key)
        return body

    def put(self, key: str, body: bytes, ttl: float) -> None:
        """Keep `body` for `ttl` seconds, dropping the least recently used beyond the budget."""
        # One entry may use an eighth of the budget, so that a few big ones cannot evict the rest.
        if ttl <= 0 or len(body) > self.max_bytes // 8:
            return
        self._drop(key)
        self.entries[key] = (self.clock() + ttl, body)
        self.size += len(body)
        while self.size > self.max_bytes:
            _, (_, dropped) = self.entries.popitem(last=False)
            self.size -= len(dropped)

    def _drop(self, key: str) -> None:
        entry = self.entries.pop(key, None)
        if entry is not None:
            self.size -= len(entry[1])
