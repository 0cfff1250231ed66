"""The router service's reads and writes, as sync functions of a Connection (run by
`inbox.store.backends.Store`). The database is the source of truth; the router's memory is rebuilt
from `snapshot` and kept in step by `persist`.

Writes are guarded so that a stale decision cannot overwrite a newer fact:

* an assignment applies only to a conversation that is open and has no assignee
  (`UPDATE ... WHERE assignee_id IS NULL`), an unassignment only to the agent that holds it;
* with a leader lease, every write transaction first touches the fence row (a row of
  `cursors`) and requires it to hold this leader's fencing token. A new leader writes its
  higher token there before it rebuilds, so a paused old leader's late transaction changes
  nothing (on PostgreSQL the row lock also orders it before or after the new leader's claim).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inbox.errors import Conflict
from inbox.store import schema as t
from inbox.store.fastsql import Sql, as_utc
from routing.decisions import Assigned, Decision, Requeued, SlaBreached, Unassigned
from routing.settings import TEAM_PREFIX, team_skill

FENCE = "routing.leader"


class Fenced(Conflict):
    """A newer router leader has taken over: this process must stop writing."""


@dataclass(frozen=True, slots=True)
class AgentRow:
    id: int
    skills: Mapping[str, int]
    capacity: Mapping[str, int]
    presence: str
    active: bool


@dataclass(frozen=True, slots=True)
class ConvRow:
    id: int
    channel: str
    inbox: str
    status: str
    priority: str
    skills: tuple[str, ...]
    assignee_id: int | None
    waiting_since: float | None  # epoch seconds
    assigned_at: float | None
    requeued: bool = False  # waiting again after an assignment: ahead of fresh ones
    accepted: bool = False  # an agent has written in it since it was assigned

    @property
    def waiting(self) -> bool:
        return self.status == "open" and self.assignee_id is None and self.waiting_since is not None


@dataclass(frozen=True, slots=True)
class Snapshot:
    agents: list[AgentRow]
    waiting: list[ConvRow]
    assigned: list[ConvRow]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _epoch(value: Any) -> float | None:
    return None if value is None else as_utc(value).timestamp()


def _dt(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


def _agent(row: Any) -> AgentRow:
    skills = {str(k): int(v) for k, v in (_json(row.skills) or {}).items()}
    # level 0: a team is where an agent may work, not how well (see routing.settings)
    skills.update({team_skill(str(team)): 0 for team in _json(row.teams) or ()})
    return AgentRow(
        int(row.id),
        skills,
        {str(k): int(v) for k, v in (_json(row.capacity) or {}).items()},
        str(row.presence),
        bool(row.active),
    )


def _conv(row: Any, requeued: bool = False, accepted: bool = False) -> ConvRow:
    return ConvRow(
        int(row.id),
        str(row.channel),
        str(row.inbox),
        str(row.status),
        str(row.priority),
        # a conversation transferred to a team waits for that team's agents
        (*(_json(row.required_skills) or ()), team_skill(str(row.team or row.inbox))),
        row.assignee_id,
        _epoch(row.waiting_since),
        _epoch(row.assigned_at),
        bool(requeued),
        bool(accepted),
    )


c = t.conversations.c
_CONV_COLS = (c.id, c.channel, c.inbox, c.team, c.status, c.priority, c.required_skills,
              c.assignee_id, c.waiting_since, c.assigned_at)  # fmt: skip


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
    return sa.select(*_CONV_COLS, _requeued_expr()).where(
        c.status == "open", c.assignee_id.is_(None), c.waiting_since.is_not(None)
    )


def snapshot(conn: Connection) -> Snapshot:
    """Active agents, waiting conversations and current assignments."""
    ag = t.agents.c
    agents = [
        _agent(r)
        for r in conn.execute(
            sa.select(ag.id, ag.skills, ag.teams, ag.capacity, ag.presence, ag.active)
            .where(ag.active.is_(True))
            .order_by(ag.id)
        )
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
    return Snapshot(agents, waiting, assigned)


def conversations(conn: Connection, ids: Collection[int]) -> dict[int, ConvRow]:
    if not ids:
        return {}
    rows = conn.execute(sa.select(*_CONV_COLS, _requeued_expr()).where(c.id.in_(list(ids))))
    return {int(r.id): _conv(r, r.requeued) for r in rows}


def agents(conn: Connection, ids: Collection[int]) -> dict[int, AgentRow]:
    if not ids:
        return {}
    ag = t.agents.c
    rows = conn.execute(
        sa.select(ag.id, ag.skills, ag.teams, ag.capacity, ag.presence, ag.active).where(
            ag.id.in_(list(ids))
        )
    )
    return {int(r.id): _agent(r) for r in rows}


def agent_authored(conn: Connection, message_ids: Collection[int]) -> dict[int, int]:
    """message id -> conversation id, for the given messages written by an agent."""
    if not message_ids:
        return {}
    m = t.messages.c
    rows = conn.execute(
        sa.select(m.id, m.conversation_id).where(
            m.id.in_(list(message_ids)), m.author_kind == "agent"
        )
    )
    return {int(r.id): int(r.conversation_id) for r in rows}


def set_presence(conn: Connection, agent_ids: Iterable[int], presence: str) -> list[int]:
    """Store a presence; the ids whose presence changed."""
    changed = []
    for agent_id in agent_ids:
        done = conn.execute(
            sa.update(t.agents)
            .where(
                t.agents.c.id == agent_id,
                t.agents.c.active.is_(True),
                t.agents.c.presence != presence,
            )
            .values(presence=presence)
        ).rowcount
        if done:
            changed.append(agent_id)
    return changed


# -- the fence ----------------------------------------------------------------------------

U_CLAIM = (
    "UPDATE cursors SET position = :tok, updated_at = :now "
    "WHERE source = :src AND CAST(position AS BIGINT) < :num"
)
U_CHECK = "UPDATE cursors SET updated_at = :now WHERE source = :src AND position = :tok"


def claim_fence(conn: Connection, token: int) -> bool:
    """Record a new leader's token; False if a higher one is already there."""
    sql = Sql(conn)
    now = datetime.now(UTC)
    if sql.run(U_CLAIM, tok=str(token), num=token, src=FENCE, now=now):
        return True
    current = sql.scalar("SELECT position FROM cursors WHERE source = :src", src=FENCE)
    if current is None:
        sql.run(
            "INSERT INTO cursors (source, position, updated_at) VALUES (:src, :tok, :now)",
            src=FENCE,
            tok=str(token),
            now=now,
        )
        return True
    return str(current) == str(token)


