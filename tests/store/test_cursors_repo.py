"""The cursors repository (inbox.store.cursors) on SQLite and PostgreSQL: a source's
position as its writer stored it, None before."""

from __future__ import annotations

from datetime import UTC, datetime

from inbox.store import cursors, fence, health


async def test_a_position_reads_back_as_written(store):
    assert await store.read(lambda c: cursors.position(c, fence.FENCE)) is None
    await store.write(lambda c: fence.claim(c, 12))
    assert await store.read(lambda c: cursors.position(c, fence.FENCE)) == "12"
    at = datetime(2030, 1, 1, tzinfo=UTC)
    await store.call(health.heartbeat, at)
    assert await store.read(lambda c: cursors.position(c, health.HEARTBEAT_SOURCE)) == (
        at.isoformat()
    )
    assert await store.read(lambda c: cursors.position(c, "imap:nowhere")) is None
