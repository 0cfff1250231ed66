"""The rule actions `queue` and `assign_to` do what they say: a real engine decides, the
pipeline moves the conversation through the case core in the triage transaction, the
activity log names the rule, and the router sees the conversation in its new queue."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from inbox.bus.backends import MemoryBus
from inbox.cases import ActorKind, CasePolicies, ChangeKind
from inbox.events import Event, EventName
from inbox.ingest import Ingestor
from inbox.pipeline import Pipeline
from inbox.store import cases, router_rows
from inbox.types import Channel, InboundMessage
from routing import store as routing_store
from tests.autoreply.factories import make_engine
from tests.store import seed

RULES = """
[[rule]]
name = "billing-queue"
when = { text_any = ["invoice"] }
then = { queue = "billing" }

[[rule]]
name = "vip-queue"
when = { text_any = ["vip"] }
then = { queue = "vip" }

[[rule]]
name = "to-ann"
when = { text_any = ["ann please"] }
then = { assign_to = "ann@example.com" }

[[rule]]
name = "to-gone"
when = { text_any = ["gone please"] }
then = { assign_to = "gone@example.com" }

[[rule]]
name = "to-team"
when = { text_any = ["escalate"] }
then = { assign_to = "vip" }
"""


@pytest.fixture
async def world(store):
    bus = MemoryBus()
    engine = make_engine(RULES)
    pipeline = Pipeline(store, bus, engine, policies=CasePolicies(), inboxes=("default", "billing"))
    pipeline.attach()
    ingest = Ingestor(store, bus)
    events: list[Event] = []

    async def record(event: Event) -> None:
        events.append(event)

    bus.subscribe("*", record)

    async def send(text: str, external_id: str) -> int:
        message = InboundMessage(
            channel=Channel.EMAIL,
            external_id=external_id,
            sender=f"{external_id}@customer.test",
            text=text,
            subject="Hello",
            received_at=datetime.now(UTC),
        )
        result = await ingest(message)
        for _ in range(3):
            await ingest.idle()
            await bus.drain()
            await pipeline.idle()
            await bus.drain()
        return result.conversation_id

    yield send, events
    await pipeline.close()
    await ingest.close()


def _by_rule(entries, kind: ChangeKind):
    return [(e.actor.kind, e.actor.id, e.before, e.after) for e in entries if e.kind is kind]


def _queued(events: list[Event], cid: int) -> list[Event]:
    return [
        e
        for e in events
        if e.name == EventName.CONVERSATION_QUEUED and e.data["conversation_id"] == cid
    ]


async def test_queue_naming_an_inbox_moves_the_conversation_there(store, world):
    send, events = world
    cid = await send("where is my invoice", "m1")
    case = await store.read(lambda c: cases.load_case(c, cid))
    assert case.inbox == "billing" and case.assignee_id is None and case.waiting
    timeline = await store.read(lambda c: cases.timeline(c, cid))
    assert _by_rule(timeline, ChangeKind.INBOX) == [
        (ActorKind.RULE, "billing-queue", "default", "billing")
    ]
    assert len(_queued(events, cid)) == 1
    row = routing_store.conv_row(
        (await store.read(lambda c: router_rows.conversations(c, [cid])))[cid]
    )
    assert "team:billing" in row.skills


async def test_queue_naming_a_team_routes_to_that_team(store, world):
    send, events = world
    cid = await send("a vip here", "m2")
    case = await store.read(lambda c: cases.load_case(c, cid))
    assert (case.inbox, case.team) == ("default", "vip") and case.waiting
    timeline = await store.read(lambda c: cases.timeline(c, cid))
    assert _by_rule(timeline, ChangeKind.TEAM) == [(ActorKind.RULE, "vip-queue", None, "vip")]
    row = routing_store.conv_row(
        (await store.read(lambda c: router_rows.conversations(c, [cid])))[cid]
    )
    assert "team:vip" in row.skills and "team:default" not in row.skills
    assert len(_queued(events, cid)) == 1


async def test_assign_to_an_agent_offers_it_to_that_agent(store, world):
    send, events = world
    ann = await seed.agent(store, "Ann", teams=["default"])
    cid = await send("ann please help", "m3")
    case = await store.read(lambda c: cases.load_case(c, cid))
    assert case.assignee_id == ann and case.accepted_at is None  # an offer
    timeline = await store.read(lambda c: cases.timeline(c, cid))
    assert _by_rule(timeline, ChangeKind.ASSIGNEE) == [(ActorKind.RULE, "to-ann", None, ann)]
    assigned = [e for e in events if e.name == EventName.CONVERSATION_ASSIGNED]
    assert [e.data["agent_id"] for e in assigned] == [ann]
    assert _queued(events, cid) == []  # it went to Ann, not to the queue


async def test_assign_to_an_unknown_or_disabled_agent_leaves_it_queued(store, world):
    send, events = world
    await seed.agent(store, "Gone", active=False)
    cid = await send("gone please", "m4")
    case = await store.read(lambda c: cases.load_case(c, cid))
    assert case.assignee_id is None and case.waiting and case.inbox == "default"
    assert len(_queued(events, cid)) == 1


async def test_assign_to_a_team_transfers_to_the_team(store, world):
    send, _events = world
    cid = await send("please escalate", "m5")
    case = await store.read(lambda c: cases.load_case(c, cid))
    assert case.team == "vip" and case.waiting
    timeline = await store.read(lambda c: cases.timeline(c, cid))
    assert _by_rule(timeline, ChangeKind.TEAM) == [(ActorKind.RULE, "to-team", None, "vip")]
