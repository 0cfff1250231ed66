"""The conversations repository on SQLite and PostgreSQL: reads, pages, a visitor's chats,
tags, resolve and reopen with what each refuses."""

from __future__ import annotations

import pytest

from inbox.errors import Conflict, NotFound, ValidationError
from inbox.store import conversations
from inbox.store import schema as t
from inbox.types import Channel, ConversationStatus
from tests.store import seed


async def test_get_reads_every_field(store):
    contact = await seed.contact(store)
    agent = await seed.agent(store)
    cid = await seed.conversation(
        store,
        contact,
        channel="chat",
        inbox="sales",
        status="pending",
        priority="high",
        subject="Order 17",
        required_skills=["billing"],
        assignee_id=agent,
        token="tok-1",
        tags=["vip"],
        last_message_at=seed.at(5),
        waiting_since=seed.at(1),
    )
    conv = await store.read(lambda c: conversations.get(c, cid))
    assert (conv.id, conv.contact_id, conv.channel, conv.inbox) == (
        cid,
        contact,
        Channel.CHAT,
        "sales",
    )
    assert conv.status is ConversationStatus.PENDING and conv.priority == "high"
    assert conv.subject == "Order 17" and conv.required_skills == ("billing",)
    assert conv.assignee_id == agent and conv.token == "tok-1" and conv.tags == ("vip",)
    assert conv.created_at == seed.T0 and conv.last_message_at == seed.at(5)
    assert conv.waiting_since == seed.at(1) and conv.resolved_at is None
    with pytest.raises(NotFound):
        await store.read(lambda c: conversations.get(c, cid + 1))


async def test_small_reads_answer_none_for_a_missing_conversation(store):
    agent = await seed.agent(store)
    cid = await seed.conversation(
        store, await seed.contact(store), inbox="sales", token="tok-2", assignee_id=agent
    )
    assert await store.read(lambda c: conversations.inbox_of(c, cid)) == "sales"
    assert await store.read(lambda c: conversations.inbox_and_assignee(c, cid)) == ("sales", agent)
    assert await store.read(lambda c: conversations.token_of(c, cid)) == "tok-2"
    assert await store.read(lambda c: conversations.triage_of(c, cid)) is None
    for read in (
        conversations.inbox_of,
        conversations.inbox_and_assignee,
        conversations.token_of,
        conversations.triage_of,
    ):
        assert await store.read(lambda c, read=read: read(c, cid + 1)) is None


async def test_triage_of_reads_the_stored_decision(store):
    cid = await seed.conversation(store, await seed.contact(store), triage={"rule": "faq"})
    assert await store.read(lambda c: conversations.triage_of(c, cid)) == {"rule": "faq"}


async def test_of_contact_is_newest_first(store):
    contact = await seed.contact(store)
    older = await seed.conversation(store, contact)
    newer = await seed.conversation(store, contact, channel="sms")
    await seed.conversation(store, await seed.contact(store))
    got = await store.read(lambda c: conversations.of_contact(c, contact))
    assert [conv.id for conv in got] == [newer, older]
    assert await store.read(lambda c: conversations.of_contact(c, 999)) == []


async def test_of_visitor_finds_the_chats_through_the_visitor_or_the_verified_id(store):
    lives = await seed.contact(store, "Ann", [("external", "user-7")])
    merged = await seed.contact(store, None, [("visitor", "v-1")], merged_into=lives)
    chat = await seed.conversation(store, lives, channel="chat", token="room-1")
    await seed.conversation(store, lives, channel="email")  # not a chat
    got = await store.read(lambda c: conversations.of_visitor(c, "v-1"))
    assert got == conversations.VisitorChats(lives, {chat: "room-1"})
    assert merged != lives
    by_id = await store.read(lambda c: conversations.of_visitor(c, "v-new", "user-7"))
    assert by_id == conversations.VisitorChats(lives, {chat: "room-1"})
    nobody = await store.read(lambda c: conversations.of_visitor(c, "v-new", "user-8"))
    assert nobody == conversations.VisitorChats(None, {})


