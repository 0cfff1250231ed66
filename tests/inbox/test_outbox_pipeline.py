"""Triage and the outbox: decisions stored with the conversation, auto-replies delivered
once, retries with backoff, permanent failures visible, crash recovery of untriaged mail."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from inbox.bus.backends import MemoryBus
from inbox.errors import DeliveryError, PermanentDeliveryError
from inbox.events import Event, EventName
from inbox.ingest import Ingestor
from inbox.outbox.durable import OutboxWorker
from inbox.pipeline import Pipeline
from inbox.ports import Outbound, Reply, TriageDecision
from inbox.store import conversations, messages
from inbox.store import schema as t
from inbox.store.outbox import enqueue, record_delivery
from inbox.types import AuthorKind, Channel, ConversationStatus, DeliveryStatus, InboundMessage


class RecordingSender:
    """A channel sender like any other, that keeps what it was asked to send."""

    def __init__(self, channel: str = "email", fail: list[Exception] | None = None) -> None:
        self.channel = channel
        self.sent: list[Outbound] = []
        self.fail = list(fail or [])

    async def send(self, item: Outbound) -> str:
        if self.fail:
            raise self.fail.pop(0)
        self.sent.append(item)
        return f"<sent-{item.message_id}@test>"


class KeywordTriage:
    """A small Triage: answers 'order', resolves 'thanks', tags 'refund' for billing."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, bool | None]] = []

    def decide(self, message, conversation, contact, now, *, inbound=None, first_message=None):
        self.calls.append((message.id, first_message))
        text = message.text.lower()
        if inbound is not None and inbound.auto_submitted:
            return TriageDecision(suppressed="auto-submitted")
        if "order" in text:
            return TriageDecision(
                rule="order",
                reasons=("said order",),
                reply=Reply(text="Track it here", subject="Re: order"),
            )
        if "thanks" in text:
            return TriageDecision(rule="thanks", resolve=True)
        if "refund" in text:
            return TriageDecision(
                rule="refund", skills=("billing",), tags=("refund",), priority="high"
            )
        if text == "agent":
            return TriageDecision(rule="handoff", handoff=True)
        if text == "a person please":
            # as the auto-answer engine decides a handoff: the raised priority is in it
            return TriageDecision(rule="handoff", handoff=True, priority="high")
        raise RuntimeError("broken rule")


def inbound(external_id: str, text: str, sender: str = "ann@example.com", **kw) -> InboundMessage:
    return InboundMessage(
        channel=Channel.EMAIL,
        external_id=external_id,
        sender=sender,
        text=text,
        subject="Hello",
        received_at=datetime.now(UTC),
        **kw,
    )


@pytest.fixture
async def world(store):
    bus = MemoryBus()
    sender = RecordingSender()
    worker = OutboxWorker(store, bus, {"email": sender}, poll_interval=0.05)
    triage = KeywordTriage()
    pipeline = Pipeline(store, bus, triage, on_outbound=worker.poke)
    pipeline.attach()
    ingest = Ingestor(store, bus)
    events: list[Event] = []

    async def record(event: Event) -> None:
        events.append(event)

    bus.subscribe("*", record)

    class World:
        pass

    w = World()
    w.store, w.bus, w.sender, w.worker, w.triage, w.pipeline, w.ingest, w.events = (
        store,
        bus,
        sender,
        worker,
        triage,
        pipeline,
        ingest,
        events,
    )

    async def settle() -> None:
        for _ in range(3):
            await ingest.idle()
            await bus.drain()
            await pipeline.idle()
            await bus.drain()

    w.settle = settle
    yield w
    await worker.stop()
    await pipeline.close()
    await ingest.close()
    await bus.close()


