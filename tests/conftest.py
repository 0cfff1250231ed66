"""Shared fixtures. Backend servers: a missing PostgreSQL or Redis skips the test with a
visible reason outside CI and fails it under CI=true."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
POSTGRES_URL = os.environ.get("OMNIDESK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("OMNIDESK_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 0), timeout=1):
            return True
    except OSError:
        return False


def require_server(url: str, what: str) -> None:
    """Skip (or fail under CI) when a backend server is not reachable."""
    if _reachable(url):
        return
    reason = f"{what} not reachable at {url}"
    if IN_CI:
        pytest.fail(f"{reason}: under CI=true a backend test may not skip")
    pytest.skip(reason)


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A spare Redis database, flushed before and after the test."""
    require_server(REDIS_URL, "Redis")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def postgres_url() -> str:
    require_server(POSTGRES_URL, "PostgreSQL")
    return POSTGRES_URL
