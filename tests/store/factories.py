"""Rows for the case tests, written as ingest and the router leave them (no case columns
set: the defaults of migration 0007), and cases that SLA targets apply to."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from inbox.cases import CasePolicies, InboxPolicy, SlaTargets
from inbox.store import schema as t

T0 = datetime(2026, 6, 1, 8, tzinfo=UTC)
H = timedelta(hours=1)
_n = itertools.count(1)

POLICIES = CasePolicies(
    InboxPolicy(
        targets={
            "high": SlaTargets(first_response=H, resolution=8 * H),
            "normal": SlaTargets(first_response=4 * H, resolution=24 * H),
        },
        auto_close_after=timedelta(days=4),
    )
)


def agent(conn: Any, name: str = "Ann") -> int:
    n = next(_n)
    return int(
        conn.execute(
            sa.insert(t.agents)
            .values(
                name=name, email=f"a{n}@agents.test", role="agent", skills={}, capacity={},
                teams=[], active=True, presence="online", created_at=T0,
            )
            .returning(t.agents.c.id)
        ).scalar_one()
    )  # fmt: skip


def conversation(conn: Any, *, inbox: str = "support", priority: str = "high", **cols: Any) -> int:
    """An open conversation of a new contact (`cols` override its columns)."""
    n = next(_n)
    contact = conn.execute(
        sa.insert(t.contacts)
        .values(name=f"Carla {n}", attributes={}, tags=[], notes="", created_at=T0)
        .returning(t.contacts.c.id)
    ).scalar_one()
    values: dict[str, Any] = {
        "contact_id": contact, "channel": "email", "inbox": inbox, "status": "open",
        "priority": priority, "required_skills": [], "token": f"tok-{n}", "tags": [],
        "created_at": T0, "last_message_at": T0, "waiting_since": T0,
    }  # fmt: skip
    values.update(cols)
    return int(
        conn.execute(
            sa.insert(t.conversations).values(**values).returning(t.conversations.c.id)
        ).scalar_one()
    )


def row(conn: Any, conversation_id: int) -> Any:
    """The conversation's row as stored."""
    c = t.conversations.c
    return conn.execute(sa.select(t.conversations).where(c.id == conversation_id)).one()
