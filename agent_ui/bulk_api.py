"""Bulk actions over HTTP: `POST /agent/api/conversations/bulk` (the queue page's
multi-select, a signed-in agent) and `POST /api/v1/conversations/bulk` (a token).

The body and the per-item results are `inbox.actions.bulk`'s. The answer is 200 with
`{"results": [{id, ok} | {id, ok: false, code, message}], "ok": n, "failed": n}` when
the request as a whole is valid (items refused one by one are in the results); 400 for a
bad request, 413 beyond `MAX_IDS` conversations, 403 for a read-only token.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from agent_ui import access
from agent_ui.auth import require_session
from agent_ui.idempotency import call_once
from agent_ui.transfer_api import CASES_KEY, CaseSettings
from agent_ui.workspace import WS_KEY
from inbox.actions.bulk import BulkRequest, parse_bulk, run_bulk
from inbox.bus.backends import EventBus
from inbox.cases import Actor
from inbox.cases.rights import Rights
from inbox.errors import NotFound, ValidationError
from inbox.store.agents import get as get_agent
from inbox.store.backends import Store
from inbox.web.http import MAX_BODY_KEY, STORE_KEY, read_json, require_token

__all__ = ["BUS_KEY", "browser_bulk", "routes"]

BUS_KEY: web.AppKey[EventBus] = web.AppKey("bulk_bus", EventBus)


def _settings(app: web.Application) -> CaseSettings:
    return app.get(CASES_KEY) or CaseSettings()


async def _request(request: web.Request, store: Store) -> BulkRequest:
    body = await read_json(request, min(request.app[MAX_BODY_KEY], 256 * 1024))
    req = parse_bulk(body, _settings(request.app).inboxes)
    if req.action == "assign":  # the target must be an active agent
        try:
            target = await store.read(lambda conn: get_agent(conn, req.params["agent_id"]))
        except NotFound:
            target = None
        if target is None or not target.active:
            raise ValidationError("no such active agent", field="agent_id")
    return req


def _answer(results: list[dict[str, Any]]) -> web.Response:
    ok = sum(1 for r in results if r["ok"])
    return web.json_response({"results": results, "ok": ok, "failed": len(results) - ok})


async def browser_bulk(request: web.Request) -> web.Response:
    ws = request.app[WS_KEY]
    session = await require_session(request)
    agent = session.agent
    req = await _request(request, ws.store)
    rights = Rights.of_agent(agent.id, agent.teams, access.can_supervise(agent))
    policies = _settings(request.app).policies

    async def act() -> dict[str, Any]:  # a resend with the same Idempotency-Key: the answer
        results = await run_bulk(ws.store, ws.bus, policies, req, Actor.agent(agent.id), rights)
        return {"results": results}

    answer, _fresh = await call_once(ws, request, agent.id, act)
    return _answer(answer["results"])


async def api_bulk(request: web.Request) -> web.Response:
    scope = await require_token(request, write=True)
    store = request.app[STORE_KEY]
    req = await _request(request, store)
    rights = Rights.of_token(scope.inboxes, scope.read_only)
    policies = _settings(request.app).policies
    actor = Actor.api_token(scope.token_id)
    results = await run_bulk(store, request.app[BUS_KEY], policies, req, actor, rights)
    return _answer(results)


def routes() -> list[web.RouteDef]:
    return [web.post("/api/v1/conversations/bulk", api_bulk)]