async def test_auto_reply_is_stored_then_delivered_once(world):
    r = await world.ingest(inbound("<o1@x>", "where is my order"))
    await world.settle()
    assert world.triage.calls == [(r.message_id, True)]
    conv = await world.store.read(lambda c: conversations.get(c, r.conversation_id))
    triage = await world.store.read(
        lambda c: c.execute(
            sa.select(t.conversations.c.triage).where(t.conversations.c.id == r.conversation_id)
        ).scalar_one()
    )
    assert triage["rule"] == "order" and triage["reasons"] == ["said order"]
    assert conv.status is ConversationStatus.OPEN  # answered, still waiting for a person
    assert await world.worker.run_once() == 1
    assert await world.worker.run_once() == 0
    assert len(world.sender.sent) == 1
    item = world.sender.sent[0]
    assert item.to == "ann@example.com" and item.auto_reply and item.in_reply_to == "<o1@x>"
    msgs = await world.store.read(lambda c: messages.of_conversation(c, r.conversation_id))
    assert [m.delivery_status for m in msgs] == [DeliveryStatus.RECEIVED, DeliveryStatus.SENT]
    assert msgs[1].author_kind is AuthorKind.BOT
    # a second message in the same conversation is not the first any more
    await world.ingest(inbound("<o2@x>", "thanks", in_reply_to="<o1@x>"))
    await world.settle()
    assert world.triage.calls[-1][1] is False
    conv = await world.store.read(lambda c: conversations.get(c, r.conversation_id))
    assert conv.status is ConversationStatus.RESOLVED
    assert EventName.CONVERSATION_RESOLVED in [e.name for e in world.events]


async def test_decision_sets_priority_skills_tags_and_queues(world):
    r = await world.ingest(inbound("<r1@x>", "I want a refund"))
    await world.settle()
    conv = await world.store.read(lambda c: conversations.get(c, r.conversation_id))
    assert (conv.priority, conv.required_skills, conv.tags) == ("high", ("billing",), ("refund",))
    assert conv.waiting_since is not None
    queued = [e for e in world.events if e.name == EventName.CONVERSATION_QUEUED]
    assert queued and queued[0].data["conversation_id"] == r.conversation_id


async def test_handoff_raises_priority(world):
    r = await world.ingest(inbound("<h1@x>", "agent"))
    await world.settle()
    conv = await world.store.read(lambda c: conversations.get(c, r.conversation_id))
    assert conv.priority == "high"  # one level above normal


async def test_a_handoff_that_names_its_priority_is_raised_once(world):
    # the engine already raised normal to high: the pipeline must not raise it again (urgent)
    r = await world.ingest(inbound("<h2@x>", "a person please"))
    await world.settle()
    conv = await world.store.read(lambda c: conversations.get(c, r.conversation_id))
    assert conv.priority == "high"


async def test_a_broken_rule_routes_to_a_person_and_loses_nothing(world):
    r = await world.ingest(inbound("<b1@x>", "something odd"))
    await world.settle()
    conv = await world.store.read(lambda c: conversations.get(c, r.conversation_id))
    assert conv.waiting_since is not None and conv.status is ConversationStatus.OPEN


async def test_untriaged_messages_are_recovered_after_a_crash(store):
    bus = MemoryBus()
    ingest = Ingestor(store, bus)  # no pipeline attached: as if we died right after commit
    r = await ingest(inbound("<c1@x>", "where is my order"))
    await ingest.close()
    triage = KeywordTriage()
    pipeline = Pipeline(store, bus, triage)
    assert await pipeline.recover() == 1
    assert await pipeline.recover() == 0  # exactly once
    assert [c[0] for c in triage.calls] == [r.message_id]
    jobs = await store.read(
        lambda c: c.execute(sa.select(sa.func.count()).select_from(t.outbox)).scalar_one()
    )
    assert jobs == 1
    await bus.close()


