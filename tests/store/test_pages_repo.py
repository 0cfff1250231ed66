"""The workspace's and the read API's composed reads on SQLite and PostgreSQL: what each
page shows, and what a reader outside the inboxes is never handed."""

from __future__ import annotations

import json

import pytest

from inbox.errors import NotFound
from inbox.store import pages
from tests.store import seed

LEVELS = ("urgent", "high", "normal", "low")


async def test_the_queue_page(store):
    me = await seed.agent(store, "Me", presence="online")
    other = await seed.agent(store, "Other")
    ann = await seed.contact(store, "Ann")
    held = await seed.conversation(
        store, ann, assignee_id=me, status="pending", last_message_at=seed.at(3)
    )
    held_later = await seed.conversation(store, ann, assignee_id=me, last_message_at=seed.at(4))
    await seed.conversation(store, ann, assignee_id=me, status="resolved")
    await seed.conversation(store, ann, assignee_id=other)
    slow = await seed.conversation(
        store, ann, inbox="a", waiting_since=seed.at(1), subject="Hi", required_skills=["x"]
    )
    fast = await seed.conversation(
        store, ann, inbox="a", priority="urgent", waiting_since=seed.at(2)
    )
    await seed.conversation(store, ann, inbox="b", waiting_since=seed.T0)
    page = await store.read(lambda c: pages.queue_page(c, me, {"a"}, LEVELS, with_agents=True))
    assert [r.id for r in page.mine] == [held_later, held]
    assert page.mine[0].since == seed.at(4)
    assert [r.id for r in page.waiting] == [fast, slow]
    row = page.waiting[1]
    assert (row.inbox, row.subject, row.skills, row.contact_name, row.since) == (
        "a",
        "Hi",
        ("x",),
        "Ann",
        seed.at(1),
    )
    assert row.json()["since"] == seed.at(1).isoformat() and row.json()["skills"] == ["x"]
    assert json.loads(row.sig) == [
        "normal",
        "email",
        "Ann",
        "Hi",
        ["x"],
        "a",
        seed.at(1).isoformat(),
    ]
    assert [a.name for a in page.agents] == ["Me", "Other"]
    assert page.presence == "online"
    every = await store.read(lambda c: pages.queue_page(c, me, None, LEVELS, with_agents=False))
    assert len(every.waiting) == 3 and every.agents is None


async def test_colleagues_are_the_others_by_name(store):
    me = await seed.agent(store, "Me", presence="away")
    zed = await seed.agent(store, "Zed")
    amy = await seed.agent(store, "Amy")
    presence, others = await store.read(lambda c: pages.colleagues(c, me))
    assert presence == "away" and [a.id for a in others] == [amy, zed]


async def test_the_conversation_page_shows_what_the_agent_may_see(store):
    me = await seed.agent(store, "Me")
    helper = await seed.agent(store, "Helper")
    ann = await seed.contact(store, "Ann", [("email", "ann@x")])
    older = await seed.conversation(store, ann, inbox="a")
    hidden = await seed.conversation(store, ann, inbox="b")
    held_elsewhere = await seed.conversation(store, ann, inbox="b", assignee_id=me)
    cid = await seed.conversation(store, ann, inbox="a", assignee_id=me, triage={"rule": "faq"})
    first = await seed.message(store, older, created_at=seed.at(1))
    await seed.message(store, hidden, created_at=seed.at(2))
    reply = await seed.message(
        store,
        cid,
        direction="outbound",
        author_kind="agent",
        author_id=helper,
        created_at=seed.at(3),
    )
    page = await store.read(lambda c: pages.conversation_page(c, cid, {"a"}, me))
    assert page.conversation.id == cid and page.contact.name == "Ann"
    assert [h.id for h in page.history] == [cid, held_elsewhere, older]
    assert [m.id for m in page.timeline] == [first, reply]
    assert page.authors == {me: "Me", helper: "Helper"} and page.assignee == "Me"
    assert page.triage == {"rule": "faq"}
    everything = await store.read(lambda c: pages.conversation_page(c, cid, None, helper))
    assert len(everything.history) == 4 and len(everything.timeline) == 3
    for conv, inboxes, agent in ((hidden, {"a"}, me), (cid, {"b"}, helper), (cid + 100, None, me)):
        with pytest.raises(NotFound):
            await store.read(
                lambda c, v=conv, i=inboxes, a=agent: pages.conversation_page(c, v, i, a)
            )


async def test_the_contact_page(store):
    me = await seed.agent(store)
    ann = await seed.contact(store, "Ann", notes="calls on Fridays")
    folded = await seed.contact(store, "Old Ann", merged_into=ann)
    in_a = await seed.conversation(store, ann, inbox="a")
    await seed.conversation(store, ann, inbox="b")
    page = await store.read(lambda c: pages.contact_page(c, ann, {"a"}, me))
    assert page.contact.id == ann and page.notes == "calls on Fridays"
    assert [h.id for h in page.conversations] == [in_a]
    assert [m.id for m in page.merged] == [folded]
    with pytest.raises(NotFound):  # nothing of hers in the agent's inboxes
        await store.read(lambda c: pages.contact_page(c, ann, {"c"}, me))
    with pytest.raises(NotFound):
        await store.read(lambda c: pages.contact_page(c, ann + 100, None, me))


async def test_the_read_api_keeps_to_the_tokens_inboxes(store):
    agent = await seed.agent(store)
    ann = await seed.contact(store, "Ann")
    cid = await seed.conversation(store, ann, inbox="a")
    held = await seed.conversation(store, ann, inbox="b", assignee_id=agent)
    mid = await seed.message(store, cid)
    conv, msgs = await store.read(lambda c: pages.api_conversation(c, cid, {"a"}))
    assert conv.id == cid and [m.id for m in msgs] == [mid]
    assert (await store.read(lambda c: pages.api_conversation(c, cid, None)))[0].id == cid
    with pytest.raises(NotFound):  # a token is no agent: holding it does not count
        await store.read(lambda c: pages.api_conversation(c, held, {"a"}))
    with pytest.raises(NotFound):
        await store.read(lambda c: pages.api_conversation(c, cid + 100, None))
    contact, convs = await store.read(lambda c: pages.api_contact(c, ann, {"a"}))
    assert contact.id == ann and [v.id for v in convs] == [cid]
    _, every = await store.read(lambda c: pages.api_contact(c, ann, None))
    assert [v.id for v in every] == [held, cid]
    with pytest.raises(NotFound):
        await store.read(lambda c: pages.api_contact(c, ann, {"z"}))
