"""Threading cannot be hijacked: headers join only the sender's own conversations, never
across channels, and the dedupe key is per sender. The contract on each store backend."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from inbox.bus.backends import MemoryBus
from inbox.ingest import Ingestor
from inbox.store import conversations, messages
from inbox.store import schema as t
from inbox.store.outbox import enqueue
from inbox.types import AuthorKind, Channel, ConversationStatus, IdentityKind, InboundMessage
from tests.conftest import WITH_WRITE_PROCESS

pytestmark = pytest.mark.parametrize("store", WITH_WRITE_PROCESS, indirect=True)


def msg(external_id: str, sender: str, channel: Channel = Channel.EMAIL, **kw) -> InboundMessage:
    return InboundMessage(
        channel=channel,
        external_id=external_id,
        sender=sender,
        text=kw.pop("text", f"hello {external_id}"),
        received_at=datetime.now(UTC),
        **kw,
    )


@pytest.fixture
async def ingest(store):
    bus = MemoryBus()
    ingestor = Ingestor(store, bus)
    yield ingestor
    await ingestor.close()
    await bus.close()


async def meta_of(store, message_id: int) -> dict:
    return await store.read(
        lambda c: c.execute(
            sa.select(t.messages.c.meta).where(t.messages.c.id == message_id)
        ).scalar_one()
    )


async def sent_reply(store, conversation_id: int, provider_id: str) -> int:
    """An agent's answer in the conversation, sent with `provider_id` (our Message-ID)."""

    def run(conn):
        mid = enqueue(
            conn, conversation_id=conversation_id, text="on its way", author_kind=AuthorKind.AGENT
        )
        conn.execute(
            sa.update(t.messages).where(t.messages.c.id == mid).values(provider_id=provider_id)
        )
        return mid

    return await store.write(run)


async def test_a_guessed_in_reply_to_starts_a_flagged_conversation(store, ingest):
    victim = await ingest(msg("v1@victim.example", "vic@victim.example"))
    await sent_reply(store, victim.conversation_id, "ours-1@desk.test")
    await store.write(
        lambda c: c.execute(
            sa.update(t.conversations)
            .where(t.conversations.c.id == victim.conversation_id)
            .values(status="resolved", resolved_at=datetime.now(UTC))
        )
    )
    for n, header in enumerate(("ours-1@desk.test", "v1@victim.example")):
        hijack = await ingest(msg(f"h{n}@evil.example", "mallory@evil.example", in_reply_to=header))
        assert hijack.conversation_id != victim.conversation_id
        assert not hijack.conversation_reopened
        assert (await meta_of(store, hijack.message_id))["refers_to"] == victim.conversation_id
        conv = await store.read(lambda c, h=hijack: conversations.get(c, h.conversation_id))
        assert conv.contact_id == hijack.contact_id != victim.contact_id
    # the victim's conversation was not touched (still resolved, one inbound message)
    conv = await store.read(lambda c: conversations.get(c, victim.conversation_id))
    assert conv.status is ConversationStatus.RESOLVED
    shown = await store.read(lambda c: messages.get(c, hijack.message_id))
    assert shown.refers_to == victim.conversation_id


async def test_a_references_list_cannot_hijack_either(store, ingest):
    victim = await ingest(msg("root@victim.example", "vic@victim.example"))
    await sent_reply(store, victim.conversation_id, "ours-2@desk.test")
    hijack = await ingest(
        msg(
            "h@evil.example",
            "mallory@evil.example",
            references=("unknown@nowhere.example", "ours-2@desk.test", "nope@x.example"),
        )
    )
    assert hijack.conversation_created and hijack.conversation_id != victim.conversation_id
    assert (await meta_of(store, hijack.message_id))["refers_to"] == victim.conversation_id
    # many at once (one batch) too
    many = await asyncio.gather(
        *(
            ingest(
                msg(f"b{i}@evil.example", f"m{i}@evil.example", references=("root@victim.example",))
            )
            for i in range(20)
        )
    )
    assert all(r.conversation_id != victim.conversation_id for r in many)
    count = await store.read(
        lambda c: c.execute(
            sa.select(sa.func.count())
            .select_from(t.messages)
            .where(t.messages.c.conversation_id == victim.conversation_id)
        ).scalar_one()
    )
    assert count == 2  # the victim's message and our reply


