"""The router's repository: the facts the router's memory is rebuilt
and kept in step from (`snapshot`, `facts`, `conversations`), and its decisions written as
plain `Write`s (`persist`; `routing.store` turns decisions into them). Writes are guarded so
that a stale decision cannot overwrite a newer fact:

* an assignment applies only to a conversation that is open and has no assignee
  (`UPDATE ... WHERE assignee_id IS NULL`), an unassignment only to the agent that holds it;
* with a leader lease, every write transaction first checks the leader's fencing token
  (`inbox.store.fence`), so a paused old leader's late transaction changes nothing.

Plain functions of a Connection, run by `inbox.store.backends.Store`. What the workspace
reads and writes of assignments (loads, the queue page): `inbox.store.assignments`.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inbox.store import fence
from inbox.store import schema as t
from inbox.store.fastsql import Sql, as_utc

__all__ = [
    "Assign",
    "Keep",
    "Reprioritize",
    "Requeue",
    "RouterAgent",
    "RouterConversation",
    "RouterSnapshot",
    "Unassign",
    "Write",
    "conversations",
    "facts",
    "persist",
    "set_presence",
    "snapshot",
    "waiting_query",
]


@dataclass(frozen=True, slots=True)
class RouterAgent:
    """An agent as the router sees it."""

    id: int
    skills: dict[str, int]
    teams: tuple[str, ...]
    capacity: dict[str, int]
    presence: str
    active: bool


@dataclass(frozen=True, slots=True)
class RouterConversation:
    """A conversation as the router sees it; times in epoch seconds."""

    id: int
    channel: str
    inbox: str
    status: str
    priority: str
    required_skills: tuple[str, ...]
    assignee_id: int | None
    waiting_since: float | None
    assigned_at: float | None
    requeued: bool = False  # waiting again after an assignment
    accepted: bool = False  # accepted (`accepted_at`), or an agent wrote since it was assigned
    team: str | None = None  # the team it was transferred to (it waits for that team's agents)


@dataclass(frozen=True, slots=True)
class RouterSnapshot:
    """What the router's memory is rebuilt from."""

    agents: list[RouterAgent]  # active ones, by id
    waiting: list[RouterConversation]  # in queue order: waiting since, then id
    assigned: list[RouterConversation]  # open or pending with an assignee, by assigned_at


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _epoch(value: Any) -> float | None:
    return None if value is None else as_utc(value).timestamp()


def _agent(row: Any) -> RouterAgent:
    return RouterAgent(
        int(row.id),
        {str(k): int(v) for k, v in (_json(row.skills) or {}).items()},
        tuple(str(team) for team in _json(row.teams) or ()),
        {str(k): int(v) for k, v in (_json(row.capacity) or {}).items()},
        str(row.presence),
        bool(row.active),
    )


def _conv(row: Any, requeued: bool = False, accepted: bool = False) -> RouterConversation:
    accepted = accepted or row.accepted_at is not None
    return RouterConversation(
        int(row.id),
        str(row.channel),
        str(row.inbox),
        str(row.status),
        str(row.priority),
        tuple(_json(row.required_skills) or ()),
        row.assignee_id,
        _epoch(row.waiting_since),
        _epoch(row.assigned_at),
        bool(requeued),
        bool(accepted),
        row.team,
    )


c = t.conversations.c
ag = t.agents.c
_CONV_COLS = (c.id, c.channel, c.inbox, c.team, c.status, c.priority, c.required_skills,
              c.assignee_id, c.waiting_since, c.assigned_at, c.accepted_at)  # fmt: skip
_AGENT_COLS = (ag.id, ag.skills, ag.teams, ag.capacity, ag.presence, ag.active)


def _requeued_expr() -> Any:
    a = t.assignments.c
    return (
        sa.select(a.id)
        .where(a.conversation_id == c.id, a.assigned_at >= c.waiting_since)
        .exists()
        .label("requeued")
    )


