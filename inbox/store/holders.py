"""Who holds a conversation, as the workspace shows it (issue 17): the holder's name, and
when an offer was made and accepted, for the offer's countdown and the claim button."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inbox.errors import NotFound
from inbox.store import schema as t

__all__ = ["Holder", "holder"]


class Holder(NamedTuple):
    assignee_id: int | None
    assignee_name: str | None
    assigned_at: datetime | None
    accepted_at: datetime | None  # None with an assignee: an offer


def holder(conn: Connection, conversation_id: int) -> Holder:
    """NotFound for a missing conversation."""
    c, a = t.conversations.c, t.agents.c
    row = conn.execute(
        sa.select(c.assignee_id, a.name, c.assigned_at, c.accepted_at)
        .select_from(t.conversations.outerjoin(t.agents, a.id == c.assignee_id))
        .where(c.id == conversation_id)
    ).first()
    if row is None:
        raise NotFound(f"no conversation {conversation_id}")
    return Holder(row[0], row[1], row[2], row[3])
