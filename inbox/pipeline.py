"""After ingest: triage (the auto-answer engine), then the outbox or the queue.

Listens for message.received. Inbound messages that still need triage are taken in
batches: one read for the batch, a decision per message from the `Triage` port, and ONE
transaction that stores each decision with its conversation, writes any auto-reply to
the outbox, applies priority/skills/tags, and either resolves the conversation or marks
it waiting (conversation.queued); a rule's `queue`/`assign_to` moves it in that same
transaction, through the case core (`inbox.actions.rule_moves`), before it is announced.
The `needs_triage` flag is cleared in that same transaction, so after a crash `recover()`
picks up exactly the messages that were stored but not yet triaged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from inbox import metrics
from inbox.actions.announce import events_for
from inbox.actions.rule_moves import Moved, apply_moves, moves_of
from inbox.bus.backends import EventBus
from inbox.cases import CasePolicies
from inbox.errors import BusError
from inbox.events import Event, EventName, MessageSent, Queued, Resolved
from inbox.ports import Triage, TriageDecision
from inbox.store import triage as triage_store
from inbox.store.backends import Store
from inbox.tasks import cancel_and_wait
from inbox.types import ConversationStatus

log = logging.getLogger("omnidesk.pipeline")

BATCH = 256
# Triage yields to writes already queued (on SQLite, ingest batches whose senders wait for
# their acknowledgement): it waits while the store has writes in flight, gathering a larger
# batch meanwhile, but never longer than this before it runs anyway.
YIELD_SECONDS = 0.5
YIELD_POLL = 0.005


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
        on_outbound: Callable[..., None] | None = None,
        policies: CasePolicies | None = None,
        inboxes: tuple[str, ...] = (),
    ) -> None:
        self.store = store
        self.policies = policies or CasePolicies()
        self.inboxes = inboxes  # a rule's `queue` naming one of these moves to that inbox
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
        before = None
        if older_than is not None:
            before = datetime.now(UTC) - timedelta(seconds=older_than)
        ids = await self.store.read(lambda conn: triage_store.untriaged(conn, before))
        for start in range(0, len(ids), BATCH):
            await self.process_many(ids[start : start + BATCH])
        return len(ids)

    async def process(self, message_id: int) -> None:
        await self.process_many([message_id])

    async def process_many(self, ids: Sequence[int]) -> None:
        loaded = await self.store.read(lambda conn: triage_store.load(conn, ids))
        if not loaded:
            return
        now = datetime.now(UTC)
        decisions = {item.message.id: self._decide(item, now) for item in loaded}
        plans = [(mid, partial(self._plan, mid, d, now)) for mid, d in decisions.items()]
        settled, moved = await self.store.write(
            lambda conn: self._settle(conn, plans, decisions, now)
        )
        events = [
            event for done in settled for event in _announce(done, moved.get(done.message_id))
        ]
        try:
            await self.bus.publish_many(events)  # one bus message for the whole batch
        except BusError as exc:  # committed: listeners catch up when the bus resumes
            log.warning("triage: %d events not published: %s", len(events), exc.message)
        replies = [done.reply_id for done in settled if done.reply_id is not None]
        if self.on_outbound is not None and replies:
            self.on_outbound(*replies)

    def _settle(
        self,
        conn: Any,
        plans: Sequence[tuple[int, Callable[[triage_store.State], triage_store.Settlement]]],
        decisions: dict[int, TriageDecision],
        now: datetime,
    ) -> tuple[list[triage_store.Settled], dict[int, Moved]]:
        """Store the decisions, then the moves their rules ask for (queued ones only: a
        resolved conversation waits nowhere)."""
        settled = triage_store.settle(conn, plans, now)
        moved: dict[int, Moved] = {}
        for done in settled:
            moves = moves_of(decisions[done.message_id])
            if moves and done.settlement.queued:
                moved[done.message_id] = apply_moves(
                    conn,
                    done.conversation_id,
                    moves,
                    policies=self.policies,
                    inboxes=self.inboxes,
                )
        return settled, moved

    def _decide(self, item: triage_store.Loaded, now: datetime) -> TriageDecision:
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

    def _plan(
        self, message_id: int, decision: TriageDecision, now: datetime, state: triage_store.State
    ) -> triage_store.Settlement:
        """What `decision` does to the conversation as it is now (`state`)."""
        priority = state.priority
        if decision.priority and decision.priority in self.priorities:
            priority = decision.priority  # a handoff's is already raised by the engine
        elif decision.handoff:
            priority = raise_priority(priority, self.priorities)
        resolved = decision.resolve and not decision.handoff
        if decision.reply is not None:
            metrics.count_auto_answer(decision.rule)
        log.info(
            "triaged message=%d conversation=%d rule=%s%s%s",
            message_id,
            state.conversation_id,
            decision.rule or "-",
            " reply" if decision.reply else "",
            " resolved" if resolved else "",
        )
        return triage_store.Settlement(
            triage=_decision_json(decision, message_id, now),
            priority=priority,
            skills=tuple(sorted({*state.skills, *decision.skills})) if decision.skills else None,
            tags=tuple(sorted({*state.tags, *decision.tags})) if decision.tags else None,
            reply=decision.reply,
            resolved=resolved,
            queued=not resolved
            and state.assignee_id is None
            and state.status != ConversationStatus.CLOSED.value,
        )


def _announce(done: triage_store.Settled, moved: Moved | None = None) -> list[Event]:
    """The events of one stored decision: its automatic answer, then the conversation
    resolved or queued (where its rules moved it; not queued when a rule gave it to an
    agent), then the moves' own events."""
    events: list[Event] = []
    cid, settled = done.conversation_id, done.settlement
    if done.reply_id is not None:
        sent = MessageSent(conversation_id=cid, message_id=done.reply_id, auto_reply=True)
        events.append(Event(EventName.MESSAGE_SENT, sent))
    if settled.resolved:
        resolved = Resolved(conversation_id=cid, message_id=done.message_id)
        events.append(Event(EventName.CONVERSATION_RESOLVED, resolved))
    elif settled.queued and not (moved and moved.offered):
        queued = Queued(
            conversation_id=cid,
            message_id=done.message_id,
            priority=settled.priority,
            channel=None,
        )
        events.append(Event(EventName.CONVERSATION_QUEUED, queued))
    for change, at in moved.changes if moved else ():
        events.extend(events_for(change, at))
    return events


def _decision_json(decision: TriageDecision, message_id: int, now: datetime) -> dict[str, Any]:
    raw = asdict(decision)
    raw["extra"] = dict(decision.extra)
    return {"message_id": message_id, "at": now.isoformat(), **raw}