def _accepted_expr() -> Any:
    m = t.messages.c
    return (
        sa.select(m.id)
        .where(m.conversation_id == c.id, m.author_kind == "agent", m.created_at >= c.assigned_at)
        .exists()
        .label("accepted")
    )


def waiting_query() -> Any:
    """SELECT of the waiting conversations (the columns `RouterConversation` needs and
    `requeued`), for a caller to order and limit."""
    return sa.select(*_CONV_COLS, _requeued_expr()).where(
        c.status == "open", c.assignee_id.is_(None), c.waiting_since.is_not(None)
    )


def snapshot(conn: Connection) -> RouterSnapshot:
    """Active agents, waiting conversations and current assignments."""
    agents = [
        _agent(r)
        for r in conn.execute(sa.select(*_AGENT_COLS).where(ag.active.is_(True)).order_by(ag.id))
    ]
    waiting = [
        _conv(r, r.requeued) for r in conn.execute(waiting_query().order_by(c.waiting_since, c.id))
    ]
    assigned = [
        _conv(r, accepted=r.accepted)
        for r in conn.execute(
            sa.select(*_CONV_COLS, _accepted_expr())
            .where(c.status.in_(("open", "pending")), c.assignee_id.is_not(None))
            .order_by(c.assigned_at, c.id)
        )
    ]
    return RouterSnapshot(agents, waiting, assigned)


def conversations(conn: Connection, ids: Collection[int]) -> dict[int, RouterConversation]:
    """These conversations (those that exist), by id."""
    if not ids:
        return {}
    rows = conn.execute(sa.select(*_CONV_COLS, _requeued_expr()).where(c.id.in_(list(ids))))
    return {int(r.id): _conv(r, r.requeued) for r in rows}


def _agents(conn: Connection, ids: Collection[int]) -> dict[int, RouterAgent]:
    if not ids:
        return {}
    rows = conn.execute(sa.select(*_AGENT_COLS).where(ag.id.in_(list(ids))))
    return {int(r.id): _agent(r) for r in rows}


def _agent_authored(conn: Connection, message_ids: Collection[int]) -> dict[int, int]:
    if not message_ids:
        return {}
    m = t.messages.c
    rows = conn.execute(
        sa.select(m.id, m.conversation_id).where(
            m.id.in_(list(message_ids)), m.author_kind == "agent"
        )
    )
    return {int(r.id): int(r.conversation_id) for r in rows}


def facts(
    conn: Connection,
    conversation_ids: Collection[int],
    agent_ids: Collection[int],
    message_ids: Collection[int],
) -> tuple[dict[int, RouterConversation], dict[int, RouterAgent], dict[int, int]]:
    """What one batch of the router's inputs needs, read together: these conversations and
    agents (active or not) by id, and message id -> conversation id for those of the
    messages that an agent wrote."""
    return (
        conversations(conn, conversation_ids),
        _agents(conn, agent_ids),
        _agent_authored(conn, message_ids),
    )


def set_presence(
    conn: Connection, agent_ids: Iterable[int], presence: str, token: int | None
) -> list[int]:
    """The router stores a presence for these active agents (fenced by `token`); the ids
    whose presence changed."""
    fence.check(conn, token)
    changed = []
    for agent_id in agent_ids:
        done = conn.execute(
            sa.update(t.agents)
            .where(ag.id == agent_id, ag.active.is_(True), ag.presence != presence)
            .values(presence=presence)
        ).rowcount
        if done:
            changed.append(agent_id)
    return changed


# -- persisting decisions ---------------------------------------------------------------------


class Assign(NamedTuple):
    """Give a waiting conversation to an agent (refused unless open and unassigned): an
    offer, or accepted at once when `accepted` (the agent took it: "take next")."""

    conversation_id: int
    agent_id: int
    at: datetime
    reason: str
    accepted: bool = False


class Unassign(NamedTuple):
    """Take a conversation from the agent holding it (refused if another holds it; for
    reason "accept_timeout", also refused once the agent has accepted it)."""

    conversation_id: int
    agent_id: int
    at: datetime
    reason: str = "unassign"


