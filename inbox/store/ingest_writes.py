"""The ingest transaction: dedupe -> contact -> thread -> persist for one message or a
batch, inside the store's open transaction (`inbox.ingest` validates before and publishes
after; the reads it makes, per message or set-based for a batch, are
`inbox.store.ingest_reads`).

`write_batch` runs a whole batch in one transaction; should it fail, `write_carefully`
runs each message in its own savepoint, so a bad message cannot fail its neighbours. Both
are module-level, their arguments and results pickle: the SQLite store may run them in its
writer process.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from inbox import threads
from inbox.store.backends import translate_error
from inbox.store.batch_reads import BatchReads
from inbox.store.contacts import follow_merges
from inbox.store.fastsql import Sql, in_list, to_json
from inbox.store.ingest_reads import (
    CONV,
    U_CURSOR,
    Prepared,
    Reads,
    candidate,
    first_result,
    lock_senders,
)
from inbox.store.messages import attachments_to_json
from inbox.types import ConversationStatus, InboundMessage, IngestResult, pickled_by_fields

__all__ = ["IngestSettings", "ingest_batch", "ingest_in", "write_batch", "write_carefully"]


@pickled_by_fields  # sent with every batch to the SQLite writer process
@dataclass(frozen=True, slots=True)
class IngestSettings:
    """How ingest decides, from the config: the priorities a message may ask for and the
    default, how long a contact's latest conversation takes a new message in,
    the country of phone numbers written without one, and the most messages one
    transaction takes."""

    priorities: tuple[str, ...] = ("urgent", "high", "normal", "low")
    default_priority: str = "normal"
    thread_window: timedelta = timedelta(days=7)
    # a solved conversation reopens within this; later, a new one is linked to it
    reopen_window: timedelta | None = None
    default_country: str = "US"
    batch_max: int = 256


# Plain SQL shared by SQLite and PostgreSQL, run by inbox.store.fastsql (see why there).
Q_NAME = "UPDATE contacts SET name = :name WHERE id = :id AND name IS NULL"
I_CONTACT = (
    "INSERT INTO contacts (name, attributes, tags, notes, created_at) "
    "VALUES (:name, '{}', '[]', '', :now) RETURNING id"
)
I_IDENTITY = (
    "INSERT INTO identities (contact_id, kind, value, verified, opted_out, created_at) "
    "VALUES (:contact_id, :kind, :value, :verified, :opted_out, :now) "
    "ON CONFLICT (kind, value) DO NOTHING"
)
Q_BY_TOKEN = CONV + "WHERE token = :token"
# header evidence: the latest message named, with its conversation and that conversation's
# contact; a message of this channel (received on it, or sent in it), or, on email, a
# message of a channel whose answers we send by email (`inbox.outbox.durable`: a form or API
# conversation, a chat visitor who left) whose provider id is a Message-ID (`left@right`,
# not a held `webchat:<id>`). Headers and recency thread only within the message's inbox:
# a conversation belongs to one inbox, and who may write into an inbox (an API token's
# scope) stays there. (A flat OR: SQLite then searches both indexes.)
Q_BY_HEADERS = (
    "SELECT c.id, c.status, c.last_message_at, c.resolved_at, c.contact_id FROM messages m "
    "JOIN conversations c ON c.id = m.conversation_id "
    "WHERE ((m.channel = :channel AND m.external_id IN {refs} AND m.direction = 'inbound') "
    "OR (m.provider_id IN {refs} AND m.direction = 'outbound' AND (m.channel = :channel{also}))) "
    "AND c.inbox = :inbox ORDER BY m.id DESC LIMIT 1"
)
_ALSO_EMAILED = " OR (m.channel IN ('form', 'api', 'chat') AND m.provider_id LIKE '%@%')"


def by_headers_query(channel: str, refs: str) -> str:
    """Q_BY_HEADERS for an inbound message of `channel`, `refs` its IN list."""
    also = _ALSO_EMAILED if channel == "email" else ""
    return Q_BY_HEADERS.format(refs=refs, also=also)


I_CONVERSATION = (
    "INSERT INTO conversations (contact_id, channel, inbox, status, priority, subject, "
    "required_skills, token, tags, created_at, last_message_at, linked_to) "
    "VALUES (:contact_id, :channel, :inbox, 'open', :priority, :subject, :skills, :token, "
    "'[]', :now, :now, :linked_to) RETURNING id"
)
Q_LOCK = "SELECT pg_advisory_xact_lock(hashtext(:k))"


def new_token() -> str:
    """Per-conversation token: 80 random bits, lower-case hex (safe in mail local parts)."""
    return secrets.token_hex(10)


def _contact(
    sql: Sql,
    reads: Reads,
    identities: Sequence[tuple[str, str, bool]],
    display_name: str | None,
    at: Any,
) -> int:
    if len(identities) == 1:
        # the common case: the sender's identity alone, known, on a contact of its own
        # that is not merged away and needs no name
        found = reads.identity(identities[0][0], identities[0][1])
        if found is not None and found[1] is None and (found[2] or not display_name):
            return int(found[0])
    known: set[tuple[str, str]] = set()
    contact_id: int | None = None
    merged_into: int | None = None
    has_name = False
    # the sender's own identity decides; then any verified extra identity
    for kind, value, _verified in identities:
        found = reads.identity(kind, value)
        if found is not None:
            known.add((kind, value))
            if contact_id is None:
                contact_id, merged_into, has_name = found
    name = display_name[:200] if display_name else None
    if contact_id is not None:
        if merged_into is not None:
            contact_id, has_name = follow_merges(sql.conn, merged_into)
        if name and not has_name:
            sql.run(Q_NAME, name=name, id=contact_id)
    else:
        contact_id = sql.scalar(I_CONTACT, name=name, now=at)
    for kind, value, verified in identities:
        if (kind, value) not in known:
            sql.run(
                I_IDENTITY,
                contact_id=contact_id,
                kind=kind,
                value=value,
                verified=verified,
                opted_out=False,
                now=at,
            )
            reads.identity_stored(kind, value, contact_id, bool(name))
    assert contact_id is not None
    return int(contact_id)


def _thread_recent(
    reads: Reads, contact_id: int, channel: str, inbox: str, now: datetime, s: IngestSettings
) -> tuple[threads.ThreadChoice, threads.Candidate | None]:
    """The common case: no explicit evidence, the contact's latest conversation or new."""
    recent = reads.recent(contact_id, channel, inbox)
    choice = threads.choose(
        by_token=None,
        by_headers=None,
        recent=recent,
        now=now,
        window=s.thread_window,
        reopen_window=s.reopen_window,
    )
    return choice, (recent if choice.conversation_id is not None else None)


