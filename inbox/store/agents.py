"""The agents repository: adding, reading, listing and disabling agents, and changing an
agent's password from the command line.

Plain functions of a Connection, run by `inbox.store.backends.Store` (`store.call(agents.add,
...)`, `store.read(agents.list_all)`). Emails are compared normalized
(`inbox.identity.normalize_email`): one agent per address.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inbox.errors import Conflict, NotFound
from inbox.identity import normalize_email
from inbox.store import schema as t
from inbox.store.repo import agent_from_row
from inbox.types import Agent, Presence, Role

__all__ = ["add", "change_password", "disable", "get", "list_all"]

a = t.agents.c


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
    return agent_from_row(row)


def list_all(conn: Connection, include_inactive: bool = True) -> list[Agent]:
    """Every agent (or only the active ones), by id."""
    query = sa.select(t.agents).order_by(a.id)
    if not include_inactive:
        query = query.where(a.active.is_(True))
    return [agent_from_row(r) for r in conn.execute(query).mappings()]


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
