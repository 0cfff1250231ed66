"""`ingest`: the only entry channels call. Dedupe -> contact -> thread -> persist, in one
transaction; events are published only after the commit.

Concurrent calls are grouped: while one transaction commits, the calls that arrive wait
and then go together in the next one (group commit), each inside its own SAVEPOINT so a
bad message cannot fail its neighbours. A caller's await returns only after its message
is durable, so it may acknowledge to the sender then.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from inbox import threads
from inbox.bus import EventBus
from inbox.errors import OmnideskError, StoreError, ValidationError
from inbox.events import Event, EventName
from inbox.fastsql import Sql, as_utc, in_list
from inbox.fastsql import _sqlite_value as sqlite_value
from inbox.identity import normalize, sender_identity
from inbox.repo import attachments_to_json
from inbox.store import Store
from inbox.types import (
    ConversationStatus,
    IdentityKind,
    InboundMessage,
    IngestResult,
)

log = logging.getLogger("omnidesk.ingest")

# JSON columns are written as text in the compact form fastsql uses; one encoder, made once
_json = json.JSONEncoder(separators=(",", ":")).encode

MAX_TEXT = 256 * 1024
MAX_EXTERNAL_ID = 500


@dataclass(frozen=True, slots=True)
class IngestSettings:
    priorities: tuple[str, ...] = ("urgent", "high", "normal", "low")
    default_priority: str = "normal"
    thread_window: timedelta = timedelta(days=7)
    default_country: str = "US"
    batch_max: int = 256


@dataclass(frozen=True, slots=True)
class _Prepared:
    msg: InboundMessage
    identities: tuple[tuple[IdentityKind, str, bool], ...]  # (kind, value, verified)
    cursor: tuple[str, str] | None


def prepare(
    msg: InboundMessage,
    settings: IngestSettings,
    cursor: tuple[str, str] | None = None,
    senders: dict[tuple[str, str], tuple[IdentityKind, str]] | None = None,
) -> _Prepared:
    """Validate and normalize outside the transaction; raises ValidationError.

    `senders` remembers normalized sender addresses (a sender writes again and again)."""
    if not msg.external_id or len(msg.external_id) > MAX_EXTERNAL_ID:
        raise ValidationError(
            f"external id must be 1-{MAX_EXTERNAL_ID} characters", field="external_id"
        )
    if len(msg.text) > MAX_TEXT:
        raise ValidationError(f"text is longer than {MAX_TEXT} characters", field="text")
    if msg.received_at.tzinfo is None:
        raise ValidationError("received_at must carry a timezone", field="received_at")
    key = (msg.channel.value, msg.sender)
    known = senders.get(key) if senders is not None else None
    if known is None:
        known = sender_identity(msg.channel, msg.sender, settings.default_country)
        if senders is not None:
            if len(senders) >= 10_000:
                senders.clear()
            senders[key] = known
    kind, value = known
    idents = [(kind, value, False)]
    for extra_kind, extra_value in msg.extra_identities:
        norm = normalize(extra_kind, extra_value, settings.default_country)
        if (extra_kind, norm) != (kind, value):
            idents.append((extra_kind, norm, True))
    return _Prepared(msg, tuple(idents), cursor)


def new_token() -> str:
    """Per-conversation token: 80 random bits, lower-case hex (safe in mail local parts)."""
    return secrets.token_hex(10)


# Plain SQL shared by SQLite and PostgreSQL, run by inbox.fastsql (see why there).
Q_EXISTING = (
    "SELECT m.id, m.conversation_id, c.contact_id FROM messages m "
    "JOIN conversations c ON c.id = m.conversation_id "
    "WHERE m.channel = :channel AND m.external_id = :external_id"
)
Q_IDENTITY = (
    "SELECT i.contact_id, c.merged_into, c.name FROM identities i "
    "JOIN contacts c ON c.id = i.contact_id WHERE i.kind = :kind AND i.value = :value"
)
Q_CONTACT = "SELECT merged_into, name FROM contacts WHERE id = :id"
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
_CONV = "SELECT id, status, last_message_at FROM conversations "
Q_BY_TOKEN = _CONV + "WHERE token = :token"
Q_BY_ID = _CONV + "WHERE id = :id"
Q_RECENT = (
    _CONV + "WHERE contact_id = :contact_id AND channel = :channel AND status != 'closed' "
    "ORDER BY last_message_at DESC, id DESC LIMIT 1"
)
I_CONVERSATION = (
    "INSERT INTO conversations (contact_id, channel, inbox, status, priority, subject, "
    "required_skills, token, tags, created_at, last_message_at) "
    "VALUES (:contact_id, :channel, :inbox, 'open', :priority, :subject, :skills, :token, "
    "'[]', :now, :now) RETURNING id"
)
U_CONVERSATION = "UPDATE conversations SET last_message_at = :now, status = :status WHERE id = :id"
U_REOPEN = (
    "UPDATE conversations SET last_message_at = :now, status = :status, resolved_at = NULL "
    "WHERE id = :id"
)
I_MESSAGE = (
    "INSERT INTO messages (conversation_id, direction, author_kind, author_id, channel, "
    "external_id, subject, text, html, attachments, delivery_status, meta, needs_triage, "
    "created_at) VALUES (:conversation_id, 'inbound', 'contact', :contact_id, :channel, "
    ":external_id, :subject, :text, :html, :attachments, 'received', :meta, :needs_triage, :now) "
    "RETURNING id"
)
# PostgreSQL batches: message ids reserved up front, rows written together at the end
I_MESSAGE_WITH_ID = (
    "INSERT INTO messages (id, conversation_id, direction, author_kind, author_id, channel, "
    "external_id, subject, text, html, attachments, delivery_status, meta, needs_triage, "
    "created_at) VALUES (:id, :conversation_id, 'inbound', 'contact', :contact_id, :channel, "
    ":external_id, :subject, :text, :html, :attachments, 'received', :meta, :needs_triage, :now)"
)
U_CONVERSATIONS = (
    "UPDATE conversations SET last_message_at = :now, status = :status, "
    "resolved_at = CASE WHEN :reopen THEN NULL ELSE resolved_at END WHERE id = :id"
)
U_CURSOR = (
    "INSERT INTO cursors (source, position, updated_at) VALUES (:source, :position, :now) "
    "ON CONFLICT (source) DO UPDATE SET position = excluded.position, "
    "updated_at = excluded.updated_at"
)
Q_LOCK = "SELECT pg_advisory_xact_lock(hashtext(:k))"
# a batch's senders, locked in one statement: the same lock ids as Q_LOCK, distinct and
# taken in ascending order (the aggregate consumes the sorted subquery row by row), so two
# processes locking overlapping batches cannot deadlock
Q_LOCKS = (
    "SELECT count(pg_advisory_xact_lock(h)) FROM (SELECT DISTINCT hashtext(k) AS h "
    "FROM unnest(CAST(:keys AS text[])) AS k ORDER BY h) AS ordered"
)
Q_MESSAGE_IDS = (
    "SELECT nextval(pg_get_serial_sequence('messages', 'id')) AS id FROM generate_series(1, :n)"
)


def _lock_key(item: _Prepared) -> str:
    kind, value, _verified = item.identities[0]
    return f"{kind}:{value}"


def lock_senders(sql: Sql, items: Sequence[_Prepared]) -> None:
    """PostgreSQL: lock every sender of `items` until commit (one round trip), so that no
    other process ingests for them meanwhile. A no-op on SQLite (one writer anyway)."""
    if not sql.sqlite and items:
        # a tuple: fastsql would send a list as JSON text
        sql.run(Q_LOCKS, keys=tuple({_lock_key(item) for item in items}))


def _resolve_contact(
    sql: Sql,
    reads: _Reads,
    identities: Sequence[tuple[IdentityKind, str, bool]],
    display_name: str | None,
    at: Any,
) -> int:
    known: set[tuple[str, str]] = set()
    contact_id: int | None = None
    merged_into: int | None = None
    has_name = False
    # the sender's own identity decides; then any verified extra identity
    for kind, value, _verified in identities:
        found = reads.identity(kind.value, value)
        if found is not None:
            known.add((kind.value, value))
            if contact_id is None:
                contact_id, merged_into, has_name = found
    name = display_name[:200] if display_name else None
    if contact_id is not None:
        if merged_into is not None:
            contact_id, has_name = _follow_merges(sql, merged_into)
        if name and not has_name:
            sql.run(Q_NAME, name=name, id=contact_id)
    else:
        contact_id = sql.scalar(I_CONTACT, name=name, now=at)
    for kind, value, verified in identities:
        if (kind.value, value) not in known:
            sql.run(
                I_IDENTITY,
                contact_id=contact_id,
                kind=kind.value,
                value=value,
                verified=verified,
                opted_out=False,
                now=at,
            )
            reads.identity_stored(kind.value, value, contact_id, bool(name))
    assert contact_id is not None
    return int(contact_id)


def _follow_merges(sql: Sql, contact_id: int) -> tuple[int, bool]:
    """The contact a merged one lives on in, and whether it has a name."""
    for _ in range(16):
        row = sql.first(Q_CONTACT, id=contact_id)
        if row is None or row[0] is None:
            return contact_id, bool(row is not None and row[1])
        contact_id = row[0]
    return contact_id, True


def _candidate(row: tuple[Any, ...] | None) -> threads.Candidate | None:
    if row is None:
        return None
    return threads.Candidate(row[0], ConversationStatus(row[1]), as_utc(row[2]))


def _thread(
    sql: Sql,
    reads: _Reads,
    msg: InboundMessage,
    contact_id: int,
    now: datetime,
    window: timedelta,
) -> tuple[threads.ThreadChoice, threads.Candidate | None]:
    by_token = by_headers = recent = None
    if msg.conversation_token or msg.in_reply_to or msg.references:
        reads.flush()  # the reads below see the batch's own writes
    if msg.conversation_token:
        by_token = _candidate(sql.first(Q_BY_TOKEN, token=msg.conversation_token))
    refs = [r for r in (msg.in_reply_to, *reversed(msg.references)) if r][:50]
    if by_token is None and refs:
        listed, params = in_list("r", refs)
        hit = sql.scalar(
            "SELECT conversation_id FROM messages "
            f"WHERE external_id IN {listed} OR provider_id IN {listed} ORDER BY id DESC LIMIT 1",
            **params,
        )
        if hit is not None:
            by_headers = _candidate(sql.first(Q_BY_ID, id=hit))
    if by_token is None and by_headers is None:
        recent = reads.recent(contact_id, msg.channel.value)
    choice = threads.choose(
        by_token=by_token, by_headers=by_headers, recent=recent, now=now, window=window
    )
    chosen = None
    for c in (by_token, by_headers, recent):
        if c is not None and c.conversation_id == choice.conversation_id:
            chosen = c
            break
    return choice, chosen


def _existing_row(sql: Sql, msg: InboundMessage) -> IngestResult | None:
    row = sql.first(Q_EXISTING, channel=msg.channel.value, external_id=msg.external_id)
    if row is None:
        return None
    return IngestResult(row[0], row[1], row[2], duplicate=True)


def _existing(conn: Connection, msg: InboundMessage) -> IngestResult | None:
    return _existing_row(Sql(conn), msg)


class _Reads:
    """The lookups ingest makes, one statement each, always against the live transaction.

    `_BatchReads` answers the same questions for a whole batch from a few set-based reads
    made up front, kept current by the batch's own writes (the hooks below)."""

    def __init__(self, sql: Sql, now: datetime, *, locked: bool = False) -> None:
        self.sql = sql
        # `now` as the engine stores it, converted once rather than once per statement
        self.at: Any = sqlite_value(now) if sql.sqlite else now
        # PostgreSQL: the senders are locked already (lock_senders), no lock per message
        self.locked = locked

    def existing(self, msg: InboundMessage) -> IngestResult | None:
        return _existing_row(self.sql, msg)

    def identity(self, kind: str, value: str) -> tuple[int, int | None, bool] | None:
        """(contact id, merged into, has a name) of a known identity."""
        row = self.sql.first(Q_IDENTITY, kind=kind, value=value)
        return None if row is None else (row[0], row[1], bool(row[2]))

    def recent(self, contact_id: int, channel: str) -> threads.Candidate | None:
        return _candidate(self.sql.first(Q_RECENT, contact_id=contact_id, channel=channel))

    # writes that a batch may hold back and send together (flush)
    def update_conversation(self, conversation_id: int, status: str, reopen: bool) -> None:
        self.sql.run(
            U_REOPEN if reopen else U_CONVERSATION, now=self.at, status=status, id=conversation_id
        )

    def insert_message(self, **params: Any) -> int:
        return int(self.sql.scalar(I_MESSAGE, **params))

    def flush(self) -> None:
        """Send the writes held back, before anything reads the tables they touch."""
        return None

    # the batch's own writes, for readers that remember what they read
    def stored(self, msg: InboundMessage, result: IngestResult) -> None:
        return None

    def identity_stored(self, kind: str, value: str, contact_id: int, named: bool) -> None:
        return None

    def threaded(
        self, contact_id: int, channel: str, via: threads.Via, now: threads.Candidate
    ) -> None:
        return None


