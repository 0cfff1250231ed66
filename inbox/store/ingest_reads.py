"""What ingest reads, and how: a message as it enters the transaction (`Prepared`), the
plain SQL of the per-message lookups and writes, and `Reads`, which makes them one
statement at a time (a batch makes the same lookups set-based: `inbox.store.batch_reads`).
The transaction that uses them is `inbox.store.ingest_writes`; both run the same on
SQLite and PostgreSQL (see `inbox.store.fastsql` for how each runs)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from inbox import threads
from inbox.store.fastsql import Sql, as_utc
from inbox.store.fastsql import _sqlite_value as sqlite_value
from inbox.types import ConversationStatus, InboundMessage, IngestResult, pickled_by_fields

__all__ = [
    "CONV",
    "MESSAGE_COLUMNS",
    "STATUS",
    "U_CURSOR",
    "Prepared",
    "Reads",
    "candidate",
    "existing_row",
    "first_result",
    "lock_senders",
]


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
CONV = "SELECT id, status, last_message_at, resolved_at FROM conversations "
Q_RECENT = (
    CONV + "WHERE contact_id = :contact_id AND channel = :channel AND inbox = :inbox "
    "AND status != 'closed' "
    "ORDER BY last_message_at DESC, id DESC LIMIT 1"
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
U_CURSOR = (
    "INSERT INTO cursors (source, position, updated_at) VALUES (:source, :position, :now) "
    "ON CONFLICT (source) DO UPDATE SET position = excluded.position, "
    "updated_at = excluded.updated_at"
)
# a batch's senders, locked in one statement: the same lock ids as Q_LOCK, distinct and
# taken in ascending order (the aggregate consumes the sorted subquery row by row), so two
# processes locking overlapping batches cannot deadlock
Q_LOCKS = (
    "SELECT count(pg_advisory_xact_lock(h)) FROM (SELECT DISTINCT hashtext(k) AS h "
    "FROM unnest(CAST(:keys AS text[])) AS k ORDER BY h) AS ordered"
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
    contact = row[4] if with_contact else None
    solved_at = None if row[3] is None else as_utc(row[3])
    return threads.Candidate(row[0], STATUS[row[1]], as_utc(row[2]), contact, solved_at)


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
