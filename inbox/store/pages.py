"""Reads that compose several repositories for one page of the agent workspace or one
answer of the read API, each in one read transaction (so a page shows one moment).

Every read takes the inboxes its reader may see (None: all) and filters in SQL or before
anything is returned, so a row the reader may not see is never handed out; an agent also
sees the conversations it holds. Sync functions of a Connection, run by `Store.read`.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inbox.errors import NotFound
from inbox.store import agents, assignments, contacts, conversations, messages
from inbox.store import schema as t
from inbox.types import Contact, Conversation, Message

__all__ = [
    "ContactPage",
    "ConversationPage",
    "QueuePage",
    "Row",
    "api_contact",
    "api_conversation",
    "colleagues",
    "contact_page",
    "conversation_page",
    "queue_page",
]

c = t.conversations.c
QUEUE_LIMIT = 2000


def _inbox_filter(query: Any, inboxes: Collection[str] | None) -> Any:
    return query if inboxes is None else query.where(c.inbox.in_(list(inboxes)))


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the queue or of "my conversations"."""

    id: int
    channel: str
    inbox: str
    status: str
    priority: str
    subject: str | None
    skills: tuple[str, ...]
    contact_name: str | None
    since: datetime | None  # waiting since (queue) or last message (mine)
    assignee_id: int | None

    @property
    def sig(self) -> str:
        """The same string queue.js computes, so the first live render keeps these rows."""
        since = self.since.isoformat() if self.since else None
        values = [self.priority, self.channel, self.contact_name, self.subject,
                  list(self.skills), self.inbox, since]  # fmt: skip
        return json.dumps(values, separators=(",", ":"), ensure_ascii=False)

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "channel": self.channel,
            "inbox": self.inbox,
            "status": self.status,
            "priority": self.priority,
            "subject": self.subject,
            "skills": list(self.skills),
            "contact_name": self.contact_name,
            "since": self.since.isoformat() if self.since else None,
            "assignee_id": self.assignee_id,
        }


def _rows(conn: Connection, query: Any, since_col: Any) -> list[Row]:
    query = query.add_columns(t.contacts.c.name.label("contact_name"), since_col.label("since"))
    return [
        Row(
            r.id,
            r.channel,
            r.inbox,
            r.status,
            r.priority,
            r.subject,
            tuple(r.required_skills or ()),
            r.contact_name,
            r.since,
            r.assignee_id,
        )
        for r in conn.execute(query)
    ]


def _base() -> Any:
    return sa.select(
        c.id, c.channel, c.inbox, c.status, c.priority, c.subject, c.required_skills, c.assignee_id
    ).join(t.contacts, t.contacts.c.id == c.contact_id)


def _waiting(
    conn: Connection, inboxes: Collection[str] | None, priorities: Sequence[str]
) -> list[Row]:
    """The queue: most urgent first, then longest waiting."""
    rank = sa.case(
        {p: i for i, p in enumerate(priorities)}, value=c.priority, else_=len(priorities)
    )
    query = (
        _inbox_filter(
            _base().where(
                c.status == "open", c.assignee_id.is_(None), c.waiting_since.is_not(None)
            ),
            inboxes,
        )
        .order_by(rank, c.waiting_since, c.id)
        .limit(QUEUE_LIMIT)
    )
    return _rows(conn, query, c.waiting_since)


def _mine(conn: Connection, agent_id: int) -> list[Row]:
    """What the agent holds, latest activity first."""
    query = (
        _base()
        .where(c.assignee_id == agent_id, c.status.in_(("open", "pending")))
        .order_by(c.last_message_at.desc())
        .limit(500)
    )
    return _rows(conn, query, c.last_message_at)


@dataclass(frozen=True, slots=True)
class QueuePage:
    mine: list[Row]
    waiting: list[Row]
    agents: list[assignments.AgentLoad] | None  # for a supervisor
    presence: str  # the agent's own


def queue_page(
    conn: Connection,
    agent_id: int,
    inboxes: Collection[str] | None,
    priorities: Sequence[str],
    *,
    with_agents: bool,
) -> QueuePage:
    """The queue page: what the agent holds, what waits in its inboxes (most urgent
    first, then the longest waiting), every agent's load when `with_agents`, and the
    agent's presence."""
    return QueuePage(
        _mine(conn, agent_id),
        _waiting(conn, inboxes, priorities),
        assignments.agents_with_load(conn) if with_agents else None,
        agents.presence_of(conn, agent_id),
    )


