"""What the database and the bus say, applied to the pure `Router`: a snapshot of the
database at a rebuild, and each input of a cycle (an event or a command) with the facts
the batch needs, read in one go. Mixed into `routing.service.RouterService`, which does
the I/O around it.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from inbox.errors import Conflict, NotFound, OmnideskError, ValidationError
from inbox.events import EventName, RoutingReply
from inbox.store import router_rows
from inbox.store.backends import Store
from inbox.types import Presence
from routing import commands as cmd
from routing import store as rstore
from routing.core import Placement, Router
from routing.decisions import Decision, Requeued
from routing.settings import TEAM_PREFIX, RoutingSettings

log = logging.getLogger("omnidesk.routing")
Input = tuple[str, dict[str, Any]]  # an event's name and data, as the bus delivered it

# what others (an agent's accept or claim: `inbox.actions.ownership`) changed in a
# conversation's holder: the router takes the conversation as the database now has it
HOLDER_EVENTS = frozenset(
    {EventName.CONVERSATION_ASSIGNED, EventName.CONVERSATION_UNASSIGNED,
     EventName.CONVERSATION_UPDATED}
)  # fmt: skip


def presence_of(value: str) -> Presence:
    try:
        return Presence(value)
    except ValueError:
        return Presence.OFFLINE


# a conversation is placed in the line again (at its stored priority) while it waits
_PLACE = (EventName.CONVERSATION_QUEUED, EventName.CONVERSATION_PRIORITY_CHANGED)
_REREAD = (*_PLACE, EventName.ROUTING_COMMAND)


class _Facts:
    """What one cycle read from the database."""

    def __init__(self, convs: dict[int, rstore.ConvRow], agents: dict[int, rstore.AgentRow],
                 authored: dict[int, int]) -> None:  # fmt: skip
        self.convs, self.agents, self.authored = convs, agents, authored


class Feed:
    store: Store
    settings: RoutingSettings
    _since: dict[int, float]
    _chosen: int | None = None  # the conversation a command chose (for its reply)
    _need_rebuild: bool

    # == a rebuild ========================================================================
    def _load(self, router: Router, snap: rstore.Snapshot, now: float) -> list[Decision]:
        """Fill a new router from the database: agents and what they hold, then the line."""
        return self._load_agents(router, snap, now) + self._load_waiting(router, snap, now)

    def _load_agents(self, router: Router, snap: rstore.Snapshot, now: float) -> list[Decision]:
        out: list[Decision] = []
        for a in snap.agents:
            out += router.upsert_agent(
                a.id, a.skills, now, capacity=a.capacity, presence=presence_of(a.presence)
            )
        orphans = set()
        for row in snap.assigned:
            if router.agent(row.assignee_id) is None:  # type: ignore[arg-type]
                router.upsert_agent(row.assignee_id, {}, now)  # type: ignore[arg-type]
                orphans.add(row.assignee_id)
            out += self._restore(router, row, now)
        for agent_id in orphans:  # disabled agents give everything back
            out += router.remove_agent(agent_id, now)  # type: ignore[arg-type]
        for a in snap.agents:  # offline in the database but still holding chats
            held = router.agent(a.id)
            if held is not None and held.assigned and held.presence == Presence.OFFLINE.value:
                out += router.set_presence(a.id, Presence.OFFLINE, now)
        return out

    def _load_waiting(self, router: Router, snap: rstore.Snapshot, now: float) -> list[Decision]:
        out: list[Decision] = []
        for row in snap.waiting:
            out += self._enqueue(router, row, now)
            view = router.conversation(row.id)
            if row.requeued and view is not None and view.state == "waiting":
                # back in line ahead of fresh ones, as before the restart
                moved = router.transfer_to_skills(row.id, row.skills, now)
                out += [d for d in moved if not isinstance(d, Requeued)]
        return out

    # == a cycle's inputs =================================================================
    async def _read_facts(self, inputs: list[Input]) -> _Facts:
        convs: set[int] = set()
        agents: set[int] = set()
        messages: set[int] = set()
        for name, data in inputs:
            with contextlib.suppress(KeyError, TypeError, ValueError):
                if name in _REREAD or (name in HOLDER_EVENTS and data.get("source") != cmd.SOURCE):
                    convs.add(int(data["conversation_id"]))
                if name == EventName.AGENT_PRESENCE or data.get("agent_id") is not None:
                    agents.add(int(data["agent_id"]))
                if name == EventName.MESSAGE_SENT and not data.get("auto_reply"):
                    messages.add(int(data["message_id"]))
        if not (convs or agents or messages):
            return _Facts({}, {}, {})

        found = await self.store.read(lambda conn: router_rows.facts(conn, convs, agents, messages))
        return _Facts(
            {cid: rstore.conv_row(row) for cid, row in found[0].items()},
            {aid: rstore.agent_row(row) for aid, row in found[1].items()},
            found[2],
        )

    def _apply_all(self, router: Router, inputs: list[Input], facts: _Facts, now: float
                   ) -> tuple[list[Decision], list[RoutingReply]]:  # fmt: skip
        """Apply the inputs in order: the decisions they caused, and a reply per command."""
        out: list[Decision] = []
        replies: list[RoutingReply] = []
        for name, data in inputs:
            self._chosen = None
            error = self._apply_one(router, name, data, facts, now, out)
            if name == EventName.ROUTING_COMMAND:
                replies.append(cmd.reply(str(data.get("request_id")), error, self._chosen))
        return out, replies

    def _apply_one(self, router: Router, name: str, data: dict[str, Any], facts: _Facts,
                   now: float, out: list[Decision]) -> OmnideskError | None:  # fmt: skip
        """Apply one input; the error it met, if any (an event's is logged: it is skipped)."""
        try:
            self._apply(router, name, data, facts, now, out)
        except OmnideskError as exc:
            if name != EventName.ROUTING_COMMAND:
                log.warning("router ignored %s %s: %s", name, data, exc.message)
            return exc
        except (KeyError, TypeError, ValueError) as exc:
            if name != EventName.ROUTING_COMMAND:
                log.warning("router ignored a malformed %s event: %r", name, data)
            return ValidationError(f"bad command: {exc}")
        return None

    # == applying one input ===============================================================
    def _apply(self, router: Router, name: str, data: dict[str, Any], facts: _Facts,
               now: float, out: list[Decision]) -> None:  # fmt: skip
        if name in _PLACE:
            row = facts.convs.get(int(data["conversation_id"]))
            view = router.conversation(row.id) if row is not None else None
            if row is not None and row.waiting and (view is None or view.state == "waiting"):
                out += self._enqueue(router, row, now)
        elif name == EventName.CONVERSATION_RESOLVED:
            cid = int(data["conversation_id"])
            self._since.pop(cid, None)
            out += router.resolve(cid, now)
        elif name == EventName.AGENT_PRESENCE:
            out += self._sync_agent(router, int(data["agent_id"]), facts, now)
        elif name == EventName.MESSAGE_SENT:
            sent_in = facts.authored.get(int(data.get("message_id") or 0))
            view = router.conversation(sent_in) if sent_in is not None else None
            if view is not None and view.state == "assigned" and not view.accepted:
                out += router.accept(view.conversation_id, now, replied=True)
        elif name == EventName.ROUTING_COMMAND:
            self._command(router, data, facts, now, out)
        elif name in HOLDER_EVENTS and data.get("source") != cmd.SOURCE:
            self._sync_conversation(router, int(data["conversation_id"]), facts, now, out)

    def _command(self, router: Router, data: dict[str, Any], facts: _Facts, now: float,
                 out: list[Decision]) -> None:  # fmt: skip
        op, cid = data.get("op"), int(data["conversation_id"])
        agent_id = None if data.get("agent_id") is None else int(data["agent_id"])
        if op not in cmd.OPS:
            raise ValidationError(f"unknown routing command {op!r}", field="op")
        if agent_id is not None and router.agent(agent_id) is None:
            self._command_agent(router, agent_id, facts, now, out)
        if op == cmd.TAKE_NEXT:
            if agent_id is None:
                raise ValidationError("take_next names the agent", field="agent_id")
            taken = router.take_next(agent_id, now)
            self._chosen = taken[0].conversation_id
            out += taken
            return
        if router.conversation(cid) is None:
            self._command_conversation(router, op, cid, facts, now, out)
        if op == cmd.ASSIGN:
            out += router.supervisor_assign(cid, agent_id, now, force=bool(data.get("force")))  # type: ignore[arg-type]
        elif op == cmd.UNASSIGN:
            out += router.unassign(cid, now)
        elif op == cmd.ACCEPT:
            out += router.accept(cid, now)
        elif agent_id is not None:
            out += router.transfer_to_agent(cid, agent_id, now)
        else:
            out += self._transfer_to_skills(router, cid, data, now)

    def _command_agent(self, router: Router, agent_id: int, facts: _Facts, now: float,
                       out: list[Decision]) -> None:  # fmt: skip
        """A command names an agent the router does not hold: take it as the database has
        it (what that decides stands even when the command then fails)."""
        out += self._sync_agent(router, agent_id, facts, now)
        if router.agent(agent_id) is None:
            raise NotFound(f"no active agent {agent_id}", field="agent_id")

    def _command_conversation(self, router: Router, op: str, cid: int, facts: _Facts,
                              now: float, out: list[Decision]) -> None:  # fmt: skip
        """A command on a conversation the router does not hold: one the database has
        open, pending and unassigned is queued first (the command then moves it)."""
        row = facts.convs.get(cid)
        if row is None:
            raise NotFound(f"no conversation {cid}")
        if row.status not in ("open", "pending"):
            raise Conflict(f"conversation {cid} is {row.status}")
        if op in (cmd.UNASSIGN, cmd.ACCEPT) or row.assignee_id is not None:
            raise Conflict(f"conversation {cid} is not assigned by the router")
        out += self._enqueue(router, row, now)

    def _sync_conversation(self, router: Router, cid: int, facts: _Facts, now: float,
                           out: list[Decision]) -> None:  # fmt: skip
        """Another process changed who holds `cid` (an agent accepted or claimed it):
        an accept stops the offer's timer; any other difference from what the router
        holds is settled by taking the conversation as stored."""
        row = facts.convs.get(cid)
        view = router.conversation(cid)
        if row is None or (view is None and row.assignee_id is None and not row.waiting):
            return
        if view is not None and view.state == "assigned" and view.agent_id == row.assignee_id:
            if row.accepted and not view.accepted:
                out += router.accept(cid, now)
            return
        if view is not None and view.state == "waiting" and row.waiting:
            return
        if row.assignee_id is not None and router.agent(row.assignee_id) is None:
            out += self._sync_agent(router, row.assignee_id, facts, now)
        try:
            out += self.take_as_stored(router, row, now)
        except LookupError:
            self._need_rebuild = True

    def take_as_stored(self, router: Router, row: rstore.ConvRow, now: float) -> list[Decision]:
        """Forget what the router holds of the conversation and take it as `row` has it:
        waiting, held by a known agent (restored), or not the router's any more. Raises
        LookupError when its holder is unknown to the router."""
        out = router.resolve(row.id, now)
        self._since.pop(row.id, None)
        if row.waiting:
            out += self._enqueue(router, row, now)
        elif row.assignee_id is not None and row.status in ("open", "pending"):
            if router.agent(row.assignee_id) is None:
                raise LookupError(f"agent {row.assignee_id} is unknown to the router")
            out += self._restore(router, row, now)
        return out

    def _transfer_to_skills(self, router: Router, cid: int, data: dict[str, Any], now: float
                            ) -> list[Decision]:  # fmt: skip
        """To the skills the command names; the conversation keeps its team."""
        skills = [str(s) for s in data.get("skills") or () if not str(s).startswith(TEAM_PREFIX)]
        view = router.conversation(cid)
        team = [s for s in (view.required_skills if view else ()) if s.startswith(TEAM_PREFIX)]
        return router.transfer_to_skills(cid, [*skills, *team], now)

    def _enqueue(self, router: Router, row: rstore.ConvRow, now: float) -> list[Decision]:
        since = row.waiting_since if row.waiting_since is not None else now
        self._since[row.id] = since
        return router.enqueue(row.id, now, **self._placement(row, since))

    def _restore(self, router: Router, row: rstore.ConvRow, now: float) -> list[Decision]:
        since = row.assigned_at if row.assigned_at is not None else now
        self._since[row.id] = since
        return router.restore_assignment(
            row.id,
            row.assignee_id,  # type: ignore[arg-type]
            now,
            accepted=row.accepted,
            **self._placement(row, since),
        )

    def _placement(self, row: rstore.ConvRow, since: float) -> Placement:
        levels = self.settings.priorities
        return Placement(
            priority=row.priority if row.priority in levels else levels[-1],
            channel=row.channel,
            skills=row.skills,
            queue=row.inbox,
            enqueued_at=since,
        )

    def _sync_agent(self, router: Router, agent_id: int, facts: _Facts, now: float
                    ) -> list[Decision]:  # fmt: skip
        row = facts.agents.get(agent_id)
        if row is None or not row.active:
            return router.remove_agent(agent_id, now) if router.agent(agent_id) else []
        presence = presence_of(row.presence)
        out = router.upsert_agent(row.id, row.skills, now, capacity=row.capacity, presence=presence)
        if presence is Presence.OFFLINE and router.agent(agent_id).assigned:  # type: ignore[union-attr]
            out += router.set_presence(agent_id, presence, now)  # gives back what it must
        return out
