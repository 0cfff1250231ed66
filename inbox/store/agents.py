"""The agents repository: adding, reading, listing and disabling agents, changing an
agent's password, and what the workspace, the routing API and the chat widget read and
change (names, the presence an agent chose, how many are online).

Plain functions of a Connection, run by `inbox.store.backends.Store` (`store.call(agents.add,
...)`, `store.read(agents.list_all)`). Emails are compared normalized
(`inbox.identity.normalize_email`): one agent per address.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from inbox.errors import Conflict, NotFound
from inbox.identity import normalize_email
from inbox.store import schema as t
from inbox.types import Agent, Presence, Role

__all__ = [
    "active_id_by_email",
    "add",
    "change_password",
    "count_online",
    "disable",
    "from_row",
    "get",
    "list_all",
    "names",
    "presence_of",
    "set_presence",
]

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


def add(
    conn: Connection,
    name: str,
    email: str,
    role: Role,
    skills: Mapping[str, int],
    capacity: Mapping[str, int],
    teams: Sequence[str] = (),
    password_hash: str | None = None,
) -> Agent:
    """A new active agent, offline; Conflict if an agent has this email already."""
    email = normalize_email(email)
    if conn.execute(sa.select(a.id).where(a.email == email)).first():
        raise Conflict(f"an agent with email {email} exists")
    now = datetime.now(UTC)
    agent_id = conn.execute(
        sa.insert(t.agents)
        .values(
            name=name,
            email=email,
            role=role.value,
            password_hash=password_hash,
            skills=dict(skills),
            capacity=dict(capacity),
            teams=list(teams),
            active=True,
            presence=Presence.OFFLINE.value,
            password_changed_at=now,
            created_at=now,
        )
        .returning(a.id)
    ).scalar_one()
    return get(conn, agent_id)


def get(conn: Connection, agent_id: int) -> Agent:
    """The agent with this id (active or not); NotFound if there is none."""
    row = conn.execute(sa.select(t.agents).where(a.id == agent_id)).mappings().first()
    if row is None:
        raise NotFound(f"no agent {agent_id}")
    return from_row(row)


def list_all(conn: Connection, include_inactive: bool = True) -> list[Agent]:
    """Every agent (or only the active ones), by id."""
    query = sa.select(t.agents).order_by(a.id)
    if not include_inactive:
        query = query.where(a.active.is_(True))
    return [from_row(r) for r in conn.execute(query).mappings()]


def disable(conn: Connection, email: str) -> None:
    """Make the agent with this email inactive and offline; NotFound if there is none."""
    done = conn.execute(
        sa.update(t.agents)
        .where(a.email == normalize_email(email))
        .values(active=False, presence=Presence.OFFLINE.value)
    ).rowcount
    if not done:
        raise NotFound(f"no agent with email {email}")


def change_password(conn: Connection, email: str, password_hash: str) -> int:
    """Store a new password hash for the agent with this email (active or not) and end all
    its sessions; how many sessions ended. NotFound if there is no such agent."""
    agent_id = conn.execute(sa.select(a.id).where(a.email == normalize_email(email))).scalar()
    if agent_id is None:
        raise NotFound(f"no agent with email {email}")
    ended = conn.execute(
        sa.delete(t.agent_sessions).where(t.agent_sessions.c.agent_id == agent_id)
    ).rowcount
    conn.execute(
        sa.update(t.agents)
        .where(a.id == agent_id)
        .values(password_hash=password_hash, password_changed_at=datetime.now(UTC))
    )
    return int(ended)
