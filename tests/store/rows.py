"""Rows written straight into the schema, for repository tests: the state a test starts
from, without the code paths (ingest, triage) other suites test."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inbox.store import schema as t

_tokens = itertools.count(1)


def contact(conn: Connection, identities: tuple[tuple[str, str], ...] = (), **values: Any) -> int:
    """A contact with `identities` ((kind, value), ...); its id."""
    now = datetime.now(UTC)
    cid = conn.execute(
        sa.insert(t.contacts).values(created_at=now, **values).returning(t.contacts.c.id)
    ).scalar_one()
    for kind, value in identities:
        conn.execute(
            sa.insert(t.identities).values(contact_id=cid, kind=kind, value=value, created_at=now)
        )
    return int(cid)


def conversation(conn: Connection, contact_id: int, **values: Any) -> int:
    """An open email conversation in the default inbox unless `values` say otherwise."""
    now = datetime.now(UTC)
    row = {
        "contact_id": contact_id,
        "channel": "email",
        "inbox": "default",
        "status": "open",
        "priority": "normal",
        "token": f"tok{next(_tokens)}-{contact_id}",
        "created_at": now,
        "last_message_at": now,
        **values,
    }
    return int(
        conn.execute(
            sa.insert(t.conversations).values(**row).returning(t.conversations.c.id)
        ).scalar_one()
    )


def message(conn: Connection, conversation_id: int, **values: Any) -> int:
    """An inbound email message unless `values` say otherwise."""
    row = {
        "conversation_id": conversation_id,
        "direction": "inbound",
        "author_kind": "contact",
        "channel": "email",
        "text": "hello",
        "delivery_status": "received",
        "created_at": datetime.now(UTC),
        **values,
    }
    return int(
        conn.execute(sa.insert(t.messages).values(**row).returning(t.messages.c.id)).scalar_one()
    )
