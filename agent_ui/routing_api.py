"""Routing API: the queue, agents and their presence, manual moves.

How a web process reaches the router. The active router may run in another process and
change after a failover, and its memory must stay the only place that decides (capacity,
skills, two agents never holding one conversation). So:

* **moves go to the router as bus commands** (assign, unassign, transfer): the handler
  publishes `routing.command` with a request id and waits for the active router's
  `routing.reply`, sent only after the router committed the outcome; the answer is then
  read back from the database. No router answering within the timeout is a 503
  (`router_unavailable`), and nothing was changed. The router validates against its own
  state, so a refusal (agent at capacity, lacks a skill, not assigned) is a 409 with its
  reason;
* **facts go to the database, then an event**: presence (what the agent chose) and
  resolve are stored first and announced after commit (`agent.presence`,
  `conversation.resolved`); the router applies the event, and a router that missed it
  (failing over at that moment) reads the same fact when it rebuilds. These work even
  while no router runs;
* **reads come from the database** (the source of truth): the queue in the router's
  order (priority, requeued first, longest wait), agents with their load.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from aiohttp import web

from agent_ui import transfer_api
from agent_ui.api import conversation_json
from agent_ui.cases_api import POLICIES_KEY
from inbox import events as ev
from inbox.accounts.tokens import Scope
from inbox.actions import run_case_op
from inbox.bus.backends import EventBus
from inbox.cases import Actor, CaseStatus
from inbox.cases.lifecycle import set_status
from inbox.errors import BusError, Forbidden, NotFound, OmnideskError, ValidationError
from inbox.events import Event, EventName
from inbox.store import agents, assignments, conversations
from inbox.types import Presence
from inbox.web.http import MAX_BODY_KEY, STORE_KEY, field, read_json, require_token
from inbox.web.untrusted import is_id, parse_id
from routing import commands as cmd

log = logging.getLogger("omnidesk.routing_api")

MAX_SKILLS = 32


class RouterUnavailable(OmnideskError):
    status = 503
    code = "router_unavailable"


class RouterRefused(OmnideskError):
    """The router's own error (status and code as it answered)."""

    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__(str(answer.get("message") or "refused"), field=answer.get("field"))
        self.status = int(answer.get("status") or 409)
        self.code = str(answer.get("code") or "conflict")


class RoutingClient:
    """Sends commands to the active router over the bus and waits for its reply."""

    def __init__(self, bus: EventBus, *, timeout: float = 5.0) -> None:
        self.bus = bus
        self.timeout = timeout
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        bus.subscribe(EventName.ROUTING_REPLY, self._on_reply)

    async def _on_reply(self, event: Event) -> None:
        future = self._waiting.pop(str(event.data.get("request_id")), None)
        if future is not None and not future.done():
            future.set_result(dict(event.data))

    async def command(self, op: str, conversation_id: int, **args: Any) -> dict[str, Any]:
        """The router's answer (its `conversation_id` for an op that chose one)."""
        request_id = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        # `args` are the op's keys of RoutingCommand (agent_id, force, skills), which a
        # TypedDict cannot take from a **dict: the cast names the payload's type
        data = cast(
            ev.RoutingCommand,
            {"op": op, "request_id": request_id, "conversation_id": conversation_id, **args},
        )
        try:
            await self.bus.publish(Event(EventName.ROUTING_COMMAND, data))
            answer = await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            raise RouterUnavailable(
                f"no active router answered within {self.timeout:g} s; nothing was changed, retry"
            ) from None
        finally:
            self._waiting.pop(request_id, None)
        if not answer.get("ok"):
            raise RouterRefused(answer)
        return answer

    async def note_agent_connected(self, agent_id: int) -> None:
        data = ev.AgentConnection(agent_id=agent_id, connected=True)
        await self.bus.publish(Event(EventName.AGENT_CONNECTION, data))

    async def note_agent_disconnected(self, agent_id: int) -> None:
        data = ev.AgentConnection(agent_id=agent_id, connected=False)
        await self.bus.publish(Event(EventName.AGENT_CONNECTION, data))


@dataclass
class RoutingApi:
    client: RoutingClient
    bus: EventBus
    priorities: tuple[str, ...]


ROUTING_KEY: web.AppKey[RoutingApi] = web.AppKey("routing_api", RoutingApi)


def _id(request: web.Request, name: str = "id") -> int:
    return parse_id(request.match_info[name], name)


