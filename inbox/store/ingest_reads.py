"""What ingest reads and writes, and how: the plain SQL, the per-message lookups (`Reads`)
and the set-based ones a batch makes up front (`BatchReads`). `inbox.ingest` holds the
decisions (contact, thread, status) and the group commit; this module holds the store
side of them, for SQLite and PostgreSQL alike (see `inbox.store.fastsql` for how each runs)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from inbox import threads
from inbox.store.fastsql import Sql, as_utc, in_list
from inbox.store.fastsql import _sqlite_value as sqlite_value
from inbox.types import ConversationStatus, InboundMessage, IngestResult, pickled_by_fields


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Prepared:
    """A message validated and normalized outside the transaction (`ingest.prepare`)."""

    msg: InboundMessage
    channel: str  # msg.channel's value (an enum's .value is slow to read again and again)
    identities: tuple[tuple[str, str, bool], ...]  # (kind's value, value, verified)
    cursor: tuple[str, str] | None
    # the sender's identity, "kind:value": redelivery is deduped per sender, and PostgreSQL
    # serializes each sender's ingests on it
    sender_key: str


# Plain SQL shared by SQLite and PostgreSQL, run by inbox.store.fastsql (see why there).
Q_EXISTING = (
    "SELECT m.id, m.conversation_id, c.contact_id FROM messages m "
    "JOIN conversations c ON c.id = m.conversation_id "
    "WHERE m.channel = :channel AND m.external_id = :external_id AND m.sender_key = :sender"
)
Q_IDENTITY = (
    "SELECT i.contact_id, c.merged_into, c.name FROM identities i "
    "JOIN contacts c ON c.id = i.contact_id WHERE i.kind = :kind AND i.value = :value"
)
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
# header evidence: the latest message named, with its conversation and that conversation's
# contact; a message of this channel (received on it, or sent in it), or, on email, a
# message of a channel whose answers we send by email (`inbox.outbox.durable`: a form or API
# conversation, a chat visitor who left) whose provider id is a Message-ID (`left@right`,
# not a held `webchat:<id>`). Headers and recency thread only within the message's inbox:
# a conversation belongs to one inbox, and who may write into an inbox (an API token's
# scope) stays there. (A flat OR: SQLite then searches both indexes.)
Q_BY_HEADERS = (
    "SELECT c.id, c.status, c.last_message_at, c.contact_id FROM messages m "
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


Q_RECENT = (
    _CONV + "WHERE contact_id = :contact_id AND channel = :channel AND inbox = :inbox "
    "AND status != 'closed' "
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
# an inbound message row: ingest_in builds a dict with these keys (but "id" in a batch)
MESSAGE_COLUMNS = (
    "conversation_id",
    "direction",
    "author_kind",
    "author_id",
    "channel",
    "external_id",
    "sender_key",
    "subject",
    "text",
    "html",
    "attachments",
    "delivery_status",
    "meta",
    "needs_triage",
    "created_at",
)
I_MESSAGE = (
    f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in MESSAGE_COLUMNS)}) RETURNING id"
)
# batches: message ids reserved up front, rows written together at the end
BATCH_MESSAGE_COLUMNS = ("id", *MESSAGE_COLUMNS)
U_CONVERSATIONS = (
    "UPDATE conversations SET last_message_at = :now, status = :status, "
    "resolved_at = CASE WHEN :reopen THEN NULL ELSE resolved_at END WHERE id = :id"
)


def _sqlite_update_conversations(count: int) -> str:
    """U_CONVERSATIONS for `count` conversations in one SQLite statement (one step)."""
    values = ", ".join(["(?, ?, ?, ?)"] * count)
    return (
        "UPDATE conversations SET last_message_at = v.column2, status = v.column3, "
        "resolved_at = CASE WHEN v.column4 THEN NULL ELSE conversations.resolved_at END "
        f"FROM (VALUES {values}) AS v WHERE conversations.id = v.column1"
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
Q_MAX_MESSAGE_ID = "SELECT max(id) FROM messages"
Q_MESSAGE_IDS = (
    "SELECT nextval(pg_get_serial_sequence('messages', 'id')) AS id FROM generate_series(1, :n)"
)


def lock_senders(sql: Sql, items: Sequence[Prepared]) -> None:
    """PostgreSQL: lock every sender of `items` until commit (one round trip), so that no
    other process ingests for them meanwhile. A no-op on SQLite (one writer anyway)."""
    if not sql.sqlite and items:
        # a tuple: fastsql would send a list as JSON text
        sql.run(Q_LOCKS, keys=tuple({item.sender_key for item in items}))


# a status read back as text -> the enum member (a dict lookup; calling the enum is slower)
STATUS = {status.value: status for status in ConversationStatus}


def candidate(
    row: tuple[Any, ...] | None, *, with_contact: bool = False
) -> threads.Candidate | None:
    if row is None:
        return None
    contact = row[3] if with_contact else None
    return threads.Candidate(row[0], STATUS[row[1]], as_utc(row[2]), contact)


def existing_row(sql: Sql, channel: str, external_id: str, sender: str) -> IngestResult | None:
    row = sql.first(Q_EXISTING, channel=channel, external_id=external_id, sender=sender)
    if row is None:
        return None
    return IngestResult(row[0], row[1], row[2], duplicate=True)


def first_result(conn: Connection, item: Prepared) -> IngestResult | None:
    return existing_row(Sql(conn), item.channel, item.msg.external_id, item.sender_key)


class Reads:
    """The lookups ingest makes, one statement each, always against the live transaction.

    `BatchReads` answers the same questions for a whole batch from a few set-based reads
    made up front, kept current by the batch's own writes (the hooks below)."""

    def __init__(self, sql: Sql, now: datetime, *, locked: bool = False) -> None:
        self.sql = sql
        # `now` as the engine stores it, converted once rather than once per statement
        self.at: Any = sqlite_value(now) if sql.sqlite else now
        # PostgreSQL: the senders are locked already (lock_senders), no lock per message
        self.locked = locked

    def existing(self, item: Prepared) -> IngestResult | None:
        return existing_row(self.sql, item.channel, item.msg.external_id, item.sender_key)

    def identity(self, kind: str, value: str) -> tuple[int, int | None, bool] | None:
        """(contact id, merged into, has a name) of a known identity."""
        row = self.sql.first(Q_IDENTITY, kind=kind, value=value)
        return None if row is None else (row[0], row[1], bool(row[2]))

    def recent(self, contact_id: int, channel: str, inbox: str) -> threads.Candidate | None:
        return candidate(
            self.sql.first(Q_RECENT, contact_id=contact_id, channel=channel, inbox=inbox)
        )

    # writes that a batch may hold back and send together (flush)
    def update_conversation(self, conversation_id: int, status: str, reopen: bool) -> None:
        self.sql.run(
            U_REOPEN if reopen else U_CONVERSATION, now=self.at, status=status, id=conversation_id
        )

    def insert_message(self, params: dict[str, Any]) -> int:
        return int(self.sql.scalar(I_MESSAGE, **params))

    def flush(self) -> None:
        """Send the writes held back, before anything reads the tables they touch."""
        return None

    # the batch's own writes, for readers that remember what they read
    def stored(self, item: Prepared, result: IngestResult) -> None:
        return None

    def identity_stored(self, kind: str, value: str, contact_id: int, named: bool) -> None:
        return None

    def threaded(
        self,
        contact_id: int,
        channel: str,
        inbox: str,
        via: threads.Via,
        conversation_id: int,
        status: ConversationStatus,
        now: datetime,
    ) -> None:
        """The message went into `conversation_id` (now in `status`, last message `now`)."""
        return None


