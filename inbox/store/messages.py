"""The messages repository: read one, a conversation's, several conversations' timeline;
an agent's reply (through the durable outbox) and private note; an attachment an agent
may download; the chat widget's view (visible messages after a sequence number) and its
read receipts.

Sync functions of a Connection, run by `Store.read/write/call`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from inbox.errors import Conflict, NotFound
from inbox.store import agents, conversations
from inbox.store import schema as t
from inbox.store.outbox import enqueue
from inbox.types import (
    Attachment,
    AuthorKind,
    Channel,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    Message,
)

__all__ = [
    "CHAT_HISTORY",
    "CHAT_PAGE",
    "ChatLine",
    "add_note",
    "attachment",
    "attachments_to_json",
    "chat_after",
    "from_row",
    "get",
    "mark_read",
    "of_conversation",
    "of_conversations",
    "reply",
]

m = t.messages.c
CHAT_HISTORY = 100  # messages a chat widget that saw nothing yet is shown
CHAT_PAGE = 500  # most messages one chat resync returns


def attachments_to_json(items: Sequence[Attachment]) -> list[dict[str, Any]]:
    """Attachments as the messages.attachments column stores them."""
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


def from_row(row: RowMapping) -> Message:
    """A messages row (the columns of `Message`, and meta) as a Message."""
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
        attachments=tuple(Attachment(**item) for item in row["attachments"] or ()),
        failure_reason=row["failure_reason"],
        refers_to=_refers_to(row.get("meta")),
    )


def _refers_to(meta: Any) -> int | None:
    value = meta.get("refers_to") if isinstance(meta, dict) else None
    return value if type(value) is int else None


def get(conn: Connection, message_id: int) -> Message:
    """The message, or NotFound."""
    row = conn.execute(sa.select(t.messages).where(m.id == message_id)).mappings().first()
    if row is None:
        raise NotFound(f"no message {message_id}")
    return from_row(row)


def of_conversation(conn: Connection, conversation_id: int, *, limit: int = 500) -> list[Message]:
    """The conversation's first `limit` messages, in the order they were stored."""
    rows = conn.execute(
        sa.select(t.messages)
        .where(m.conversation_id == conversation_id)
        .order_by(m.id)
        .limit(limit)
    ).mappings()
    return [from_row(r) for r in rows]


def of_conversations(
    conn: Connection, conversation_ids: Collection[int], *, limit: int = 2000
) -> list[Message]:
    """The messages of several conversations as one timeline, in time order (the first
    `limit`)."""
    rows = conn.execute(
        sa.select(t.messages)
        .where(m.conversation_id.in_(list(conversation_ids)))
        .order_by(m.created_at, m.id)
        .limit(limit)
    ).mappings()
    return [from_row(r) for r in rows]


def reply(
    conn: Connection, conversation_id: int, agent_id: int, text: str, subject: str | None
) -> int:
    """An agent's reply through the conversation's channel (the durable outbox); returns
    its message id. NotFound for a missing conversation, Conflict for a closed one (the
    customer's next message opens another)."""
    conv = conversations.get(conn, conversation_id)
    if conv.status is ConversationStatus.CLOSED:
        raise Conflict("this conversation is closed; a new message from the customer opens another")
    return enqueue(
        conn,
        conversation_id=conversation_id,
        text=text,
        author_kind=AuthorKind.AGENT,
        author_id=agent_id,
        subject=subject,
    )


def add_note(conn: Connection, conversation_id: int, agent_id: int, text: str) -> int:
    """A private note: a message in the timeline that is never delivered (no outbox row);
    returns its id. NotFound for a missing conversation."""
    conv = conversations.get(conn, conversation_id)
    return int(
        conn.execute(
            sa.insert(t.messages)
            .values(
                conversation_id=conversation_id,
                direction=Direction.OUTBOUND.value,
                author_kind=AuthorKind.AGENT.value,
                author_id=agent_id,
                channel=conv.channel.value,
                text=text,
                attachments=[],
                delivery_status=DeliveryStatus.NOTE.value,
                meta={"note": True},
                needs_triage=False,
                created_at=datetime.now(UTC),
            )
            .returning(m.id)
        ).scalar_one()
    )


