"""Status and escalation of a conversation (issue 17), from the workspace and over the API:
each handler asks the one case action (`inbox.actions.run_case_op` with the core's
`set_status` / `escalate`), so the browser and `/api/v1` do the same thing.

    POST /agent/api/conversations/{id}/status     {status, until?, reason?}  (session, CSRF)
    POST /agent/api/conversations/{id}/escalate   {note}                     (session, CSRF)
    POST /api/v1/conversations/{id}/status        {status, until?, reason?}  (write token)
    POST /api/v1/conversations/{id}/escalate      {note}                     (write token)

Who may: an agent the conversations they see (their inboxes, or held by them; another
team's answers 404 as a missing one), supervisors and admins all of them; a token with
write rights the conversations of its inboxes (read-only: 403). The answer is the case's
status after the change: `{id, status, snoozed_until, priority, escalated, assignee_id,
sla_due_at, sla_state}` (the workspace's also has `ok: true`); a move the status table
refuses is 409 with the way forward, a bad body 400.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from agent_ui import access
from agent_ui.auth import require_session
from agent_ui.workspace import WS_KEY
from inbox.actions import CaseOp, run_case_op
from inbox.cases import Actor, CasePolicies, CaseStatus, Change, escalate, set_status
from inbox.cases.due import summary
from inbox.errors import NotFound, ValidationError
from inbox.store import cases as repo
from inbox.store import conversations
from inbox.web.http import MAX_BODY_KEY, STORE_KEY, field, read_json, require_token
from inbox.web.untrusted import parse_id

__all__ = ["POLICIES_KEY", "agent_escalate", "agent_status", "case_facts", "routes", "setup"]

POLICIES_KEY: web.AppKey[CasePolicies] = web.AppKey("case_policies", CasePolicies)

MAX_REASON = 500


def setup(app: web.Application, policies: CasePolicies) -> None:
    """The case policies the handlers apply, and the `/api/v1` routes."""
    app[POLICIES_KEY] = policies
    app.add_routes(routes())


def routes() -> list[web.RouteDef]:
    return [
        web.post("/api/v1/conversations/{id}/status", api_status),
        web.post("/api/v1/conversations/{id}/escalate", api_escalate),
    ]


def _status_op(body: dict[str, Any]) -> CaseOp:
    raw = field(body, "status", str, required=True, max_len=16)
    if raw == "resolved":  # the stored name until the rename
        raw = CaseStatus.SOLVED.value
    if raw not in {s.value for s in CaseStatus}:
        allowed = ", ".join(s.value for s in CaseStatus)
        raise ValidationError(f"'status' must be one of {allowed}", field="status")
    until = _time(field(body, "until", str, max_len=64), "until")
    reason = field(body, "reason", str, max_len=MAX_REASON)
    return functools.partial(set_status, to=CaseStatus(raw), until=until, reason=reason)


def _escalate_op(body: dict[str, Any]) -> CaseOp:
    note = field(body, "note", str, required=True, max_len=MAX_REASON)
    return functools.partial(escalate, note=note)


def _time(raw: str | None, name: str) -> datetime | None:
    if raw is None:
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        raise ValidationError(
            f"'{name}' must be a time like 2027-01-04T09:00:00Z", field=name
        ) from None


def _answer(change: Change, policies: CasePolicies) -> dict[str, Any]:
    case = change.case
    due = summary(case, datetime.now(UTC), policies)
    return {
        "id": case.id,
        "status": repo.stored_status(case.status),
        "snoozed_until": _iso(case.snoozed_until),
        "priority": case.priority,
        "escalated": case.escalated,
        "assignee_id": case.assignee_id,
        "sla_due_at": _iso(due.due_at),
        "sla_state": None if due.sla_state is None else due.sla_state.value,
    }


async def case_facts(request: web.Request, cid: int) -> dict[str, Any]:
    """What the conversation page shows of the case: its status control's state (status,
    snoozed until), its SLA due time and state, whether it is escalated."""
    case = await request.app[WS_KEY].store.read(lambda conn: repo.load_case(conn, cid))
    return _answer(Change(case, case), request.app[POLICIES_KEY])


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


async def _body(request: web.Request) -> dict[str, Any]:
    return await read_json(request, min(request.app[MAX_BODY_KEY], 64 * 1024))


# -- the workspace ------------------------------------------------------------------------


async def _as_agent(request: web.Request, make: Any) -> web.Response:
    ws = request.app[WS_KEY]
    session = await require_session(request)
    cid = parse_id(request.match_info["id"], "id")
    conv = await ws.store.read(lambda conn: conversations.get(conn, cid))
    if not access.can_see_conversation(session.agent, conv.inbox, conv.assignee_id):
        raise NotFound(f"no conversation {cid}")
    op = make(await _body(request))
    policies = request.app[POLICIES_KEY]
    actor = Actor.agent(session.agent.id)
    change = await run_case_op(ws.store, ws.bus, policies, cid, op, actor)
    return web.json_response({"ok": True, **_answer(change, policies)})


async def agent_status(request: web.Request) -> web.Response:
    return await _as_agent(request, _status_op)


async def agent_escalate(request: web.Request) -> web.Response:
    return await _as_agent(request, _escalate_op)


# -- /api/v1 ------------------------------------------------------------------------------


async def _as_token(request: web.Request, make: Any) -> web.Response:
    scope = await require_token(request, write=True)
    cid = parse_id(request.match_info["id"], "id")
    store = request.app[STORE_KEY]
    inbox = await store.read(lambda conn: conversations.inbox_of(conn, cid))
    if not scope.sees(inbox):
        raise NotFound(f"no conversation {cid}")
    op = make(await _body(request))
    bus = request.app[WS_KEY].bus
    actor = Actor.api_token(scope.token_id)
    policies = request.app[POLICIES_KEY]
    change = await run_case_op(store, bus, policies, cid, op, actor)
    return web.json_response(_answer(change, policies))


async def api_status(request: web.Request) -> web.Response:
    return await _as_token(request, _status_op)


async def api_escalate(request: web.Request) -> web.Response:
    return await _as_token(request, _escalate_op)