async def _body(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    if optional and not request.can_read_body:
        return {}
    return await read_json(request, request.app[MAX_BODY_KEY])


def _agent_id(body: dict[str, Any], *, required: bool) -> int | None:
    value = field(body, "agent_id", int, required=required)
    if value is not None and not is_id(value):
        raise ValidationError("'agent_id' must be a positive whole number", field="agent_id")
    return value


async def _in_scope(request: web.Request, scope: Scope, cid: int) -> None:
    """404 for a conversation of an inbox the token does not reach, as for a missing one."""
    if scope.inboxes is None:
        return
    inbox = await request.app[STORE_KEY].read(lambda conn: conversations.inbox_of(conn, cid))
    if not scope.sees(inbox):
        raise NotFound(f"no conversation {cid}")


async def _conversation(request: web.Request, cid: int) -> web.Response:
    conv = await request.app[STORE_KEY].read(lambda conn: conversations.get(conn, cid))
    return web.json_response(conversation_json(conv))


# -- reads ------------------------------------------------------------------------------


async def get_queue(request: web.Request) -> web.Response:
    scope = await require_token(request)
    raw = request.query.get("limit", "100")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 4 or not 1 <= int(raw) <= 1000:
        raise ValidationError("'limit' must be a whole number from 1 to 1000", field="limit")
    limit = int(raw)
    levels = request.app[ROUTING_KEY].priorities
    rows, total = await request.app[STORE_KEY].read(
        lambda conn: assignments.queue(conn, levels, scope.inboxes, limit)
    )
    now = datetime.now(UTC)
    data = [
        {
            "position": position,
            "conversation_id": w.conversation_id,
            "priority": w.priority,
            "channel": w.channel,
            "inbox": w.inbox,
            "skills": list(w.skills),
            "waiting_since": w.waiting_since.isoformat(),
            "wait_seconds": round(max(0.0, (now - w.waiting_since).total_seconds()), 3),
            "requeued": w.requeued,
        }
        for position, w in enumerate(rows, start=1)
    ]
    return web.json_response({"data": data, "total": total})


def _agent_json(work: assignments.AgentWork) -> dict[str, Any]:
    agent = work.agent
    return {
        "id": agent.id,
        "name": agent.name,
        "email": agent.email,
        "role": agent.role.value,
        "presence": work.presence,
        "skills": dict(agent.skills),
        "capacity": dict(agent.capacity),
        "load": work.load,
        "assigned": sum(work.load.values()),
    }


async def get_agents(request: web.Request) -> web.Response:
    scope = await require_token(request)
    found = await request.app[STORE_KEY].read(
        lambda conn: assignments.workload(conn, scope.inboxes)
    )
    return web.json_response({"data": [_agent_json(work) for work in found]})


# -- facts: database, then an event ----------------------------------------------------


async def put_presence(request: web.Request) -> web.Response:
    scope = await require_token(request, write=True)
    if scope.inboxes is not None:
        raise Forbidden("setting an agent's presence needs a token for all inboxes")
    agent_id = _id(request)
    body = await _body(request)
    presence = field(body, "presence", str, required=True, max_len=16)
    if presence not in {p.value for p in Presence}:
        raise ValidationError(
            f"'presence' must be one of {[p.value for p in Presence]}", field="presence"
        )
    await request.app[STORE_KEY].write(
        lambda conn: agents.set_presence(conn, agent_id, Presence(presence))
    )
    await _announce(
        request,
        Event(EventName.AGENT_PRESENCE, ev.PresenceChanged(agent_id=agent_id, presence=presence)),
    )
    return web.json_response({"id": agent_id, "presence": presence})


async def post_resolve(request: web.Request) -> web.Response:
    scope = await require_token(request, write=True)
    cid = _id(request)
    store = request.app[STORE_KEY]
    if not scope.sees(await store.read(lambda conn: conversations.inbox_of(conn, cid))):
        raise NotFound(f"no conversation {cid}")
    # as status "solved" (issue 17): on the activity log, with its auto-close time
    solve = functools.partial(set_status, to=CaseStatus.SOLVED)
    bus, policies = request.app[ROUTING_KEY].bus, request.app[POLICIES_KEY]
    await run_case_op(store, bus, policies, cid, solve, Actor.api_token(scope.token_id))
    return await _conversation(request, cid)


async def _announce(request: web.Request, event: Event) -> None:
    """After a commit: with the bus away the answer still tells the commit (listeners
    catch up from the database when the bus resumes)."""
    try:
        await request.app[ROUTING_KEY].bus.publish(event)
    except BusError as exc:
        log.warning("committed, not announced yet: %s", exc.message)


# -- moves: commands to the active router ----------------------------------------------


async def post_assign(request: web.Request) -> web.Response:
    scope = await require_token(request, write=True)
    cid = _id(request)
    await _in_scope(request, scope, cid)
    body = await _body(request)
    agent_id = _agent_id(body, required=True)
    force = field(body, "force", bool) or False
    await request.app[ROUTING_KEY].client.command(cmd.ASSIGN, cid, agent_id=agent_id, force=force)
    return await _conversation(request, cid)


async def post_unassign(request: web.Request) -> web.Response:
    scope = await require_token(request, write=True)
    cid = _id(request)
    await _in_scope(request, scope, cid)
    await request.app[ROUTING_KEY].client.command(cmd.UNASSIGN, cid)
    return await _conversation(request, cid)


async def post_transfer(request: web.Request) -> web.Response:
    scope = await require_token(request, write=True)
    cid = _id(request)
    await _in_scope(request, scope, cid)
    body = await _body(request)
    if transfer_api.names_a_queue(body):  # to an inbox or a team: the case core's move
        bus = request.app[ROUTING_KEY].bus
        return await transfer_api.by_token(request, bus, scope, cid, body)
    agent_id = _agent_id(body, required=False)
    skills = field(body, "skills", list, max_len=MAX_SKILLS)
    if (agent_id is None) == (skills is None):
        raise ValidationError("give exactly one of 'agent_id' or 'skills'")
    args: dict[str, Any] = {"agent_id": agent_id}
    if skills is not None:
        if not all(isinstance(s, str) and 0 < len(s) <= 64 for s in skills):
            raise ValidationError("'skills' must be a list of skill names", field="skills")
        args = {"skills": sorted(set(skills))}
    await request.app[ROUTING_KEY].client.command(cmd.TRANSFER, cid, **args)
    return await _conversation(request, cid)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/queue", get_queue),
        web.get("/api/v1/agents", get_agents),
        web.put("/api/v1/agents/{id}/presence", put_presence),
        web.post("/api/v1/conversations/{id}/assign", post_assign),
        web.post("/api/v1/conversations/{id}/unassign", post_unassign),
        web.post("/api/v1/conversations/{id}/transfer", post_transfer),
        web.post("/api/v1/conversations/{id}/resolve", post_resolve),
    ]