def attachment(
    conn: Connection,
    message_id: int,
    index: int,
    inboxes: Collection[str] | None,
    agent_id: int,
) -> tuple[str, str, str | None]:
    """(filename, content type, storage key) of a message's attachment number `index`, if
    the agent sees the conversation (its inbox is among `inboxes`, None: every inbox; or
    it holds it); else NotFound, as for one that does not exist."""
    c = t.conversations.c
    row = conn.execute(
        sa.select(m.attachments, c.inbox, c.assignee_id)
        .join(t.conversations, c.id == m.conversation_id)
        .where(m.id == message_id)
    ).first()
    visible = row is not None and (
        inboxes is None or row.inbox in inboxes or row.assignee_id == agent_id
    )
    if row is None or not visible:
        raise NotFound("no such attachment")
    items = row.attachments or []
    if not 0 <= index < len(items):
        raise NotFound("no such attachment")
    item = items[index]
    return (
        str(item.get("filename") or "attachment"),
        str(item.get("content_type") or ""),
        item.get("storage_key"),
    )


# -- the chat widget ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChatLine:
    """A message as a chat visitor sees it: `seq` (the message id) orders and dedupes."""

    seq: int
    author: str  # "visitor", "agent" or "bot"
    name: str | None  # the agent's name, for an agent's message
    text: str
    at: datetime
    attachments: list[dict[str, Any]]
    status: str


def _author(direction: str, kind: str) -> str:
    if direction == Direction.INBOUND.value:
        return "visitor"
    return "agent" if kind == AuthorKind.AGENT.value else "bot"


def chat_after(
    conn: Connection, conversation_ids: Sequence[int], after: int
) -> tuple[list[ChatLine], bool]:
    """The chat messages of these conversations a visitor may see (never a private note)
    with seq > after, oldest first, and whether more remain. With after <= 0 (a widget that
    saw nothing): the latest CHAT_HISTORY."""
    if not conversation_ids:
        return [], False
    visible = sa.and_(
        m.conversation_id.in_(list(conversation_ids)),
        m.delivery_status != DeliveryStatus.NOTE.value,
        m.channel == Channel.CHAT.value,
    )
    cols = (m.id, m.direction, m.author_kind, m.author_id, m.text, m.attachments,
            m.delivery_status, m.created_at)  # fmt: skip
    if after <= 0:
        query = sa.select(*cols).where(visible).order_by(m.id.desc()).limit(CHAT_HISTORY)
        rows = list(conn.execute(query))[::-1]
        more = False
    else:
        query = sa.select(*cols).where(visible, m.id > after).order_by(m.id).limit(CHAT_PAGE + 1)
        rows = list(conn.execute(query))
        more = len(rows) > CHAT_PAGE
        rows = rows[:CHAT_PAGE]
    by_agent = [r for r in rows if r.author_kind == AuthorKind.AGENT.value]
    names = agents.names(conn, {r.author_id for r in by_agent if r.author_id})
    lines = [
        ChatLine(
            seq=r.id,
            author=_author(r.direction, r.author_kind),
            name=names.get(r.author_id) if r.author_kind == AuthorKind.AGENT.value else None,
            text=r.text,
            at=r.created_at,
            attachments=r.attachments or [],
            status=r.delivery_status,
        )
        for r in rows
    ]
    return lines, more


def mark_read(
    conn: Connection, conversation_ids: Sequence[int], up_to: int
) -> list[tuple[int, int]]:
    """Outbound messages (sent or delivered) with id <= `up_to` the visitor has now seen,
    marked read: (message id, conversation id) of each."""
    if not conversation_ids:
        return []
    where = sa.and_(
        m.conversation_id.in_(list(conversation_ids)),
        m.direction == Direction.OUTBOUND.value,
        m.id <= up_to,
        m.delivery_status.in_((DeliveryStatus.SENT.value, DeliveryStatus.DELIVERED.value)),
    )
    rows = [
        (int(r.id), int(r.conversation_id))
        for r in conn.execute(sa.select(m.id, m.conversation_id).where(where))
    ]
    if rows:
        conn.execute(
            sa.update(t.messages)
            .where(m.id.in_([r[0] for r in rows]))
            .values(delivery_status=DeliveryStatus.READ.value)
        )
    return rows
