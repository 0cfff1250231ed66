"""The one rate limiter of the HTTP and socket surfaces (form submissions per client
address, chat messages and uploads per visitor): a sliding window per key, in this
process."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable

__all__ = ["RateLimiter"]


class RateLimiter:
    """Sliding window per key; the least recently used keys beyond `max_keys` are dropped."""

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
        self._hits[key] = hits  # most recently used last
        if len(self._hits) > self._max_keys:
            self._hits.popitem(last=False)
        if len(hits) >= limit:
            return max(hits[0] + window - now, 0.001)
        hits.append(now)
        return None
