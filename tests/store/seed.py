"""Rows for the store's contract suites, written straight into the schema (so a suite
tests its repository against data it did not write itself)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from inbox.store import schema as t

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _insert(table: sa.Table, **values: Any):
    def run(conn):
        return conn.execute(sa.insert(table).values(**values).returning(table.c.id)).scalar_one()

    return run


async def contact(
    store,
    name: str | None = "Ann",
    identities: Sequence[tuple[str, str]] = (),
    **values: Any,
) -> int:
    values = {"attributes": {}, "tags": [], "notes": "", "created_at": T0, **values}
    contact_id = await store.write(_insert(t.contacts, name=name, **values))
    for kind, value in identities:
        await store.write(
            _insert(
                t.identities,
                contact_id=contact_id,
                kind=kind,
                value=value,
                verified=False,
                opted_out=False,
                created_at=T0,
            )
        )
    return int(contact_id)


async def conversation(store, contact_id: int, **values: Any) -> int:
    values = {
        "channel": "email",
        "inbox": "support",
        "status": "open",
        "priority": "normal",
        "required_skills": [],
        "tags": [],
        "token": secrets.token_hex(10),
        "created_at": T0,
        "last_message_at": T0,
        **values,
    }
    return int(await store.write(_insert(t.conversations, contact_id=contact_id, **values)))


async def message(store, conversation_id: int, **values: Any) -> int:
    values = {
        "direction": "inbound",
        "author_kind": "contact",
        "channel": "email",
        "text": "hello",
        "attachments": [],
        "delivery_status": "received",
        "meta": {},
        "needs_triage": False,
        "created_at": T0,
        **values,
    }
    return int(await store.write(_insert(t.messages, conversation_id=conversation_id, **values)))


async def agent(store, name: str = "Bob", **values: Any) -> int:
    values = {
        "email": f"{name.lower()}@example.com",
        "role": "agent",
        "skills": {},
        "capacity": {"email": 5},
        "teams": [],
        "active": True,
        "presence": "offline",
        "created_at": T0,
        **values,
    }
    return int(await store.write(_insert(t.agents, name=name, **values)))


async def assignment(store, conversation_id: int, agent_id: int, **values: Any) -> int:
    values = {"reason": "auto", "assigned_at": T0, **values}
    return int(
        await store.write(
            _insert(t.assignments, conversation_id=conversation_id, agent_id=agent_id, **values)
        )
    )


async def row(store, table: sa.Table, row_id: Any, key: str = "id") -> dict[str, Any] | None:
    """A row as the schema reads it back (None if there is none)."""
    found = await store.read(
        lambda c: c.execute(sa.select(table).where(table.c[key] == row_id)).mappings().first()
    )
    return None if found is None else dict(found)
