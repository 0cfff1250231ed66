"""Setting a conversation's priority, with a reason (issue 17.3): one case action that the
workspace (`POST /agent/api/conversations/{id}/priority`, a signed-in agent) and the API
(`POST /api/v1/conversations/{id}/priority`, a read-write token) both run through
`inbox.actions.run_case_op`, so the change, its activity entry and its events
(conversation.priority_changed, activity.appended) are the same whoever makes it.

Who may: an agent on the conversations they may see (their teams' inboxes, or held by
them; others answer 404 as if missing), supervisors and admins on every one; a token on
the inboxes its scope reaches, and only a read-write token. The core refuses an unknown
level (400), a missing reason from an agent (400), and the priority it already has or a
closed conversation (409).
"""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web

from agent_ui import access
from agent_ui.auth import require_session
from agent_ui.cases_api import POLICIES_KEY
from agent_ui.idempotency import call_once
from agent_ui.views import int_param
from agent_ui.workspace import WS_KEY
from inbox import cases
from inbox.actions import run_case_op
from inbox.bus.backends import EventBus
from inbox.cases import Actor, CasePolicies, Change
from inbox.errors import NotFound, ValidationError
from inbox.store import conversations
from inbox.store.backends import Store
from inbox.web.http import MAX_BODY_KEY, STORE_KEY, read_json, require_token
from inbox.web.untrusted import parse_id

__all__ = ["api_set_priority", "set_priority"]

# the case policies (priorities, SLA targets per inbox), set by the app that wires it

MAX_REASON = 500


def read_priority(body: dict[str, Any]) -> tuple[str, str | None]:
    """The `priority` and `reason` of a request body (the level is checked by the core)."""
    priority = body.get("priority")
    if not isinstance(priority, str) or not priority:
        raise ValidationError("'priority' must be one of the priority levels", field="priority")
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise ValidationError("'reason' must be a string", field="reason")
    if reason is not None and len(reason) > MAX_REASON:
        raise ValidationError(f"'reason' is longer than {MAX_REASON} characters", field="reason")
    return priority[:32], reason


def change_json(change: Change) -> dict[str, Any]:
    case = change.case
    return {
        "id": case.id,
        "priority": case.priority,
        "previous_priority": change.before.priority,
        "version": case.version,
        "activity": [entry.to_json() for entry in change.entries],
    }


async def _run(
    store: Store,
    bus: EventBus,
    policies: CasePolicies,
    cid: int,
    body: dict[str, Any],
    actor: Actor,
) -> dict[str, Any]:
    priority, reason = read_priority(body)
    op = functools.partial(cases.set_priority, to=priority, reason=reason)
    return change_json(await run_case_op(store, bus, policies, cid, op, actor))


async def set_priority(request: web.Request) -> web.Response:
    """The workspace's action (CSRF-checked by `require_session`; an Idempotency-Key makes
    a resend answer as the first did)."""
    ws = request.app[WS_KEY]
    session = await require_session(request)
    cid = int_param(request, "id")
    found = await ws.store.read(lambda conn: conversations.inbox_and_assignee(conn, cid))
    if found is None or not access.can_see_conversation(session.agent, *found):
        raise NotFound(f"no conversation {cid}")
    body = await read_json(request, min(request.app[MAX_BODY_KEY], 64 * 1024))
    policies, actor = request.app[POLICIES_KEY], Actor.agent(session.agent.id)
    answer, _fresh = await call_once(
        ws,
        request,
        session.agent.id,
        lambda: _run(ws.store, ws.bus, policies, cid, body, actor),
    )
    return web.json_response(answer)


async def api_set_priority(request: web.Request) -> web.Response:
    scope = await require_token(request, write=True)
    cid = parse_id(request.match_info["id"], "id")
    store = request.app[STORE_KEY]
    inbox = await store.read(lambda conn: conversations.inbox_of(conn, cid))
    if inbox is None or not scope.sees(inbox):
        raise NotFound(f"no conversation {cid}")
    body = await read_json(request, request.app[MAX_BODY_KEY])
    actor = Actor.api_token(scope.token_id)
    answer = await _run(store, request.app[WS_KEY].bus, request.app[POLICIES_KEY], cid, body, actor)
    return web.json_response(answer)


def api_routes() -> list[web.RouteDef]:
    """The /api/v1 routes of issue 17.3, 17.6 and 17.7 (the workspace's: `agent_ui.web`)."""
    from agent_ui.activity_api import api_activity
    from agent_ui.reply_api import api_reply

    return [
        web.post("/api/v1/conversations/{id}/reply", api_reply),
        web.post("/api/v1/conversations/{id}/priority", api_set_priority),
        web.get("/api/v1/conversations/{id}/activity", api_activity),
    ]
