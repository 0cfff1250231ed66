"""`ingest`: the only entry channels call. Dedupe -> contact -> thread -> persist, in one
transaction; events are published only after the commit.

Concurrent calls are grouped: while one transaction commits, the calls that arrive wait
and then go together in the next one (group commit). Should the batch fail, it runs again
with each message inside its own SAVEPOINT, so a bad message cannot fail its neighbours.
A caller's await returns only after its message is durable, so it may acknowledge to the
sender then. The store side (SQL, per-message and set-based reads) is `inbox.store.ingest_reads`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from inbox import metrics, threads
from inbox.bus.backends import EventBus, Scalar, received_event
from inbox.errors import BusError, OmnideskError, StoreError, ValidationError
from inbox.events import Event, EventName
from inbox.identity import normalize, sender_identity
from inbox.store.backends import Store, translate_error
from inbox.store.contacts import follow_merges
from inbox.store.fastsql import Sql, in_list, to_json
from inbox.store.ingest_reads import (
    I_CONTACT,
    I_CONVERSATION,
    I_IDENTITY,
    Q_BY_TOKEN,
    Q_LOCK,
    Q_NAME,
    U_CURSOR,
    BatchReads,
    Prepared,
    Reads,
    by_headers_query,
    candidate,
    first_result,
    lock_senders,
)
from inbox.store.messages import attachments_to_json
from inbox.tasks import cancel_and_wait
from inbox.types import (
    ConversationStatus,
    InboundMessage,
    IngestResult,
    pickled_by_fields,
)

log = logging.getLogger("omnidesk.ingest")


MAX_TEXT = 256 * 1024
MAX_EXTERNAL_ID = 500


@pickled_by_fields  # sent with every batch to the SQLite writer process
@dataclass(frozen=True, slots=True)
class IngestSettings:
    priorities: tuple[str, ...] = ("urgent", "high", "normal", "low")
    default_priority: str = "normal"
    thread_window: timedelta = timedelta(days=7)
    default_country: str = "US"
    batch_max: int = 256


def prepare(
    msg: InboundMessage,
    settings: IngestSettings,
    cursor: tuple[str, str] | None = None,
    senders: dict[tuple[str, str], tuple[str, str, str]] | None = None,
) -> Prepared:
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
    # str() of a StrEnum member is its value, read in C (`.value` is a Python property)
    channel = str(msg.channel)
    key = (channel, msg.sender)
    known = senders.get(key) if senders is not None else None
    if known is None:
        found_kind, value = sender_identity(msg.channel, msg.sender, settings.default_country)
        known = (found_kind.value, value, f"{found_kind.value}:{value}")
        if senders is not None:
            if len(senders) >= 10_000:
                senders.clear()
            senders[key] = known
    kind, value, sender_key = known
    idents = [(kind, value, False)]
    for extra_kind, extra_value in msg.extra_identities:
        norm = normalize(extra_kind, extra_value, settings.default_country)
        if (extra_kind.value, norm) != (kind, value):
            idents.append((extra_kind.value, norm, True))
    return Prepared(msg, channel, tuple(idents), cursor, sender_key)


def new_token() -> str:
    """Per-conversation token: 80 random bits, lower-case hex (safe in mail local parts)."""
    return secrets.token_hex(10)


def _resolve_contact(
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


def _thread(
    sql: Sql,
    reads: Reads,
    msg: InboundMessage,
    channel: str,
    contact_id: int,
    now: datetime,
    window: timedelta,
) -> tuple[threads.ThreadChoice, threads.Candidate | None]:
    by_token = by_headers = None
    if not (msg.conversation_token or msg.in_reply_to or msg.references):
        # the common case: no explicit evidence, the contact's latest conversation or new
        recent = reads.recent(contact_id, channel, msg.inbox)
        choice = threads.choose(
            by_token=None, by_headers=None, recent=recent, now=now, window=window
        )
        return choice, (recent if choice.conversation_id is not None else None)
    recent = None
    reads.flush()  # the reads below see the batch's own writes
    if msg.conversation_token:
        by_token = candidate(sql.first(Q_BY_TOKEN, token=msg.conversation_token))
        if by_token is not None and by_token.status is ConversationStatus.CLOSED:
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
    if by_token is None and (
        by_headers is None
        or (by_headers.contact_id == contact_id and by_headers.status is ConversationStatus.CLOSED)
    ):
        recent = reads.recent(contact_id, channel, msg.inbox)
    choice = threads.choose(
        by_token=by_token,
        by_headers=by_headers,
        recent=recent,
        now=now,
        window=window,
        contact_id=contact_id,
    )
    chosen = None
    for c in (by_token, by_headers, recent):
        if c is not None and c.conversation_id == choice.conversation_id:
            chosen = c
            break
    return choice, chosen


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
    contact_id = _resolve_contact(sql, reads, item.identities, msg.display_name, at)
    choice, chosen = _thread(sql, reads, msg, channel, contact_id, now, settings.thread_window)
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


_CREATED = str(EventName.CONVERSATION_CREATED)
_REOPENED = str(EventName.CONVERSATION_REOPENED)
_RECEIVED = str(EventName.MESSAGE_RECEIVED)


def events_for(msg: InboundMessage, result: IngestResult, at: datetime) -> list[Event]:
    """What one stored message announces, in the shape bus listeners get (no copy on the
    in-process bus)."""
    if result.duplicate:
        return []
    ids: dict[str, Scalar] = {
        "message_id": result.message_id,
        "conversation_id": result.conversation_id,
        "contact_id": result.contact_id,
        "channel": str(msg.channel),
        "inbox": msg.inbox,
    }
    out = []
    if result.conversation_created:
        out.append(received_event(_CREATED, ids, at))
    if result.conversation_reopened:
        out.append(received_event(_REOPENED, ids, at))
    out.append(received_event(_RECEIVED, ids, at))
    return out


_Pending = tuple[Prepared, "asyncio.Future[IngestResult]"]


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
        self._senders: dict[tuple[str, str], tuple[str, str, str]] = {}

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
        started = metrics.clock()
        result = await future
        metrics.INGEST_LATENCY.observe(metrics.clock() - started)
        return result

    async def close(self) -> None:
        if self._task is not None:
            await self.idle()
            await cancel_and_wait(self._task)
            self._task = None

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = self._pending[: self.settings.batch_max]
                del self._pending[: len(batch)]
                try:
                    await self._write(batch)
                except Exception as exc:  # the batcher must outlive any batch
                    log.exception("ingest batch of %d failed", len(batch))
                    err = exc if isinstance(exc, OmnideskError) else StoreError(str(exc))
                    for _item, future in batch:
                        if not future.done():
                            future.set_exception(err)
            self._idle.set()

    async def _write(self, batch: list[_Pending]) -> None:
        now = datetime.now(UTC)
        items = [item for item, _future in batch]
        try:
            try:
                results = await self.store.call(write_batch, items, self.settings, now)
            except Exception as exc:
                if len(items) == 1 and not isinstance(exc, StoreError):
                    raise
                results = await self.store.call(write_carefully, items, self.settings, now)
        except Exception as exc:
            refused = isinstance(exc, ValidationError)  # the sender's mistake, not ours
            (log.warning if refused else log.error)(
                "ingest batch of %d failed: %s", len(batch), exc
            )
            err = exc if isinstance(exc, OmnideskError) else StoreError(str(exc))
            for _item, future in batch:
                if not future.done():
                    future.set_exception(err)
            return
        at = datetime.now(UTC)
        events: list[Event] = []
        info = log.isEnabledFor(logging.INFO)
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
            if not result.duplicate:
                events += events_for(item.msg, result, at)
            if not info:  # (checked once a batch: a log call costs even when it drops)
                continue
            if result.duplicate:
                log.info(
                    "duplicate %s message %s -> message=%d conversation=%d",
                    item.msg.channel,
                    item.msg.external_id[:60],
                    result.message_id,
                    result.conversation_id,
                )
            else:
                log.info(
                    "ingested %s message=%d conversation=%d contact=%d%s",
                    item.msg.channel,
                    result.message_id,
                    result.conversation_id,
                    result.contact_id,
                    " (new conversation)" if result.conversation_created else "",
                )
        metrics.count_ingested(batch, results)
        # every caller has its answer first; then the batch's events, in message order, as
        # one unit (one message on Redis, one handler call per subscriber in-process)
        try:
            await self.bus.publish_many(events)
        except BusError as exc:
            # committed and answered: the messages keep needs_triage, which the bus's
            # resume (and the periodic recovery) triage from the store. The batcher goes on.
            log.warning("ingest: %d events not published: %s", len(events), exc.message)
