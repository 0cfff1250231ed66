"""Who holds a conversation, over HTTP (issue 17): accept an offer, claim a conversation,
take the next one the router picks; for the workspace (session, CSRF) and for `/api/v1`
(a write token, acting for the agent its body names).

    POST /agent/api/conversations/{id}/accept      {}            -> {ok, conversation_id,
    POST /agent/api/conversations/{id}/claim       {}               assignee_id, accepted_at}
    POST /agent/api/queue/next                     {}
    POST /api/v1/conversations/{id}/accept         {"agent_id"}  -> the conversation, with
    POST /api/v1/conversations/{id}/claim          {"agent_id"}     accepted_at
    POST /api/v1/queue/next                        {"agent_id"}

Refusals: 409 `conflict` with the reason ("Ann already has this conversation", "this
conversation is not offered to you (any more)", "no waiting conversation you can take
now"); 404 for a conversation the agent or token may not see; 503 when no router answers
a take-next. Accept and claim are the store's version-guarded writes
(`inbox.actions.ownership`): of two at once, exactly one wins. Take-next is the router's
choice (`routing.commands.TAKE_NEXT`), written accepted.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from agent_ui import access
from agent_ui.api import conversation_json
from agent_ui.auth import require_session
from agent_ui.cases_api import POLICIES_KEY
from agent_ui.routing_api import RoutingClient
from agent_ui.views import int_param
from agent_ui.workspace import WS_KEY
from inbox.actions import ownership
from inbox.cases import CasePolicies, Change
from inbox.errors import Conflict, NotFound, ValidationError
from inbox.store import agents, cases, conversations, holders
from inbox.types import Agent, Conversation
from inbox.web.http import MAX_BODY_KEY, STORE_KEY, field, read_json, require_token
from inbox.web.untrusted import is_id
from routing import commands as cmd

__all__ = ["ROUTES", "api_routes"]

CLIENT_KEY: web.AppKey[RoutingClient] = web.AppKey("ownership_router", RoutingClient)
TIMEOUT_KEY: web.AppKey[float] = web.AppKey("accept_timeout", float)


def _answer(cid: int, change: Change) -> web.Response:
    case = change.case
    return web.json_response({
        "ok": True,
        "conversation_id": cid,
        "assignee_id": case.assignee_id,
        "accepted_at": case.accepted_at and case.accepted_at.isoformat(),
    })  # fmt: skip


async def _read(request: web.Request, cid: int) -> Conversation:
    return await request.app[STORE_KEY].read(lambda conn: conversations.get(conn, cid))


async def _own(request: web.Request, agent: Agent, op: str, cid: int) -> Change:
    """Accept or claim `cid` for `agent`, who must see it (claim: its inbox)."""
    conv = await _read(request, cid)
    if not access.can_see_conversation(agent, conv.inbox, conv.assignee_id):
        raise NotFound(f"no conversation {cid}")
    ws = request.app[WS_KEY]
    policies = request.app[POLICIES_KEY]
    if op == "accept":
        return await ownership.accept(ws.store, ws.bus, policies, cid, agent.id)
    if not access.can_see_inbox(agent, conv.inbox):
        raise Conflict("this conversation is not in your inboxes; ask a supervisor")
    return await ownership.claim(ws.store, ws.bus, policies, cid, agent.id)


async def _take_next(request: web.Request, agent: Agent) -> int:
    """The router's pick for `agent`; the conversation id, held by them."""
    answer = await request.app[CLIENT_KEY].command(cmd.TAKE_NEXT, 0, agent_id=agent.id)
    cid = int(answer.get("conversation_id") or 0)
    conv = await _read(request, cid)
    if conv.assignee_id != agent.id:  # the router's pick lost the row to someone else
        raise Conflict("that conversation was just taken by someone else; try again")
    return cid


# -- the workspace -----------------------------------------------------------------------


async def accept(request: web.Request) -> web.Response:
    session = await require_session(request)
    cid = int_param(request, "id")
    return _answer(cid, await _own(request, session.agent, "accept", cid))


async def claim(request: web.Request) -> web.Response:
    session = await require_session(request)
    cid = int_param(request, "id")
    return _answer(cid, await _own(request, session.agent, "claim", cid))


