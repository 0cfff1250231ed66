"""The readiness repository (inbox.store.health) on SQLite and PostgreSQL: the heartbeat
row is written once and moved on, through `call` (the writer process's path) too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from inbox.store import health
from tests.conftest import WITH_WRITE_PROCESS


@pytest.mark.parametrize("store", WITH_WRITE_PROCESS, indirect=True)
async def test_the_heartbeat_is_upserted_and_read_back(store):
    assert await store.read(health.last_heartbeat) is None
    first = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    await store.call(health.heartbeat, first)
    assert await store.read(health.last_heartbeat) == first
    later = first + timedelta(seconds=3)
    await store.call(health.heartbeat, later)
    assert await store.read(health.last_heartbeat) == later
