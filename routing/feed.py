"""Applying the router service's inputs to the pure `Router`: which facts a batch of
inputs needs from the database, and what each input (an event or a command) does.
Mixed into `routing.service.RouterService`."""

from __future__ import annotations

import contextlib
from typing import Any

from inbox.errors import Conflict, NotFound, ValidationError
from inbox.events import EventName
from inbox.store import assignments
from inbox.store.backends import Store
from inbox.types import Presence
from routing import commands as cmd
from routing import store as rstore
from routing.core import Router
from routing.decisions import Decision
from routing.settings import TEAM_PREFIX, RoutingSettings


def presence_of(value: str) -> Presence:
    try:
        return Presence(value)
    except ValueError:
        return Presence.OFFLINE


class _Facts:
    """What one cycle read from the database."""

    def __init__(self, convs: dict[int, rstore.ConvRow], agents: dict[int, rstore.AgentRow],
                 authored: dict[int, int]) -> None:  # fmt: skip
        self.convs, self.agents, self.authored = convs, agents, authored


class Feed:
    store: Store
    settings: RoutingSettings
    _since: dict[int, float]

    async def _read_facts(self, inputs: list[tuple[str, dict[str, Any]]]) -> _Facts:
        convs: set[int] = set()
        agents: set[int] = set()
        messages: set[int] = set()
        for name, data in inputs:
            with contextlib.suppress(KeyError, TypeError, ValueError):
                if name in (EventName.CONVERSATION_QUEUED, EventName.ROUTING_COMMAND):
                    convs.add(int(data["conversation_id"]))
                if name == EventName.AGENT_PRESENCE or data.get("agent_id") is not None:
                    agents.add(int(data["agent_id"]))
                if name == EventName.MESSAGE_SENT and not data.get("auto_reply"):
                    messages.add(int(data["message_id"]))
        if not (convs or agents or messages):
            return _Facts({}, {}, {})

        found = await self.store.read(lambda conn: assignments.facts(conn, convs, agents, messages))
        return _Facts(
            {cid: rstore.conv_row(row) for cid, row in found[0].items()},
            {aid: rstore.agent_row(row) for aid, row in found[1].items()},
            found[2],
        )

    # == applying one input ===============================================================
    def _apply(self, router: Router, name: str, data: dict[str, Any], facts: _Facts,
               now: float, out: list[Decision]) -> None:  # fmt: skip
        if name == EventName.CONVERSATION_QUEUED:
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

    def _command(self, router: Router, data: dict[str, Any], facts: _Facts, now: float,
                 out: list[Decision]) -> None:  # fmt: skip
        op, cid = data.get("op"), int(data["conversation_id"])
        agent_id = None if data.get("agent_id") is None else int(data["agent_id"])
        if op not in cmd.OPS:
            raise ValidationError(f"unknown routing command {op!r}", field="op")
        if agent_id is not None and router.agent(agent_id) is None:
            out += self._sync_agent(router, agent_id, facts, now)
            if router.agent(agent_id) is None:
                raise NotFound(f"no active agent {agent_id}", field="agent_id")
        if router.conversation(cid) is None:
            row = facts.convs.get(cid)
            if row is None:
                raise NotFound(f"no conversation {cid}")
            if row.status not in ("open", "pending"):
                raise Conflict(f"conversation {cid} is {row.status}")
            if op in (cmd.UNASSIGN, cmd.ACCEPT) or row.assignee_id is not None:
                raise Conflict(f"conversation {cid} is not assigned by the router")
            out += self._enqueue(router, row, now)
        if op == cmd.ASSIGN:
            out += router.supervisor_assign(cid, agent_id, now, force=bool(data.get("force")))  # type: ignore[arg-type]
        elif op == cmd.UNASSIGN:
            out += router.unassign(cid, now)
        elif op == cmd.ACCEPT:
            out += router.accept(cid, now)
        elif agent_id is not None:
            out += router.transfer_to_agent(cid, agent_id, now)
        else:
            skills = [
                str(s) for s in data.get("skills") or () if not str(s).startswith(TEAM_PREFIX)
            ]
            view = router.conversation(cid)
            team = [s for s in (view.required_skills if view else ()) if s.startswith(TEAM_PREFIX)]
            out += router.transfer_to_skills(cid, [*skills, *team], now)

    def _priority(self, priority: str) -> str:
        levels = self.settings.priorities
        return priority if priority in levels else levels[-1]

    def _enqueue(self, router: Router, row: rstore.ConvRow, now: float) -> list[Decision]:
        since = row.waiting_since if row.waiting_since is not None else now
        self._since[row.id] = since
        return router.enqueue(
            row.id,
            now,
            priority=self._priority(row.priority),
            channel=row.channel,
            skills=row.skills,
            queue=row.inbox,
            enqueued_at=since,
        )

    def _restore(self, router: Router, row: rstore.ConvRow, now: float) -> list[Decision]:
        since = row.assigned_at if row.assigned_at is not None else now
        self._since[row.id] = since
        return router.restore_assignment(
            row.id,
            row.assignee_id,  # type: ignore[arg-type]
            now,
            priority=self._priority(row.priority),
            channel=row.channel,
            skills=row.skills,
            queue=row.inbox,
            enqueued_at=since,
            accepted=row.accepted,
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