def _evidence(
    sql: Sql, msg: InboundMessage, channel: str
) -> tuple[threads.Candidate | None, threads.Candidate | None, int | None]:
    """(by token, by headers, a closed conversation the token named)."""
    by_token = by_headers = None
    closed: int | None = None
    if msg.conversation_token:
        by_token = candidate(sql.first(Q_BY_TOKEN, token=msg.conversation_token))
        if by_token is not None and by_token.status is ConversationStatus.CLOSED:
            closed = by_token.conversation_id
            by_token = None  # counts as no token: the headers are asked next
    refs = [r for r in (msg.in_reply_to, *reversed(msg.references)) if r][:50]
    if by_token is None and refs:
        # only messages of this channel (what came in on it, and what we sent through it)
        # in a conversation of this inbox
        listed, ids = in_list("r", refs)
        by_headers = candidate(
            sql.first(by_headers_query(channel, listed), channel=channel, inbox=msg.inbox, **ids),
            with_contact=True,
        )
    return by_token, by_headers, closed


def _thread(
    sql: Sql,
    reads: Reads,
    msg: InboundMessage,
    channel: str,
    contact_id: int,
    now: datetime,
    settings: IngestSettings,
) -> tuple[threads.ThreadChoice, threads.Candidate | None]:
    reads.flush()  # the reads below see the batch's own writes
    by_token, by_headers, closed = _evidence(sql, msg, channel)
    own_closed = (
        by_headers is not None
        and by_headers.contact_id == contact_id
        and by_headers.status is ConversationStatus.CLOSED
    )
    if own_closed and by_headers is not None:
        closed = closed or by_headers.conversation_id
    recent = None
    if by_token is None and (by_headers is None or own_closed):
        recent = reads.recent(contact_id, channel, msg.inbox)
    choice = threads.choose(
        by_token=by_token,
        by_headers=by_headers,
        recent=recent,
        now=now,
        window=settings.thread_window,
        contact_id=contact_id,
        reopen_window=settings.reopen_window,
    )
    if closed is not None and choice.conversation_id is None and choice.refers_to is None:
        # the customer wrote again after it was closed: a new conversation follows it
        choice = dataclasses.replace(choice, linked_to=choice.linked_to or closed)
    found = (c for c in (by_token, by_headers, recent) if c is not None)
    return choice, next((c for c in found if c.conversation_id == choice.conversation_id), None)