def ingest_in(
    conn: Connection,
    item: _Prepared,
    settings: IngestSettings,
    now: datetime,
    reads: _Reads | None = None,
) -> IngestResult:
    """The whole ingest of one message inside an open transaction."""
    msg = item.msg
    if reads is None:
        reads = _Reads(Sql(conn), now)
    sql, at = reads.sql, reads.at
    first = reads.existing(msg)
    if first is None and not sql.sqlite and not reads.locked:
        # serialize concurrent ingests of one sender across processes
        sql.run(Q_LOCK, k=_lock_key(item))
        first = reads.existing(msg)
    if first is not None:
        # a redelivery still moves a polled source on (an IMAP resync re-offers old mail)
        if item.cursor is not None:
            sql.run(U_CURSOR, source=item.cursor[0], position=item.cursor[1], now=at)
        return first
    contact_id = _resolve_contact(sql, reads, item.identities, msg.display_name, at)
    choice, chosen = _thread(sql, reads, msg, contact_id, now, settings.thread_window)
    subject = msg.subject[:998] if msg.subject else None
    if chosen is None:
        priority = (
            msg.priority if msg.priority in settings.priorities else settings.default_priority
        )
        conversation_id = sql.scalar(
            I_CONVERSATION,
            contact_id=contact_id,
            channel=msg.channel.value,
            inbox=msg.inbox,
            priority=priority,
            subject=subject,
            skills=list(msg.skills),
            token=new_token(),
            now=at,
        )
        status = ConversationStatus.OPEN
    else:
        conversation_id = chosen.conversation_id
        status = threads.next_status(chosen.status, choice)
        reads.update_conversation(conversation_id, status.value, choice.reopen)
    reads.threaded(
        contact_id, msg.channel.value, choice.via, threads.Candidate(conversation_id, status, now)
    )
    message_id = reads.insert_message(
        conversation_id=conversation_id,
        contact_id=contact_id,
        channel=msg.channel.value,
        external_id=msg.external_id,
        subject=subject,
        text=msg.text,
        html=msg.html,
        attachments=_json(attachments_to_json(msg.attachments)) if msg.attachments else "[]",
        meta=_json(
            {
                "auto_submitted": msg.auto_submitted,
                "inbox": msg.inbox,
                "thread_via": choice.via.value,
                "in_reply_to": msg.in_reply_to,
                "references": list(msg.references)[-20:],
                "received_at": msg.received_at.isoformat(),
                "provider": dict(msg.metadata),
            }
        ),
        needs_triage=True,
        now=at,
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
    reads.stored(msg, result)
    return result


class _BatchReads(_Reads):
    """A batch's lookups from three set-based reads made up front, once nothing but this
    batch can ingest for its senders (SQLite: one writer holds the database; PostgreSQL:
    every sender of the batch is locked first, `lock_senders`, and a redelivery racing in
    under another sender still hits the unique (channel, external_id) constraint and the
    per-message savepoint fallback): the redeliveries among the batch's keys, the contacts
    of its identities, and each of those contacts' latest open conversation per channel.
    The batch's own writes keep the answers current; a conversation reached by token or
    headers (which may be another contact's latest) sends `recent` back to one query per
    message for the rest of it."""

    def __init__(self, sql: Sql, now: datetime, items: Sequence[_Prepared]) -> None:
        # PostgreSQL: the batch's message ids come with its locks, and its conversation
        # updates and message rows go in two pipelined statements at the end (flush), not
        # a round trip each; SQLite runs each statement in microseconds, in-process
        lock_senders(sql, items)
        self._defer = not sql.sqlite
        self._updates: dict[int, dict[str, Any]] = {}
        self._messages: list[dict[str, Any]] = []
        super().__init__(sql, now, locked=True)
        self._seen: dict[tuple[str, str], IngestResult] = {}
        by_channel: dict[str, list[str]] = {}
        for item in items:
            by_channel.setdefault(item.msg.channel.value, []).append(item.msg.external_id)
        for channel, keys in by_channel.items():
            for chunk in _chunks(keys):
                listed, params = in_list("k", chunk)
                for row in sql.dicts(
                    "SELECT m.external_id, m.id, m.conversation_id, c.contact_id FROM messages m "
                    "JOIN conversations c ON c.id = m.conversation_id "
                    f"WHERE m.channel = :channel AND m.external_id IN {listed}",
                    channel=channel,
                    **params,
                ):
                    self._seen[(channel, row["external_id"])] = IngestResult(
                        row["id"], row["conversation_id"], row["contact_id"], duplicate=True
                    )
        # one id for each message the batch will store (the new keys), in ascending order,
        # as one-at-a-time inserts would have taken them
        self._ids: list[int] = []
        if self._defer:
            new = {(i.msg.channel.value, i.msg.external_id) for i in items} - self._seen.keys()
            if new:
                # reversed: pop() hands them out in ascending order
                rows = sql.dicts(Q_MESSAGE_IDS, n=len(new))
                self._ids = sorted((row["id"] for row in rows), reverse=True)
        self._idents: dict[tuple[str, str], tuple[int, int | None, bool] | None] = {}
        by_kind: dict[str, set[str]] = {}
        for item in items:
            for kind, value, _verified in item.identities:
                by_kind.setdefault(kind.value, set()).add(value)
                self._idents[(kind.value, value)] = None
        for kind_name, values in by_kind.items():
            for chunk in _chunks(sorted(values)):
                listed, params = in_list("v", chunk)
                for row in sql.dicts(
                    "SELECT i.value, i.contact_id, c.merged_into, c.name FROM identities i "
                    "JOIN contacts c ON c.id = i.contact_id "
                    f"WHERE i.kind = :kind AND i.value IN {listed}",
                    kind=kind_name,
                    **params,
                ):
                    self._idents[(kind_name, row["value"])] = (
                        row["contact_id"],
                        row["merged_into"],
                        bool(row["name"]),
                    )
        # (contact, channel) -> latest open conversation; contacts in _known have no other
        self._recent: dict[tuple[int, str], threads.Candidate] | None = {}
        self._known = {f[0] for f in self._idents.values() if f is not None and f[1] is None}
        for chunk in _chunks(sorted(self._known)):
            listed, params = in_list("c", chunk)
            for row in sql.dicts(
                "SELECT id, contact_id, channel, status, last_message_at FROM ("
                "SELECT id, contact_id, channel, status, last_message_at, row_number() OVER ("
                "PARTITION BY contact_id, channel ORDER BY last_message_at DESC, id DESC) AS n "
                f"FROM conversations WHERE contact_id IN {listed} AND status != 'closed'"
                ") AS latest WHERE n = 1",
                **params,
            ):
                self._recent[(row["contact_id"], row["channel"])] = threads.Candidate(
                    row["id"], ConversationStatus(row["status"]), as_utc(row["last_message_at"])
                )

    def existing(self, msg: InboundMessage) -> IngestResult | None:
        return self._seen.get((msg.channel.value, msg.external_id))

    def update_conversation(self, conversation_id: int, status: str, reopen: bool) -> None:
        if not self._defer:
            return super().update_conversation(conversation_id, status, reopen)
        # every update of the batch sets the same time: the last status stands, and a
        # reopening anywhere in the batch clears resolved_at
        held = self._updates.get(conversation_id)
        self._updates[conversation_id] = {
            "id": conversation_id,
            "now": self.at,
            "status": status,
            "reopen": reopen or (held is not None and held["reopen"]),
        }
        return None

    def insert_message(self, **params: Any) -> int:
        if not self._defer or not self._ids:
            self.flush()  # (none reserved left: cannot happen, but stay in order if it does)
            return super().insert_message(**params)
        message_id = self._ids.pop()
        self._messages.append({"id": message_id, **params})
        return message_id

    def flush(self) -> None:
        if self._updates:
            self.sql.run_many(U_CONVERSATIONS, list(self._updates.values()))
            self._updates.clear()
        if self._messages:
            self.sql.run_many(I_MESSAGE_WITH_ID, self._messages)
            self._messages = []

    def identity(self, kind: str, value: str) -> tuple[int, int | None, bool] | None:
        key = (kind, value)
        if key not in self._idents:
            return super().identity(kind, value)
        # "has a name" may be stale after this batch named the contact: harmless, naming
        # only ever fills a missing name (Q_NAME)
        return self._idents[key]

    def recent(self, contact_id: int, channel: str) -> threads.Candidate | None:
        if self._recent is None or contact_id not in self._known:
            self.flush()
            return super().recent(contact_id, channel)
        return self._recent.get((contact_id, channel))

    def stored(self, msg: InboundMessage, result: IngestResult) -> None:
        self._seen[(msg.channel.value, msg.external_id)] = IngestResult(
            result.message_id, result.conversation_id, result.contact_id, duplicate=True
        )

    def identity_stored(self, kind: str, value: str, contact_id: int, named: bool) -> None:
        self._idents[(kind, value)] = (contact_id, None, named)

    def threaded(
        self, contact_id: int, channel: str, via: threads.Via, now: threads.Candidate
    ) -> None:
        if self._recent is None:
            return
        if via in (threads.Via.NEW, threads.Via.RECENT):
            # the conversation is this contact's on this channel, and now its latest
            if contact_id in self._known:
                self._recent[(contact_id, channel)] = now
        else:
            self._recent = None


def _chunks(values: Sequence[Any], size: int = 500) -> list[Sequence[Any]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


def ingest_batch(
    conn: Connection, items: Sequence[_Prepared], settings: IngestSettings, now: datetime
) -> list[IngestResult]:
    """Ingest of a batch inside one open transaction, in order (each message sees the ones
    before it). The lookups come from a few set-based reads (`_BatchReads`)."""
    reads = _BatchReads(Sql(conn), now, items)
    results = [ingest_in(conn, item, settings, now, reads) for item in items]
    reads.flush()
    return results


def events_for(
    msg: InboundMessage, result: IngestResult, at: datetime | None = None
) -> list[Event]:
    if result.duplicate:
        return []
    ids = {
        "message_id": result.message_id,
        "conversation_id": result.conversation_id,
        "contact_id": result.contact_id,
        "channel": msg.channel.value,
        "inbox": msg.inbox,
    }
    at = at or datetime.now(UTC)
    out = []
    if result.conversation_created:
        out.append(Event(EventName.CONVERSATION_CREATED, ids, at))
    if result.conversation_reopened:
        out.append(Event(EventName.CONVERSATION_REOPENED, ids, at))
    out.append(Event(EventName.MESSAGE_RECEIVED, ids, at))
    return out


_Pending = tuple[_Prepared, "asyncio.Future[IngestResult]"]


class Ingestor:
    """The `ingest` callable: group commit over a Store, events after commit."""

    def __init__(self, store: Store, bus: EventBus, settings: IngestSettings | None = None) -> None:
        self.store = store
        self.bus = bus
        self.settings = settings or IngestSettings()
        self._pending: list[_Pending] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._senders: dict[tuple[str, str], tuple[IdentityKind, str]] = {}

    async def idle(self) -> None:
        """Wait until every accepted message is committed and its events published."""
        await self._idle.wait()

    async def __call__(
        self, msg: InboundMessage, *, cursor: tuple[str, str] | None = None
    ) -> IngestResult:
        item = prepare(msg, self.settings, cursor, self._senders)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="ingest-batcher")
        future: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._idle.clear()
        self._wake.set()
        result = await future
        return result

    async def close(self) -> None:
        if self._task is not None:
            await self.idle()
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = self._pending[: self.settings.batch_max]
                del self._pending[: len(batch)]
                await self._write(batch)
            self._idle.set()

    async def _write(self, batch: list[_Pending]) -> None:
        now = datetime.now(UTC)
        settings = self.settings

        items = [item for item, _future in batch]

        def optimistic(conn: Connection) -> list[IngestResult | Exception]:
            # the common case: the whole batch in one transaction, no savepoints
            return list(ingest_batch(conn, items, settings, now))

        def careful(conn: Connection) -> list[IngestResult | Exception]:
            # after a failure: each message in its own savepoint, so one bad message
            # cannot fail its neighbours
            out: list[IngestResult | Exception] = []
            sql = Sql(conn)
            # every sender up front, in the one order (a lock per message, taken in message
            # order, could deadlock against another process's batch)
            lock_senders(sql, items)
            for item in items:
                savepoint = conn.begin_nested()
                try:
                    out.append(ingest_in(conn, item, settings, now, _Reads(sql, now, locked=True)))
                    savepoint.commit()
                except Exception as exc:
                    savepoint.rollback()
                    # a concurrent process may have stored the same key first
                    first = _existing(conn, item.msg)
                    out.append(first if first is not None else exc)
            return out

        try:
            try:
                results = await self.store.write(optimistic)
            except Exception as exc:
                if len(items) == 1 and not isinstance(exc, StoreError):
                    raise
                results = await self.store.write(careful)
        except Exception as exc:
            log.error("ingest batch of %d failed: %s", len(batch), exc)
            err = exc if isinstance(exc, OmnideskError) else StoreError(str(exc))
            for _item, future in batch:
                if not future.done():
                    future.set_exception(err)
            return
        at = datetime.now(UTC)
        events: list[Event] = []
        for (item, future), result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                log.warning(
                    "ingest of %s/%s failed: %s",
                    item.msg.channel,
                    item.msg.external_id[:60],
                    result,
                )
                err = result if isinstance(result, OmnideskError) else StoreError(str(result))
                if not future.done():
                    future.set_exception(err)
                continue
            if not future.done():
                future.set_result(result)
            if result.duplicate:
                log.info(
                    "duplicate %s message %s -> message=%d conversation=%d",
                    item.msg.channel,
                    item.msg.external_id[:60],
                    result.message_id,
                    result.conversation_id,
                )
                continue
            log.info(
                "ingested %s message=%d conversation=%d contact=%d%s",
                item.msg.channel,
                result.message_id,
                result.conversation_id,
                result.contact_id,
                " (new conversation)" if result.conversation_created else "",
            )
            events += events_for(item.msg, result, at)
        # every caller has its answer first; then the batch's events, in message order, as
        # one unit (one message on Redis, one handler call per subscriber in-process)
        await self.bus.publish_many(events)
