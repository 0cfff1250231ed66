"""The auto-reply limits held in Redis: two limiters (as two worker processes have) share
one count per contact and one breaker; a message decided by both counts once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from autoreply.limiter import RedisReplyLimiter, ReplyLimiter, answering

pytestmark = pytest.mark.redis


@pytest.fixture
def pair(redis_url):
    limiters = [RedisReplyLimiter(redis_url, 3, 3600, 1000, 300) for _ in range(2)]
    yield limiters
    for limiter in limiters:
        limiter.close()


def test_two_workers_share_the_per_contact_limit(pair):
    now = datetime(2026, 1, 1, tzinfo=UTC)
    allowed = [pair[i % 2].acquire("42", now + timedelta(seconds=i)) is None for i in range(8)]
    assert allowed == [True, True, True, False, False, False, False, False]
    # in-process limiters, one per worker, would have let six through
    local = [ReplyLimiter(3, 3600, 1000, 300) for _ in range(2)]
    assert sum(local[i % 2].acquire("42", now) is None for i in range(8)) == 6
    # another contact has its own count; the window frees slots
    assert pair[0].acquire("43", now) is None
    assert pair[1].acquire("42", now + timedelta(seconds=3601)) is None


def test_a_message_decided_by_two_workers_counts_once(pair):
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for message_id in (1, 2, 3):
        for limiter in pair:  # both heard message.received and decided it
            with answering(message_id):
                assert limiter.acquire("7", now) is None
    with answering(4):
        assert "rate limit" in (pair[0].acquire("7", now) or "")


def test_the_breaker_trips_for_every_worker(redis_url):
    a, b = (RedisReplyLimiter(redis_url, 100, 3600, 4, 60) for _ in range(2))
    try:
        now = datetime(2026, 1, 1, tzinfo=UTC)
        assert [a.acquire(f"c{i}", now) is None for i in range(4)] == [True] * 4
        refused = b.acquire("other", now)
        assert refused is not None and "circuit breaker" in refused
        assert a.check("another", now) is None  # a has not seen it trip yet...
        assert "circuit breaker" in (a.acquire("another", now) or "")  # ...Redis says so
        assert "circuit breaker" in (a.check("another", now) or "")  # and now it knows
    finally:
        a.close()
        b.close()


def test_redis_down_means_no_auto_reply():
    limiter = RedisReplyLimiter("redis://127.0.0.1:1/0")
    try:
        assert limiter.acquire("1", datetime.now(UTC)) == "rate limiter unavailable"
    finally:
        limiter.close()
