"""After ingest: triage (the auto-answer engine), then the outbox or the queue.

Listens for message.received. For each inbound message that still needs triage it asks
the `Triage` port for a decision, and in ONE transaction stores the decision with the
conversation, writes any auto-reply to the outbox, applies priority/skills/tags, and
either resolves the conversation or marks it waiting (conversation.queued). The
`needs_triage` flag is cleared in the same transaction, so after a crash `recover()` picks
up exactly the messages that were stored but not yet triaged.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from inbox import repo
from inbox import schema as t
from inbox.bus import EventBus
from inbox.events import Event, EventName
from inbox.outbox import enqueue
from inbox.ports import Triage, TriageDecision
from inbox.store import Store
from inbox.types import AuthorKind, ConversationStatus

log = logging.getLogger("omnidesk.pipeline")


def raise_priority(priority: str, levels: tuple[str, ...]) -> str:
    if priority not in levels:
        return levels[0]
    return levels[max(levels.index(priority) - 1, 0)]


class Pipeline:
    def __init__(
        self,
        store: Store,
        bus: EventBus,
        triage: Triage | None = None,
        *,
        priorities: tuple[str, ...] = ("urgent", "high", "normal", "low"),
        on_outbound: Any = None,
    ) -> None:
        self.store = store
        self.bus = bus
        self.triage = triage
        self.priorities = priorities
        self.on_outbound = on_outbound  # called after an auto-reply is committed

    def attach(self) -> None:
        self.bus.subscribe(EventName.MESSAGE_RECEIVED, self._on_received)

    async def _on_received(self, event: Event) -> None:
        await self.process(int(event.data["message_id"]))

    async def recover(self) -> int:
        """Triage what was stored before a crash but never triaged."""
        ids = await self.store.read(
            lambda conn: [
                r.id
                for r in conn.execute(
                    sa.select(t.messages.c.id).where(t.messages.c.needs_triage.is_(True)).order_by(t.messages.c.id)
                )
            ]
        )
        for message_id in ids:
            await self.process(message_id)
        return len(ids)

    async def process(self, message_id: int) -> None:
        def load(conn: Connection) -> Any:
            message = repo.get_message(conn, message_id)
            conversation = repo.get_conversation(conn, message.conversation_id)
            contact = repo.get_contact(conn, conversation.contact_id)
            needs = conn.execute(
                sa.select(t.messages.c.needs_triage).where(t.messages.c.id == message_id)
            ).scalar()
            return message, conversation, contact, needs

        message, conversation, contact, needs = await self.store.read(load)
        if not needs:
            return
        now = datetime.now(UTC)
        decision = TriageDecision()
        if self.triage is not None:
            try:
                decision = self.triage.decide(message, conversation, contact, now)
            except Exception:  # a broken rule must never lose the message: route it
                log.exception("triage failed for message=%d; routing to a person", message_id)
                decision = TriageDecision(reasons=("auto-answer engine failed; routed to a person",))
        events = await self.store.write(lambda conn: self._apply(conn, message_id, decision, now))
        for event in events:
            await self.bus.publish(event)
        if self.on_outbound is not None and decision.reply is not None:
            self.on_outbound()

    def _apply(
        self, conn: Connection, message_id: int, decision: TriageDecision, now: datetime
    ) -> list[Event]:
        tm, tc = t.messages.c, t.conversations.c
        claimed = conn.execute(
            sa.update(t.messages)
            .where(tm.id == message_id, tm.needs_triage.is_(True))
            .values(needs_triage=False)
        ).rowcount
        if not claimed:  # another process triaged it first
            return []
        conv = repo.get_conversation(conn, repo.get_message(conn, message_id).conversation_id)
        ids = {"conversation_id": conv.id, "message_id": message_id}
        events: list[Event] = []
        values: dict[str, Any] = {"triage": _decision_json(decision, message_id, now)}
        priority = conv.priority
        if decision.priority and decision.priority in self.priorities:
            priority = decision.priority
        if decision.handoff:
            priority = raise_priority(priority, self.priorities)
        values["priority"] = priority
        if decision.skills:
            values["required_skills"] = sorted(set(conv.required_skills) | set(decision.skills))
        if decision.tags:
            values["tags"] = sorted(set(conv.tags) | set(decision.tags))
        if decision.reply is not None:
            reply_id = enqueue(
                conn,
                conversation_id=conv.id,
                text=decision.reply.text,
                html=decision.reply.html,
                subject=decision.reply.subject,
                author_kind=AuthorKind.BOT,
                auto_reply=True,
                now=now,
            )
            events.append(Event(EventName.MESSAGE_SENT, {**ids, "message_id": reply_id, "auto_reply": True}))
        if decision.resolve and not decision.handoff:
            values.update(status=ConversationStatus.RESOLVED.value, resolved_at=now, waiting_since=None)
            events.append(Event(EventName.CONVERSATION_RESOLVED, ids))
        elif conv.assignee_id is None and conv.status is not ConversationStatus.CLOSED:
            values["status"] = ConversationStatus.OPEN.value
            values["waiting_since"] = conv.waiting_since or now
            events.append(
                Event(
                    EventName.CONVERSATION_QUEUED,
                    {**ids, "priority": priority, "channel": conv.channel.value},
                )
            )
        conn.execute(sa.update(t.conversations).where(tc.id == conv.id).values(**values))
        log.info(
            "triaged message=%d conversation=%d rule=%s%s%s",
            message_id,
            conv.id,
            decision.rule or "-",
            " reply" if decision.reply else "",
            " resolved" if decision.resolve and not decision.handoff else "",
        )
        return events


def _decision_json(decision: TriageDecision, message_id: int, now: datetime) -> dict[str, Any]:
    raw = asdict(decision)
    raw["extra"] = dict(decision.extra)
    return {"message_id": message_id, "at": now.isoformat(), **raw}
