"""An agent's reply over the API (issue 17.7): `POST /api/v1/conversations/{id}/reply`
with a read-write token, on behalf of the agent it names (`agent_id`: an active agent who
may work on the conversation's inbox). The same path as the workspace's reply: a reply
its channel cannot send is refused now (422 `reply_refused`, `agent_ui.reply_check`), else
it is queued in the durable outbox and announced (message.sent).
"""

from __future__ import annotations

from aiohttp import web

from agent_ui import access, actions
from agent_ui.reply_check import check_reply
from agent_ui.workspace import WS_KEY
from inbox import events as ev
from inbox.actions import announce
from inbox.errors import NotFound, ValidationError
from inbox.events import Event, EventName
from inbox.store import conversations, messages
from inbox.store.agents import get as get_agent
from inbox.web.http import MAX_BODY_KEY, STORE_KEY, field, read_json, require_token
from inbox.web.untrusted import is_id, parse_id

__all__ = ["api_reply"]


async def api_reply(request: web.Request) -> web.Response:
    scope = await require_token(request, write=True)
    cid = parse_id(request.match_info["id"], "id")
    store = request.app[STORE_KEY]
    conv = await store.read(lambda conn: conversations.get(conn, cid))
    if not scope.sees(conv.inbox):
        raise NotFound(f"no conversation {cid}")
    body = await read_json(request, request.app[MAX_BODY_KEY])
    agent_id = field(body, "agent_id", int, required=True)
    if not is_id(agent_id):
        raise ValidationError("'agent_id' must be an agent's id", field="agent_id")
    try:
        agent = await store.read(lambda conn: get_agent(conn, agent_id))
    except NotFound:
        raise ValidationError(f"no agent {agent_id}", field="agent_id") from None
    if not agent.active or not access.can_see_conversation(agent, conv.inbox, conv.assignee_id):
        raise ValidationError(
            f"agent {agent_id} may not work on inbox {conv.inbox!r}", field="agent_id"
        )
    text = actions.clean_text(body.get("text"))
    subject = actions.subject_for(conv, body.get("subject"))
    await check_reply(store, cid, text, subject=subject)
    message_id = await store.write(lambda conn: messages.reply(conn, cid, agent_id, text, subject))
    ws = request.app[WS_KEY]
    if ws.outbox is not None:
        ws.outbox.poke(message_id)
    sent = ev.MessageSent(conversation_id=cid, message_id=message_id)
    await announce(ws.bus, [Event(EventName.MESSAGE_SENT, sent)])
    return web.json_response({"message_id": message_id, "conversation_id": cid})