async def test_retry_then_permanent_failure_is_visible(world):
    world.sender.fail = [DeliveryError("relay busy")]
    r = await world.ingest(inbound("<f1@x>", "order status?"))
    await world.settle()
    assert await world.worker.run_once() == 1
    job = await world.store.read(lambda c: c.execute(sa.select(t.outbox)).mappings().one())
    assert job["status"] == "pending" and job["attempts"] == 1 and job["last_error"] == "relay busy"
    assert job["next_attempt_at"] > datetime.now(UTC)  # backoff
    assert await world.worker.run_once() == 0  # not due yet
    await world.store.write(
        lambda c: c.execute(sa.update(t.outbox).values(next_attempt_at=datetime.now(UTC)))
    )
    world.sender.fail = [PermanentDeliveryError("550 no such user")]
    assert await world.worker.run_once() == 1
    msgs = await world.store.read(lambda c: messages.of_conversation(c, r.conversation_id))
    assert msgs[-1].delivery_status is DeliveryStatus.FAILED
    assert msgs[-1].failure_reason == "550 no such user"
    assert world.sender.sent == []
    changed = [e for e in world.events if e.name == EventName.MESSAGE_DELIVERY_CHANGED]
    await world.bus.drain()
    changed = [e for e in world.events if e.name == EventName.MESSAGE_DELIVERY_CHANGED]
    assert changed[-1].data["status"] == "failed"


async def test_a_message_with_a_provider_id_is_never_sent_again(world):
    r = await world.ingest(inbound("<p1@x>", "hello there refund"))
    await world.settle()
    mid = await world.store.write(
        lambda c: enqueue(
            c,
            conversation_id=r.conversation_id,
            text="hi",
            author_kind=AuthorKind.AGENT,
            author_id=None,
        )
    )
    # a crashed worker sent it and recorded the id, but the job still looks pending
    await world.store.write(
        lambda c: c.execute(
            sa.update(t.messages).where(t.messages.c.id == mid).values(provider_id="<already@x>")
        )
    )
    assert await world.worker.run_once() == 1
    assert world.sender.sent == []
    status = await world.store.read(lambda c: c.execute(sa.select(t.outbox.c.status)).scalar_one())
    assert status == "done"


async def test_no_sender_or_no_address_fails_with_a_reason(world):
    r = await world.ingest(inbound("<n1@x>", "refund"))
    await world.settle()
    await world.store.write(
        lambda c: enqueue(
            c,
            conversation_id=r.conversation_id,
            text="by sms",
            author_kind=AuthorKind.AGENT,
            channel=Channel.SMS,
        )
    )
    await world.worker.run_once()
    msgs = await world.store.read(lambda c: messages.of_conversation(c, r.conversation_id))
    assert msgs[-1].delivery_status is DeliveryStatus.FAILED
    assert "no sender configured for channel sms" in msgs[-1].failure_reason


async def test_delivery_reports_only_move_forward(world):
    r = await world.ingest(inbound("<d1@x>", "order"))
    await world.settle()
    await world.worker.run_once()
    pid = world.sender.sent[0].message_id
    provider = f"<sent-{pid}@test>"
    assert (
        await world.store.write(lambda c: record_delivery(c, provider, DeliveryStatus.DELIVERED))
        is not None
    )
    assert (
        await world.store.write(lambda c: record_delivery(c, provider, DeliveryStatus.SENT)) is None
    )
    assert (
        await world.store.write(lambda c: record_delivery(c, "<unknown@x>", DeliveryStatus.SENT))
        is None
    )
    msg = await world.store.read(lambda c: messages.get(c, pid))
    assert (
        msg.delivery_status is DeliveryStatus.DELIVERED and r.conversation_id == msg.conversation_id
    )


def test_reply_route_answers_forms_by_email_and_api_by_what_it_has():
    from inbox.outbox.policy import reply_route
    from inbox.types import IdentityKind as K

    assert reply_route(Channel.FORM, [(K.EMAIL, "a@x.io")]) == (Channel.EMAIL, "a@x.io")
    assert reply_route(Channel.API, [(K.PHONE, "+15550001111")]) == (Channel.SMS, "+15550001111")
    assert reply_route(Channel.API, [(K.PHONE, "+1555"), (K.EMAIL, "b@x.io")]) == (
        Channel.EMAIL,
        "b@x.io",
    )
    assert reply_route(Channel.CHAT, [(K.EMAIL, "c@x.io"), (K.VISITOR, "v_12345678")]) == (
        Channel.CHAT,
        "v_12345678",
    )
    assert reply_route(Channel.SMS, [(K.EMAIL, "c@x.io")]) == (Channel.SMS, "")
