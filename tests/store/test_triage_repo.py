"""What triage reads and writes, on SQLite and PostgreSQL: the untriaged messages, a batch
read back whole, and decisions stored once (a message claimed twice is settled once)."""

from __future__ import annotations

import pytest

from inbox.ports import Reply
from inbox.store import conversations, messages, triage
from inbox.store import schema as t
from inbox.types import ConversationStatus, IdentityKind
from tests.store import seed


async def test_untriaged_lists_flagged_messages_oldest_first(store):
    cid = await seed.conversation(store, await seed.contact(store))
    old = await seed.message(store, cid, needs_triage=True, created_at=seed.at(1))
    await seed.message(store, cid, needs_triage=False)
    young = await seed.message(store, cid, needs_triage=True, created_at=seed.at(10))
    assert await store.read(lambda c: triage.untriaged(c)) == [old, young]
    assert await store.read(lambda c: triage.untriaged(c, seed.at(5))) == [old]


async def test_load_reads_a_batch_with_conversations_contacts_and_the_inbound_facts(store):
    ann = await seed.contact(store, "Ann", [("email", "ann@example.com"), ("phone", "+15550100")])
    cid = await seed.conversation(store, ann, inbox="sales", subject="Order", tags=["t"])
    meta = {"in_reply_to": "<p@x>", "references": ["<r@x>"], "auto_submitted": True,
            "inbox": "sales", "provider": {"spam": 1}}  # fmt: skip
    first = await seed.message(store, cid, external_id="<a@x>", needs_triage=True, meta=meta)
    second = await seed.message(store, cid, external_id="<b@x>", needs_triage=True)
    done = await seed.message(store, cid, needs_triage=False)
    loaded = await store.read(lambda c: triage.load(c, [second, first, done, 999]))
    assert [item.message.id for item in loaded] == [first, second]
    one = loaded[0]
    assert one.conversation.id == cid and one.conversation.tags == ("t",)
    assert one.conversation.created_at == seed.T0
    assert one.contact.id == ann and one.contact.identity(IdentityKind.PHONE) == "+15550100"
    assert one.first_message and not loaded[1].first_message
    assert one.inbound.sender == "ann@example.com" and one.inbound.display_name == "Ann"
    assert one.inbound.external_id == "<a@x>" and one.inbound.inbox == "sales"
    assert one.inbound.in_reply_to == "<p@x>" and one.inbound.references == ("<r@x>",)
    assert one.inbound.auto_submitted and dict(one.inbound.metadata) == {"spam": 1}
    assert await store.read(lambda c: triage.load(c, [done])) == []


def _plan(**kw):
    seen = []

    def plan(state):
        seen.append(state)
        return triage.Settlement(triage={"rule": "r"}, priority=kw.pop("priority", "high"), **kw)

    return plan, seen


async def test_settle_queues_keeps_the_first_wait_and_merges_nothing_unasked(store):
    cid = await seed.conversation(
        store,
        await seed.contact(store),
        required_skills=["a"],
        tags=["x"],
        waiting_since=seed.at(1),
    )
    mid = await seed.message(store, cid, needs_triage=True)
    plan, seen = _plan(queued=True)
    settled = await store.write(lambda c: triage.settle(c, [(mid, plan)], seed.at(9)))
    assert [(s.message_id, s.conversation_id, s.reply_id) for s in settled] == [(mid, cid, None)]
    assert seen == [triage.State(cid, "normal", ("a",), ("x",), None, "open", seed.at(1))]
    conv = await store.read(lambda c: conversations.get(c, cid))
    assert conv.priority == "high" and conv.waiting_since == seed.at(1)
    assert conv.required_skills == ("a",) and conv.tags == ("x",)
    assert await store.read(lambda c: conversations.triage_of(c, cid)) == {"rule": "r"}
    assert (await seed.row(store, t.messages, mid))["needs_triage"] is False
    # claimed already: nothing is settled twice
    plan, seen = _plan(resolved=True)
    assert await store.write(lambda c: triage.settle(c, [(mid, plan)], seed.at(10))) == []
    assert seen == []


async def test_settle_resolves_with_an_automatic_answer(store):
    cid = await seed.conversation(store, await seed.contact(store), waiting_since=seed.at(1))
    mid = await seed.message(store, cid, needs_triage=True)
    plan, _ = _plan(
        reply=Reply("Here you go", subject="Re: Order"),
        resolved=True,
        skills=("billing",),
        tags=("faq",),
    )
    (done,) = await store.write(lambda c: triage.settle(c, [(mid, plan)], seed.at(3)))
    assert done.reply_id is not None
    answer = await store.read(lambda c: messages.get(c, done.reply_id))
    assert answer.text == "Here you go" and answer.subject == "Re: Order"
    assert answer.author_kind.value == "bot"
    assert (await seed.row(store, t.outbox, done.reply_id, key="message_id"))["status"] == "pending"
    conv = await store.read(lambda c: conversations.get(c, cid))
    assert conv.status is ConversationStatus.RESOLVED and conv.resolved_at == seed.at(3)
    assert conv.waiting_since is None
    assert conv.required_skills == ("billing",) and conv.tags == ("faq",)


@pytest.mark.parametrize("waited", [None, 2])
async def test_settle_queues_from_now_when_it_never_waited(store, waited):
    since = None if waited is None else seed.at(waited)
    cid = await seed.conversation(store, await seed.contact(store), waiting_since=since)
    mid = await seed.message(store, cid, needs_triage=True)
    plan, _ = _plan(queued=True)
    await store.write(lambda c: triage.settle(c, [(mid, plan)], seed.at(7)))
    conv = await store.read(lambda c: conversations.get(c, cid))
    assert conv.waiting_since == (since or seed.at(7)) and conv.status is ConversationStatus.OPEN
