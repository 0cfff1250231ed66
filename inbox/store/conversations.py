"""The conversations repository: read one, a contact's, a page of them (cursor-paginated),
a visitor's chats; tag, resolve, reopen.

Sync functions of a Connection, run by `Store.read/write/call`. The callers check who may
act (an agent's inboxes, an API token's scope) unless a function takes `inboxes` itself.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from inbox.errors import Conflict, NotFound, ValidationError
from inbox.store import assignments, contacts
from inbox.store import schema as t
from inbox.types import Channel, Conversation, ConversationStatus, IdentityKind
from inbox.web.untrusted import is_id, loads

__all__ = [
    "VisitorChats",
    "from_row",
    "get",
    "inbox_and_assignee",
    "inbox_of",
    "list_page",
    "of_contact",
    "of_visitor",
    "reopen",
    "resolve",
    "set_tags",
    "token_of",
    "triage_of",
]

c = t.conversations.c
# who can be resolved: an open or pending conversation (not a resolved or closed one)
RESOLVABLE = (ConversationStatus.OPEN.value, ConversationStatus.PENDING.value)


def from_row(row: RowMapping) -> Conversation:
    """A conversations row (every column) as a Conversation."""
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


def get(conn: Connection, conversation_id: int) -> Conversation:
    """The conversation, or NotFound."""
    row = conn.execute(sa.select(t.conversations).where(c.id == conversation_id)).mappings().first()
    if row is None:
        raise NotFound(f"no conversation {conversation_id}")
    return from_row(row)


def of_contact(conn: Connection, contact_id: int) -> list[Conversation]:
    """Every conversation of the contact, newest first."""
    rows = conn.execute(
        sa.select(t.conversations).where(c.contact_id == contact_id).order_by(c.id.desc())
    ).mappings()
    return [from_row(r) for r in rows]


def inbox_of(conn: Connection, conversation_id: int) -> str | None:
    """The conversation's inbox, None if there is no such conversation."""
    inbox = conn.execute(sa.select(c.inbox).where(c.id == conversation_id)).scalar()
    return None if inbox is None else str(inbox)


def inbox_and_assignee(conn: Connection, conversation_id: int) -> tuple[str, int | None] | None:
    """(inbox, assignee id) of the conversation, None if there is no such conversation."""
    row = conn.execute(sa.select(c.inbox, c.assignee_id).where(c.id == conversation_id)).first()
    return None if row is None else (row.inbox, row.assignee_id)


def token_of(conn: Connection, conversation_id: int) -> str | None:
    """The conversation's token (its reply address and chat room), None if there is none."""
    return conn.execute(sa.select(c.token).where(c.id == conversation_id)).scalar()


def triage_of(conn: Connection, conversation_id: int) -> dict[str, Any] | None:
    """The auto-answer decision stored with the conversation (None before triage)."""
    triage = conn.execute(sa.select(c.triage).where(c.id == conversation_id)).scalar()
    return triage if isinstance(triage, dict) else None


@dataclass(frozen=True, slots=True)
class VisitorChats:
    contact_id: int | None
    tokens: dict[int, str]  # conversation id -> token (socket.io room), oldest first


def of_visitor(conn: Connection, visitor_id: str, external_id: str | None = None) -> VisitorChats:
    """A chat visitor's contact (through the visitor id, else a verified host-site id) and
    its chat conversations."""
    contact_id = contacts.of_identity(conn, IdentityKind.VISITOR, visitor_id)
    if contact_id is None and external_id is not None:
        contact_id = contacts.of_identity(conn, IdentityKind.EXTERNAL, external_id)
    if contact_id is None:
        return VisitorChats(None, {})
    rows = conn.execute(
        sa.select(c.id, c.token)
        .where(c.contact_id == contact_id, c.channel == Channel.CHAT.value)
        .order_by(c.id)
    )
    return VisitorChats(contact_id, {int(r.id): r.token for r in rows})


# -- a page of conversations -----------------------------------------------------------


