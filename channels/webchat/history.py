"""What the widget reads and writes in the store: a visitor's chat conversations, their
messages after a sequence number (message ids: monotonic and durable, so a restart
never resets them), read receipts and the follow-up address. Sync functions of a
Connection, run through `Store.read/write`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inbox.store import schema as t
from inbox.store.contacts import save_followup
from inbox.store.conversations import VisitorChats, token_of
from inbox.store.conversations import of_visitor as conversations_of
from inbox.types import AuthorKind, Channel, DeliveryStatus, Direction

__all__ = [
    "HISTORY",
    "PAGE",
    "VisitorChats",
    "agents_online",
    "conversations_of",
    "mark_read",
    "messages_after",
    "save_followup",
    "token_of",
    "wire_message",
]

HISTORY = 100  # messages shown when the widget opens with nothing seen yet
PAGE = 500  # most messages returned by one resync


def messages_after(
    conn: Connection, conversation_ids: Sequence[int], after: int
) -> tuple[list[dict[str, Any]], bool]:
    """Visible messages with id > after, oldest first, and whether more remain.

    With after <= 0 (a widget that saw nothing): the latest HISTORY messages."""
    if not conversation_ids:
        return [], False
    m = t.messages.c
    visible = sa.and_(
        m.conversation_id.in_(list(conversation_ids)),
        m.delivery_status != DeliveryStatus.NOTE.value,  # private notes never reach the visitor
        m.channel == Channel.CHAT.value,
    )
    cols = (
        m.id,
        m.direction,
        m.author_kind,
        m.author_id,
        m.text,
        m.attachments,
        m.delivery_status,
        m.created_at,
    )
    if after <= 0:
        rows = list(
            conn.execute(sa.select(*cols).where(visible).order_by(m.id.desc()).limit(HISTORY))
        )[::-1]
        more = False
    else:
        rows = list(
            conn.execute(
                sa.select(*cols).where(visible, m.id > after).order_by(m.id).limit(PAGE + 1)
            )
        )
        more = len(rows) > PAGE
        rows = rows[:PAGE]
    agent_ids = {
        r.author_id for r in rows if r.author_kind == AuthorKind.AGENT.value and r.author_id
    }
    names = {}
    if agent_ids:
        names = dict(
            conn.execute(
                sa.select(t.agents.c.id, t.agents.c.name).where(t.agents.c.id.in_(agent_ids))
            ).all()
        )
    out = [
        wire_message(
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
    return out, more


def _author(direction: str, kind: str) -> str:
    if direction == Direction.INBOUND.value:
        return "visitor"
    return "agent" if kind == AuthorKind.AGENT.value else "bot"


def wire_message(
    *,
    seq: int,
    author: str,
    name: str | None,
    text: str,
    at: datetime,
    attachments: Sequence[Any] = (),
    status: str = "",
) -> dict[str, Any]:
    """One message as the widget receives it (live or by resync): `seq` orders and dedupes."""
    files = [
        {k: a.get(k) for k in ("filename", "content_type", "size", "storage_key")}
        for a in attachments
        if isinstance(a, dict)
    ]
    return {
        "seq": seq,
        "author": author,
        "name": name,
        "text": text,
        "at": at.isoformat(),
        "files": files,
        "status": status,
    }


def mark_read(
    conn: Connection, conversation_ids: Sequence[int], up_to: int
) -> list[tuple[int, int]]:
    """Outbound messages up to `up_to` the visitor has now seen: (message id, conversation id)."""
    if not conversation_ids:
        return []
    m = t.messages.c
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


def agents_online(conn: Connection) -> int:
    a = t.agents.c
    return int(
        conn.execute(
            sa.select(sa.func.count()).where(a.active.is_(True), a.presence == "online")
        ).scalar()
        or 0
    )
