"""The case repository: a conversation's lifecycle as an `inbox.cases.Case`, the write of a
`Change` with its activity entries, and the reads of the sweeper, the conversation's
timeline and the supervisors' list of escalations.

A change is written only over the version it was computed from:

    UPDATE conversations SET <the changed fields>, sla_due_at, sla_state, wake_at,
                             version = version + 1
    WHERE id = :id AND version = :read

One row changed: its activity entries are inserted in the same transaction, and
`save_change` answers True. No row changed: another change was committed first (the race
is lost), nothing is written, and it answers False; the caller reads the case again and
asks the core once more, which then refuses with the reason or finds nothing left to do.
On PostgreSQL (READ COMMITTED) the second of two such UPDATEs waits for the first's row
lock, then re-checks its WHERE against the committed row and changes nothing; SQLite runs
write transactions one at a time (BEGIN IMMEDIATE). The same SQL on both: of two changes
made from the same read, exactly one is written.

A change also keeps in step the columns that readers outside the case core use:
`assigned_at` and the `assignments` history when the assignee changes, and `waiting_since`
(set while the case waits for an agent: open and held by nobody).

Stored statuses: a solved case is stored as "resolved" until the rename of issue 17
(`stored_status` and `case_status` are the one mapping; the API answers what is stored).
The activity log is new and holds `CaseStatus` values ("solved").
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inbox.cases.activity import ActivityEntry, Actor, ChangeKind, Value
from inbox.cases.case import Case, Change
from inbox.cases.due import Summary
from inbox.cases.sla import CaseSla
from inbox.cases.status import CaseStatus
from inbox.errors import NotFound
from inbox.store import schema as t

__all__ = [
    "ENTRY_COLS",
    "case_status",
    "due_ids",
    "earliest_wake",
    "entry_of",
    "escalated",
    "load_case",
    "load_cases",
    "reschedule",
    "save_change",
    "stored_status",
    "timeline",
]

c = t.conversations.c
a = t.activity.c

# CaseStatus -> the stored value, where they differ (until the rename: see the docstring)
_STORED = {CaseStatus.SOLVED: "resolved"}
_FROM_STORED = {stored: status for status, stored in _STORED.items()}


def stored_status(status: CaseStatus) -> str:
    """The value of `conversations.status` (and of the API's `status`) for a case status."""
    return _STORED.get(status, status.value)


def case_status(stored: str) -> CaseStatus:
    return _FROM_STORED.get(stored) or CaseStatus(stored)


# Case field -> its column, for the fields written as they are
_COLUMNS = {
    "inbox": "inbox",
    "priority": "priority",
    "assignee_id": "assignee_id",
    "accepted_at": "accepted_at",
    "team": "team",
    "solved_at": "resolved_at",
    "snoozed_until": "snoozed_until",
    "escalated": "escalated",
    "linked_to": "linked_to",
}
_CASE_COLS = (
    c.id, c.inbox, c.status, c.priority, c.assignee_id, c.accepted_at, c.team,
    c.resolved_at, c.snoozed_until, c.escalated, c.linked_to, c.sla, c.version,
)  # fmt: skip
_ENDED = (stored_status(CaseStatus.SOLVED), stored_status(CaseStatus.CLOSED))


def _case(row: Any) -> Case:
    return Case(
        id=int(row.id),
        inbox=str(row.inbox),
        status=case_status(str(row.status)),
        priority=str(row.priority),
        assignee_id=row.assignee_id,
        accepted_at=row.accepted_at,
        team=row.team,
        solved_at=row.resolved_at,
        snoozed_until=row.snoozed_until,
        escalated=bool(row.escalated),
        linked_to=row.linked_to,
        sla=CaseSla.from_json(row.sla),
        version=int(row.version),
    )


# -- reads -------------------------------------------------------------------------------


def load_case(conn: Connection, conversation_id: int) -> Case:
    row = conn.execute(sa.select(*_CASE_COLS).where(c.id == conversation_id)).first()
    if row is None:
        raise NotFound(f"no conversation {conversation_id}")
    return _case(row)


def load_cases(conn: Connection, ids: Iterable[int]) -> dict[int, Case]:
    """The cases of `ids` that exist, by id (for bulk actions)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = conn.execute(sa.select(*_CASE_COLS).where(c.id.in_(wanted)))
    return {int(row.id): _case(row) for row in rows}


def due_ids(conn: Connection, now: datetime, limit: int = 200) -> list[int]:
    """Conversations whose `wake_at` has come, earliest first. On PostgreSQL the rows are
    locked for this transaction and rows another transaction has locked are skipped
    (`FOR UPDATE SKIP LOCKED`: two sweepers share the work); SQLite's writer is alone."""
    query = (
        sa.select(c.id)
        .where(c.wake_at <= now)
        .order_by(c.wake_at, c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [int(cid) for cid in conn.execute(query).scalars()]


def earliest_wake(conn: Connection) -> datetime | None:
    """When the sweeper next has something to do (None: nothing is scheduled)."""
    when: datetime | None = conn.execute(sa.select(sa.func.min(c.wake_at))).scalar()
    return when


def escalated(conn: Connection, inboxes: Collection[str] | None = None) -> list[Case]:
    """Escalated cases not solved or closed, of `inboxes` (None: every inbox), the one due
    first at the top (those without a due time last)."""
    query = sa.select(*_CASE_COLS).where(c.escalated.is_(True), c.status.not_in(_ENDED))
    if inboxes is not None:
        query = query.where(c.inbox.in_(sorted(inboxes)))
    order = (c.sla_due_at.is_(None), c.sla_due_at, c.id)
    return [_case(row) for row in conn.execute(query.order_by(*order))]


def timeline(conn: Connection, conversation_id: int) -> list[ActivityEntry]:
    """The conversation's activity log, oldest first (in the order it was appended)."""
    rows = conn.execute(
        sa.select(*ENTRY_COLS).where(a.conversation_id == conversation_id).order_by(a.id)
    )
    return [entry_of(conversation_id, row) for row in rows]


ENTRY_COLS = (a.at, a.actor_kind, a.actor_ref, a.kind, a.before, a.after, a.reason)


def entry_of(conversation_id: int, row: Any) -> ActivityEntry:
    """An activity row (`ENTRY_COLS`) as the core's entry."""
    return ActivityEntry(
        conversation_id,
        Actor.from_ref(row.actor_kind, row.actor_ref),
        row.at,
        ChangeKind(row.kind),
        _value(row.before),
        _value(row.after),
        row.reason,
    )


# -- the write -----------------------------------------------------------------------------


def save_change(conn: Connection, change: Change, summary: Summary, *, at: datetime) -> bool:
    """Write `change` (made at `at`) if the row is still at the version it was read at, and
    append its entries to the activity log. False: the race was lost, nothing written. A
    change that changes nothing writes nothing (True)."""
    before, case = change.before, change.case
    if case.id != before.id or any(e.conversation_id != case.id for e in change.entries):
        raise ValueError("a change and its entries belong to one conversation")
    values = _changed(before, case, at)
    if not values and not change.entries:
        return True
    values.update(
        sla_due_at=summary.due_at,
        sla_state=None if summary.sla_state is None else summary.sla_state.value,
        wake_at=summary.wake_at,
        version=c.version + 1,
    )
    written = conn.execute(
        sa.update(t.conversations)
        .where(c.id == case.id, c.version == before.version)
        .values(**values)
    ).rowcount
    if not written:
        return False
    if case.assignee_id != before.assignee_id:
        _assignment(conn, change, at)
    if change.entries:
        conn.execute(sa.insert(t.activity), [_entry_row(e) for e in change.entries])
    return True


def reschedule(
    conn: Connection, conversation_id: int, version: int, wake_at: datetime | None
) -> bool:
    """Move the row's `wake_at` (the sweeper found nothing due at the old one), if it is
    still at `version`; the version stays (nothing of the case changed)."""
    written = conn.execute(
        sa.update(t.conversations)
        .where(c.id == conversation_id, c.version == version)
        .values(wake_at=wake_at)
    ).rowcount
    return bool(written)


def _changed(before: Case, case: Case, at: datetime) -> dict[str, Any]:
    values: dict[str, Any] = {
        column: getattr(case, name)
        for name, column in _COLUMNS.items()
        if getattr(case, name) != getattr(before, name)
    }
    if case.status is not before.status:
        values["status"] = stored_status(case.status)
    if case.sla != before.sla:
        values["sla"] = case.sla.to_json()
    if "assignee_id" in values:
        values["assigned_at"] = None if case.assignee_id is None else at
    if "status" in values or "assignee_id" in values:
        if not case.waiting:
            values["waiting_since"] = None
        elif not before.waiting:
            values["waiting_since"] = at  # in the queue, from now
    return values


# `assignments.reason` is String(32): a longer reason is kept whole in the activity log
_REASON_MAX = 32


def _assignment(conn: Connection, change: Change, at: datetime) -> None:
    """The assignments history: the holder's row ends, the new holder's begins."""
    ours = t.assignments.c
    cid, agent_id = change.case.id, change.case.assignee_id
    conn.execute(
        sa.update(t.assignments)
        .where(ours.conversation_id == cid, ours.ended_at.is_(None))
        .values(ended_at=at)
    )
    if agent_id is None:
        return
    reason = next(
        (
            e.reason
            for e in reversed(change.entries)
            if e.kind is ChangeKind.ASSIGNEE and e.after == agent_id and e.reason
        ),
        "assigned",
    )
    conn.execute(
        sa.insert(t.assignments).values(
            conversation_id=cid, agent_id=agent_id, reason=reason[:_REASON_MAX], assigned_at=at
        )
    )


def _entry_row(entry: ActivityEntry) -> Mapping[str, Any]:
    merged_into = entry.after if entry.kind is ChangeKind.MERGE else None
    return {
        "conversation_id": entry.conversation_id,
        "contact_id": merged_into if isinstance(merged_into, int) else None,
        "at": entry.at,
        "actor_kind": entry.actor.kind.value,
        "actor_ref": entry.actor.ref(),
        "kind": entry.kind.value,
        "before": _json(entry.before),
        "after": _json(entry.after),
        "reason": entry.reason,
    }


def _json(value: Value) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _value(raw: Any) -> Value:
    if isinstance(raw, list):
        return tuple(str(v) for v in raw)
    if raw is None or isinstance(raw, str | int | bool):
        return raw
    raise ValueError(f"not an activity value: {raw!r}")
