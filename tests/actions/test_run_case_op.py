"""`inbox.actions.run_case_op` on a real store (SQLite and PostgreSQL) and a real bus: an
operation of the case core is read, applied, written with its activity entries and
announced after the commit; a refusal writes and announces nothing; of two agents
claiming at once one wins and the other is told who has the conversation, also when the
loser's write has to wait for the winner's lock and read again (PostgreSQL)."""

from __future__ import annotations

import asyncio
import functools
import logging

import pytest

from inbox.actions import run_case_op
from inbox.bus.backends import RedisBus
from inbox.cases import Actor, CaseStatus, claim, set_priority, set_status
from inbox.cases.due import summary
from inbox.errors import Conflict, NotFound
from inbox.events import Event, EventName
from inbox.store import cases as repo
from tests.redis_server import RedisServer, own_redis  # noqa: F401 (a fixture)
from tests.store.factories import POLICIES, T0, H, agent, conversation
from tests.store.test_cases_repo import wait_for_a_lock_wait


def clock():
    return T0 + H


def claim_by(agent_id: int):
    """`claim` as a CaseOp (the agent is its own actor)."""

    def op(case, *, actor, at, policies):
        return claim(case, agent_id, at=at, policies=policies)

    return op


def status(to: CaseStatus, reason: str | None = None):
    return functools.partial(set_status, to=to, reason=reason)


class Heard:
    """Every event a bus delivers, with the conversation's status as stored when the
    handler ran (so: whether the change was committed before it was announced)."""

    def __init__(self, bus, store) -> None:
        self.events: list[Event] = []
        self.stored: list[str] = []
        self.store = store
        bus.subscribe("*", self.on_event)

    async def on_event(self, event: Event) -> None:
        self.events.append(event)
        cid = event.data["conversation_id"]
        case = await self.store.read(lambda conn: repo.load_case(conn, cid))
        self.stored.append(repo.stored_status(case.status))

    def names(self) -> list[str]:
        return [e.name for e in self.events]


async def run(store, bus, cid, op, actor):
    return await run_case_op(store, bus, POLICIES, cid, op, actor, clock=clock)


async def test_an_action_is_written_logged_and_announced_after_its_commit(store, bus):
    heard = Heard(bus, store)
    ann = await store.write(agent)
    cid = await store.write(conversation)
    change = await run(
        store, bus, cid, status(CaseStatus.PENDING, "asked for logs"), Actor.agent(ann)
    )
    await bus.drain()
    assert change.case.status is CaseStatus.PENDING and change.case.version == 1
    assert await store.read(lambda conn: repo.load_case(conn, cid)) == change.case
    timeline = await store.read(lambda conn: repo.timeline(conn, cid))
    assert timeline == list(change.entries) and timeline[0].actor == Actor.agent(ann)
    assert heard.names() == [EventName.CONVERSATION_STATUS_CHANGED, EventName.ACTIVITY_APPENDED]
    assert dict(heard.events[0].data) == {
        "conversation_id": cid,
        "status": "pending",
        "previous_status": "open",
        "reason": "asked for logs",
    }
    assert dict(heard.events[1].data) == {"conversation_id": cid, "kinds": ["status"]}
    assert heard.stored == ["pending", "pending"]  # committed before announced
    assert all(e.at == T0 + H for e in heard.events)


async def test_solving_is_announced_as_resolved_and_lets_the_agent_go(store, bus):
    heard = Heard(bus, store)
    ann = await store.write(agent)
    cid = await store.write(conversation)
    await run(store, bus, cid, claim_by(ann), Actor.agent(ann))
    await bus.drain()
    assert heard.names() == [
        EventName.CONVERSATION_ASSIGNED,
        EventName.CONVERSATION_UPDATED,  # accepted
        EventName.ACTIVITY_APPENDED,
    ]
    heard.events.clear()
    await run(store, bus, cid, status(CaseStatus.SOLVED), Actor.agent(ann))
    await bus.drain()
    assert heard.names() == [
        EventName.CONVERSATION_STATUS_CHANGED,
        EventName.CONVERSATION_RESOLVED,
        EventName.CONVERSATION_UNASSIGNED,
        EventName.CONVERSATION_UPDATED,  # no longer accepted by anyone
        EventName.ACTIVITY_APPENDED,
    ]
    data = [dict(e.data) for e in heard.events]
    assert data[0]["status"] == "resolved" and data[0]["previous_status"] == "open"
    assert data[1] == {"conversation_id": cid, "agent_id": ann}
    assert data[2] == {"conversation_id": cid, "agent_id": ann, "reason": "solved"}
    assert data[4]["kinds"] == ["status", "assignee"]

    heard.events.clear()
    await run(store, bus, cid, status(CaseStatus.OPEN, "not fixed"), Actor.agent(ann))
    await bus.drain()
    assert heard.names() == [
        EventName.CONVERSATION_STATUS_CHANGED,
        EventName.CONVERSATION_REOPENED,
        EventName.CONVERSATION_QUEUED,  # back to the queue: nobody holds it
        EventName.ACTIVITY_APPENDED,
    ]
    assert heard.events[2].data["reason"] == "not fixed"


