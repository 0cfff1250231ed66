"""The case repository (`inbox.store.cases`), one contract on SQLite and PostgreSQL: cases
read from rows, a change written only over the version it was read at (with its activity
entries, in the same transaction), the sweeper's reads, the timeline and the
supervisors' list; and of two changes from one read, exactly one is written."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from inbox.cases import (
    ActivityEntry,
    Actor,
    Case,
    CaseSla,
    CaseStatus,
    Change,
    ChangeKind,
    claim,
    escalate,
    set_priority,
    set_status,
    tick,
)
from inbox.cases.activity import ROUTER, SYSTEM
from inbox.cases.due import summary
from inbox.errors import NotFound
from inbox.store import cases as repo
from inbox.store import schema as t
from tests.store.factories import POLICIES, T0, H, agent, conversation, row

ANN = Actor.agent(1)


async def save(store, change, at=T0) -> bool:
    return await store.write(
        lambda conn: repo.save_change(conn, change, summary(change.case, at, POLICIES), at=at)
    )


async def load(store, cid: int) -> Case:
    return await store.read(lambda conn: repo.load_case(conn, cid))


async def with_clocks(store, cid: int) -> Case:
    """The case given its SLA clocks from T0 (as ingest opening it will), then read back."""
    case = await load(store, cid)
    targets = POLICIES.for_inbox(case.inbox).targets_for(case.priority)
    opened = dataclasses.replace(case, sla=CaseSla.opened(T0, targets))
    assert await save(store, Change(case, opened))
    return await load(store, cid)


async def test_a_conversation_stored_before_0007_reads_as_an_open_case_without_clocks(store):
    cid = await store.write(lambda conn: conversation(conn, inbox="sales", priority="normal"))
    case = await store.read(lambda conn: repo.load_case(conn, cid))
    assert (case.id, case.inbox, case.status, case.priority) == (cid, "sales", "open", "normal")
    assert case.version == 0 and not case.escalated and case.assignee_id is None
    assert case.sla.clocks == () and case.team is None and case.linked_to is None
    with pytest.raises(NotFound):
        await store.read(lambda conn: repo.load_case(conn, cid + 1000))
    many = await store.read(lambda conn: repo.load_cases(conn, [cid, cid + 1000, cid]))
    assert many == {cid: case}


async def test_a_change_is_written_with_its_summary_and_its_entries(store):
    cid = await store.write(conversation)
    case = await with_clocks(store, cid)
    assert case.version == 1 and [c.metric.value for c in case.sla] == [
        "first_response",
        "resolution",
    ]
    raw = await store.read(lambda conn: row(conn, cid))
    assert (raw.sla_due_at, raw.sla_state) == (T0 + H, "running")  # first response, high
    assert raw.wake_at == T0 + 0.8 * H  # its warning

    change = set_priority(
        case, "normal", actor=ANN, at=T0 + H / 2, policies=POLICIES, reason="calm"
    )
    assert await save(store, change, T0 + H / 2)
    stored = await load(store, cid)
    assert stored == dataclasses.replace(change.case, version=2)
    raw = await store.read(lambda conn: row(conn, cid))
    expected = summary(change.case, T0 + H / 2, POLICIES)
    assert (
        (raw.sla_due_at, raw.wake_at)
        == (expected.due_at, expected.wake_at)
        == (
            T0 + 4 * H,
            T0 + 3.2 * H,
        )
    )
    timeline = await store.read(lambda conn: repo.timeline(conn, cid))
    assert timeline == list(change.entries)
    assert [(e.kind, e.before, e.after, e.reason) for e in timeline] == [
        (ChangeKind.PRIORITY, "high", "normal", "calm")
    ]


async def test_solved_is_stored_as_resolved_and_read_back_as_solved(store):
    ann = await store.write(agent)
    cid = await store.write(conversation)
    assert await save(store, claim(await load(store, cid), ann, at=T0, policies=POLICIES))
    solved = set_status(
        await load(store, cid), CaseStatus.SOLVED, actor=Actor.agent(ann), at=T0 + H,
        policies=POLICIES,
    )  # fmt: skip
    assert await save(store, solved, T0 + H)
    raw = await store.read(lambda conn: row(conn, cid))
    assert raw.status == "resolved" and raw.resolved_at == T0 + H
    again = await store.read(lambda conn: repo.load_case(conn, cid))
    assert again.status is CaseStatus.SOLVED and again.solved_at == T0 + H
    assert repo.stored_status(CaseStatus.SOLVED) == "resolved"
    assert repo.case_status("resolved") is CaseStatus.SOLVED
    assert [repo.case_status(repo.stored_status(s)) for s in CaseStatus] == list(CaseStatus)


async def test_ownership_keeps_assigned_at_waiting_since_and_the_assignments_history(store):
    ann = await store.write(agent)
    cid = await store.write(conversation)
    claimed = claim(await load(store, cid), ann, at=T0 + H, policies=POLICIES)
    assert await save(store, claimed, T0 + H)
    raw = await store.read(lambda conn: row(conn, cid))
    assert (raw.assignee_id, raw.assigned_at, raw.accepted_at) == (ann, T0 + H, T0 + H)
    assert raw.waiting_since is None  # held: out of the queue

    by_ann = Actor.agent(ann)
    snoozed = set_status(
        await load(store, cid), CaseStatus.SNOOZED,
        actor=by_ann, at=T0 + 2 * H, policies=POLICIES, until=T0 + 5 * H,
    )  # fmt: skip
    assert await save(store, snoozed, T0 + 2 * H)
    raw = await store.read(lambda conn: row(conn, cid))
    assert (raw.status, raw.assignee_id, raw.assigned_at, raw.accepted_at) == (
        "snoozed", None, None, None,
    )  # fmt: skip
    assert raw.snoozed_until == T0 + 5 * H and raw.waiting_since is None
    assert raw.wake_at == T0 + 5 * H

    woken = tick(await load(store, cid), T0 + 5 * H, POLICIES)  # the sweeper's pass
    assert woken.case.status is CaseStatus.OPEN
    assert await save(store, woken, T0 + 5 * H)
    raw = await store.read(lambda conn: row(conn, cid))
    assert raw.status == "open" and raw.waiting_since == T0 + 5 * H  # queued again
    assert raw.snoozed_until is None and raw.wake_at is None

    a = t.assignments.c
    history = await store.read(
        lambda conn: conn.execute(
            sa.select(a.agent_id, a.reason, a.assigned_at, a.ended_at).where(
                a.conversation_id == cid
            )
        ).all()
    )
    assert [tuple(h) for h in history] == [(ann, "claimed", T0 + H, T0 + 2 * H)]


async def test_a_change_from_an_old_version_writes_nothing(store):
    cid = await store.write(conversation)
    case = await store.read(lambda conn: repo.load_case(conn, cid))
    first = set_status(case, CaseStatus.PENDING, actor=ANN, at=T0, policies=POLICIES)
    late = escalate(case, actor=ANN, at=T0, policies=POLICIES, note="help")
    assert await save(store, first)
    assert not await save(store, late)
    stored = await store.read(lambda conn: repo.load_case(conn, cid))
    assert stored.status is CaseStatus.PENDING and not stored.escalated and stored.version == 1
    kinds = [e.kind for e in await store.read(lambda conn: repo.timeline(conn, cid))]
    assert kinds == [ChangeKind.STATUS]


async def test_a_change_that_changes_nothing_writes_nothing(store):
    ann = await store.write(agent)
    cid = await store.write(conversation)
    case = await store.read(lambda conn: repo.load_case(conn, cid))
    claimed = claim(case, ann, at=T0, policies=POLICIES)
    assert await save(store, claimed)
    held = await store.read(lambda conn: repo.load_case(conn, cid))
    again = claim(held, ann, at=T0, policies=POLICIES)  # already theirs and accepted
    assert not again.changed and not again.entries
    assert await save(store, again)
    assert (await store.read(lambda conn: repo.load_case(conn, cid))).version == 1


async def test_activity_values_and_actors_come_back_as_they_went_in(store):
    cid, other = await store.write(lambda conn: [conversation(conn), conversation(conn)])
    source = (await store.read(lambda conn: row(conn, cid))).contact_id
    target = (await store.read(lambda conn: row(conn, other))).contact_id
    entries = (
        ActivityEntry(cid, Actor.rule("vip"), T0, ChangeKind.TAGS, (), ("vip", "billing"), "r"),
        ActivityEntry(cid, ROUTER, T0, ChangeKind.ASSIGNEE, None, 7, "routed"),
        ActivityEntry(cid, Actor.api_token(3), T0, ChangeKind.ESCALATION, False, True, None),
        ActivityEntry(cid, SYSTEM, T0, ChangeKind.MERGE, source, target, "x" * 600),
    )
    case = await load(store, cid)
    change = Change(case, case, entries)
    assert await save(store, change)
    assert await store.read(lambda conn: repo.timeline(conn, cid)) == list(entries)
    assert len(entries[3].reason or "") == 500
    merged_into = await store.read(
        lambda conn: conn.execute(
            sa.select(t.activity.c.contact_id).where(t.activity.c.kind == "merge")
        ).scalar_one()
    )
    assert merged_into == target
    assert await store.read(lambda conn: repo.timeline(conn, other)) == []
    foreign = Change(case, case, (dataclasses.replace(entries[0], conversation_id=other),))
    with pytest.raises(ValueError, match="one conversation"):
        await save(store, foreign)


async def test_the_sweeper_gets_what_is_due_earliest_first(store):
    def seed(conn):
        ids = [conversation(conn, wake_at=T0 + k * H) for k in (3, 1, 2, 9)]
        conversation(conn)  # nothing scheduled
        return ids

    late, first, second, future = await store.write(seed)
    assert await store.write(lambda conn: repo.due_ids(conn, T0 + 3 * H)) == [first, second, late]
    assert await store.write(lambda conn: repo.due_ids(conn, T0 + 3 * H, limit=2)) == [
        first,
        second,
    ]
    assert await store.write(lambda conn: repo.due_ids(conn, T0)) == []
    assert await store.read(repo.earliest_wake) == T0 + H
    assert future not in await store.write(lambda conn: repo.due_ids(conn, T0 + 8 * H))


async def test_the_supervisors_list_holds_escalated_working_cases_due_first(store):
    def seed(conn):
        return [
            conversation(conn, escalated=True, sla_due_at=T0 + 2 * H),
            conversation(conn, escalated=True, sla_due_at=T0 + H),
            conversation(conn, escalated=True),  # no due time: last
            conversation(conn, escalated=True, inbox="sales", sla_due_at=T0),
            conversation(conn, escalated=True, status="resolved"),  # solved: off the list
            conversation(conn, escalated=False, sla_due_at=T0),
        ]

    later, sooner, undated, sales, _solved, _calm = await store.write(seed)
    every = await store.read(lambda conn: repo.escalated(conn))
    assert [c.id for c in every] == [sales, sooner, later, undated]
    support = await store.read(lambda conn: repo.escalated(conn, ["support"]))
    assert [c.id for c in support] == [sooner, later, undated]
    assert await store.read(lambda conn: repo.escalated(conn, [])) == []


def test_the_activity_log_is_never_updated_or_deleted():
    """Append-only: no module of ours changes or removes an activity row."""
    root = Path(__file__).resolve().parents[2]
    pattern = re.compile(
        r"(update|delete)\(\s*(t|schema)\.activity\b|(UPDATE|DELETE FROM)\s+activity\b"
    )
    offenders = [
        str(path.relative_to(root))
        for package in ("inbox", "agent_ui", "routing", "autoreply", "channels", "omnidesk")
        for path in (root / package).rglob("*.py")
        if pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
    assert pattern.search("sa.update(t.activity).values(reason='x')")


# -- the race ----------------------------------------------------------------------------


async def test_of_two_changes_from_one_read_exactly_one_is_written(store):
    ann, bob = await store.write(agent), await store.write(lambda conn: agent(conn, "Bob"))
    cid = await store.write(conversation)
    case = await store.read(lambda conn: repo.load_case(conn, cid))
    by_ann = claim(case, ann, at=T0, policies=POLICIES)
    by_bob = claim(case, bob, at=T0, policies=POLICIES)
    if store.dialect == "postgresql":
        results = await _race_on_two_connections(store, cid, by_ann, by_bob)
    else:  # the store's one writer takes them in turn
        results = list(await asyncio.gather(save(store, by_ann), save(store, by_bob)))
    assert sorted(results) == [False, True]
    winner = ann if results[0] else bob
    stored = await store.read(lambda conn: repo.load_case(conn, cid))
    assert stored.assignee_id == winner and stored.version == 1
    timeline = await store.read(lambda conn: repo.timeline(conn, cid))
    assert [(e.kind, e.after) for e in timeline] == [(ChangeKind.ASSIGNEE, winner)]


async def _race_on_two_connections(store, cid, first, second) -> list[bool]:
    """`first` is written, not committed, on one connection (it holds the row's lock);
    `second` is written on another and waits for that lock; then `first` commits."""

    def write(change):
        return lambda conn: repo.save_change(
            conn, change, summary(change.case, T0, POLICIES), at=T0
        )

    async with store.engine.connect() as one, store.engine.connect() as two:
        await one.begin()
        await two.begin()
        assert await one.run_sync(write(first))
        pending = asyncio.create_task(two.run_sync(write(second)))
        await wait_for_a_lock_wait(store)
        assert not pending.done()
        await one.commit()
        lost = await asyncio.wait_for(pending, 10)
        await two.commit()
    return [True, lost]


async def wait_for_a_lock_wait(store, timeout: float = 10.0) -> None:
    """Until a backend of this database waits for a row lock."""
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = asyncio.get_running_loop().time() + timeout
    while not await store.read(lambda conn: conn.execute(query).scalar()):
        assert asyncio.get_running_loop().time() < deadline, "no transaction waits for the lock"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    "store", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_two_sweepers_take_disjoint_rows_on_postgres(store):
    """Row locks: PostgreSQL only (on SQLite one writer runs one sweep at a time)."""
    ids = await store.write(lambda conn: [conversation(conn, wake_at=T0) for _ in range(3)])
    async with store.engine.connect() as one, store.engine.connect() as two:
        await one.begin()
        await two.begin()
        mine = await one.run_sync(lambda conn: repo.due_ids(conn, T0 + H, limit=2))
        theirs = await two.run_sync(lambda conn: repo.due_ids(conn, T0 + H, limit=2))
        await one.rollback()
        await two.rollback()
    assert mine == ids[:2] and theirs == ids[2:]


async def test_reschedule_moves_wake_at_only_over_the_version_read(store):
    cid = await store.write(lambda conn: conversation(conn, wake_at=T0))
    assert await store.write(lambda conn: repo.reschedule(conn, cid, 0, T0 + 5 * H))
    raw = await store.read(lambda conn: row(conn, cid))
    assert (raw.wake_at, raw.version) == (T0 + 5 * H, 0)
    assert not await store.write(lambda conn: repo.reschedule(conn, cid, 3, None))
    assert await store.write(lambda conn: repo.reschedule(conn, cid, 0, None))
    assert await store.read(repo.earliest_wake) is None
