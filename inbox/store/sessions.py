"""The sessions repository: server-side agent sessions, and the password they hang on
(sign-in throttling: `inbox.accounts.signin_throttle`). Sync functions of a Connection,
run by `Store.read/write/call`.

The cookie carries a random session id; the database keeps only its SHA-256, so a leaked
database backup does not sign anyone in. Each session has its own CSRF token. A session
ends at logout, after `idle` without use, at its absolute expiry, and for every session of
an agent when that agent's password changes or the agent is disabled.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inbox.store import agents, signins
from inbox.store import schema as t
from inbox.types import Agent

if TYPE_CHECKING:
    from inbox.accounts.signin_throttle import ThrottlePolicy

__all__ = [
    "Session",
    "create_session",
    "end_all_sessions",
    "end_session",
    "load_session",
    "password_hash_of",
    "set_password",
    "sign_in",
    "touch_session",
]


@dataclass(frozen=True, slots=True)
class Session:
    agent: Agent
    presence: str
    csrf_token: str
    expires_at: datetime


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def create_session(
    conn: Connection,
    agent_id: int,
    *,
    lifetime: timedelta,
    ip: str | None,
    user_agent: str | None,
    now: datetime | None = None,
) -> str:
    """A new session for this agent; returns the id the cookie carries (never stored)."""
    now = now or datetime.now(UTC)
    session_id = secrets.token_urlsafe(32)
    conn.execute(
        sa.insert(t.agent_sessions).values(
            id_hash=_hash(session_id),
            agent_id=agent_id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime,
            ip=(ip or "")[:64] or None,
            user_agent=(user_agent or "")[:200] or None,
        )
    )
    return session_id


def load_session(
    conn: Connection, session_id: str, *, idle: timedelta, now: datetime | None = None
) -> Session | None:
    """The live session with this id and its active agent, or None."""
    if not session_id or len(session_id) > 128:
        return None
    now = now or datetime.now(UTC)
    s, a = t.agent_sessions.c, t.agents.c
    row = (
        conn.execute(
            sa.select(t.agents, s.csrf_token, s.expires_at, s.last_seen_at)
            .join(t.agent_sessions, s.agent_id == a.id)
            .where(s.id_hash == _hash(session_id))
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    if not row["active"] or row["expires_at"] <= now or row["last_seen_at"] + idle <= now:
        return None
    return Session(agents.from_row(row), str(row["presence"]), row["csrf_token"], row["expires_at"])


def sign_in(
    conn: Connection,
    agent_id: int,
    *,
    replaces: str | None,
    throttle_keys: tuple[str, str],
    policy: ThrottlePolicy,
    lifetime: timedelta,
    ip: str | None,
    user_agent: str | None,
) -> str:
    """After a correct password: end the session the browser had before (`replaces`: the
    pre-login id never becomes valid), clear the sign-in throttle's count of (account,
    address) and `address` (`throttle_keys`), and start a new session; returns its id."""
    if replaces:
        end_session(conn, replaces)
    signins.succeeded(conn, throttle_keys[0], throttle_keys[1], policy)
    return create_session(conn, agent_id, lifetime=lifetime, ip=ip, user_agent=user_agent)


def touch_session(conn: Connection, session_id: str, now: datetime | None = None) -> None:
    """Note the session's use now (its idle time starts again)."""
    conn.execute(
        sa.update(t.agent_sessions)
        .where(t.agent_sessions.c.id_hash == _hash(session_id))
        .values(last_seen_at=now or datetime.now(UTC))
    )


def end_session(conn: Connection, session_id: str) -> None:
    """End one session (sign-out); nothing for an unknown id."""
    conn.execute(sa.delete(t.agent_sessions).where(t.agent_sessions.c.id_hash == _hash(session_id)))


def end_all_sessions(conn: Connection, agent_id: int) -> int:
    """End every session of the agent; returns how many ended."""
    return int(
        conn.execute(
            sa.delete(t.agent_sessions).where(t.agent_sessions.c.agent_id == agent_id)
        ).rowcount
    )


def set_password(conn: Connection, agent_id: int, password_hash: str) -> None:
    """Store a new password hash and end every session of the agent."""
    conn.execute(
        sa.update(t.agents)
        .where(t.agents.c.id == agent_id)
        .values(password_hash=password_hash, password_changed_at=datetime.now(UTC))
    )
    end_all_sessions(conn, agent_id)


def password_hash_of(conn: Connection, email: str) -> tuple[int | None, str | None]:
    """(agent id, stored hash) of an active agent; (None, None) for anyone else."""
    row = conn.execute(
        sa.select(t.agents.c.id, t.agents.c.password_hash).where(
            t.agents.c.email == email, t.agents.c.active.is_(True)
        )
    ).first()
    return (None, None) if row is None else (int(row.id), row.password_hash)
