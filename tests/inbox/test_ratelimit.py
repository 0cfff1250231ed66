"""`inbox.web.ratelimit`: one limiter for forms and chat, in this process or shared through
Redis (real Redis: two limiters stand for two web processes)."""

from __future__ import annotations

import pytest

from inbox.web.ratelimit import RateLimiter, RedisRateLimiter, rate_limiter


async def test_in_process_window_per_key() -> None:
    now = [100.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert [await limiter.hit(("f", "1.2.3.4"), 2, 60) for _ in range(2)] == [None, None]
    wait = await limiter.hit(("f", "1.2.3.4"), 2, 60)
    assert wait is not None and 59 < wait <= 60
    assert await limiter.hit(("f", "5.6.7.8"), 2, 60) is None  # another key, its own count
    now[0] += 61
    assert await limiter.hit(("f", "1.2.3.4"), 2, 60) is None


async def test_the_resolver_chooses_by_the_redis_url() -> None:
    assert type(rate_limiter(None)) is RateLimiter
    assert type(rate_limiter("memory://")) is RateLimiter
    shared = rate_limiter("redis://127.0.0.1:6379/0")  # connects on first use only
    assert type(shared) is RedisRateLimiter
    await shared.close()


@pytest.mark.redis
async def test_two_processes_share_one_count_through_redis(redis_url: str) -> None:
    first, second = RedisRateLimiter(redis_url), RedisRateLimiter(redis_url)
    try:
        key = ("contact", "1.2.3.4")
        assert await first.hit(key, 3, 60) is None
        assert await second.hit(key, 3, 60) is None
        assert await first.hit(key, 3, 60) is None
        wait = await second.hit(key, 3, 60)  # the fourth, whichever process counts it
        assert wait is not None and 0 < wait <= 60
        assert await second.hit(("contact", "5.6.7.8"), 3, 60) is None
    finally:
        await first.close()
        await second.close()


async def test_redis_down_lets_the_request_through() -> None:
    limiter = RedisRateLimiter("redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        assert await limiter.hit(("f", "x"), 1, 60) is None
        assert await limiter.hit(("f", "x"), 1, 60) is None
    finally:
        await limiter.close()
