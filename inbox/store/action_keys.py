"""The action keys repository: what an agent action answered, stored in the action's own
transaction, so that a resend under the same key (after a dropped connection or an error
page) is answered from here and changes nothing twice.

A key belongs to one agent; reusing it for another action (another path) is refused.
Plain functions of a Connection, run by `inbox.store.backends.Store`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inbox.errors import Conflict
from inbox.store import schema as t

__all__ = ["KEEP", "keep", "once", "recall"]

k = t.action_keys.c
KEEP = timedelta(days=2)  # how long a key answers for itself


def recall(conn: Connection, agent_id: int, key: str, action: str) -> dict[str, Any] | None:
    """The stored answer of `key`, or None if it has not been used; Conflict if it was used
    for another action."""
    row = conn.execute(
        sa.select(k.action, k.result).where(k.agent_id == agent_id, k.key == key)
    ).first()
    if row is None:
        return None
    if row.action != action:
        raise Conflict("this Idempotency-Key was used for another action; send a new one")
    return dict(row.result)


def once(
    conn: Connection,
    agent_id: int,
    key: str,
    action: str,
    run: Callable[[Connection], dict[str, Any]],
    now: datetime | None = None,
) -> tuple[dict[str, Any], bool]:
    """`run(conn)` and its answer stored under `key`, in the caller's transaction; or the
    answer stored before. Returns (answer, whether it ran now)."""
    stored = recall(conn, agent_id, key, action)
    if stored is not None:
        return stored, False
    result = run(conn)
    keep(conn, agent_id, key, action, result, now)
    return result, True


def keep(
    conn: Connection,
    agent_id: int,
    key: str,
    action: str,
    result: dict[str, Any],
    now: datetime | None = None,
) -> None:
    """Store `result` under `key` (and drop this agent's keys older than KEEP)."""
    now = now or datetime.now(UTC)
    conn.execute(sa.delete(t.action_keys).where(k.agent_id == agent_id, k.created_at < now - KEEP))
    conn.execute(
        sa.insert(t.action_keys).values(
            agent_id=agent_id, key=key, action=action, result=result, created_at=now
        )
    )
