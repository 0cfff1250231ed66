"""What triage reads and writes (`inbox.pipeline` decides): the messages still needing
triage with their conversations and contacts, and the one transaction that stores a
batch's decisions.

A message is claimed by clearing its `needs_triage` flag in the transaction that stores
its decision: a message another process triaged first is skipped, and one stored but
never triaged (a crash between) keeps the flag for `untriaged` to find. Sync functions
of a Connection, run by `Store.read/write`; the batch reads are plain SQL (they run once
per batch on the hot path, see `inbox.store.fastsql`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inbox.identity import SENDER_KIND
from inbox.ports import Reply
from inbox.store import contacts, conversations, messages
from inbox.store import schema as t
from inbox.store.fastsql import Sql, as_utc, decode, from_json, in_list
from inbox.store.outbox import enqueue
from inbox.types import (
    AuthorKind,
    Contact,
    Conversation,
    ConversationStatus,
    InboundMessage,
    Message,
)

__all__ = ["Loaded", "Settled", "Settlement", "State", "load", "settle", "untriaged"]


@dataclass(frozen=True, slots=True)
class Loaded:
    """A message to triage, with what the decision reads."""

    message: Message
    conversation: Conversation
    contact: Contact
    inbound: InboundMessage  # the adapter's facts as stored (headers for the loop guard)
    first_message: bool  # the conversation's first inbound message


_M_COLS = (
    "id, conversation_id, direction, author_kind, author_id, channel, text, created_at, "
    "delivery_status, external_id, subject, html, attachments, failure_reason, meta"
)
_C_COLS = (
    "id, contact_id, channel, inbox, status, priority, subject, required_skills, assignee_id, "
    "token, created_at, last_message_at, first_response_at, resolved_at, waiting_since, tags"
)
_C_TIMES = ("created_at", "last_message_at", "first_response_at", "resolved_at", "waiting_since")


def untriaged(conn: Connection, stored_before: datetime | None = None) -> list[int]:
    """The ids of the messages still needing triage (stored before `stored_before`, if
    given: younger ones are still on their way), oldest first."""
    m = t.messages.c
    query = sa.select(m.id).where(m.needs_triage.is_(True)).order_by(m.id)
    if stored_before is not None:
        query = query.where(m.created_at < stored_before)
    return [r.id for r in conn.execute(query)]


def load(conn: Connection, ids: Sequence[int]) -> list[Loaded]:
    """The messages of `ids` still needing triage, with their conversations and contacts:
    four reads for a whole batch."""
    sql = Sql(conn)
    listed, params = in_list("m", list(ids))
    rows = [
        decode(r, json_cols=("attachments", "meta"), time_cols=("created_at",))
        for r in sql.dicts(
            f"SELECT {_M_COLS} FROM messages WHERE id IN {listed} AND needs_triage = :yes "
            "ORDER BY id",
            yes=True,
            **params,
        )
    ]
    if not rows:
        return []
    found = [messages.from_row(r) for r in rows]  # type: ignore[arg-type]
    metas = {r["id"]: r["meta"] or {} for r in rows}
    conv_list, conv_params = in_list("c", sorted({m.conversation_id for m in found}))
    convs = {
        r["id"]: conversations.from_row(
            decode(r, json_cols=("required_skills", "tags"), time_cols=_C_TIMES)  # type: ignore[arg-type]
        )
        for r in sql.dicts(
            f"SELECT {_C_COLS} FROM conversations WHERE id IN {conv_list}", **conv_params
        )
    }
    people = contacts.get_many(conn, {c.contact_id for c in convs.values()})
    firsts = {
        r["conversation_id"]: r["first"]
        for r in sql.dicts(
            "SELECT conversation_id, min(id) AS first FROM messages "
            f"WHERE conversation_id IN {conv_list} AND direction = 'inbound' "
            "GROUP BY conversation_id",
            **conv_params,
        )
    }
    out = []
    for m in found:
        conv = convs[m.conversation_id]
        contact = people[conv.contact_id]
        inbound = _inbound(m, conv, contact, metas[m.id])
        out.append(Loaded(m, conv, contact, inbound, firsts.get(conv.id) == m.id))
    return out


def _inbound(m: Message, conv: Conversation, contact: Contact, meta: Any) -> InboundMessage:
    """The inbound message as its adapter handed it over, from what ingest stored."""
    kind = SENDER_KIND.get(m.channel)
    return InboundMessage(
        channel=m.channel,
        external_id=m.external_id or str(m.id),
        sender=(contact.identity(kind) if kind else None) or "",
        text=m.text,
        received_at=m.created_at,
        display_name=contact.name,
        subject=m.subject,
        html=m.html,
        attachments=m.attachments,
        in_reply_to=meta.get("in_reply_to"),
        references=tuple(meta.get("references") or ()),
        auto_submitted=bool(meta.get("auto_submitted")),
        inbox=meta.get("inbox") or conv.inbox,
        metadata=meta.get("provider") or {},
    )


# -- storing decisions --------------------------------------------------------------------


class State(NamedTuple):
    """A conversation as triage finds it, read once its message is claimed."""

    conversation_id: int
    priority: str
    skills: tuple[str, ...]
    tags: tuple[str, ...]
    assignee_id: int | None
    status: str
    waiting_since: datetime | None


class Settlement(NamedTuple):
    """What a decision does to its conversation."""

    triage: dict[str, Any]  # the decision as stored with the conversation
    priority: str
    skills: tuple[str, ...] | None = None  # None: unchanged
    tags: tuple[str, ...] | None = None  # None: unchanged
    reply: Reply | None = None  # an automatic answer, to the outbox
    resolved: bool = False  # resolved now
    queued: bool = False  # waiting for an agent (since it first waited, else now)


class Settled(NamedTuple):
    message_id: int
    conversation_id: int
    settlement: Settlement
    reply_id: int | None  # the automatic answer's message id


Q_CONV = (
    "SELECT priority, required_skills, tags, assignee_id, status, waiting_since "
    "FROM conversations WHERE id = :id"
)
U_CLAIM = (
    "UPDATE messages SET needs_triage = :no WHERE id = :id AND needs_triage = :yes "
    "RETURNING conversation_id"
)


def _state(sql: Sql, conversation_id: int) -> State:
    priority, skills, tags, assignee_id, status, waiting_since = sql.first(  # type: ignore[misc]
        Q_CONV, id=conversation_id
    )
    return State(
        conversation_id,
        priority,
        tuple(from_json(skills) or ()),
        tuple(from_json(tags) or ()),
        assignee_id,
        status,
        as_utc(waiting_since) if waiting_since else None,
    )


def _values(state: State, settled: Settlement, now: datetime) -> dict[str, Any]:
    values: dict[str, Any] = {"triage": settled.triage, "priority": settled.priority}
    if settled.skills is not None:
        values["required_skills"] = list(settled.skills)
    if settled.tags is not None:
        values["tags"] = list(settled.tags)
    if settled.resolved:
        values.update(status=ConversationStatus.RESOLVED.value, resolved_at=now, waiting_since=None)
    elif settled.queued:
        values["status"] = ConversationStatus.OPEN.value
        values["waiting_since"] = state.waiting_since or now
    return values


def settle(
    conn: Connection,
    plans: Sequence[tuple[int, Callable[[State], Settlement]]],
    now: datetime,
) -> list[Settled]:
    """For each (message id, plan): claim the message, read its conversation's state, and
    store what `plan(state)` settles (with its automatic answer in the outbox). Messages
    another process claimed first are left out of the result."""
    sql = Sql(conn)
    out = []
    for message_id, plan in plans:
        conv_id = sql.scalar(U_CLAIM, id=message_id, no=False, yes=True)
        if conv_id is None:
            continue  # another process triaged it first
        state = _state(sql, conv_id)
        settlement = plan(state)
        reply_id = None
        if settlement.reply is not None:
            reply_id = enqueue(
                conn,
                conversation_id=conv_id,
                text=settlement.reply.text,
                html=settlement.reply.html,
                subject=settlement.reply.subject,
                author_kind=AuthorKind.BOT,
                auto_reply=True,
                now=now,
            )
        values = _values(state, settlement, now)
        assignments = ", ".join(f"{key} = :{key}" for key in values)
        sql.run(
            f"UPDATE conversations SET {assignments} WHERE id = :conv_id", conv_id=conv_id, **values
        )
        out.append(Settled(message_id, conv_id, settlement, reply_id))
    return out
