"""After ingest: triage (the auto-answer engine), then the outbox or the queue.

Listens for message.received. Inbound messages that still need triage are taken in
batches: one read for the batch, a decision per message from the `Triage` port, and ONE
transaction that stores each decision with its conversation, writes any auto-reply to
the outbox, applies priority/skills/tags, and either resolves the conversation or marks
it waiting (conversation.queued). The `needs_triage` flag is cleared in that same
transaction, so after a crash `recover()` picks up exactly the messages that were stored
but not yet triaged.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inbox import metrics
from inbox.bus.backends import EventBus
from inbox.errors import BusError
from inbox.events import Event, EventName, MessageSent, Queued, Resolved
from inbox.identity import SENDER_KIND
from inbox.outbox.durable import enqueue
from inbox.ports import Triage, TriageDecision
from inbox.store import contacts as store_contacts
from inbox.store import conversations
from inbox.store import messages as store_messages
from inbox.store import schema as t
from inbox.store.backends import Store
from inbox.store.fastsql import Sql, as_utc, decode, in_list
from inbox.tasks import cancel_and_wait
from inbox.types import (
    AuthorKind,
    Contact,
    Conversation,
    ConversationStatus,
    InboundMessage,
    Message,
)

log = logging.getLogger("omnidesk.pipeline")

BATCH = 256
# Triage yields to writes already queued (on SQLite, ingest batches whose senders wait for
# their acknowledgement): it waits while the store has writes in flight, gathering a larger
# batch meanwhile, but never longer than this before it runs anyway.
YIELD_SECONDS = 0.5
YIELD_POLL = 0.005

Q_CONV = (
    "SELECT priority, required_skills, tags, assignee_id, status, waiting_since "
    "FROM conversations WHERE id = :id"
)
U_CLAIM = (
    "UPDATE messages SET needs_triage = :no WHERE id = :id AND needs_triage = :yes "
    "RETURNING conversation_id"
)


def raise_priority(priority: str, levels: tuple[str, ...]) -> str:
    if priority not in levels:
        return levels[0]
    return levels[max(levels.index(priority) - 1, 0)]


@dataclass(frozen=True, slots=True)
class _Loaded:
    message: Message
    conversation: Conversation
    contact: Contact
    inbound: InboundMessage  # the adapter's facts as stored (headers for the loop guard)
    first_message: bool


_M_COLS = (
    "id, conversation_id, direction, author_kind, author_id, channel, text, created_at, "
    "delivery_status, external_id, subject, html, attachments, failure_reason, meta"
)
_C_COLS = (
    "id, contact_id, channel, inbox, status, priority, subject, required_skills, assignee_id, "
    "token, created_at, last_message_at, first_response_at, resolved_at, waiting_since, tags"
)
_C_TIMES = ("created_at", "last_message_at", "first_response_at", "resolved_at", "waiting_since")


def _load(conn: Connection, ids: Sequence[int]) -> list[_Loaded]:
    """The messages still needing triage, with their conversations and contacts: four
    plain-SQL reads for a whole batch (this runs once per batch on the hot path)."""
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
    messages = [store_messages.from_row(r) for r in rows]  # type: ignore[arg-type]
    metas = {r["id"]: r["meta"] or {} for r in rows}
    conv_list, conv_params = in_list("c", sorted({m.conversation_id for m in messages}))
    convs = {
        r["id"]: conversations.from_row(
            decode(r, json_cols=("required_skills", "tags"), time_cols=_C_TIMES)  # type: ignore[arg-type]
        )
        for r in sql.dicts(
            f"SELECT {_C_COLS} FROM conversations WHERE id IN {conv_list}", **conv_params
        )
    }
    contacts = store_contacts.get_many(conn, {c.contact_id for c in convs.values()})
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
    for m in messages:
        conv = convs[m.conversation_id]
        contact = contacts[conv.contact_id]
        meta = metas[m.id]
        kind = SENDER_KIND.get(m.channel)
        inbound = InboundMessage(
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
        out.append(_Loaded(m, conv, contact, inbound, firsts.get(conv.id) == m.id))
    return out


class Pipeline:
    def __init__(
        self,
        store: Store,
        bus: EventBus,
        triage: Triage | None = None,
        *,
        priorities: tuple[str, ...] = ("urgent", "high", "normal", "low"),
        on_outbound: Callable[..., None] | None = None,
    ) -> None:
        self.store = store
        self.bus = bus
        self.triage = triage
        self.priorities = priorities
        self.on_outbound = on_outbound  # called with the auto-replies' ids once committed
        self._pending: list[int] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    def attach(self) -> None:
        self.bus.subscribe(EventName.MESSAGE_RECEIVED, self._on_received)
        self.bus.subscribe(EventName.BUS_RESUMED, self._on_resumed)

    async def _on_resumed(self, _event: Event) -> None:
        """The bus was away: messages stored meanwhile were never announced to us."""
        n = await self.recover()
        if n:
            log.warning("triaged %d messages stored while the event bus was away", n)

    async def _on_received(self, event: Event) -> None:
        self._pending.append(int(event.data["message_id"]))
        self._idle.clear()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name="pipeline")
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                await self._yield_to_writers()
                batch = self._pending[:BATCH]
                del self._pending[: len(batch)]
                try:
                    await self.process_many(batch)
                except Exception:  # the messages keep needs_triage; recover() retries them
                    log.exception("triage of %d messages failed", len(batch))
            self._idle.set()

    async def _yield_to_writers(self) -> None:
        waited = 0.0
        while (
            self.store.writes_in_flight() and len(self._pending) < BATCH and waited < YIELD_SECONDS
        ):
            await asyncio.sleep(YIELD_POLL)
            waited += YIELD_POLL

    async def idle(self) -> None:
        """Wait until every message handed over so far is triaged (tests, shutdown)."""
        await self._idle.wait()

    async def close(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def recover(self, older_than: float | None = None) -> int:
        """Triage what was stored before a crash but never triaged (only messages stored
        more than `older_than` seconds ago: younger ones are still on their way)."""
        m = t.messages.c
        query = sa.select(m.id).where(m.needs_triage.is_(True)).order_by(m.id)
        if older_than is not None:
            query = query.where(m.created_at < datetime.now(UTC) - timedelta(seconds=older_than))
        ids = await self.store.read(lambda conn: [r.id for r in conn.execute(query)])
        for start in range(0, len(ids), BATCH):
            await self.process_many(ids[start : start + BATCH])
        return len(ids)

    async def process(self, message_id: int) -> None:
        await self.process_many([message_id])

    async def process_many(self, ids: Sequence[int]) -> None:
        loaded = await self.store.read(lambda conn: _load(conn, ids))
        if not loaded:
            return
        now = datetime.now(UTC)
        decided = [(item.message.id, self._decide(item, now)) for item in loaded]

        def apply(conn: Connection) -> list[Event]:
            events: list[Event] = []
            for message_id, decision in decided:
                events += self._apply(conn, message_id, decision, now)
            return events

        events = await self.store.write(apply)
        try:
            await self.bus.publish_many(events)  # one bus message for the whole batch
        except BusError as exc:  # committed: listeners catch up when the bus resumes
            log.warning("triage: %d events not published: %s", len(events), exc.message)
        replies = [e.data["message_id"] for e in events if e.name == EventName.MESSAGE_SENT]
        if self.on_outbound is not None and replies:
            self.on_outbound(*replies)

    def _decide(self, item: _Loaded, now: datetime) -> TriageDecision:
        if self.triage is None:
            return TriageDecision()
        try:
            return self.triage.decide(
                item.message,
                item.conversation,
                item.contact,
                now,
                inbound=item.inbound,
                first_message=item.first_message,
            )
        except Exception:  # a broken rule must never lose the message: route it
            log.exception("triage failed for message=%d; routing to a person", item.message.id)
            return TriageDecision(reasons=("auto-answer engine failed; routed to a person",))

    def _apply(
        self, conn: Connection, message_id: int, decision: TriageDecision, now: datetime
    ) -> list[Event]:
        sql = Sql(conn)
        conv_id = sql.scalar(U_CLAIM, id=message_id, no=False, yes=True)
        if conv_id is None:
            return []  # another process triaged it first
        priority, skills, tags, assignee_id, status, waiting_since = sql.first(Q_CONV, id=conv_id)  # type: ignore[misc]
        skills = json.loads(skills) if isinstance(skills, str) else skills
        tags = json.loads(tags) if isinstance(tags, str) else tags
        events: list[Event] = []
        values: dict[str, Any] = {"triage": _decision_json(decision, message_id, now)}
        if decision.priority and decision.priority in self.priorities:
            priority = decision.priority
        if decision.handoff:
            priority = raise_priority(priority, self.priorities)
        values["priority"] = priority
        if decision.skills:
            values["required_skills"] = sorted(set(skills or ()) | set(decision.skills))
        if decision.tags:
            values["tags"] = sorted(set(tags or ()) | set(decision.tags))
        if decision.reply is not None:
            reply_id = enqueue(
                conn,
                conversation_id=conv_id,
                text=decision.reply.text,
                html=decision.reply.html,
                subject=decision.reply.subject,
                author_kind=AuthorKind.BOT,
                auto_reply=True,
                now=now,
            )
            events.append(
                Event(
                    EventName.MESSAGE_SENT,
                    MessageSent(conversation_id=conv_id, message_id=reply_id, auto_reply=True),
                )
            )
            metrics.count_auto_answer(decision.rule)
        if decision.resolve and not decision.handoff:
            values.update(
                status=ConversationStatus.RESOLVED.value, resolved_at=now, waiting_since=None
            )
            events.append(
                Event(
                    EventName.CONVERSATION_RESOLVED,
                    Resolved(conversation_id=conv_id, message_id=message_id),
                )
            )
        elif assignee_id is None and status != ConversationStatus.CLOSED.value:
            values["status"] = ConversationStatus.OPEN.value
            values["waiting_since"] = as_utc(waiting_since) if waiting_since else now
            events.append(
                Event(
                    EventName.CONVERSATION_QUEUED,
                    Queued(
                        conversation_id=conv_id,
                        message_id=message_id,
                        priority=priority,
                        channel=None,
                    ),
                )
            )
        assignments = ", ".join(f"{key} = :{key}" for key in values)
        sql.run(
            f"UPDATE conversations SET {assignments} WHERE id = :conv_id", conv_id=conv_id, **values
        )
        log.info(
            "triaged message=%d conversation=%d rule=%s%s%s",
            message_id,
            conv_id,
            decision.rule or "-",
            " reply" if decision.reply else "",
            " resolved" if decision.resolve and not decision.handoff else "",
        )
        return events


def _decision_json(decision: TriageDecision, message_id: int, now: datetime) -> dict[str, Any]:
    raw = asdict(decision)
    raw["extra"] = dict(decision.extra)
    return {"message_id": message_id, "at": now.isoformat(), **raw}
