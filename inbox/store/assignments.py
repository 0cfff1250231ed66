"""The assignments repository, as the web side reads and writes it: who holds which
conversation and how loaded each agent is, the waiting queue in the router's order, and
the end of an assignment when its conversation is resolved. (The router's own reads and
writes: `inbox.store.router_rows`.)

Sync functions of a Connection, run by `Store.read/write/call`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inbox.store import agents
from inbox.store import schema as t
from inbox.store.router_rows import waiting_query
from inbox.types import Agent

__all__ = [
    "AgentLoad",
    "AgentWork",
    "Waiting",
    "agents_with_load",
    "end_open",
    "queue",
    "workload",
]

a = t.assignments.c
c = t.conversations.c
HELD = ("open", "pending")  # the statuses in which an assignee holds a conversation


def end_open(conn: Connection, conversation_id: int, now: datetime) -> int:
    """End the conversation's open assignment (at most one is open) at `now`; returns how
    many ended."""
    return int(
        conn.execute(
            sa.update(t.assignments)
            .where(a.conversation_id == conversation_id, a.ended_at.is_(None))
            .values(ended_at=now)
        ).rowcount
    )


# -- the queue ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Waiting:
    conversation_id: int
    priority: str
    channel: str
    inbox: str
    skills: tuple[str, ...]
    waiting_since: datetime
    requeued: bool


def queue(
    conn: Connection, priorities: Sequence[str], inboxes: Collection[str] | None, limit: int
) -> tuple[list[Waiting], int]:
    """The first `limit` waiting conversations of `inboxes` (None: every inbox) in the
    router's order (priority as `priorities` ranks them, then requeued first, then the
    longest wait), and how many wait in all."""
    ranks = {name: n for n, name in enumerate(priorities)}
    rank = sa.case(ranks, value=c.priority, else_=len(priorities))
    query = waiting_query()
    if inboxes is not None:
        query = query.where(c.inbox.in_(sorted(inboxes)))
    rows = conn.execute(
        query.order_by(rank, sa.desc("requeued"), c.waiting_since, c.id).limit(limit)
    )
    waiting = [
        Waiting(
            r.id,
            r.priority,
            r.channel,
            r.inbox,
            tuple(r.required_skills or ()),
            r.waiting_since,
            bool(r.requeued),
        )
        for r in rows
    ]
    total = conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
    return waiting, int(total)


# -- agents' load ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentWork:
    agent: Agent
    presence: str
    load: dict[str, int]  # channel -> conversations held


def workload(
    conn: Connection, inboxes: Collection[str] | None = None, *, by_name: bool = False
) -> list[AgentWork]:
    """Active agents with the conversations they hold, per channel; for `inboxes` (None:
    every inbox), the agents of those teams and their load in those inboxes only. In id
    order, or by name."""
    query = sa.select(c.assignee_id, c.channel, sa.func.count()).where(
        c.assignee_id.is_not(None), c.status.in_(HELD)
    )
    if inboxes is not None:
        query = query.where(c.inbox.in_(sorted(inboxes)))
    load: dict[int, dict[str, int]] = {}
    for agent_id, channel, count in conn.execute(query.group_by(c.assignee_id, c.channel)):
        load.setdefault(int(agent_id), {})[str(channel)] = int(count)
    ag = t.agents.c
    order = ag.name if by_name else ag.id
    out = []
    for r in conn.execute(
        sa.select(t.agents).where(ag.active.is_(True)).order_by(order)
    ).mappings():
        agent = agents.from_row(r)
        if inboxes is None or not set(inboxes).isdisjoint(agent.teams):
            out.append(AgentWork(agent, str(r["presence"]), load.get(agent.id, {})))
    return out


@dataclass(frozen=True, slots=True)
class AgentLoad:
    """An agent as the workspace lists them: load and capacity over every channel."""

    id: int
    name: str
    role: str
    presence: str
    skills: dict[str, int]
    teams: tuple[str, ...]
    load: int
    capacity: int

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "presence": self.presence,
            "skills": self.skills,
            "teams": list(self.teams),
            "load": self.load,
            "capacity": self.capacity,
        }


def agents_with_load(conn: Connection) -> list[AgentLoad]:
    """Active agents by name, each with the conversations it holds and its capacity."""
    return [
        AgentLoad(
            w.agent.id,
            w.agent.name,
            w.agent.role.value,
            w.presence,
            dict(w.agent.skills),
            w.agent.teams,
            sum(w.load.values()),
            sum(w.agent.capacity.values()),
        )
        for w in workload(conn, by_name=True)
    ]
