"""A batch's ingest lookups, set-based (`BatchReads`): what a batch of messages needs to
know is read in a few statements up front, and the batch's own writes keep the answers
current; its message rows and conversation updates go out together at the end. The
per-message lookups it stands in for: `inbox.store.ingest_reads.Reads`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from inbox import threads
from inbox.store.fastsql import Sql, as_utc, in_list
from inbox.store.ingest_reads import (
    MESSAGE_COLUMNS,
    STATUS,
    Prepared,
    Reads,
    lock_senders,
)
from inbox.types import ConversationStatus, IngestResult

__all__ = ["BatchReads"]

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


Q_MAX_MESSAGE_ID = "SELECT max(id) FROM messages"
Q_MESSAGE_IDS = (
    "SELECT nextval(pg_get_serial_sequence('messages', 'id')) AS id FROM generate_series(1, :n)"
)


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
        self._seen = _redeliveries(sql, items)
        # the ids of the batch's new messages, reversed: pop() hands them out ascending
        self._ids = _reserve_ids(sql, items, self._seen)
        self._idents = _identities(sql, items)
        # (contact, channel, inbox) -> latest open conversation; contacts in _known have
        # no other
        self._known = {f[0] for f in self._idents.values() if f is not None and f[1] is None}
        self._recent: dict[tuple[int, str, str], threads.Candidate] | None = _latest_open(
            sql, self._known
        )

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


def _redeliveries(sql: Sql, items: Sequence[Prepared]) -> dict[tuple[str, str, str], IngestResult]:
    """The first results of the batch's keys stored before: (channel, external id, sender
    key) -> the result a redelivery answers."""
    seen: dict[tuple[str, str, str], IngestResult] = {}
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
                seen[(channel, key, sender)] = IngestResult(mid, cid, contact, duplicate=True)
    return seen


def _reserve_ids(
    sql: Sql, items: Sequence[Prepared], seen: Mapping[tuple[str, str, str], IngestResult]
) -> list[int]:
    """One id for each message the batch will store (the keys not `seen`), as one-at-a-time
    inserts would have taken them, in descending order."""
    new = {(i.channel, i.msg.external_id, i.sender_key) for i in items} - seen.keys()
    if not new:
        return []
    if sql.sqlite:
        # the write lock is held since BEGIN IMMEDIATE and message rows are never
        # deleted: the next ids are the ones SQLite itself would hand out (max + 1, ...)
        top = int(sql.scalar(Q_MAX_MESSAGE_ID) or 0)
        return list(range(top + len(new), top, -1))
    rows = sql.dicts(Q_MESSAGE_IDS, n=len(new))
    return sorted((row["id"] for row in rows), reverse=True)


def _identities(
    sql: Sql, items: Sequence[Prepared]
) -> dict[tuple[str, str], tuple[int, int | None, bool] | None]:
    """(kind, value) of every identity of the batch -> (contact id, merged into, has a
    name) of a known one, None of a new one."""
    idents: dict[tuple[str, str], tuple[int, int | None, bool] | None] = {}
    by_kind: dict[str, set[str]] = {}
    for item in items:
        for kind, value, _verified in item.identities:
            by_kind.setdefault(kind, set()).add(value)
            idents[(kind, value)] = None
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
                idents[(kind_name, value)] = (contact, merged_into, bool(name))
    return idents


def _latest_open(sql: Sql, contacts: set[int]) -> dict[tuple[int, str, str], threads.Candidate]:
    """(contact, channel, inbox) -> the contact's latest open conversation there. Every
    open conversation of these contacts is read (a handful each: the index on contact_id
    finds them) and the latest picked here, as Q_RECENT's order does; half the time of a
    row_number() window in SQL."""
    recent: dict[tuple[int, str, str], threads.Candidate] = {}
    for chunk in chunks(sorted(contacts)):
        listed, params = in_list("c", chunk)
        latest: dict[tuple[int, str, str], tuple[Any, int, str, Any]] = {}
        for cid, contact, channel, inbox, status, last, solved in sql.rows(
            "SELECT id, contact_id, channel, inbox, status, last_message_at, resolved_at "
            f"FROM conversations WHERE contact_id IN {listed} AND status != 'closed'",
            ("id", "contact_id", "channel", "inbox", "status", "last_message_at", "resolved_at"),
            **params,
        ):
            held = latest.get((contact, channel, inbox))
            if held is None or (last, cid) > held[:2]:
                latest[(contact, channel, inbox)] = (last, cid, status, solved)
        for key, (last, cid, status, solved) in latest.items():
            solved_at = None if solved is None else as_utc(solved)
            recent[key] = threads.Candidate(cid, STATUS[status], as_utc(last), None, solved_at)
    return recent


def chunks(values: Sequence[Any], size: int = 500) -> list[Sequence[Any]]:
    return [values[i : i + size] for i in range(0, len(values), size)]
