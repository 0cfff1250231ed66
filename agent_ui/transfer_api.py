"""Transfer to an inbox or a team, from the conversation page and over `/api/v1`.

Both `POST /agent/api/conversations/{id}/transfer` (a signed-in agent) and
`POST /api/v1/conversations/{id}/transfer` (a token) take `{"inbox": ...}` and/or
`{"team": ...}` here; a body naming an agent or skills stays with the router's transfer
(`agent_ui.commands.transfer`, `agent_ui.routing_api.post_transfer`), which hand the
other bodies over to this module. The move is `inbox.actions.transfer`: the case core,
the activity log (the agent or the token as actor), and the router hears the
conversation is queued in its new place.

Who may: an agent, a conversation they can see (others: 404), to any inbox or team of
the config (passing work to another team is what a transfer is for); supervisors and
admins, any conversation. A token: a writing one, a conversation of its inboxes, to an
inbox it reaches; a read-only token is refused (403).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from agent_ui.api import conversation_json
from agent_ui.idempotency import call_once
from agent_ui.workspace import WS_KEY
from inbox.accounts.tokens import Scope
from inbox.actions.transfer import check_destination, transfer_to_queue
from inbox.bus.backends import EventBus
from inbox.cases import Actor, CasePolicies
from inbox.errors import Forbidden, ValidationError
from inbox.store import conversations
from inbox.store.sessions import Session
from inbox.web.http import STORE_KEY

__all__ = ["CASES_KEY", "CaseSettings", "by_agent", "by_token", "names_a_queue", "queue_choices"]


@dataclass(frozen=True)
class CaseSettings:
    """The case policies and the config's inboxes (its teams too); None: not checked."""

    policies: CasePolicies = field(default_factory=CasePolicies)
    inboxes: tuple[str, ...] | None = None


CASES_KEY: web.AppKey[CaseSettings] = web.AppKey("case_settings", CaseSettings)


def names_a_queue(body: dict[str, Any]) -> bool:
    """Does the body ask for an inbox or a team (rather than an agent or skills)?"""
    return "inbox" in body or "team" in body


def _settings(app: web.Application) -> CaseSettings:
    return app.get(CASES_KEY) or CaseSettings()


def queue_choices(app: web.Application) -> tuple[str, ...]:
    """The inboxes (and teams) the conversation page offers as transfer destinations."""
    return _settings(app).inboxes or ()


def _destination(body: dict[str, Any], app: web.Application) -> tuple[str | None, str | None]:
    if "agent_id" in body or "skills" in body:
        raise ValidationError("transfer to an inbox/team, or to an agent/skills, not both")
    inbox, team = body.get("inbox"), body.get("team")
    check_destination(inbox, team, _settings(app).inboxes)
    reason = body.get("reason")
    if reason is not None and not (isinstance(reason, str) and len(reason) <= 500):
        raise ValidationError("'reason' must be text of at most 500 characters", field="reason")
    return inbox, team


async def by_agent(request: web.Request, session: Session, cid: int, body: dict[str, Any]) -> None:
    """The conversation page's transfer to an inbox/team (the caller checked that the
    agent sees the conversation)."""
    ws = request.app[WS_KEY]
    inbox, team = _destination(body, request.app)
    policies = _settings(request.app).policies

    async def act() -> dict[str, Any]:
        await transfer_to_queue(
            ws.store,
            ws.bus,
            policies,
            cid,
            Actor.agent(session.agent.id),
            inbox=inbox,
            team=team,
            reason=body.get("reason"),
        )
        return {}

    await call_once(ws, request, session.agent.id, act)


async def by_token(
    request: web.Request, bus: EventBus, scope: Scope, cid: int, body: dict[str, Any]
) -> web.Response:
    """`/api/v1`'s transfer to an inbox/team (the caller checked the token writes and
    reaches the conversation); answers the conversation as it is now."""
    inbox, team = _destination(body, request.app)
    if inbox is not None and not scope.sees(inbox):
        raise Forbidden(f"this token does not reach the inbox {inbox!r}")
    store = request.app[STORE_KEY]
    await transfer_to_queue(
        store,
        bus,
        _settings(request.app).policies,
        cid,
        Actor.api_token(scope.token_id),
        inbox=inbox,
        team=team,
        reason=body.get("reason"),
    )
    conv = await store.read(lambda conn: conversations.get(conn, cid))
    return web.json_response(conversation_json(conv))