async def test_list_page_filters_and_walks_the_cursor(store):
    contact = await seed.contact(store)
    agent = await seed.agent(store)
    ids = [
        await seed.conversation(store, contact, inbox=inbox, last_message_at=seed.at(i))
        for i, inbox in enumerate(["a", "b", "a", "a", "b"])
    ]
    await seed.conversation(
        store, contact, inbox="a", status="resolved", assignee_id=agent, last_message_at=seed.at(9)
    )
    seen: list[int] = []
    cursor = None
    while True:
        rows, cursor = await store.read(
            lambda c, cursor=cursor: conversations.list_page(
                c, filters={"status": "open"}, limit=2, cursor=cursor
            )
        )
        seen += [r.id for r in rows]
        if cursor is None:
            break
    assert seen == ids[::-1]  # newest activity first, each once
    only_a, _ = await store.read(
        lambda c: conversations.list_page(c, filters={"inboxes": {"a"}}, limit=10, cursor=None)
    )
    assert {r.inbox for r in only_a} == {"a"} and len(only_a) == 4
    mine, _ = await store.read(
        lambda c: conversations.list_page(c, filters={"assignee": agent}, limit=10, cursor=None)
    )
    unassigned, _ = await store.read(
        lambda c: conversations.list_page(c, filters={"assignee": None}, limit=10, cursor=None)
    )
    assert [r.assignee_id for r in mine] == [agent] and len(unassigned) == 5
    with pytest.raises(ValidationError):
        await store.read(
            lambda c: conversations.list_page(c, filters={}, limit=10, cursor="not-ours")
        )


async def test_set_tags_replaces_them(store):
    cid = await seed.conversation(store, await seed.contact(store), tags=["old"])
    await store.write(lambda c: conversations.set_tags(c, cid, ["new", "vip"]))
    assert (await store.read(lambda c: conversations.get(c, cid))).tags == ("new", "vip")
    with pytest.raises(NotFound):
        await store.write(lambda c: conversations.set_tags(c, cid + 1, []))


async def test_resolve_ends_the_assignment_and_refuses_twice(store):
    agent = await seed.agent(store)
    cid = await seed.conversation(
        store, await seed.contact(store), assignee_id=agent, assigned_at=seed.T0
    )
    held = await seed.assignment(store, cid, agent)
    await store.write(lambda c: conversations.resolve(c, cid, seed.at(3)))
    conv = await store.read(lambda c: conversations.get(c, cid))
    assert conv.status is ConversationStatus.RESOLVED and conv.resolved_at == seed.at(3)
    assert conv.assignee_id is None and conv.waiting_since is None
    assert (await seed.row(store, t.conversations, cid))["assigned_at"] is None
    assert (await seed.row(store, t.assignments, held))["ended_at"] == seed.at(3)
    with pytest.raises(Conflict, match="already resolved"):
        await store.write(lambda c: conversations.resolve(c, cid))
    with pytest.raises(NotFound):
        await store.write(lambda c: conversations.resolve(c, cid + 1))


async def test_resolve_within_inboxes_hides_the_others(store):
    cid = await seed.conversation(store, await seed.contact(store), inbox="sales")
    with pytest.raises(NotFound):
        await store.write(lambda c: conversations.resolve(c, cid, inboxes=frozenset({"support"})))
    assert (await store.read(lambda c: conversations.get(c, cid))).status is ConversationStatus.OPEN
    await store.write(lambda c: conversations.resolve(c, cid, inboxes=frozenset({"sales"})))
    assert (await store.read(lambda c: conversations.get(c, cid))).status is (
        ConversationStatus.RESOLVED
    )


async def test_reopen_queues_a_resolved_conversation_again(store):
    agent = await seed.agent(store)
    cid = await seed.conversation(
        store,
        await seed.contact(store),
        status="resolved",
        priority="urgent",
        resolved_at=seed.T0,
        assignee_id=agent,
    )
    assert await store.write(lambda c: conversations.reopen(c, cid, seed.at(2))) == "urgent"
    conv = await store.read(lambda c: conversations.get(c, cid))
    assert conv.status is ConversationStatus.OPEN and conv.resolved_at is None
    assert conv.assignee_id is None and conv.waiting_since == seed.at(2)
    with pytest.raises(Conflict):
        await store.write(lambda c: conversations.reopen(c, cid))
    with pytest.raises(Conflict):
        await store.write(lambda c: conversations.reopen(c, cid + 1))