async def test_a_refusal_writes_nothing_and_announces_nothing(store, bus):
    heard = Heard(bus, store)
    ann = await store.write(agent)
    cid = await store.write(lambda conn: conversation(conn, status="closed"))
    with pytest.raises(Conflict, match="closed conversation never changes"):
        await run(store, bus, cid, status(CaseStatus.OPEN), Actor.agent(ann))
    with pytest.raises(NotFound):
        await run(store, bus, cid + 1000, status(CaseStatus.OPEN), Actor.agent(ann))
    await bus.drain()
    assert heard.events == []
    assert (await store.read(lambda conn: repo.load_case(conn, cid))).version == 0
    assert await store.read(lambda conn: repo.timeline(conn, cid)) == []


async def test_of_two_agents_claiming_at_once_one_wins_and_the_other_is_told_who(store, bus):
    heard = Heard(bus, store)
    ann, bob = await store.write(agent), await store.write(lambda conn: agent(conn, "Bob"))
    cid = await store.write(conversation)
    results = await asyncio.gather(
        run(store, bus, cid, claim_by(ann), Actor.agent(ann)),
        run(store, bus, cid, claim_by(bob), Actor.agent(bob)),
        return_exceptions=True,
    )
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert len(won) == 1 and len(lost) == 1 and isinstance(lost[0], Conflict)
    winner = won[0].case.assignee_id
    assert str(lost[0]) == f"agent {winner} already has this conversation"
    stored = await store.read(lambda conn: repo.load_case(conn, cid))
    assert stored.assignee_id == winner and stored.version == 1
    await bus.drain()
    assigned = [e for e in heard.events if e.name == EventName.CONVERSATION_ASSIGNED]
    assert [e.data["agent_id"] for e in assigned] == [winner]


@pytest.mark.parametrize(
    "store", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_a_lost_race_is_read_again_and_refused_with_the_reason(store, bus):
    """The loser's UPDATE waits for the winner's row lock, then changes no row; it reads
    the case again and the core refuses, naming the holder."""
    ann, bob = await store.write(agent), await store.write(lambda conn: agent(conn, "Bob"))
    cid = await store.write(conversation)
    loser = await _behind_a_held_lock(
        store, cid, claim_by(ann), run(store, bus, cid, claim_by(bob), Actor.agent(bob))
    )
    with pytest.raises(Conflict, match=f"agent {ann} already has this conversation"):
        await loser
    stored = await store.read(lambda conn: repo.load_case(conn, cid))
    assert stored.assignee_id == ann and stored.version == 1


@pytest.mark.parametrize(
    "store", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_a_lost_race_that_still_applies_is_written_over_the_new_version(store, bus):
    ann = await store.write(agent)
    cid = await store.write(conversation)

    def priority(case, *, actor, at, policies):
        return set_priority(case, "normal", actor=actor, at=at, policies=policies, reason="calm")

    loser = await _behind_a_held_lock(
        store, cid, priority, run(store, bus, cid, status(CaseStatus.PENDING), Actor.agent(ann))
    )
    change = await loser
    assert change.before.version == 1 and change.case.version == 2
    stored = await store.read(lambda conn: repo.load_case(conn, cid))
    assert (stored.priority, stored.status, stored.version) == ("normal", CaseStatus.PENDING, 2)
    kinds = [e.kind.value for e in await store.read(lambda conn: repo.timeline(conn, cid))]
    assert kinds == ["priority", "status"]


async def _behind_a_held_lock(store, cid, first_op, second):
    """Write `first_op`'s change on a connection of its own and hold it uncommitted; start
    `second` (a run_case_op) and let it read the old version and wait for the lock; then
    commit the first. Returns the task of the second."""
    async with store.engine.connect() as holder:
        await holder.begin()

        def first(conn):
            case = repo.load_case(conn, cid)
            change = first_op(case, actor=Actor.agent(1), at=T0, policies=POLICIES)
            return repo.save_change(conn, change, summary(change.case, T0, POLICIES), at=T0)

        assert await holder.run_sync(first)
        task = asyncio.create_task(second)
        await wait_for_a_lock_wait(store)
        assert not task.done()
        await holder.commit()
    return task


@pytest.mark.redis
async def test_events_reach_another_process_over_redis(store, redis_url):
    mine, theirs = RedisBus(redis_url), RedisBus(redis_url)
    await mine.start()
    await theirs.start()
    try:
        heard = Heard(theirs, store)
        ann = await store.write(agent)
        cid = await store.write(conversation)
        await run(store, mine, cid, status(CaseStatus.ON_HOLD), Actor.agent(ann))
        for _ in range(200):
            if len(heard.events) == 2:
                break
            await asyncio.sleep(0.01)
        assert heard.names() == [
            EventName.CONVERSATION_STATUS_CHANGED,
            EventName.ACTIVITY_APPENDED,
        ]
        assert heard.events[0].data["status"] == "on_hold"
    finally:
        await mine.close()
        await theirs.close()


@pytest.mark.redis
async def test_a_bus_that_is_away_does_not_undo_the_commit(
    store,
    own_redis: RedisServer,  # noqa: F811
    caplog,
):
    """The change stands and the caller gets it; listeners catch up when the bus resumes."""
    bus = RedisBus(own_redis.url(3))
    await bus.start()
    try:
        own_redis.kill()
        ann = await store.write(agent)
        cid = await store.write(conversation)
        with caplog.at_level(logging.WARNING, "omnidesk.actions"):
            change = await run(store, bus, cid, status(CaseStatus.PENDING), Actor.agent(ann))
        assert "case change committed, not announced" in caplog.text
        stored = await store.read(lambda conn: repo.load_case(conn, cid))
        assert stored == change.case and stored.status is CaseStatus.PENDING
    finally:
        await bus.close()
