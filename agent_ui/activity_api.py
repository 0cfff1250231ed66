"""A conversation's activity log (issue 17.6) for the workspace and the API: every change
of assignee, status, priority, inbox, tags, SLA state and every merge, who made it (agent,
rule, router, API token or the system's timers), when, from what to what, and why.

The conversation page reads `GET /agent/api/conversations/{id}/activity` and interleaves
the entries with the messages; `GET /api/v1/conversations/{id}/activity` pages through
them with a cursor. Both are seen by whoever may see the conversation (agents: their
teams' inboxes or held by them; tokens: their scope's inboxes), others get 404.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from agent_ui import access
from agent_ui.auth import require_session
from agent_ui.cases_api import POLICIES_KEY
from agent_ui.views import int_param
from agent_ui.workspace import WS_KEY
from inbox.cases import ActivityEntry, ActorKind
from inbox.errors import NotFound, ValidationError
from inbox.store import activity, conversations
from inbox.web.http import STORE_KEY, require_token
from inbox.web.untrusted import parse_id

__all__ = ["activity_json", "api_activity", "conversation_activity", "who"]

PAGE_LIMIT = 1000  # the workspace's page reads this many; the API pages by cursor


def who(entry: ActivityEntry, names: dict[str, str]) -> str:
    """The actor as a person reads it: an agent's or token's name, a rule's name."""
    actor = entry.actor
    key = f"{actor.kind.value}:{actor.id}"
    if actor.kind is ActorKind.AGENT:
        return names.get(key, f"agent #{actor.id}")
    if actor.kind is ActorKind.API_TOKEN:
        return f"API token {names.get(key, f'#{actor.id}')}"
    if actor.kind is ActorKind.RULE:
        return f"rule {actor.id}"
    return actor.kind.value  # router, system


def activity_json(log: activity.Logged, names: dict[str, str]) -> dict[str, Any]:
    body = log.entry.to_json()
    del body["conversation_id"]
    return {"id": log.id, **body, "who": who(log.entry, names)}


async def conversation_activity(request: web.Request) -> web.Response:
    ws = request.app[WS_KEY]
    session = await require_session(request)
    cid = int_param(request, "id")

    def read(conn: Any) -> tuple[str, activity.ActivityPage, dict[str, str]]:
        found = conversations.inbox_and_assignee(conn, cid)
        if found is None or not access.can_see_conversation(session.agent, *found):
            raise NotFound(f"no conversation {cid}")
        got = activity.page(conn, cid, limit=PAGE_LIMIT)
        names = activity.actor_names(conn, (log.entry for log in got.entries))
        return conversations.get(conn, cid).priority, got, names

    priority, got, names = await ws.store.read(read)
    levels = request.app[POLICIES_KEY].priorities.levels
    return web.json_response(
        {
            "priority": priority,
            "levels": list(levels),  # the choices of the page's priority form
            "entries": [activity_json(log, names) for log in got.entries],
        }
    )


def _limit(raw: str) -> int:
    limit = parse_id(raw, "limit")
    if not 1 <= limit <= 200:
        raise ValidationError("'limit' must be between 1 and 200", field="limit")
    return limit


async def api_activity(request: web.Request) -> web.Response:
    scope = await require_token(request)
    cid = parse_id(request.match_info["id"], "id")
    limit = _limit(request.query.get("limit", "50"))
    cursor = request.query.get("cursor") or None
    after = 0 if cursor is None else parse_id(cursor, "cursor")

    def read(conn: Any) -> tuple[activity.ActivityPage, dict[str, str]]:
        inbox = conversations.inbox_of(conn, cid)
        if inbox is None or not scope.sees(inbox):
            raise NotFound(f"no conversation {cid}")
        got = activity.page(conn, cid, after=after, limit=limit)
        return got, activity.actor_names(conn, (log.entry for log in got.entries))

    got, names = await request.app[STORE_KEY].read(read)
    return web.json_response(
        {
            "data": [activity_json(log, names) for log in got.entries],
            "next_cursor": None if got.next_cursor is None else str(got.next_cursor),
        }
    )
