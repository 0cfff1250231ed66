"""The router service: feeds the pure `Router` from the bus and the clock, persists what it
decides, then announces it.

    service = RouterService(store, bus, settings, lease=RedisLease(url, holder))  # or no lease
    await service.start()      # embedded: active at once; with a lease: campaign for it
    ...
    await service.close()

* **Rebuild.** On becoming active the router's memory is rebuilt from the database (the
  source of truth, `inbox.store.router_rows.snapshot`): active agents with skills, capacity and
  presence; current assignments; waiting conversations in queue order.
* **One worker, batches.** Bus handlers only append inputs and wake one worker task. A
  cycle takes every pending input, reads the facts it needs in one read (the queued
  conversations, the agents, the authors of sent messages), applies them to the router in
  order, fires due timers (`Router.next_due`: relaxation, SLA, accept timeouts; and the
  socket grace period), then writes all the decisions in ONE transaction
  (`inbox.store.router_rows.persist`, guarded and fenced) and only after the commit publishes
  conversation.assigned / unassigned / queued / sla.breached and answers commands.
  A decision the database refuses (the conversation was resolved meanwhile, ...) is not
  announced; that conversation is re-read and the router corrected.
* **Leadership.** With a `RedisLease` only the holder routes; standbys ignore events
  (the new leader's rebuild reads everything committed before it). The leader writes its
  fencing token to the database before rebuilding, and every write checks it.
* **Presence.** `agents.presence` holds what the agent chose; an agent whose sockets have
  all been gone for `offline_grace_seconds` is set offline here. Without `sockets` the
  router counts `agent.connection` events (`note_agent_connected` / `_disconnected`).
  With `sockets` (an `inbox.bus.presence.SocketPresence`: per process, or in Redis where
  each web process's agents expire with its heartbeat) the counts are read from it: at
  every rebuild (a router taking over starts from the live counts, not from zero), every
  `routing.sockets.SYNC_SECONDS`, and at once after an `agent.connection` event. An agent that had
  sockets and has none (closed, or its web process died and its key expired) gets the
  grace period, then goes offline and its chats are re-queued (`routing.sockets`).

What the inputs and the snapshot do to the router is `routing.feed`; the reads and the
guarded writes are `routing.store`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable
from functools import partial

from inbox import metrics
from inbox.bus.backends import EventBus
from inbox.bus.presence import SocketPresence
from inbox.errors import BusError, Fenced, OmnideskError, StoreError
from inbox.events import Event, EventName, PresenceChanged, RoutingReply
from inbox.store import fence, router_rows
from inbox.store.backends import Store
from inbox.types import Presence
from routing import commands as cmd
from routing import store as rstore
from routing.core import Router
from routing.decisions import Assigned, Decision
from routing.feed import HOLDER_EVENTS, Feed, Input
from routing.lease import LeaseError, RedisLease
from routing.settings import RoutingSettings
from routing.sockets import AgentSockets

log = logging.getLogger("omnidesk.routing")

MAX_BATCH = 4096
_INPUTS = (
    EventName.CONVERSATION_QUEUED,
    EventName.CONVERSATION_PRIORITY_CHANGED,  # an agent's new priority re-ranks it
    EventName.CONVERSATION_RESOLVED,
    EventName.AGENT_PRESENCE,
    EventName.MESSAGE_SENT,
    EventName.ROUTING_COMMAND,
    *HOLDER_EVENTS,
)


class RouterService(Feed):
    def __init__(
        self,
        store: Store,
        bus: EventBus,
        settings: RoutingSettings | None = None,
        *,
        lease: RedisLease | None = None,
        sockets: SocketPresence | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.bus = bus
        self.settings = settings or RoutingSettings()
        self.lease = lease
        self.clock = clock
        self.router: Router | None = None
        self.active = False
        self.token: int | None = None  # fencing token while leader (None: embedded)
        self.assigned_total = 0  # assignments persisted and announced
        self.rebuilds = 0
        self._need_rebuild = False
        self._closed = False
        self._inputs: list[Input] = []
        self._since: dict[int, float] = {}  # conversation -> when it first started waiting
        self.sockets = sockets  # where agents' socket counts are read from (None: events)
        self._agent_sockets = AgentSockets(sockets, self.settings.offline_grace_seconds, clock)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # == life cycle =======================================================================
    async def start(self) -> None:
        for name in _INPUTS:
            self.bus.subscribe(name, self._on_event)
        self.bus.subscribe(EventName.AGENT_CONNECTION, self._on_connection)
        self.bus.subscribe(EventName.BUS_RESUMED, self._on_bus_resumed)
        if self.lease is None:
            self._activate(None)
        else:
            self._tasks.append(
                asyncio.create_task(self.lease.run(self._elected, self._lost, self._stop))
            )
        self._tasks.append(asyncio.create_task(self._work(), name="router"))

    async def close(self) -> None:
        self._closed = True
        self._stop.set()
        self._wake.set()  # the loop ends by itself even if its cancel below is lost
        for task in reversed(self._tasks):  # the worker first, then the lease (releases it)
            if task.get_name() == "router":
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.lease is not None:
            await self.lease.close()

    async def idle(self) -> None:
        """Wait until every input received so far has been handled (tests, benchmarks)."""
        await self._idle.wait()

    def _activate(self, token: int | None) -> None:
        self.token = token
        self.active = True
        self._need_rebuild = True
        self._inputs.clear()
        self._kick()

    async def _elected(self, token: int) -> None:
        try:
            fresh = await self.store.write(lambda conn: fence.claim(conn, token))
        except StoreError:
            log.exception("cannot record the router fencing token; standing by")
            fresh = False
        if not fresh and self.lease is not None:
            with contextlib.suppress(LeaseError, StoreError):
                # a Redis that lost its data hands out old tokens: count on from ours
                await self.lease.advance(await self.store.read(fence.current))
            with contextlib.suppress(LeaseError):
                await self.lease.release()
            return
        log.info("router elected leader (fencing token %d); rebuilding from the database", token)
        self._activate(token)

    async def _lost(self) -> None:
        if self.active:
            log.warning("router lost the leader lease; standing by")
        self.active = False
        self.token = None
        self.router = None
        self._inputs.clear()
        self._kick()

    # == inputs ===========================================================================
    async def _on_event(self, event: Event) -> None:
        if self._closed or not self.active or event.data.get("source") == cmd.SOURCE:
            return
        self._inputs.append((event.name, dict(event.data)))
        self._kick()

    async def _on_bus_resumed(self, _event: Event) -> None:
        """Events were missed while the bus was away: rebuild from the database."""
        if self.active and not self._closed:
            log.info("event bus resumed; rebuilding the router from the database")
            self._need_rebuild = True
            self._inputs.clear()
            self._kick()

    async def _announce(self, event: Event) -> None:
        """Publish after a commit; with the bus away the commit stands (every listener
        catches up from the database when the bus resumes)."""
        try:
            await self.bus.publish(event)
        except BusError as exc:
            log.warning("router: %s not announced: %s", event.name, exc.message)

    async def _on_connection(self, event: Event) -> None:
        if self.sockets is not None:  # the counts are in `sockets`: re-read them now
            if self.active:
                self._agent_sockets.next_sync = 0.0
                self._kick()
            return
        try:
            agent_id = int(event.data["agent_id"])
        except (KeyError, TypeError, ValueError):
            return
        if event.data.get("connected"):
            self.note_agent_connected(agent_id)
        else:
            self.note_agent_disconnected(agent_id)

    def note_agent_connected(self, agent_id: int) -> None:
        """A socket of this agent connected (called by the socket layer)."""
        self._agent_sockets.connected(agent_id)

    def note_agent_disconnected(self, agent_id: int) -> None:
        """A socket of this agent went away; with none left, offline after the grace."""
        if self._agent_sockets.disconnected(agent_id):
            self._kick()

    def _kick(self) -> None:
        self._idle.clear()
        self._wake.set()

    # == the worker =======================================================================
    def _sleep_for(self) -> float:
        dues = list(self._agent_sockets.grace.values())
        if self.sockets is not None and self.active:
            dues.append(self._agent_sockets.next_sync)
        if self.router is not None and (due := self.router.next_due()) is not None:
            dues.append(due)
        return 1.0 if not dues else min(1.0, max(0.0, min(dues) - self.clock()))

    async def _work(self) -> None:
        # the loop tests _closed: on Python 3.11 a cancel that arrives as wait_for's
        # wake-up fires can be lost, and close() would then wait for ever
        while not self._closed:
            if not self._inputs and not self._wake.is_set():
                self._idle.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._sleep_for())
            if self._closed:
                break
            self._wake.clear()
            if not self.active:
                self._inputs.clear()
                continue
            try:
                if self._need_rebuild or self.router is None:
                    await self._rebuild()
                await self._cycle()
            except Fenced as exc:
                log.warning("%s; standing by", exc)
                await self._lost()
                if self.lease is not None:
                    with contextlib.suppress(LeaseError):
                        await self.lease.release()
            except Exception:
                log.exception("router cycle failed; rebuilding from the database")
                self._need_rebuild = True
                await asyncio.sleep(0.5)

    async def _rebuild(self) -> None:
        snap = rstore.snapshot_of(await self.store.read(router_rows.snapshot))
        router = self.router = Router(self.settings)
        self._since = {}
        self.rebuilds += 1
        out = self._load(router, snap, self.clock())
        self._need_rebuild = False
        if self.sockets is not None:  # from the live counts, not from zero
            self._agent_sockets.reset()
            await self._agent_sockets.sync()
        log.info(
            "router rebuilt: %d agents, %d assigned, %d waiting",
            len(snap.agents),
            len(snap.assigned),
            len(snap.waiting),
        )
        await self._commit(out, [])
        # The rebuilt state lives as long as the leadership: move it (and everything else
        # alive now) out of the cyclic collector's reach, so full collections stop
        # re-walking 100k conversations. Refcounting still frees what is released later.
        gc.collect()
        gc.freeze()

    async def _cycle(self) -> None:
        """One batch of inputs and the timers due: applied, persisted, then announced."""
        router = self.router
        assert router is not None
        inputs, self._inputs = self._inputs[:MAX_BATCH], self._inputs[MAX_BATCH:]
        if self._inputs:
            self._wake.set()
        now = self.clock()
        if self.sockets is not None and now >= self._agent_sockets.next_sync:
            await self._agent_sockets.sync()
        offline, gone = await self._end_grace(now)
        inputs += gone
        if inputs or (router.next_due() or now + 1) <= now:
            await self._decide(router, inputs)
        for event in offline:
            await self._announce(event)

    async def _end_grace(self, now: float) -> tuple[list[Event], list[Input]]:
        """Agents whose sockets have been gone for the grace period are set offline in the
        database: their presence events (to announce after the cycle's commit) and the
        inputs that give back their chats."""
        expired = self._agent_sockets.expired(now)
        if not expired:
            return [], []
        token = self.token
        offline = await self.store.write(
            lambda conn: router_rows.set_presence(conn, expired, Presence.OFFLINE.value, token)
        )
        events = [self._presence_event(a, "disconnected") for a in offline]
        if self.sockets is not None:
            await self._agent_sockets.forget(expired)
        return events, [(EventName.AGENT_PRESENCE, {"agent_id": a}) for a in expired]

    async def _decide(self, router: Router, inputs: list[Input]) -> None:
        """Apply the inputs and fire the timers due, then persist and announce; when that
        fails, every command of the batch is answered with the failure."""
        facts = await self._read_facts(inputs)
        now = self.clock()
        out, replies = self._apply_all(router, inputs, facts, now)
        out += router.tick(now)
        try:
            await self._commit(out, replies)
        except Exception as exc:
            err = exc if isinstance(exc, OmnideskError) else StoreError("the router failed")
            for r in replies:
                await self._announce(
                    Event(EventName.ROUTING_REPLY, cmd.reply(r["request_id"], err))
                )
            raise

    # == persist, then announce ===========================================================
    async def _commit(self, out: list[Decision], replies: list[RoutingReply]) -> None:
        rounds = 0
        while out:
            decisions, out = out, []
            writes = rstore.writes_of(decisions, self._since)
            applied, stale = await self.store.write(
                partial(router_rows.persist, writes=writes, token=self.token)
            )
            done = [decisions[i] for i in applied]
            metrics.count_decisions(done, self._since)
            for d in done:
                if isinstance(d, Assigned):
                    self.assigned_total += 1
                event = d.event()
                await self._announce(
                    Event(event.name, {**event.data, "source": cmd.SOURCE}, event.at)
                )
            if stale:
                out = await self._reconcile(stale)
            rounds += 1
            if rounds > 20:
                self._need_rebuild = True
                break
        for r in replies:
            await self._announce(Event(EventName.ROUTING_REPLY, r))

    async def _reconcile(self, stale: set[int]) -> list[Decision]:
        """The database refused a decision on these conversations: take them as stored."""
        found = await self.store.read(lambda conn: router_rows.conversations(conn, stale))
        rows = {cid: rstore.conv_row(row) for cid, row in found.items()}
        router = self.router
        if router is None:
            return []
        now = self.clock()
        out: list[Decision] = []
        for cid in sorted(stale):
            log.info("router decision on conversation %d was stale; re-reading it", cid)
            row = rows.get(cid)
            if row is None:
                out += router.resolve(cid, now)
                self._since.pop(cid, None)
                continue
            try:
                out += self.take_as_stored(router, row, now)
            except LookupError:
                self._need_rebuild = True
        return out

    def _presence_event(self, agent_id: int, reason: str) -> Event:
        data = PresenceChanged(
            agent_id=agent_id, presence="offline", reason=reason, source=cmd.SOURCE
        )
        return Event(EventName.AGENT_PRESENCE, data)