class Requeue(NamedTuple):
    """Put an unassigned open or pending conversation back in the queue, waiting since
    `since` (refused if it has an assignee)."""

    conversation_id: int
    since: datetime
    priority: str
    skills: list[str]


class Reprioritize(NamedTuple):
    """Raise an unassigned conversation's priority (never refused)."""

    conversation_id: int
    priority: str


class Keep(NamedTuple):
    """A decision that writes nothing (skipped like the others once its conversation was
    refused a write)."""

    conversation_id: int


Write = Assign | Unassign | Requeue | Reprioritize | Keep

# Every write moves `version` on, so that a case change computed from an earlier read
# (`inbox.store.cases.save_change`) loses to it. An offer's take-back loses to an accept:
# U_TAKE_BACK requires `accepted_at IS NULL`, so an accept committed first refuses it (the
# row is then stale for the router, which re-reads it and keeps it with its agent).
U_ASSIGN = (
    "UPDATE conversations SET assignee_id = :aid, assigned_at = :at, waiting_since = NULL, "
    "accepted_at = :accepted, version = version + 1 "
    "WHERE id = :cid AND assignee_id IS NULL AND status = 'open'"
)
U_UNASSIGN = (
    "UPDATE conversations SET assignee_id = NULL, assigned_at = NULL, accepted_at = NULL, "
    "version = version + 1 WHERE id = :cid AND assignee_id = :aid"
)
U_TAKE_BACK = U_UNASSIGN + " AND accepted_at IS NULL"
U_REQUEUE = (
    "UPDATE conversations SET status = 'open', waiting_since = :since, priority = :priority, "
    "required_skills = :skills, version = version + 1 WHERE id = :cid AND assignee_id IS NULL "
    "AND status IN ('open', 'pending')"
)
U_PRIORITY = (
    "UPDATE conversations SET priority = :priority, version = version + 1 "
    "WHERE id = :cid AND assignee_id IS NULL"
)
ACCEPT_TIMEOUT = "accept_timeout"
U_END = "UPDATE assignments SET ended_at = :at WHERE conversation_id = :cid AND ended_at IS NULL"
I_ASSIGNMENT = (
    "INSERT INTO assignments (conversation_id, agent_id, reason, assigned_at) "
    "VALUES (:cid, :aid, :reason, :at)"
)


def _apply(sql: Sql, w: Write) -> bool:
    """One write; False if the conversation's row refused it."""
    cid = w.conversation_id
    if isinstance(w, Assign):
        accepted = w.at if w.accepted else None
        if not sql.run(U_ASSIGN, aid=w.agent_id, at=w.at, accepted=accepted, cid=cid):
            return False
        sql.run(U_END, at=w.at, cid=cid)
        sql.run(I_ASSIGNMENT, cid=cid, aid=w.agent_id, reason=w.reason[:32], at=w.at)
    elif isinstance(w, Unassign):
        update = U_TAKE_BACK if w.reason == ACCEPT_TIMEOUT else U_UNASSIGN
        if not sql.run(update, cid=cid, aid=w.agent_id):
            return False
        sql.run(U_END, at=w.at, cid=cid)
    elif isinstance(w, Requeue):
        return bool(
            sql.run(U_REQUEUE, since=w.since, priority=w.priority, skills=w.skills, cid=cid)
        )
    elif isinstance(w, Reprioritize):
        sql.run(U_PRIORITY, priority=w.priority, cid=cid)
    return True


def persist(
    conn: Connection, writes: Sequence[Write], token: int | None
) -> tuple[list[int], set[int]]:
    """Apply `writes` in order in this one transaction (fenced by `token`). Returns the
    positions of the writes applied and the conversations whose row refused one (stale):
    the rest of that conversation's writes are skipped, for the caller to reconcile it
    from the database."""
    fence.check(conn, token)
    sql = Sql(conn)
    done: list[int] = []
    stale: set[int] = set()
    for i, w in enumerate(writes):
        if w.conversation_id in stale:
            continue
        if _apply(sql, w):
            done.append(i)
        else:
            stale.add(w.conversation_id)
    return done, stale