async def take_next(request: web.Request) -> web.Response:
    session = await require_session(request)
    cid = await _take_next(request, session.agent)
    return web.json_response({"ok": True, "conversation_id": cid, "assignee_id": session.agent.id})


async def holder(request: web.Request) -> web.Response:
    """Who holds the conversation, for the page: an offer to me shows Accept and its
    countdown (`accept_due`), nobody shows Claim."""
    session = await require_session(request)
    cid = int_param(request, "id")
    conv = await _read(request, cid)
    if not access.can_see_conversation(session.agent, conv.inbox, conv.assignee_id):
        raise NotFound(f"no conversation {cid}")
    held = await request.app[STORE_KEY].read(lambda conn: holders.holder(conn, cid))
    timeout = request.app[TIMEOUT_KEY]
    due = None
    if held.assignee_id is not None and held.accepted_at is None and held.assigned_at and timeout:
        due = (held.assigned_at + timedelta(seconds=timeout)).isoformat()
    return web.json_response({
        "conversation_id": cid,
        "status": conv.status.value,
        "assignee_id": held.assignee_id,
        "assignee_name": held.assignee_name,
        "accepted_at": held.accepted_at and held.accepted_at.isoformat(),
        "accept_due": due,
        "now": datetime.now(UTC).isoformat(),
    })  # fmt: skip


ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/agent/api/conversations/{id}/holder", holder),
    ("POST", "/agent/api/conversations/{id}/accept", accept),
    ("POST", "/agent/api/conversations/{id}/claim", claim),
    ("POST", "/agent/api/queue/next", take_next),
]


# -- /api/v1 -----------------------------------------------------------------------------


async def _token_agent(request: web.Request) -> tuple[Agent, frozenset[str] | None]:
    """The write token's scope and the active agent its body names."""
    scope = await require_token(request, write=True)
    body = await read_json(request, request.app[MAX_BODY_KEY])
    agent_id = field(body, "agent_id", int, required=True)
    if not is_id(agent_id):
        raise ValidationError("'agent_id' must be a positive whole number", field="agent_id")
    agent = await request.app[STORE_KEY].read(lambda conn: agents.get(conn, agent_id))
    if not agent.active:
        raise NotFound(f"no active agent {agent_id}", field="agent_id")
    return agent, scope.inboxes


async def _api_own(request: web.Request, op: str) -> web.Response:
    agent, inboxes = await _token_agent(request)
    cid = int_param(request, "id")
    if inboxes is not None and (await _read(request, cid)).inbox not in inboxes:
        raise NotFound(f"no conversation {cid}")
    await _own(request, agent, op, cid)
    return await _api_conversation(request, cid)


async def _api_conversation(request: web.Request, cid: int) -> web.Response:
    conv = await _read(request, cid)
    case = await request.app[STORE_KEY].read(lambda conn: cases.load_case(conn, cid))
    accepted = case.accepted_at
    data = {**conversation_json(conv), "accepted_at": accepted and accepted.isoformat()}
    return web.json_response(data)


async def api_accept(request: web.Request) -> web.Response:
    return await _api_own(request, "accept")


async def api_claim(request: web.Request) -> web.Response:
    return await _api_own(request, "claim")


async def api_next(request: web.Request) -> web.Response:
    agent, inboxes = await _token_agent(request)
    if inboxes is not None and not set(agent.teams) <= inboxes:
        raise NotFound("this token does not reach every inbox of that agent", field="agent_id")
    cid = await _take_next(request, agent)
    return await _api_conversation(request, cid)


def api_routes() -> list[web.RouteDef]:
    return [
        web.post("/api/v1/conversations/{id}/accept", api_accept),
        web.post("/api/v1/conversations/{id}/claim", api_claim),
        web.post("/api/v1/queue/next", api_next),
    ]


def setup(
    app: web.Application, policies: CasePolicies, client: RoutingClient, accept_timeout: float
) -> None:
    """The case policies, the router client and the router's accept timeout (seconds; 0:
    offers never time out) these handlers use."""
    app[POLICIES_KEY] = policies
    app[CLIENT_KEY] = client
    app[TIMEOUT_KEY] = accept_timeout
