"""The one rate limiter of the public surfaces (form submissions per client address, chat
messages and uploads per visitor): a moving window per key.

`rate_limiter(redis_url)` chooses the backend: without Redis the count is kept in this
process (`RateLimiter`); with Redis every web process counts in the same window
(`RedisRateLimiter`, the `limits` package's moving window over its Redis storage), so a
client spread over several processes by a load balancer gets the configured limit, not
one per process. If Redis fails, the request is allowed and a warning logged: the limit
protects against floods, and an outage of Redis must not turn every visitor away.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from typing import Any, Protocol

__all__ = ["Limiter", "RateLimiter", "RedisRateLimiter", "rate_limiter"]

log = logging.getLogger("omnidesk.ratelimit")


class Limiter(Protocol):
    async def hit(self, key: Hashable, limit: int, window: float) -> float | None:
        """Count one event; None when allowed, else seconds until one more is allowed."""
        ...

    async def close(self) -> None: ...


class RateLimiter:
    """In this process: a window per key; the least recently used keys beyond `max_keys`
    are dropped."""

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        self._clock = clock
        self._hits: OrderedDict[Hashable, deque[float]] = OrderedDict()
        self._max_keys = max_keys

    async def hit(self, key: Hashable, limit: int, window: float) -> float | None:
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

    async def close(self) -> None:
        return None


class RedisRateLimiter:
    """Every process counts in one moving window per key, kept in Redis."""

    def __init__(self, url: str, *, prefix: str = "omnidesk:rate") -> None:
        try:
            import redis.asyncio as aioredis
            from limits.aio.storage import RedisStorage
            from limits.aio.strategies import MovingWindowRateLimiter
        except ImportError as exc:  # pragma: no cover - both are dependencies
            raise RuntimeError("a shared rate limit needs `pip install limits redis`") from exc
        self._pool = aioredis.ConnectionPool.from_url(url)
        storage = RedisStorage(
            "async+" + url,
            implementation="redispy",
            key_prefix=prefix,
            connection_pool=self._pool,  # type: ignore[arg-type]  # ours, so close() frees it
        )
        self._strategy = MovingWindowRateLimiter(storage)

    async def hit(self, key: Hashable, limit: int, window: float) -> float | None:
        from limits import RateLimitItemPerSecond

        item = RateLimitItemPerSecond(limit, max(1, math.ceil(window)))
        names = _names(key)
        try:
            if await self._strategy.hit(item, *names):
                return None
            stats = await self._strategy.get_window_stats(item, *names)
        except Exception as exc:  # redis-py's errors, whatever the transport said
            log.warning("rate limit not counted (Redis: %s: %s)", type(exc).__name__, exc)
            return None
        return max(stats.reset_time - time.time(), 0.001)

    async def close(self) -> None:
        await self._pool.aclose()


def _names(key: Hashable) -> tuple[str, ...]:
    parts: Any = key if isinstance(key, tuple) else (key,)
    return tuple(str(part) for part in parts)


def rate_limiter(redis_url: str | None, *, prefix: str = "omnidesk:rate") -> Limiter:
    """The limiter for this deployment: shared through Redis when it is configured."""
    if redis_url and not redis_url.startswith("memory://"):
        return RedisRateLimiter(redis_url, prefix=prefix)
    return RateLimiter()
