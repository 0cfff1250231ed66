"""Reading and writing the core types over a SQLAlchemy Connection (sync, run by a Store)."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from inbox.errors import NotFound, ValidationError
from inbox.store import schema as t
from inbox.types import (
    Agent,
    Attachment,
    AuthorKind,
    Channel,
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    Message,
    Role,
)
from inbox.web.untrusted import is_id, loads


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


def conversation_from_row(row: RowMapping) -> Conversation:
    return Conversation(
        id=row["id"],
        contact_id=row["contact_id"],
        channel=Channel(row["channel"]),
        inbox=row["inbox"],
        status=ConversationStatus(row["status"]),
        priority=row["priority"],
        subject=row["subject"],
        required_skills=tuple(row["required_skills"] or ()),
        assignee_id=row["assignee_id"],
        token=row["token"],
        created_at=row["created_at"],
        last_message_at=row["last_message_at"],
        first_response_at=row["first_response_at"],
        resolved_at=row["resolved_at"],
        waiting_since=row["waiting_since"],
        tags=tuple(row["tags"] or ()),
    )


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


def get_conversation(conn: Connection, conversation_id: int) -> Conversation:
    row = (
        conn.execute(sa.select(t.conversations).where(t.conversations.c.id == conversation_id))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no conversation {conversation_id}")
    return conversation_from_row(row)


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


def conversations_of_contact(conn: Connection, contact_id: int) -> list[Conversation]:
    rows = conn.execute(
        sa.select(t.conversations)
        .where(t.conversations.c.contact_id == contact_id)
        .order_by(t.conversations.c.id.desc())
    ).mappings()
    return [conversation_from_row(r) for r in rows]


# -- cursor pagination -----------------------------------------------------------------


def encode_cursor(last_message_at: datetime, conversation_id: int) -> str:
    raw = json.dumps([last_message_at.isoformat(), conversation_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    refused = ValidationError("cursor is not one this API gave out", field="cursor")
    if len(cursor) > 200:  # ours are ~60 characters
        raise refused
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, cid = loads(raw)
        when = datetime.fromisoformat(at)
        if when.tzinfo is None or not is_id(cid):
            raise refused
        return when.astimezone(UTC), cid
    except (ValueError, TypeError, OverflowError, ValidationError):
        raise refused from None


def list_conversations(
    conn: Connection,
    *,
    filters: Mapping[str, Any],
    limit: int,
    cursor: str | None,
) -> tuple[list[Conversation], str | None]:
    """Newest activity first; the cursor is (last_message_at, id) of the last row."""
    c = t.conversations.c
    query = sa.select(t.conversations)
    if filters.get("status"):
        query = query.where(c.status == filters["status"])
    if filters.get("channel"):
        query = query.where(c.channel == filters["channel"])
    if filters.get("inbox"):
        query = query.where(c.inbox == filters["inbox"])
    if filters.get("inboxes") is not None:  # an API token's scope: only these inboxes
        query = query.where(c.inbox.in_(sorted(filters["inboxes"])))
    if "assignee" in filters:
        assignee = filters["assignee"]
        query = query.where(
            c.assignee_id.is_(None) if assignee is None else c.assignee_id == assignee
        )
    if cursor:
        at, cid = decode_cursor(cursor)
        query = query.where(
            sa.or_(c.last_message_at < at, sa.and_(c.last_message_at == at, c.id < cid))
        )
    rows = [
        conversation_from_row(r)
        for r in conn.execute(
            query.order_by(c.last_message_at.desc(), c.id.desc()).limit(limit + 1)
        ).mappings()
    ]
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].last_message_at, rows[-1].id)
    return rows, next_cursor