def ingest_in(
    conn: Connection,
    item: Prepared,
    settings: IngestSettings,
    now: datetime,
    reads: Reads | None = None,
) -> IngestResult:
    """The whole ingest of one message inside an open transaction."""
    msg = item.msg
    channel = item.channel
    if reads is None:
        reads = Reads(Sql(conn), now)
    sql, at = reads.sql, reads.at
    first = reads.existing(item)
    if first is None and not sql.sqlite and not reads.locked:
        # serialize concurrent ingests of one sender across processes
        sql.run(Q_LOCK, k=item.sender_key)
        first = reads.existing(item)
    if first is not None:
        # a redelivery still moves a polled source on (an IMAP resync re-offers old mail)
        if item.cursor is not None:
            sql.run(U_CURSOR, source=item.cursor[0], position=item.cursor[1], now=at)
        return first
    contact_id = _contact(sql, reads, item.identities, msg.display_name, at)
    if msg.conversation_token or msg.in_reply_to or msg.references:
        choice, chosen = _thread(sql, reads, msg, channel, contact_id, now, settings)
    else:
        choice, chosen = _thread_recent(reads, contact_id, channel, msg.inbox, now, settings)
    subject = msg.subject[:998] if msg.subject else None
    if chosen is None:
        priority = (
            msg.priority if msg.priority in settings.priorities else settings.default_priority
        )
        conversation_id = sql.scalar(
            I_CONVERSATION,
            contact_id=contact_id,
            channel=channel,
            inbox=msg.inbox,
            priority=priority,
            subject=subject,
            skills=list(msg.skills),
            token=new_token(),
            now=at,
            linked_to=choice.linked_to,
        )
        status = ConversationStatus.OPEN
    else:
        conversation_id = chosen.conversation_id
        status = threads.next_status(chosen.status, choice)
        reads.update_conversation(conversation_id, str(status), choice.reopen)
    reads.threaded(contact_id, channel, msg.inbox, choice.via, conversation_id, status, now)
    metadata = msg.metadata
    meta: dict[str, Any] = {
        "auto_submitted": msg.auto_submitted,
        "inbox": msg.inbox,
        "thread_via": str(choice.via),
        "in_reply_to": msg.in_reply_to,
        "references": list(msg.references[-20:]),
        "received_at": msg.received_at.isoformat(),
        "provider": metadata if type(metadata) is dict else dict(metadata),
    }
    if choice.refers_to is not None:
        # its headers named another contact's conversation: agents see it flagged
        meta["refers_to"] = choice.refers_to
    message_id = reads.insert_message(
        {
            "conversation_id": conversation_id,
            "direction": "inbound",
            "author_kind": "contact",
            "author_id": contact_id,
            "channel": channel,
            "external_id": msg.external_id,
            "sender_key": item.sender_key,
            "subject": subject,
            "text": msg.text,
            "html": msg.html,
            "attachments": (
                to_json(attachments_to_json(msg.attachments)) if msg.attachments else "[]"
            ),
            "delivery_status": "received",
            "meta": to_json(meta),
            "needs_triage": True,
            "created_at": at,
        }
    )
    if item.cursor is not None:
        source, position = item.cursor
        sql.run(U_CURSOR, source=source, position=position, now=at)
    result = IngestResult(
        message_id,
        int(conversation_id),
        contact_id,
        conversation_created=chosen is None,
        conversation_reopened=choice.reopen,
    )
    reads.stored(item, result)
    return result


def ingest_batch(
    conn: Connection, items: Sequence[Prepared], settings: IngestSettings, now: datetime
) -> list[IngestResult]:
    """Ingest of a batch inside one open transaction, in order (each message sees the ones
    before it). The lookups come from a few set-based reads (`BatchReads`)."""
    reads = BatchReads(Sql(conn), now, items)
    results = [ingest_in(conn, item, settings, now, reads) for item in items]
    reads.flush()
    return results


def write_batch(
    conn: Connection, items: Sequence[Prepared], settings: IngestSettings, now: datetime
) -> list[IngestResult | Exception]:
    """The common case: the whole batch in one transaction, no savepoints. (Module-level,
    as `write_carefully`: the store may run either in its writer process.)"""
    return list(ingest_batch(conn, items, settings, now))


def write_carefully(
    conn: Connection, items: Sequence[Prepared], settings: IngestSettings, now: datetime
) -> list[IngestResult | Exception]:
    """After a batch failed: each message in its own savepoint, so one bad message cannot
    fail its neighbours."""
    out: list[IngestResult | Exception] = []
    sql = Sql(conn)
    # every sender up front, in the one order (a lock per message, taken in message
    # order, could deadlock against another process's batch)
    lock_senders(sql, items)
    for item in items:
        savepoint = conn.begin_nested()
        try:
            out.append(ingest_in(conn, item, settings, now, Reads(sql, now, locked=True)))
            savepoint.commit()
        except Exception as exc:
            savepoint.rollback()
            # a concurrent process may have stored the same key first
            first = first_result(conn, item)
            out.append(first if first is not None else translate_error(exc))
    return out