def _encode_cursor(last_message_at: datetime, conversation_id: int) -> str:
    raw = json.dumps([last_message_at.isoformat(), conversation_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
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


def list_page(
    conn: Connection,
    *,
    filters: Mapping[str, Any],
    limit: int,
    cursor: str | None,
) -> tuple[list[Conversation], str | None]:
    """Up to `limit` conversations, newest activity first, and the cursor of the next page
    (None on the last). `filters`: status, channel, inbox (one), inboxes (a token's scope:
    only these), assignee (an id, or None for the unassigned). The cursor is
    (last_message_at, id) of the last row; a cursor this never gave out is a
    ValidationError."""
    query = sa.select(t.conversations)
    if filters.get("status"):
        query = query.where(c.status == filters["status"])
    if filters.get("channel"):
        query = query.where(c.channel == filters["channel"])
    if filters.get("inbox"):
        query = query.where(c.inbox == filters["inbox"])
    if filters.get("inboxes") is not None:
        query = query.where(c.inbox.in_(sorted(filters["inboxes"])))
    if "assignee" in filters:
        assignee = filters["assignee"]
        query = query.where(
            c.assignee_id.is_(None) if assignee is None else c.assignee_id == assignee
        )
    if cursor:
        at, cid = _decode_cursor(cursor)
        query = query.where(
            sa.or_(c.last_message_at < at, sa.and_(c.last_message_at == at, c.id < cid))
        )
    rows = [
        from_row(r)
        for r in conn.execute(
            query.order_by(c.last_message_at.desc(), c.id.desc()).limit(limit + 1)
        ).mappings()
    ]
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = _encode_cursor(rows[-1].last_message_at, rows[-1].id)
    return rows, next_cursor


# -- changes -----------------------------------------------------------------------------


def set_tags(conn: Connection, conversation_id: int, tags: Sequence[str]) -> None:
    """Replace the conversation's tags, or NotFound."""
    done = conn.execute(
        sa.update(t.conversations).where(c.id == conversation_id).values(tags=list(tags))
    ).rowcount
    if not done:
        raise NotFound(f"no conversation {conversation_id}")


def resolve(
    conn: Connection,
    conversation_id: int,
    now: datetime | None = None,
    inboxes: Collection[str] | None = None,
) -> None:
    """Resolve an open or pending conversation: it leaves the queue and its assignee, and
    its open assignment ends. NotFound for a missing conversation, or one outside
    `inboxes` (None: every inbox); Conflict for one already resolved or closed."""
    now = now or datetime.now(UTC)
    if inboxes is not None and inbox_of(conn, conversation_id) not in inboxes:
        raise NotFound(f"no conversation {conversation_id}")
    done = conn.execute(
        sa.update(t.conversations)
        .where(c.id == conversation_id, c.status.in_(RESOLVABLE))
        .values(
            status=ConversationStatus.RESOLVED.value,
            resolved_at=now,
            waiting_since=None,
            assignee_id=None,
            assigned_at=None,
        )
    ).rowcount
    if not done:
        status = conn.execute(sa.select(c.status).where(c.id == conversation_id)).scalar()
        if status is None:
            raise NotFound(f"no conversation {conversation_id}")
        raise Conflict(f"conversation {conversation_id} is already {status}")
    assignments.end_open(conn, conversation_id, now)


def reopen(conn: Connection, conversation_id: int, now: datetime | None = None) -> str:
    """A resolved conversation back to the queue (the router assigns it again); returns its
    priority. Conflict for one that is not resolved (or missing)."""
    now = now or datetime.now(UTC)
    done = conn.execute(
        sa.update(t.conversations)
        .where(c.id == conversation_id, c.status == ConversationStatus.RESOLVED.value)
        .values(
            status=ConversationStatus.OPEN.value,
            resolved_at=None,
            assignee_id=None,
            assigned_at=None,
            waiting_since=now,
        )
    ).rowcount
    if not done:
        raise Conflict("only a resolved conversation can be reopened")
    return str(conn.execute(sa.select(c.priority).where(c.id == conversation_id)).scalar_one())
