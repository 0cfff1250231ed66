"""The assignments repository on SQLite and PostgreSQL."""

from __future__ import annotations

from inbox.store import assignments
from inbox.store import schema as t
from tests.store import seed


async def test_end_open_ends_only_the_open_assignment_of_that_conversation(store):
    agent = await seed.agent(store)
    contact = await seed.contact(store)
    cid = await seed.conversation(store, contact)
    other = await seed.conversation(store, contact)
    ended_before = await seed.assignment(store, cid, agent, ended_at=seed.at(1))
    held = await seed.assignment(store, cid, agent, assigned_at=seed.at(2))
    elsewhere = await seed.assignment(store, other, agent)
    assert await store.write(lambda c: assignments.end_open(c, cid, seed.at(5))) == 1
    assert (await seed.row(store, t.assignments, held))["ended_at"] == seed.at(5)
    assert (await seed.row(store, t.assignments, ended_before))["ended_at"] == seed.at(1)
    assert (await seed.row(store, t.assignments, elsewhere))["ended_at"] is None
    assert await store.write(lambda c: assignments.end_open(c, cid, seed.at(6))) == 0
