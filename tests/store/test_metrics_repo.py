"""The metrics repository (inbox.store.metrics) on SQLite and PostgreSQL: only open,
unassigned conversations that wait count, by inbox, with the oldest wait."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from inbox.store import agents, metrics
from inbox.types import Role
from tests.store import seed

T0 = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)


async def test_waiting_conversations_are_counted_by_inbox(store):
    assert await store.read(metrics.waiting_by_inbox) == {}
    agent = await store.write(lambda c: agents.add(c, "Ann", "ann@a.test", Role.AGENT, {}, {}))

    who = await seed.contact(store)
    await seed.conversation(store, who, inbox="default", waiting_since=T0)
    await seed.conversation(store, who, inbox="default", waiting_since=T0 - timedelta(minutes=5))
    await seed.conversation(store, who, inbox="sales", waiting_since=T0)
    # none of these waits: assigned, resolved, or never queued
    await seed.conversation(store, who, inbox="sales", waiting_since=T0, assignee_id=agent.id)
    await seed.conversation(store, who, inbox="vip", status="resolved", waiting_since=T0)
    await seed.conversation(store, who, inbox="vip")
    assert await store.read(metrics.waiting_by_inbox) == {
        "default": (2, T0 - timedelta(minutes=5)),
        "sales": (1, T0),
    }
