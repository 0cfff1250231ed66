"""The case sweeper (`inbox.sweeper`) on a real store (SQLite and PostgreSQL), a real bus and
a fake clock: a snooze ends and the conversation goes back to the queue, a solved one
closes after `auto_close_after`, an SLA clock warns and then breaches (priority raised,
escalated); each fired once, with two sweepers too, and after a restart from the rows."""

from __future__ import annotations

import asyncio
import functools
from datetime import timedelta

import pytest

from inbox.actions import run_case_op
from inbox.cases import Actor, CaseStatus, claim, set_status
from inbox.events import Event, EventName
from inbox.store import cases as repo
from inbox.store.backends import open_store
from inbox.sweeper import CaseSweeper
from tests.store.factories import POLICIES, T0, H, agent, conversation, row
from tests.store.test_cases_repo import with_clocks


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self):
        return self.now


@pytest.fixture
def heard(bus):
    events: list[Event] = []

    async def on_event(event: Event) -> None:
        events.append(event)

    bus.subscribe("*", on_event)
    return events


def names(events) -> list[str]:
    return [e.name for e in events]


async def claimed(store, bus, clock) -> tuple[int, int]:
    ann = await store.write(agent)
    cid = await store.write(conversation)

    def op(case, *, actor, at, policies):
        return claim(case, ann, at=at, policies=policies)

    await run_case_op(store, bus, POLICIES, cid, op, Actor.agent(ann), clock=clock)
    return ann, cid


async def status(store, bus, clock, cid, ann, to, until=None):
    op = functools.partial(set_status, to=to, until=until)
    return await run_case_op(store, bus, POLICIES, cid, op, Actor.agent(ann), clock=clock)


async def test_a_snooze_ends_once_and_the_conversation_waits_in_the_queue(store, bus, heard):
    clock = Clock()
    ann, cid = await claimed(store, bus, clock)
    await status(store, bus, clock, cid, ann, CaseStatus.SNOOZED, until=T0 + 2 * H)
    sweeper = CaseSweeper(store, bus, POLICIES, clock=clock)
    clock.now = T0 + 2 * H - timedelta(seconds=1)
    assert await sweeper.sweep() == []
    await bus.drain()
    heard.clear()

    clock.now = T0 + 2 * H
    [change] = await sweeper.sweep()
    await bus.drain()
    assert change.case.status is CaseStatus.OPEN and change.case.assignee_id is None
    assert EventName.CONVERSATION_QUEUED in names(heard)
    queued = next(e for e in heard if e.name == EventName.CONVERSATION_QUEUED)
    assert queued.data["reason"] == "snooze ended"
    raw = await store.read(lambda conn: row(conn, cid))
    assert (raw.status, raw.assignee_id, raw.waiting_since) == ("open", None, T0 + 2 * H)
    assert raw.wake_at is None
    heard.clear()
    assert await sweeper.sweep() == []  # fired once
    assert await CaseSweeper(store, bus, POLICIES, clock=clock).sweep() == []
    await bus.drain()
    assert heard == []


async def test_a_solved_conversation_closes_after_auto_close_after(store, bus, heard):
    clock = Clock()
    ann, cid = await claimed(store, bus, clock)
    clock.now = T0 + H
    await status(store, bus, clock, cid, ann, CaseStatus.SOLVED)
    sweeper = CaseSweeper(store, bus, POLICIES, clock=clock)
    clock.now = T0 + H + timedelta(days=4) - timedelta(seconds=1)
    assert await sweeper.sweep() == []
    clock.now = T0 + H + timedelta(days=4)
    await bus.drain()
    heard.clear()
    [change] = await sweeper.sweep()
    await bus.drain()
    assert change.case.status is CaseStatus.CLOSED
    changed = [e for e in heard if e.name == EventName.CONVERSATION_STATUS_CHANGED]
    assert [(e.data["previous_status"], e.data["status"]) for e in changed] == [
        ("resolved", "closed")
    ]
    assert (await store.read(lambda conn: row(conn, cid))).status == "closed"
    assert await sweeper.sweep() == []