class BatchReads(Reads):
    """A batch's lookups from three set-based reads made up front, once nothing but this
    batch can ingest for its senders (SQLite: one writer holds the database; PostgreSQL:
    every sender of the batch is locked first, `lock_senders`, and a redelivery is one of
    the same sender's, its key being (channel, external_id, sender_key); the unique
    constraint on those and the per-message savepoint fallback catch anything else): the
    redeliveries among the batch's keys, the contacts of its identities, and each of those
    contacts' latest open conversation per channel. The batch's own writes keep the answers
    current; a conversation reached by token or headers (which may be another contact's
    latest) sends `recent` back to one query per message for the rest of it."""

    def __init__(self, sql: Sql, now: datetime, items: Sequence[Prepared]) -> None:
        # PostgreSQL: the batch's message ids come with its locks, and its conversation
        # updates and message rows go in two pipelined statements at the end (flush), not
        # a round trip each; SQLite runs each statement in microseconds, in-process
        lock_senders(sql, items)
        # both engines: message rows and conversation updates go out together at the end
        # (flush), one executemany each rather than a statement per message
        self._updates: dict[int, dict[str, Any]] = {}
        self._messages: list[dict[str, Any]] = []
        super().__init__(sql, now, locked=True)
        # (channel, external id, sender key) -> the first result
        self._seen: dict[tuple[str, str, str], IngestResult] = {}
        by_channel: dict[str, list[str]] = {}
        for item in items:
            by_channel.setdefault(item.channel, []).append(item.msg.external_id)
        for channel, keys in by_channel.items():
            for chunk in chunks(keys):
                listed, params = in_list("k", chunk)
                for key, sender, mid, cid, contact in sql.rows(
                    "SELECT m.external_id, m.sender_key, m.id, m.conversation_id, c.contact_id "
                    "FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                    f"WHERE m.channel = :channel AND m.external_id IN {listed}",
                    ("external_id", "sender_key", "id", "conversation_id", "contact_id"),
                    channel=channel,
                    **params,
                ):
                    self._seen[(channel, key, sender)] = IngestResult(
                        mid, cid, contact, duplicate=True
                    )
        # one id for each message the batch will store (the new keys), in ascending order,
        # as one-at-a-time inserts would have taken them
        self._ids: list[int] = []
        new = {(i.channel, i.msg.external_id, i.sender_key) for i in items} - self._seen.keys()
        if new and sql.sqlite:
            # the write lock is held since BEGIN IMMEDIATE and message rows are never
            # deleted: the next ids are the ones SQLite itself would hand out (max + 1, ...)
            top = int(sql.scalar(Q_MAX_MESSAGE_ID) or 0)
            self._ids = list(range(top + len(new), top, -1))
        elif new:
            rows = sql.dicts(Q_MESSAGE_IDS, n=len(new))
            self._ids = sorted((row["id"] for row in rows), reverse=True)
        # reversed: pop() hands the ids out in ascending order
        self._idents: dict[tuple[str, str], tuple[int, int | None, bool] | None] = {}
        by_kind: dict[str, set[str]] = {}
        for item in items:
            for kind, value, _verified in item.identities:
                by_kind.setdefault(kind, set()).add(value)
                self._idents[(kind, value)] = None
        for kind_name, values in by_kind.items():
            for chunk in chunks(sorted(values)):
                listed, params = in_list("v", chunk)
                for value, contact, merged_into, name in sql.rows(
                    "SELECT i.value, i.contact_id, c.merged_into, c.name FROM identities i "
                    "JOIN contacts c ON c.id = i.contact_id "
                    f"WHERE i.kind = :kind AND i.value IN {listed}",
                    ("value", "contact_id", "merged_into", "name"),
                    kind=kind_name,
                    **params,
                ):
                    self._idents[(kind_name, value)] = (contact, merged_into, bool(name))
        # (contact, channel, inbox) -> latest open conversation; contacts in _known have
        # no other
        self._recent: dict[tuple[int, str, str], threads.Candidate] | None = {}
        self._known = {f[0] for f in self._idents.values() if f is not None and f[1] is None}
        for chunk in chunks(sorted(self._known)):
            listed, params = in_list("c", chunk)
            # every open conversation of these contacts (a handful each: the index on
            # contact_id finds them), the latest per channel picked here, as Q_RECENT's
            # order does; half the time of a row_number() window in SQL
            latest: dict[tuple[int, str, str], tuple[Any, int, str]] = {}
            for cid, contact, channel, inbox, status, last in sql.rows(
                "SELECT id, contact_id, channel, inbox, status, last_message_at "
                f"FROM conversations WHERE contact_id IN {listed} AND status != 'closed'",
                ("id", "contact_id", "channel", "inbox", "status", "last_message_at"),
                **params,
            ):
                held = latest.get((contact, channel, inbox))
                if held is None or (last, cid) > held[:2]:
                    latest[(contact, channel, inbox)] = (last, cid, status)
            for key, (last, cid, status) in latest.items():
                self._recent[key] = threads.Candidate(cid, STATUS[status], as_utc(last))

    def existing(self, item: Prepared) -> IngestResult | None:
        first = self._seen.get((item.channel, item.msg.external_id, item.sender_key))
        if first is None or first.duplicate:
            return first
        # stored by this batch: its redelivery in the same batch
        return IngestResult(first.message_id, first.conversation_id, first.contact_id, True)

    def update_conversation(self, conversation_id: int, status: str, reopen: bool) -> None:
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

    def insert_message(self, params: dict[str, Any]) -> int:
        if not self._ids:
            self.flush()  # (none reserved left: cannot happen, but stay in order if it does)
            return super().insert_message(params)
        params["id"] = message_id = self._ids.pop()
        self._messages.append(params)
        return message_id

    def flush(self) -> None:
        # SQLite: the rows hold values as SQLite stores them already (times converted
        # once, JSON encoded), sent without conversion per value
        sql = self.sql
        if self._updates and sql.sqlite:
            updates = list(self._updates.values())
            for start in range(0, len(updates), 500):
                chunk = updates[start : start + 500]
                sql.run_positional(
                    _sqlite_update_conversations(len(chunk)),
                    [v for u in chunk for v in (u["id"], u["now"], u["status"], u["reopen"])],
                )
            self._updates.clear()
        elif self._updates:
            sql.run_many(U_CONVERSATIONS, list(self._updates.values()))
            self._updates.clear()
        if self._messages:
            sql.insert_rows("messages", BATCH_MESSAGE_COLUMNS, self._messages)
            self._messages = []

    def identity(self, kind: str, value: str) -> tuple[int, int | None, bool] | None:
        key = (kind, value)
        if key not in self._idents:
            return super().identity(kind, value)
        # "has a name" may be stale after this batch named the contact: harmless, naming
        # only ever fills a missing name (Q_NAME)
        return self._idents[key]

    def recent(self, contact_id: int, channel: str, inbox: str) -> threads.Candidate | None:
        if self._recent is None or contact_id not in self._known:
            self.flush()
            return super().recent(contact_id, channel, inbox)
        return self._recent.get((contact_id, channel, inbox))

    def stored(self, item: Prepared, result: IngestResult) -> None:
        self._seen[(item.channel, item.msg.external_id, item.sender_key)] = result

    def identity_stored(self, kind: str, value: str, contact_id: int, named: bool) -> None:
        self._idents[(kind, value)] = (contact_id, None, named)

    def threaded(
        self,
        contact_id: int,
        channel: str,
        inbox: str,
        via: threads.Via,
        conversation_id: int,
        status: ConversationStatus,
        now: datetime,
    ) -> None:
        if self._recent is None:
            return
        if via is threads.Via.NEW or via is threads.Via.RECENT:
            # the conversation is this contact's on this channel, and now its latest
            if contact_id in self._known:
                self._recent[(contact_id, channel, inbox)] = threads.Candidate(
                    conversation_id, status, now
                )
        else:
            self._recent = None


def chunks(values: Sequence[Any], size: int = 500) -> list[Sequence[Any]]:
    return [values[i : i + size] for i in range(0, len(values), size)]
