"""The messages repository on SQLite and PostgreSQL: reads, an agent's reply and note,
attachments by visibility, the chat widget's view and read receipts."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from inbox.errors import Conflict, NotFound
from inbox.store import messages
from inbox.store import schema as t
from inbox.types import Attachment, AuthorKind, Channel, DeliveryStatus, Direction
from tests.store import seed

FILE = {"filename": "a.pdf", "content_type": "application/pdf", "size": 3, "storage_key": "k1",
        "content_id": None, "inline": False}  # fmt: skip


async def test_get_reads_every_field(store):
    cid = await seed.conversation(store, await seed.contact(store))
    mid = await seed.message(
        store,
        cid,
        external_id="<m@x>",
        subject="Hi",
        html="<p>hello</p>",
        attachments=[FILE],
        meta={"refers_to": 41},
        failure_reason=None,
    )
    got = await store.read(lambda c: messages.get(c, mid))
    assert (got.id, got.conversation_id, got.external_id) == (mid, cid, "<m@x>")
    assert got.direction is Direction.INBOUND and got.author_kind is AuthorKind.CONTACT
    assert got.channel is Channel.EMAIL and got.delivery_status is DeliveryStatus.RECEIVED
    assert (got.text, got.subject, got.html) == ("hello", "Hi", "<p>hello</p>")
    assert got.attachments == (Attachment(**FILE),)
    assert got.refers_to == 41 and got.created_at == seed.T0
    with pytest.raises(NotFound):
        await store.read(lambda c: messages.get(c, mid + 1))


async def test_of_conversation_and_of_conversations_keep_their_orders(store):
    contact = await seed.contact(store)
    a = await seed.conversation(store, contact)
    b = await seed.conversation(store, contact)
    a1 = await seed.message(store, a, created_at=seed.at(5))
    b1 = await seed.message(store, b, created_at=seed.at(1))
    a2 = await seed.message(store, a, created_at=seed.at(3))
    one = await store.read(lambda c: messages.of_conversation(c, a))
    assert [m.id for m in one] == [a1, a2]  # stored order
    limited = await store.read(lambda c: messages.of_conversation(c, a, limit=1))
    assert [m.id for m in limited] == [a1]
    both = await store.read(lambda c: messages.of_conversations(c, [a, b]))
    assert [m.id for m in both] == [b1, a2, a1]  # time order
    assert await store.read(lambda c: messages.of_conversations(c, [999])) == []


async def test_reply_goes_out_through_the_outbox(store):
    agent = await seed.agent(store)
    cid = await seed.conversation(store, await seed.contact(store), subject="Order")
    mid = await store.write(lambda c: messages.reply(c, cid, agent, "On its way", "Re: Order"))
    got = await store.read(lambda c: messages.get(c, mid))
    assert got.direction is Direction.OUTBOUND and got.author_kind is AuthorKind.AGENT
    assert got.author_id == agent and got.subject == "Re: Order" and got.text == "On its way"
    assert got.delivery_status is DeliveryStatus.QUEUED
    job = await seed.row(store, t.outbox, mid, key="message_id")
    assert job is not None and job["status"] == "pending"
    conv = await seed.row(store, t.conversations, cid)
    assert conv["first_response_at"] is not None


async def test_reply_refuses_a_closed_or_missing_conversation(store):
    agent = await seed.agent(store)
    closed = await seed.conversation(store, await seed.contact(store), status="closed")
    with pytest.raises(Conflict):
        await store.write(lambda c: messages.reply(c, closed, agent, "x", None))
    with pytest.raises(NotFound):
        await store.write(lambda c: messages.reply(c, closed + 1, agent, "x", None))
    outbox = await store.read(
        lambda c: c.execute(sa.select(sa.func.count()).select_from(t.outbox)).scalar_one()
    )
    assert outbox == 0


async def test_a_note_is_in_the_timeline_and_never_delivered(store):
    agent = await seed.agent(store)
    cid = await seed.conversation(store, await seed.contact(store), channel="sms")
    mid = await store.write(lambda c: messages.add_note(c, cid, agent, "call back"))
    got = await store.read(lambda c: messages.get(c, mid))
    assert got.delivery_status is DeliveryStatus.NOTE and got.channel is Channel.SMS
    assert got.author_id == agent and got.text == "call back"
    assert await seed.row(store, t.outbox, mid, key="message_id") is None
    with pytest.raises(NotFound):
        await store.write(lambda c: messages.add_note(c, cid + 1, agent, "x"))


async def test_an_attachment_is_found_only_where_the_agent_sees(store):
    agent = await seed.agent(store)
    other = await seed.agent(store, "Cy")
    contact = await seed.contact(store)
    cid = await seed.conversation(store, contact, inbox="sales", assignee_id=agent)
    mid = await seed.message(store, cid, attachments=[FILE, {"size": 1}])
    found = await store.read(lambda c: messages.attachment(c, mid, 0, None, other))
    assert found == ("a.pdf", "application/pdf", "k1")
    # the second has no name nor type stored
    assert await store.read(lambda c: messages.attachment(c, mid, 1, ["sales"], other)) == (
        "attachment",
        "",
        None,
    )
    # outside the agent's inboxes, but held by it
    assert await store.read(lambda c: messages.attachment(c, mid, 0, ["support"], agent))
    for args in ((mid, 0, ["support"], other), (mid, 2, None, agent), (mid + 1, 0, None, agent)):
        with pytest.raises(NotFound):
            await store.read(lambda c, args=args: messages.attachment(c, *args))


async def _chat(store):
    agent = await seed.agent(store, "Dee")
    cid = await seed.conversation(store, await seed.contact(store), channel="chat")
    ids = {
        "visitor": await seed.message(store, cid, channel="chat", text="hi"),
        "agent": await seed.message(
            store,
            cid,
            channel="chat",
            direction="outbound",
            author_kind="agent",
            author_id=agent,
            delivery_status="sent",
            text="hello",
            attachments=[FILE],
        ),
        "note": await seed.message(
            store,
            cid,
            channel="chat",
            direction="outbound",
            author_kind="agent",
            author_id=agent,
            delivery_status="note",
        ),
        "bot": await seed.message(
            store,
            cid,
            channel="chat",
            direction="outbound",
            author_kind="bot",
            delivery_status="delivered",
            text="auto",
        ),
        "email": await seed.message(store, cid, channel="email"),
    }
    return cid, ids


async def test_the_chat_view_leaves_out_notes_and_other_channels(store):
    cid, ids = await _chat(store)
    lines, more = await store.read(lambda c: messages.chat_after(c, [cid], 0))
    assert not more
    assert [(x.seq, x.author, x.name) for x in lines] == [
        (ids["visitor"], "visitor", None),
        (ids["agent"], "agent", "Dee"),
        (ids["bot"], "bot", None),
    ]
    assert lines[1].text == "hello" and lines[1].attachments == [FILE]
    assert lines[1].status == "sent" and lines[1].at == seed.T0
    after, _ = await store.read(lambda c: messages.chat_after(c, [cid], ids["agent"]))
    assert [x.seq for x in after] == [ids["bot"]]
    assert await store.read(lambda c: messages.chat_after(c, [], 0)) == ([], False)


async def test_the_chat_view_pages_a_long_resync(store, monkeypatch):
    monkeypatch.setattr(messages, "CHAT_PAGE", 2)
    monkeypatch.setattr(messages, "CHAT_HISTORY", 2)
    cid = await seed.conversation(store, await seed.contact(store), channel="chat")
    ids = [await seed.message(store, cid, channel="chat") for _ in range(5)]
    first, more = await store.read(lambda c: messages.chat_after(c, [cid], ids[0]))
    assert [x.seq for x in first] == ids[1:3] and more
    latest, more = await store.read(lambda c: messages.chat_after(c, [cid], 0))
    assert [x.seq for x in latest] == ids[3:] and not more


async def test_read_receipts_mark_only_sent_outbound_messages_up_to_the_seq(store):
    cid, ids = await _chat(store)
    changed = await store.write(lambda c: messages.mark_read(c, [cid], ids["agent"]))
    assert changed == [(ids["agent"], cid)]
    assert (await seed.row(store, t.messages, ids["agent"]))["delivery_status"] == "read"
    assert (await seed.row(store, t.messages, ids["bot"]))["delivery_status"] == "delivered"
    assert (await seed.row(store, t.messages, ids["visitor"]))["delivery_status"] == "received"
    again = await store.write(lambda c: messages.mark_read(c, [cid], ids["bot"]))
    assert again == [(ids["bot"], cid)]
    assert await store.write(lambda c: messages.mark_read(c, [cid], ids["bot"])) == []
    assert await store.write(lambda c: messages.mark_read(c, [], 10**6)) == []


def test_attachments_are_stored_with_every_field():
    stored = messages.attachments_to_json([Attachment(**FILE)])
    assert stored == [FILE]