async def test_an_sla_warns_then_breaches_and_escalates(store, bus, heard):
    clock = Clock()
    cid = await store.write(conversation)  # high: first response due in 1 h, warned at 0.8 h
    await with_clocks(store, cid)
    sweeper = CaseSweeper(store, bus, POLICIES, clock=clock)
    clock.now = T0 + 0.8 * H
    [warned] = await sweeper.sweep()
    await bus.drain()
    assert names(heard) == [EventName.SLA_WARNING, EventName.ACTIVITY_APPENDED]
    assert not warned.case.escalated
    heard.clear()

    clock.now = T0 + H
    [breached] = await sweeper.sweep()
    await bus.drain()
    assert breached.case.escalated and breached.case.priority == "urgent"
    assert {
        EventName.SLA_BREACHED,
        EventName.CONVERSATION_ESCALATED,
        EventName.CONVERSATION_PRIORITY_CHANGED,
    } <= set(names(heard))
    listed = await store.read(repo.escalated)
    assert [c.id for c in listed] == [cid]
    raw = await store.read(lambda conn: row(conn, cid))
    assert (raw.sla_state, raw.escalated, raw.priority) == ("breached", True, "urgent")
    heard.clear()
    clock.now = T0 + 2 * H
    assert await sweeper.sweep() == []  # the breach is not fired twice
    await bus.drain()
    assert EventName.SLA_BREACHED not in names(heard)


async def test_two_sweepers_at_once_fire_each_change_once(store, bus, heard):
    clock = Clock()
    ids = []
    for _ in range(5):
        cid = await store.write(conversation)
        await with_clocks(store, cid)
        ids.append(cid)
    clock.now = T0 + H
    one = CaseSweeper(store, bus, POLICIES, clock=clock)
    two = CaseSweeper(store, bus, POLICIES, clock=clock)
    a, b = await asyncio.gather(one.sweep(), two.sweep())
    await bus.drain()
    assert sorted(c.case.id for c in [*a, *b]) == ids
    breaches = [e.data["conversation_id"] for e in heard if e.name == EventName.SLA_BREACHED]
    assert sorted(breaches) == ids


async def test_what_came_due_while_stopped_fires_on_the_first_pass_after_a_restart(
    store, bus, heard
):
    clock = Clock()
    ann, cid = await claimed(store, bus, clock)
    await status(store, bus, clock, cid, ann, CaseStatus.SNOOZED, until=T0 + H)
    again = open_store(store.url)
    await again.start()
    try:
        clock.now = T0 + 3 * H
        [change] = await CaseSweeper(again, bus, POLICIES, clock=clock).sweep()
        assert change.case.status is CaseStatus.OPEN
    finally:
        await again.close()


async def test_a_row_due_for_nothing_is_rescheduled_not_swept_again(store, bus, heard):
    cid = await store.write(lambda conn: conversation(conn, wake_at=T0))
    clock = Clock()
    clock.now = T0 + H
    sweeper = CaseSweeper(store, bus, POLICIES, clock=clock)
    assert await sweeper.sweep() == []
    raw = await store.read(lambda conn: row(conn, cid))
    assert (raw.wake_at, raw.version) == (None, 0)
    assert await store.write(lambda conn: repo.due_ids(conn, clock.now)) == []


async def test_started_it_sweeps_until_stopped(store, bus, heard):
    clock = Clock()
    ann, cid = await claimed(store, bus, clock)
    await status(store, bus, clock, cid, ann, CaseStatus.SNOOZED, until=T0 + H)
    sweeper = CaseSweeper(store, bus, POLICIES, clock=clock, max_sleep=0.05)
    sweeper.start()
    try:
        clock.now = T0 + H
        for _ in range(200):
            if (await store.read(lambda conn: row(conn, cid))).status == "open":
                break
            await asyncio.sleep(0.02)
        assert (await store.read(lambda conn: row(conn, cid))).status == "open"
    finally:
        await sweeper.stop()