def colleagues(conn: Connection, agent_id: int) -> tuple[str, list[assignments.AgentLoad]]:
    """The agent's presence, and every other active agent with its load (by name): whom
    it may transfer to."""
    others = [a for a in assignments.agents_with_load(conn) if a.id != agent_id]
    return agents.presence_of(conn, agent_id), others


@dataclass(frozen=True, slots=True)
class ConversationPage:
    conversation: Conversation
    contact: Contact
    triage: dict[str, Any] | None
    # every visible conversation of the contact, newest first, and their messages in time order
    history: list[Conversation]
    timeline: list[Message]
    authors: dict[int, str]  # agent id -> name
    assignee: str | None


def _visible(conv: Conversation, inboxes: Collection[str] | None, agent_id: int | None) -> bool:
    """In one of `inboxes` (None: all), or held by the agent (None: no agent, a token)."""
    held = agent_id is not None and conv.assignee_id == agent_id
    return inboxes is None or conv.inbox in inboxes or held


def conversation_page(
    conn: Connection, conversation_id: int, inboxes: Collection[str] | None, agent_id: int
) -> ConversationPage:
    """A conversation with its contact, the contact's other conversations the agent sees
    and their messages as one timeline, the names of the agents in it, and the triage
    decision. NotFound for one the agent does not see, as for one that does not exist."""
    conv = conversations.get(conn, conversation_id)
    if not _visible(conv, inboxes, agent_id):
        raise NotFound(f"no conversation {conversation_id}")
    contact = contacts.get(conn, conv.contact_id)
    history = [
        h
        for h in conversations.of_contact(conn, contact.id)
        if h.id == conv.id or _visible(h, inboxes, agent_id)
    ]
    ids = [h.id for h in history]
    timeline = messages.of_conversations(conn, ids)
    agent_ids = {m.author_id for m in timeline if m.author_kind.value == "agent" and m.author_id}
    if conv.assignee_id:
        agent_ids.add(conv.assignee_id)
    names = agents.names(conn, agent_ids)
    return ConversationPage(
        conv,
        contact,
        conversations.triage_of(conn, conversation_id),
        history,
        timeline,
        names,
        names.get(conv.assignee_id) if conv.assignee_id else None,
    )


@dataclass(frozen=True, slots=True)
class ContactPage:
    contact: Contact
    notes: str
    conversations: list[Conversation]
    merged: list[Contact]  # contacts merged into this one


def _contact(
    conn: Connection, contact_id: int, inboxes: Collection[str] | None, agent_id: int | None
) -> tuple[Contact, list[Conversation]]:
    """The contact and its conversations the reader sees; NotFound for a reader limited to
    some inboxes when it sees none of them (it learns nothing of the contact)."""
    contact = contacts.get(conn, contact_id)
    convs = [
        h for h in conversations.of_contact(conn, contact_id) if _visible(h, inboxes, agent_id)
    ]
    if inboxes is not None and not convs:
        raise NotFound(f"no contact {contact_id}")
    return contact, convs


def contact_page(
    conn: Connection, contact_id: int, inboxes: Collection[str] | None, agent_id: int
) -> ContactPage:
    """A contact with its notes, its conversations the agent sees (newest first) and the
    contacts merged into it."""
    contact, convs = _contact(conn, contact_id, inboxes, agent_id)
    notes = contacts.notes_of(conn, contact_id)
    return ContactPage(contact, notes, convs, contacts.merged_into(conn, contact_id))


# -- the read API ----------------------------------------------------------------------


def api_conversation(
    conn: Connection, conversation_id: int, inboxes: Collection[str] | None
) -> tuple[Conversation, list[Message]]:
    """A conversation and its messages, for a token that reaches `inboxes` (None: all);
    NotFound for one outside them, as if it did not exist."""
    conv = conversations.get(conn, conversation_id)
    if not _visible(conv, inboxes, None):
        raise NotFound(f"no conversation {conversation_id}")
    return conv, messages.of_conversation(conn, conversation_id)


def api_contact(
    conn: Connection, contact_id: int, inboxes: Collection[str] | None
) -> tuple[Contact, list[Conversation]]:
    """A contact and its conversations in `inboxes` (None: all), newest first; a token
    limited to some inboxes sees only the contacts who wrote to them (else NotFound)."""
    return _contact(conn, contact_id, inboxes, None)
