"""The router's section of the assignments repository (inbox.store.assignments) on SQLite
and PostgreSQL: the facts the router rebuilds from and its guarded, fenced writes."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from inbox.errors import Fenced
from inbox.store import fence
from inbox.store import router_rows as a
from inbox.store import schema as t
from tests.store import seed


async def _desk(store):
    """Two agents (one disabled), a waiting, an assigned and a resolved conversation."""
    ann = await seed.agent(store, "Ann", skills={"billing": 7}, teams=["support"],
                           capacity={"email": 3}, presence="online")  # fmt: skip
    old = await seed.agent(store, "Old", active=False)
    who = await seed.contact(store)
    waiting = await seed.conversation(
        store, who, waiting_since=seed.at(1), required_skills=["billing"], priority="high"
    )
    held = await seed.conversation(store, who, assignee_id=ann, assigned_at=seed.at(2))
    done = await seed.conversation(store, who, status="resolved", waiting_since=seed.at(0))
    return ann, old, who, waiting, held, done


async def test_the_snapshot_holds_active_agents_waiting_and_held_conversations(store):
    ann, _old, _who, waiting, held, _done = await _desk(store)
    await seed.message(
        store, held, direction="outbound", author_kind="agent", created_at=seed.at(3)
    )
    snap = await store.read(a.snapshot)
    assert snap.agents == [a.RouterAgent(ann, {"billing": 7}, ("support",), {"email": 3},
                                         "online", True)]  # fmt: skip
    assert [c.id for c in snap.waiting] == [waiting]
    w = snap.waiting[0]
    assert (w.required_skills, w.priority, w.assignee_id, w.requeued) == (
        ("billing",), "high", None, False,
    )  # fmt: skip
    assert w.waiting_since == seed.at(1).timestamp() and w.assigned_at is None
    [h] = snap.assigned
    assert (h.id, h.assignee_id, h.assigned_at, h.accepted) == (
        held, ann, seed.at(2).timestamp(), True,
    )  # fmt: skip


async def test_facts_read_conversations_agents_and_agent_messages_together(store):
    ann, old, _who, waiting, held, done = await _desk(store)
    mine = await seed.message(store, held, direction="outbound", author_kind="agent")
    theirs = await seed.message(store, held)
    # an assignment that ended before it started waiting does not make it requeued
    await seed.assignment(store, waiting, ann, assigned_at=seed.at(0), ended_at=seed.at(0.5))
    convs, agents, authored = await store.read(
        lambda c: a.facts(c, {waiting, done, 999}, {old, 999}, {mine, theirs})
    )
    assert sorted(convs) == [waiting, done] and agents[old].active is False
    assert convs[waiting].requeued is False
    assert authored == {mine: held}
    assert await store.read(lambda c: a.facts(c, (), (), ())) == ({}, {}, {})
    assert (await store.read(lambda c: a.conversations(c, [held])))[held].status == "open"
    rows = await store.read(lambda c: c.execute(a.waiting_query()).all())
    assert [r.id for r in rows] == [waiting]


async def test_a_conversation_waiting_again_after_an_assignment_is_requeued(store):
    ann, *_rest = await _desk(store)
    who = await seed.contact(store, name="Bea")
    again = await seed.conversation(store, who, waiting_since=seed.at(4))
    await seed.assignment(store, again, ann, assigned_at=seed.at(6), ended_at=seed.at(7))
    found = await store.read(lambda c: a.conversations(c, [again]))
    assert found[again].requeued is True


async def test_persist_applies_guarded_writes_and_skips_a_stale_conversation(store):
    ann, _old, who, waiting, held, done = await _desk(store)
    other = await seed.conversation(store, who, waiting_since=seed.at(1))
    writes = [
        a.Assign(waiting, ann, seed.at(10), "routed" + "x" * 40),  # reason cut to 32
        a.Reprioritize(other, "urgent"),
        a.Assign(done, ann, seed.at(10), "routed"),  # resolved: refused, stale
        a.Keep(done),  # skipped with the rest of that conversation
        a.Unassign(held, ann + 1, seed.at(11)),  # held by Ann, not this agent: stale
        a.Keep(other),
    ]
    applied, stale = await store.write(lambda c: a.persist(c, writes, None))
    assert applied == [0, 1, 5] and stale == {done, held}
    row = await seed.row(store, t.conversations, waiting)
    assert (row["assignee_id"], row["assigned_at"], row["waiting_since"]) == (
        ann, seed.at(10), None,
    )  # fmt: skip
    assert (await seed.row(store, t.conversations, other))["priority"] == "urgent"
    given = await store.read(
        lambda c: (
            c.execute(sa.select(t.assignments).where(t.assignments.c.conversation_id == waiting))
            .mappings()
            .one()
        )
    )
    assert (given["agent_id"], given["reason"], given["ended_at"]) == (
        ann,
        "routed" + "x" * 26,
        None,
    )
    # unassigned, then requeued: the assignment ends, the conversation waits again
    back = [a.Unassign(waiting, ann, seed.at(12)),
            a.Requeue(waiting, seed.at(1), "high", ["billing"])]  # fmt: skip
    assert await store.write(lambda c: a.persist(c, back, None)) == ([0, 1], set())
    row = await seed.row(store, t.conversations, waiting)
    assert (row["assignee_id"], row["waiting_since"], row["required_skills"]) == (
        None, seed.at(1), ["billing"],
    )  # fmt: skip
    assert (await seed.row(store, t.assignments, given["id"]))["ended_at"] == seed.at(12)
    # a conversation with an assignee is not requeued
    refused = [a.Requeue(held, seed.at(1), "normal", [])]
    assert await store.write(lambda c: a.persist(c, refused, None)) == ([], {held})


async def test_a_deposed_leader_writes_nothing(store):
    ann, _old, _who, waiting, _held, _done = await _desk(store)
    await store.write(lambda c: fence.claim(c, 5))
    await store.write(lambda c: fence.claim(c, 7))  # a newer leader
    write = [a.Assign(waiting, ann, seed.at(10), "routed")]
    with pytest.raises(Fenced):
        await store.write(lambda c: a.persist(c, write, 5))
    with pytest.raises(Fenced):
        await store.write(lambda c: a.set_presence(c, [ann], "offline", 5))
    assert (await seed.row(store, t.conversations, waiting))["assignee_id"] is None
    assert (await seed.row(store, t.agents, ann))["presence"] == "online"
    assert await store.write(lambda c: a.persist(c, write, 7)) == ([0], set())


async def test_set_presence_changes_active_agents_and_names_those_it_changed(store):
    ann, old, *_rest = await _desk(store)
    bob = await seed.agent(store, "Bob", presence="offline")
    changed = await store.write(lambda c: a.set_presence(c, [ann, old, bob], "offline", None))
    assert changed == [ann]  # old is disabled, Bob was offline already
    assert (await seed.row(store, t.agents, ann))["presence"] == "offline"
