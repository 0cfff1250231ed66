"""Agents in the store: add, list, disable, presence."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inbox.errors import Conflict, NotFound, ValidationError
from inbox.identity import normalize_email
from inbox.store import schema as t
from inbox.store.agents import from_row as agent_from_row
from inbox.types import Agent, Presence, Role


def parse_levels(text: str, what: str) -> dict[str, int]:
    """ "billing:7,english:9,returns" -> {"billing": 7, "english": 9, "returns": 5}."""
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, level = part.partition(":")
        if not name or len(name) > 64:
            raise ValidationError(f"bad {what} entry {part!r}", field=what)
        try:
            out[name] = int(level) if level else 5
        except ValueError:
            raise ValidationError(
                f"bad {what} level in {part!r}: expected a number", field=what
            ) from None
    return out


def add_agent(
    conn: Connection,
    *,
    name: str,
    email: str,
    role: Role,
    skills: Mapping[str, int],
    capacity: Mapping[str, int],
    teams: Sequence[str] = (),
    password_hash: str | None = None,
) -> Agent:
    email = normalize_email(email)
    if conn.execute(sa.select(t.agents.c.id).where(t.agents.c.email == email)).first():
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
        .returning(t.agents.c.id)
    ).scalar_one()
    return get_agent(conn, agent_id)


def get_agent(conn: Connection, agent_id: int) -> Agent:
    row = conn.execute(sa.select(t.agents).where(t.agents.c.id == agent_id)).mappings().first()
    if row is None:
        raise NotFound(f"no agent {agent_id}")
    return agent_from_row(row)


def list_agents(conn: Connection, *, include_inactive: bool = True) -> list[Agent]:
    query = sa.select(t.agents).order_by(t.agents.c.id)
    if not include_inactive:
        query = query.where(t.agents.c.active.is_(True))
    return [agent_from_row(r) for r in conn.execute(query).mappings()]


def disable_agent(conn: Connection, email: str) -> None:
    done = conn.execute(
        sa.update(t.agents)
        .where(t.agents.c.email == normalize_email(email))
        .values(active=False, presence=Presence.OFFLINE.value)
    ).rowcount
    if not done:
        raise NotFound(f"no agent with email {email}")
