"""The assignments repository: who holds which conversation, as the web side writes and
reads it (the router's own reads and writes are in `routing.store`).

Sync functions of a Connection, run by `Store.read/write/call`.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inbox.store import schema as t

__all__ = ["end_open"]

a = t.assignments.c


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
