"""Per-visitor message rate and per-address connection counts, kept in this process."""

from __future__ import annotations

import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Hashable


class RateLimiter:
    """Sliding window per key."""

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        self._clock = clock
        self._hits: OrderedDict[Hashable, deque[float]] = OrderedDict()
        self._max_keys = max_keys

    def hit(self, key: Hashable, limit: int, window: float) -> float | None:
        """Count one event; None when allowed, else seconds until one more is allowed."""
        now = self._clock()
        hits = self._hits.pop(key, None) or deque()
        while hits and hits[0] <= now - window:
            hits.popleft()
        self._hits[key] = hits
        if len(self._hits) > self._max_keys:
            self._hits.popitem(last=False)
        if len(hits) >= limit:
            return max(hits[0] + window - now, 0.001)
        hits.append(now)
        return None


class ConnectionCounter:
    def __init__(self) -> None:
        self._open: Counter[str] = Counter()

    def acquire(self, address: str, cap: int) -> bool:
        if self._open[address] >= cap:
            return False
        self._open[address] += 1
        return True

    def release(self, address: str) -> None:
        self._open[address] -= 1
        if self._open[address] <= 0:
            del self._open[address]

    def count(self, address: str) -> int:
        return self._open[address]
