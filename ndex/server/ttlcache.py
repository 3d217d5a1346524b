"""A small thread-safe cache whose entries expire: it saves database round trips on hot paths
(token -> identity, names -> channel) while bounding how stale another process's change can look."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class TTLCache(Generic[V]):
    def __init__(self, seconds: float, max_entries: int = 4096, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self.clock = clock
        self.lock = threading.Lock()
        self.entries: dict[Hashable, tuple[float, V]] = {}

    def get(self, key: Hashable, load: Callable[[], V]) -> V:
        """The cached value of `key`, or `load()` (cached unless the cache is disabled)."""
        if self.seconds <= 0:
            return load()
        now = self.clock()
        with self.lock:
            hit = self.entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = load()
        with self.lock:
            if len(self.entries) >= self.max_entries:
                self.entries.clear()
            self.entries[key] = (now + self.seconds, value)
        return value

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()
