"""`ingest`: the only entry channels call. Dedupe -> contact -> thread -> persist, in one
transaction; events are published only after the commit.

Concurrent calls are grouped: while one transaction commits, the calls that arrive wait
and then go together in the next one (group commit), each inside its own SAVEPOINT so a
bad message cannot fail its neighbours. A caller's await returns only after its message
is durable, so it may acknowledge to the sender then.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from inbox import schema as t
from inbox import threads
from inbox.bus import EventBus
from inbox.errors import OmnideskError, StoreError, ValidationError
from inbox.events import Event, EventName
from inbox.identity import normalize, sender_identity
from inbox.repo import attachments_to_json
from inbox.store import Store
from inbox.types import (
    AuthorKind,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    IdentityKind,
    InboundMessage,
    IngestResult,
)

log = logging.getLogger("omnidesk.ingest")

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
    msg: InboundMessage, settings: IngestSettings, cursor: tuple[str, str] | None = None
) -> _Prepared:
    """Validate and normalize outside the transaction; raises ValidationError."""
    if not msg.external_id or len(msg.external_id) > MAX_EXTERNAL_ID:
        raise ValidationError(
            f"external id must be 1-{MAX_EXTERNAL_ID} characters", field="external_id"
        )
    if len(msg.text) > MAX_TEXT:
        raise ValidationError(f"text is longer than {MAX_TEXT} characters", field="text")
    if msg.received_at.tzinfo is None:
        raise ValidationError("received_at must carry a timezone", field="received_at")
    kind, value = sender_identity(msg.channel, msg.sender, settings.default_country)
    idents = [(kind, value, False)]
    for extra_kind, extra_value in msg.extra_identities:
        norm = normalize(extra_kind, extra_value, settings.default_country)
        if (extra_kind, norm) != (kind, value):
            idents.append((extra_kind, norm, True))
    return _Prepared(msg, tuple(idents), cursor)


def _insert(conn: Connection, table: sa.Table) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def new_token() -> str:
    """Per-conversation token: 80 random bits, lower-case hex (safe in mail local parts)."""
    return secrets.token_hex(10)


def _resolve_contact(
    conn: Connection,
    identities: Sequence[tuple[IdentityKind, str, bool]],
    display_name: str | None,
    now: datetime,
) -> int:
    ti = t.identities
    found = conn.execute(
        sa.select(ti.c.kind, ti.c.value, ti.c.contact_id).where(
            sa.or_(*[sa.and_(ti.c.kind == k, ti.c.value == v) for k, v, _ in identities])
        )
    ).all()
    known = {(row.kind, row.value): row.contact_id for row in found}
    contact_id: int | None = None
    # the sender's own identity decides; then any verified extra identity
    for kind, value, _verified in identities:
        if (kind.value, value) in known:
            contact_id = known[(kind.value, value)]
            break
    if contact_id is not None:
        contact_id = _follow_merges(conn, contact_id)
    else:
        contact_id = conn.execute(
            sa.insert(t.contacts)
            .values(name=display_name, attributes={}, tags=[], notes="", created_at=now)
            .returning(t.contacts.c.id)
        ).scalar_one()
    for kind, value, verified in identities:
        if (kind.value, value) in known:
            continue
        conn.execute(
            _insert(conn, ti)
            .values(
                contact_id=contact_id,
                kind=kind.value,
                value=value,
                verified=verified,
                opted_out=False,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["kind", "value"])
        )
    if display_name:
        conn.execute(
            sa.update(t.contacts)
            .where(t.contacts.c.id == contact_id, t.contacts.c.name.is_(None))
            .values(name=display_name[:200])
        )
    return contact_id


def _follow_merges(conn: Connection, contact_id: int) -> int:
    for _ in range(16):
        merged = conn.execute(
            sa.select(t.contacts.c.merged_into).where(t.contacts.c.id == contact_id)
        ).scalar()
        if merged is None:
            return contact_id
        contact_id = merged
    return contact_id


def _candidate(row: Any) -> threads.Candidate | None:
    if row is None:
        return None
    return threads.Candidate(row.id, ConversationStatus(row.status), row.last_message_at)


def _thread(
    conn: Connection, msg: InboundMessage, contact_id: int, now: datetime, window: timedelta
) -> threads.ThreadChoice:
    tc = t.conversations.c
    cols = (tc.id, tc.status, tc.last_message_at)
    by_token = None
    if msg.conversation_token:
        by_token = _candidate(
            conn.execute(sa.select(*cols).where(tc.token == msg.conversation_token)).first()
        )
    by_headers = None
    refs = [r for r in (msg.in_reply_to, *reversed(msg.references)) if r][:50]
    if by_token is None and refs:
        tm = t.messages.c
        hit = conn.execute(
            sa.select(tm.conversation_id)
            .where(sa.or_(tm.external_id.in_(refs), tm.provider_id.in_(refs)))
            .order_by(tm.id.desc())
            .limit(1)
        ).scalar()
        if hit is not None:
            by_headers = _candidate(conn.execute(sa.select(*cols).where(tc.id == hit)).first())
    recent = None
    if by_token is None and by_headers is None:
        recent = _candidate(
            conn.execute(
                sa.select(*cols)
                .where(
                    tc.contact_id == contact_id,
                    tc.channel == msg.channel.value,
                    tc.status != ConversationStatus.CLOSED.value,
                )
                .order_by(tc.last_message_at.desc(), tc.id.desc())
                .limit(1)
            ).first()
        )
    return threads.choose(
        by_token=by_token, by_headers=by_headers, recent=recent, now=now, window=window
    )


def _existing(conn: Connection, msg: InboundMessage) -> IngestResult | None:
    tm, tc = t.messages.c, t.conversations.c
    row = conn.execute(
        sa.select(tm.id, tm.conversation_id, tc.contact_id)
        .join(t.conversations, tc.id == tm.conversation_id)
        .where(tm.channel == msg.channel.value, tm.external_id == msg.external_id)
    ).first()
    if row is None:
        return None
    return IngestResult(row.id, row.conversation_id, row.contact_id, duplicate=True)


def ingest_in(
    conn: Connection, item: _Prepared, settings: IngestSettings, now: datetime
) -> IngestResult:
    """The whole ingest of one message inside an open transaction."""
    msg = item.msg
    first = _existing(conn, msg)
    if first is not None:
        return first
    if conn.dialect.name == "postgresql":
        # serialize concurrent ingests of one sender across processes
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
            {"k": f"{item.identities[0][0]}:{item.identities[0][1]}"},
        )
        first = _existing(conn, msg)
        if first is not None:
            return first
    contact_id = _resolve_contact(conn, item.identities, msg.display_name, now)
    choice = _thread(conn, msg, contact_id, now, settings.thread_window)
    created = choice.conversation_id is None
    tc = t.conversations
    if created:
        priority = msg.priority if msg.priority in settings.priorities else settings.default_priority
        conversation_id = conn.execute(
            sa.insert(tc)
            .values(
                contact_id=contact_id,
                channel=msg.channel.value,
                inbox=msg.inbox,
                status=ConversationStatus.OPEN.value,
                priority=priority,
                subject=(msg.subject or None) and msg.subject[:998],
                required_skills=list(msg.skills),
                assignee_id=None,
                token=new_token(),
                tags=[],
                created_at=now,
                last_message_at=now,
            )
            .returning(tc.c.id)
        ).scalar_one()
    else:
        conversation_id = choice.conversation_id
        assert conversation_id is not None
        status = conn.execute(sa.select(tc.c.status).where(tc.c.id == conversation_id)).scalar_one()
        values: dict[str, Any] = {
            "last_message_at": now,
            "status": threads.next_status(ConversationStatus(status), choice).value,
        }
        if choice.reopen:
            values["resolved_at"] = None
        conn.execute(sa.update(tc).where(tc.c.id == conversation_id).values(**values))
    message_id = conn.execute(
        sa.insert(t.messages)
        .values(
            conversation_id=conversation_id,
            direction=Direction.INBOUND.value,
            author_kind=AuthorKind.CONTACT.value,
            author_id=contact_id,
            channel=msg.channel.value,
            external_id=msg.external_id,
            subject=(msg.subject or None) and msg.subject[:998],
            text=msg.text,
            html=msg.html,
            attachments=attachments_to_json(msg.attachments),
            delivery_status=DeliveryStatus.RECEIVED.value,
            meta={
                "auto_submitted": msg.auto_submitted,
                "inbox": msg.inbox,
                "thread_via": choice.via.value,
                "in_reply_to": msg.in_reply_to,
                "references": list(msg.references)[-20:],
                "received_at": msg.received_at.isoformat(),
                "provider": dict(msg.metadata),
            },
            needs_triage=True,
            created_at=now,
        )
        .returning(t.messages.c.id)
    ).scalar_one()
    if item.cursor is not None:
        source, position = item.cursor
        stmt = _insert(conn, t.cursors).values(source=source, position=position, updated_at=now)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["source"], set_={"position": position, "updated_at": now}
            )
        )
    return IngestResult(
        message_id,
        conversation_id,
        contact_id,
        conversation_created=created,
        conversation_reopened=choice.reopen,
    )


def events_for(msg: InboundMessage, result: IngestResult) -> list[Event]:
    if result.duplicate:
        return []
    ids = {
        "message_id": result.message_id,
        "conversation_id": result.conversation_id,
        "contact_id": result.contact_id,
        "channel": msg.channel.value,
        "inbox": msg.inbox,
    }
    out = []
    if result.conversation_created:
        out.append(Event(EventName.CONVERSATION_CREATED, ids))
    if result.conversation_reopened:
        out.append(Event(EventName.CONVERSATION_REOPENED, ids))
    out.append(Event(EventName.MESSAGE_RECEIVED, ids))
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

    async def __call__(
        self, msg: InboundMessage, *, cursor: tuple[str, str] | None = None
    ) -> IngestResult:
        item = prepare(msg, self.settings, cursor)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="ingest-batcher")
        future: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._wake.set()
        result = await future
        return result

    async def close(self) -> None:
        if self._task is not None:
            while self._pending:
                await asyncio.sleep(0.01)
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

    async def _write(self, batch: list[_Pending]) -> None:
        now = datetime.now(UTC)
        settings = self.settings

        def transaction(conn: Connection) -> list[IngestResult | Exception]:
            out: list[IngestResult | Exception] = []
            for item, _future in batch:
                savepoint = conn.begin_nested()
                try:
                    out.append(ingest_in(conn, item, settings, now))
                    savepoint.commit()
                except Exception as exc:  # one bad message must not fail its batch
                    savepoint.rollback()
                    # a concurrent process may have stored the same key first
                    first = _existing(conn, item.msg)
                    out.append(first if first is not None else exc)
            return out

        try:
            results = await self.store.write(transaction)
        except Exception as exc:
            log.error("ingest batch of %d failed: %s", len(batch), exc)
            err = exc if isinstance(exc, OmnideskError) else StoreError(str(exc))
            for _item, future in batch:
                if not future.done():
                    future.set_exception(err)
            return
        for (item, future), result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                log.warning("ingest of %s/%s failed: %s", item.msg.channel, item.msg.external_id[:60], result)
                err = result if isinstance(result, OmnideskError) else StoreError(str(result))
                if not future.done():
                    future.set_exception(err)
                continue
            if not future.done():
                future.set_result(result)
            if result.duplicate:
                log.info(
                    "duplicate %s message %s -> message=%d conversation=%d",
                    item.msg.channel, item.msg.external_id[:60], result.message_id, result.conversation_id,
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
            for event in events_for(item.msg, result):
                await self.bus.publish(event)
