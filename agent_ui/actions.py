"""What an agent changes, as sync functions of a Connection (one transaction each).

The caller has already checked that the agent may act on the conversation/contact
(`agent_ui.access`), and publishes the matching bus event after the commit.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inbox.errors import Conflict, ValidationError
from inbox.outbox.durable import enqueue
from inbox.store import conversations
from inbox.store import schema as t
from inbox.types import (
    AuthorKind,
    Channel,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    Presence,
)

c = t.conversations.c
MAX_TEXT = 20_000
_TAG = re.compile(r"[\w][\w .:/-]{0,39}", re.UNICODE)
_SKILL = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_SUBJECTED = {Channel.EMAIL, Channel.FORM, Channel.API}


def clean_text(text: object, what: str = "text") -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValidationError(f"'{what}' must be a non-empty string", field=what)
    if len(text) > MAX_TEXT:
        raise ValidationError(f"'{what}' is longer than {MAX_TEXT} characters", field=what)
    return text.replace("\r\n", "\n")


def reply_subject(subject: str | None, given: object = None) -> str | None:
    if isinstance(given, str) and given.strip():
        return given.strip()[:998]
    if not subject:
        return None
    return subject if subject.lower().startswith("re:") else f"Re: {subject}"[:998]


def reply(
    conn: Connection, conversation_id: int, agent_id: int, text: str, subject: object = None
) -> int:
    """An agent's reply through the conversation's channel (the durable outbox)."""
    conv = conversations.get(conn, conversation_id)
    if conv.status is ConversationStatus.CLOSED:
        raise Conflict("this conversation is closed; a new message from the customer opens another")
    return enqueue(
        conn,
        conversation_id=conversation_id,
        text=text,
        author_kind=AuthorKind.AGENT,
        author_id=agent_id,
        subject=reply_subject(conv.subject, subject) if conv.channel in _SUBJECTED else None,
    )


def note(conn: Connection, conversation_id: int, agent_id: int, text: str) -> int:
    """A private note: a message in the timeline that is never delivered (no outbox row)."""
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
            .returning(t.messages.c.id)
        ).scalar_one()
    )


def clean_tags(raw: object) -> list[str]:
    if not isinstance(raw, list) or len(raw) > 20:
        raise ValidationError("'tags' must be a list of at most 20 tags", field="tags")
    out: list[str] = []
    for tag in raw:
        if not isinstance(tag, str) or not _TAG.fullmatch(tag.strip()):
            raise ValidationError(
                "a tag is 1-40 letters, digits, spaces or . : / - _", field="tags"
            )
        if tag.strip() not in out:
            out.append(tag.strip())
    return out


def clean_skills(raw: object) -> list[str]:
    if not isinstance(raw, list) or not raw or len(raw) > 10:
        raise ValidationError("'skills' must be a list of 1 to 10 skill names", field="skills")
    if not all(isinstance(s, str) and _SKILL.fullmatch(s) for s in raw):
        raise ValidationError("a skill is lower-case letters, digits, . _ -", field="skills")
    return sorted(set(raw))


def set_presence(conn: Connection, agent_id: int, presence: str) -> bool:
    try:
        value = Presence(presence)
    except ValueError:
        raise ValidationError("presence is online, away or offline", field="presence") from None
    return bool(
        conn.execute(
            sa.update(t.agents)
            .where(t.agents.c.id == agent_id, t.agents.c.presence != value.value)
            .values(presence=value.value)
        ).rowcount
    )


def clean_notes(notes: object) -> str:
    if not isinstance(notes, str):
        raise ValidationError("'notes' must be a string", field="notes")
    if len(notes) > MAX_TEXT:
        raise ValidationError(f"notes are longer than {MAX_TEXT} characters", field="notes")
    return notes
