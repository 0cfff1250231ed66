"""The agents repository, as the workspace, the routing API and the chat widget read and
change agents: rows as `Agent`, names, the presence an agent chose, how many are online.
(Adding, listing and disabling agents: `inbox.accounts.agents`.)

Sync functions of a Connection, run by `Store.read/write/call`.
"""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from inbox.errors import NotFound
from inbox.store import schema as t
from inbox.types import Agent, Presence, Role

__all__ = ["active_id_by_email", "count_online", "from_row", "names", "presence_of", "set_presence"]

a = t.agents.c


def from_row(row: RowMapping) -> Agent:
    """An agents row (at least the columns of `Agent`) as an Agent."""
    return Agent(
        id=row["id"],
        name=row["name"],
        email=row["email"],
        role=Role(row["role"]),
        skills=dict(row["skills"] or {}),
        capacity=dict(row["capacity"] or {}),
        active=bool(row["active"]),
        teams=tuple(row["teams"] or ()),
    )


def names(conn: Connection, ids: Collection[int]) -> dict[int, str]:
    """Agent id -> name, for the ids that exist."""
    if not ids:
        return {}
    rows = conn.execute(sa.select(a.id, a.name).where(a.id.in_(list(ids))))
    return {int(r.id): r.name for r in rows}


def active_id_by_email(conn: Connection, email: str) -> int | None:
    """The id of the active agent with this email (any case), or None (a rule's
    `assign_to` names agents by email)."""
    row = conn.execute(
        sa.select(a.id).where(sa.func.lower(a.email) == email.lower(), a.active.is_(True))
    ).first()
    return None if row is None else int(row.id)


def count_online(conn: Connection) -> int:
    """How many active agents chose to be online."""
    return int(
        conn.execute(
            sa.select(sa.func.count()).where(a.active.is_(True), a.presence == "online")
        ).scalar()
        or 0
    )


def presence_of(conn: Connection, agent_id: int) -> str:
    """The presence the agent chose ("offline" for no such agent)."""
    value = conn.execute(sa.select(a.presence).where(a.id == agent_id)).scalar()
    return str(value or "offline")


def set_presence(conn: Connection, agent_id: int, presence: Presence) -> bool:
    """Store the presence an active agent chose; whether it changed (False: it was that
    already). NotFound for no such active agent."""
    changed = conn.execute(
        sa.update(t.agents)
        .where(a.id == agent_id, a.active.is_(True), a.presence != presence.value)
        .values(presence=presence.value)
    ).rowcount
    if changed:
        return True
    if conn.execute(sa.select(a.id).where(a.id == agent_id, a.active.is_(True))).first() is None:
        raise NotFound(f"no active agent {agent_id}")
    return False
