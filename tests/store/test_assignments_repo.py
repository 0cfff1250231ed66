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


async def test_the_queue_is_in_the_routers_order_within_the_inboxes(store):
    agent = await seed.agent(store)
    contact = await seed.contact(store)

    async def waiting(minutes, priority="normal", inbox="a", **kw):
        return await seed.conversation(
            store, contact, priority=priority, inbox=inbox, waiting_since=seed.at(minutes), **kw
        )

    late_normal = await waiting(5)
    early_normal = await waiting(1, required_skills=["billing"])
    urgent = await waiting(9, "urgent")
    requeued = await waiting(8)
    await seed.assignment(store, requeued, agent, assigned_at=seed.at(8), ended_at=seed.at(8.5))
    odd = await waiting(0, "unheard-of")
    other_inbox = await waiting(0, inbox="b")
    await seed.conversation(store, contact, assignee_id=agent, waiting_since=seed.T0)  # held
    await seed.conversation(store, contact, status="resolved", waiting_since=seed.T0)
    await seed.conversation(store, contact)  # never queued

    levels = ("urgent", "high", "normal", "low")
    rows, total = await store.read(lambda c: assignments.queue(c, levels, {"a"}, 10))
    assert [w.conversation_id for w in rows] == [urgent, requeued, early_normal, late_normal, odd]
    assert total == 5
    assert [w.requeued for w in rows] == [False, True, False, False, False]
    first = rows[2]
    assert (first.priority, first.channel, first.inbox, first.skills) == (
        "normal",
        "email",
        "a",
        ("billing",),
    )
    assert first.waiting_since == seed.at(1)
    rows, total = await store.read(lambda c: assignments.queue(c, levels, None, 2))
    assert [w.conversation_id for w in rows] == [urgent, requeued] and total == 6
    assert other_inbox not in [w.conversation_id for w in rows]


async def test_workload_counts_held_conversations_per_channel(store):
    ann = await seed.agent(store, "Ann", teams=["a"], presence="online")
    bob = await seed.agent(store, "Bob", teams=["b"], capacity={"email": 2, "chat": 3})
    await seed.agent(store, "Gone", active=False)
    contact = await seed.contact(store)
    for channel, inbox, status, who in [
        ("email", "a", "open", ann),
        ("chat", "a", "pending", ann),
        ("chat", "b", "open", ann),
        ("email", "b", "open", bob),
        ("email", "b", "resolved", bob),  # not held any more
    ]:
        await seed.conversation(
            store, contact, channel=channel, inbox=inbox, status=status, assignee_id=who
        )
    every = await store.read(lambda c: assignments.workload(c))
    assert [(w.agent.id, w.presence, w.load) for w in every] == [
        (ann, "online", {"email": 1, "chat": 2}),
        (bob, "offline", {"email": 1}),
    ]
    in_a = await store.read(lambda c: assignments.workload(c, {"a"}))
    assert [(w.agent.id, w.load) for w in in_a] == [(ann, {"email": 1, "chat": 1})]
    listed = await store.read(assignments.agents_with_load)
    assert [(x.name, x.load, x.capacity, x.role, x.teams) for x in listed] == [
        ("Ann", 3, 5, "agent", ("a",)),
        ("Bob", 1, 5, "agent", ("b",)),
    ]
    assert listed[0].json()["load"] == 3 and listed[0].json()["teams"] == ["a"]


async def test_workload_by_name(store):
    zed = await seed.agent(store, "Zed")
    amy = await seed.agent(store, "Amy")
    by_id = await store.read(lambda c: assignments.workload(c))
    by_name = await store.read(lambda c: assignments.workload(c, by_name=True))
    assert [w.agent.id for w in by_id] == [zed, amy]
    assert [w.agent.id for w in by_name] == [amy, zed]