def fence_token(conn: Connection) -> int:
    """The highest router token recorded (0: none yet)."""
    current = Sql(conn).scalar("SELECT position FROM cursors WHERE source = :src", src=FENCE)
    return int(current) if current is not None else 0


def check_fence(sql: Sql, token: int | None) -> None:
    if token is not None and not sql.run(U_CHECK, src=FENCE, tok=str(token), now=datetime.now(UTC)):
        raise Fenced(f"router fencing token {token} is no longer current")


# -- persisting decisions -----------------------------------------------------------------

U_ASSIGN = (
    "UPDATE conversations SET assignee_id = :aid, assigned_at = :at, waiting_since = NULL "
    "WHERE id = :cid AND assignee_id IS NULL AND status = 'open'"
)
U_UNASSIGN = (
    "UPDATE conversations SET assignee_id = NULL, assigned_at = NULL "
    "WHERE id = :cid AND assignee_id = :aid"
)
U_REQUEUE = (
    "UPDATE conversations SET status = 'open', waiting_since = :since, priority = :priority, "
    "required_skills = :skills WHERE id = :cid AND assignee_id IS NULL "
    "AND status IN ('open', 'pending')"
)
U_PRIORITY = "UPDATE conversations SET priority = :priority WHERE id = :cid AND assignee_id IS NULL"
U_END = "UPDATE assignments SET ended_at = :at WHERE conversation_id = :cid AND ended_at IS NULL"
I_ASSIGNMENT = (
    "INSERT INTO assignments (conversation_id, agent_id, reason, assigned_at) "
    "VALUES (:cid, :aid, :reason, :at)"
)


def persist(
    conn: Connection,
    decisions: Sequence[Decision],
    token: int | None,
    since: Mapping[int, float],
) -> tuple[list[Decision], set[int]]:
    """Write decisions in order in this one transaction. Returns the decisions written
    and the conversations whose row refused one (stale): the rest of that conversation's
    decisions are skipped, and the caller reconciles it from the database."""
    sql = Sql(conn)
    check_fence(sql, token)
    done: list[Decision] = []
    stale: set[int] = set()
    for d in decisions:
        cid = d.conversation_id
        if cid in stale:
            continue
        if isinstance(d, Assigned):
            at = _dt(d.at)
            if not sql.run(U_ASSIGN, aid=d.agent_id, at=at, cid=cid):
                stale.add(cid)
                continue
            sql.run(U_END, at=at, cid=cid)
            sql.run(I_ASSIGNMENT, cid=cid, aid=d.agent_id, reason=d.reason[:32], at=at)
        elif isinstance(d, Unassigned):
            if not sql.run(U_UNASSIGN, cid=cid, aid=d.agent_id):
                stale.add(cid)
                continue
            sql.run(U_END, at=_dt(d.at), cid=cid)
        elif isinstance(d, Requeued):
            wait_from = _dt(since.get(cid, d.at))
            skills = [s for s in d.skills if not s.startswith(TEAM_PREFIX)]
            if not sql.run(U_REQUEUE, since=wait_from, priority=d.priority, skills=skills, cid=cid):
                stale.add(cid)
                continue
        elif isinstance(d, SlaBreached):
            sql.run(U_PRIORITY, priority=d.priority, cid=cid)
        done.append(d)
    return done, stale
