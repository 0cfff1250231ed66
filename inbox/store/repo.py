"""Reading and writing the core types over a SQLAlchemy Connection (sync, run by a Store)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from inbox.errors import NotFound
from inbox.store import schema as t
from inbox.types import (
    Agent,
    Attachment,
    AuthorKind,
    Channel,
    DeliveryStatus,
    Direction,
    Message,
    Role,
)


def attachments_to_json(items: Sequence[Attachment]) -> list[dict[str, Any]]:
    return [
        {
            "filename": a.filename,
            "content_type": a.content_type,
            "size": a.size,
            "storage_key": a.storage_key,
            "content_id": a.content_id,
            "inline": a.inline,
        }
        for a in items
    ]


def _attachments(raw: Any) -> tuple[Attachment, ...]:
    return tuple(Attachment(**item) for item in raw or ())


def message_from_row(row: RowMapping) -> Message:
    return Message(
        id=row["id"],
        conversation_id=row["conversation_id"],
        direction=Direction(row["direction"]),
        author_kind=AuthorKind(row["author_kind"]),
        author_id=row["author_id"],
        channel=Channel(row["channel"]),
        text=row["text"],
        created_at=row["created_at"],
        delivery_status=DeliveryStatus(row["delivery_status"]),
        external_id=row["external_id"],
        subject=row["subject"],
        html=row["html"],
        attachments=_attachments(row["attachments"]),
        failure_reason=row["failure_reason"],
        refers_to=_refers_to(row.get("meta")),
    )


def _refers_to(meta: Any) -> int | None:
    value = meta.get("refers_to") if isinstance(meta, dict) else None
    return value if type(value) is int else None


def agent_from_row(row: RowMapping) -> Agent:
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


def get_message(conn: Connection, message_id: int) -> Message:
    row = (
        conn.execute(sa.select(t.messages).where(t.messages.c.id == message_id)).mappings().first()
    )
    if row is None:
        raise NotFound(f"no message {message_id}")
    return message_from_row(row)


def messages_of(conn: Connection, conversation_id: int, *, limit: int = 500) -> list[Message]:
    rows = conn.execute(
        sa.select(t.messages)
        .where(t.messages.c.conversation_id == conversation_id)
        .order_by(t.messages.c.id)
        .limit(limit)
    ).mappings()
    return [message_from_row(r) for r in rows]