async def test_the_owner_still_threads_by_headers(store, ingest):
    first = await ingest(msg("o1@own.example", "owner@own.example"))
    await sent_reply(store, first.conversation_id, "ours-3@desk.test")
    await store.write(
        lambda c: c.execute(
            sa.update(t.conversations)
            .where(t.conversations.c.id == first.conversation_id)
            .values(status="resolved", resolved_at=datetime.now(UTC))
        )
    )
    # outside the window nothing but the headers can find it
    old = datetime(2020, 1, 1, tzinfo=UTC)
    await store.write(
        lambda c: c.execute(
            sa.update(t.conversations)
            .where(t.conversations.c.id == first.conversation_id)
            .values(last_message_at=old)
        )
    )
    reply = await ingest(
        msg(
            "o2@own.example",
            "Owner@Own.example",
            in_reply_to="ours-3@desk.test",
            references=("o1@own.example", "ours-3@desk.test"),
        )
    )
    assert reply.conversation_id == first.conversation_id and reply.conversation_reopened
    assert "refers_to" not in await meta_of(store, reply.message_id)


async def test_a_header_never_threads_across_channels(store, ingest):
    chat = await ingest(
        msg(
            "visitor_0a1b2c3d:c1",
            "visitor_0a1b2c3d",
            channel=Channel.CHAT,
            extra_identities=((IdentityKind.EMAIL, "val@chat.example"),),
        )
    )
    # our answer in the chat was held for the visitor as `webchat:<id>`
    held = await sent_reply(store, chat.conversation_id, "")
    await store.write(
        lambda c: c.execute(
            sa.update(t.messages)
            .where(t.messages.c.id == held)
            .values(provider_id=f"webchat:{held}")
        )
    )
    # the same person (same contact) and a stranger, by email, naming the chat's ids
    for sender in ("val@chat.example", "mallory@evil.example"):
        mail = await ingest(
            msg(
                f"<x-{sender}>",
                sender,
                in_reply_to=f"webchat:{held}",
                references=("visitor_0a1b2c3d:c1",),
            )
        )
        assert mail.conversation_id != chat.conversation_id
        conv = await store.read(lambda c, m=mail: conversations.get(c, m.conversation_id))
        assert conv.channel is Channel.EMAIL
    # an API message naming the chat's ids stays out of it too
    api = await ingest(
        msg("api-1", "val@chat.example", channel=Channel.API, in_reply_to="visitor_0a1b2c3d:c1")
    )
    assert api.conversation_id != chat.conversation_id


async def test_a_message_id_reused_by_another_sender_is_stored(store, ingest):
    first = await ingest(msg("same@x.example", "ann@one.example"))
    other = await ingest(msg("same@x.example", "bob@two.example", text="mine"))
    assert not other.duplicate and other.message_id != first.message_id
    assert other.contact_id != first.contact_id
    stored = await store.read(lambda c: messages.get(c, other.message_id))
    assert stored.text == "mine" and stored.external_id == "same@x.example"
    # each sender's redelivery is still one message
    again = await ingest(msg("same@x.example", "ANN@one.example"))
    assert again.duplicate and again.message_id == first.message_id
    again = await ingest(msg("same@x.example", "bob@two.example"))
    assert again.duplicate and again.message_id == other.message_id
    # in one batch as well: two senders, one key, each twice
    batch = await asyncio.gather(
        *(ingest(msg("batch@x.example", s)) for s in ("c@a.example", "d@a.example") * 2)
    )
    assert [r.duplicate for r in batch] == [False, False, True, True]
    assert batch[0].message_id == batch[2].message_id != batch[1].message_id
    total = await store.read(
        lambda c: c.execute(sa.select(sa.func.count()).select_from(t.messages)).scalar_one()
    )
    assert total == 4


async def test_our_references_name_the_thread_ours_included(store, ingest):
    from inbox.store.outbox import thread_ids

    first = await ingest(msg("c1@cust.example", "cat@cust.example"))
    await sent_reply(store, first.conversation_id, "ours-a@desk.test")
    held = await sent_reply(store, first.conversation_id, "webchat:77")  # never a chat id
    second = await ingest(msg("c2@cust.example", "cat@cust.example"))
    assert second.conversation_id == first.conversation_id
    await sent_reply(store, first.conversation_id, "ours-b@desk.test")
    nxt = held + 100
    refs, parent = await store.read(lambda c: thread_ids(c, first.conversation_id, nxt))
    assert refs == ("c1@cust.example", "ours-a@desk.test", "c2@cust.example", "ours-b@desk.test")
    assert parent == "c2@cust.example"
    # before our second answer: only what came before it
    refs, parent = await store.read(lambda c: thread_ids(c, first.conversation_id, held))
    assert refs == ("c1@cust.example", "ours-a@desk.test") and parent == "c1@cust.example"
