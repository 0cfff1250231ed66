"""What agents change from the workspace (JSON POSTs, all CSRF-checked): reply, private
note, tags, resolve/reopen, transfer, presence, contact notes and merge, ending another
agent's sessions. Each writes in one transaction, then announces it on the bus.

The answer tells what was committed: an announcement the bus cannot carry now is caught
up from the database when the bus resumes, so it does not turn a committed action into an
error (a page would offer to do it again). Each action takes an `Idempotency-Key`
(`agent_ui.idempotency`): a resend under the same key is answered from the first."""

from __future__ import annotations

import functools
import logging
from datetime import datetime
from typing import Any

from aiohttp import web

from agent_ui import access, actions, transfer_api
from agent_ui.auth import require_session
from agent_ui.cases_api import POLICIES_KEY
from agent_ui.idempotency import call_once, write_once
from agent_ui.reply_check import check_reply
from agent_ui.routing_api import RoutingClient
from agent_ui.views import int_param
from agent_ui.workspace import WS_KEY, Workspace
from channels.sms.segments import segments
from inbox import events as ev
from inbox.actions import apply_case_op, events_for, ownership
from inbox.cases import Actor, CaseStatus, Change
from inbox.cases.lifecycle import set_status
from inbox.errors import BusError, Forbidden, NotFound, ValidationError
from inbox.events import Event, EventName
from inbox.store import agents, contacts, conversations, messages, pages, sessions
from inbox.store.agents import get as get_agent
from inbox.store.sessions import Session
from inbox.types import Conversation
from inbox.web.http import MAX_BODY_KEY, read_json
from inbox.web.untrusted import is_id
from routing.commands import TRANSFER

log = logging.getLogger("omnidesk.agent_ui")


async def _body(request: web.Request) -> dict[str, Any]:
    return await read_json(request, min(request.app[MAX_BODY_KEY], 256 * 1024))


async def _visible(ws: Workspace, session: Session, cid: int) -> Conversation:
    conv = await ws.store.read(lambda conn: conversations.get(conn, cid))
    if not access.can_see_conversation(session.agent, conv.inbox, conv.assignee_id):
        raise NotFound(f"no conversation {cid}")
    return conv


def _ok(**extra: Any) -> web.Response:
    return web.json_response({"ok": True, **extra})


async def _announce(ws: Workspace, *events: Event) -> None:
    """Publish what was committed; with the bus away, its resume catches listeners up."""
    try:
        for event in events:
            await ws.bus.publish(event)
    except BusError as exc:
        log.warning("committed, not announced yet (%s)", exc.message)


async def reply(request: web.Request) -> web.Response:
    ws = request.app[WS_KEY]
    session = await require_session(request)
    cid = int_param(request, "id")
    conv = await _visible(ws, session, cid)
    body = await _body(request)
    text = actions.clean_text(body.get("text"))
    agent_id = session.agent.id
    subject = actions.subject_for(conv, body.get("subject"))
    await check_reply(ws.store, cid, text, subject=subject)  # 422: its channel cannot send it
    claimed: list[Event] = []  # a reply claims (issue 17): inbox.actions.ownership
    answer, fresh = await write_once(
        ws,
        request,
        agent_id,
        functools.partial(
            ownership.reply_claiming,
            policies=request.app[POLICIES_KEY],
            over_holder=access.can_supervise(session.agent),
            announced=claimed,
        ),
        *(cid, agent_id, text, subject),
        answer=lambda message_id: {"message_id": message_id},
    )
    message_id = answer["message_id"]
    if fresh:
        if ws.outbox is not None:
            ws.outbox.poke(message_id)
        await _announce(
            ws,
            *claimed,
            Event(
                EventName.MESSAGE_SENT, ev.MessageSent(conversation_id=cid, message_id=message_id)
            ),
        )
    return _ok(**answer)


async def note(request: web.Request) -> web.Response:
    ws = request.app[WS_KEY]
    session = await require_session(request)
    cid = int_param(request, "id")
    await _visible(ws, session, cid)
    text = actions.clean_text((await _body(request)).get("text"))
    agent_id = session.agent.id
    answer, fresh = await write_once(
        ws,
        request,
        agent_id,
        messages.add_note,
        *(cid, agent_id, text),
        answer=lambda message_id: {"message_id": message_id},
    )
    if fresh:
        await _announce(
            ws,
            Event(
                EventName.CONVERSATION_UPDATED,
                ev.Updated(conversation_id=cid, message_id=answer["message_id"]),
            ),
        )
    return _ok(**answer)


async def tags(request: web.Request) -> web.Response:
    ws = request.app[WS_KEY]
    session = await require_session(request)
    cid = int_param(request, "id")
    await _visible(ws, session, cid)
    values = actions.clean_tags((await _body(request)).get("tags"))
    answer, fresh = await write_once(
        ws,
        request,
        session.agent.id,
        conversations.set_tags,
        *(cid, values),
        answer=lambda _: {"tags": values},
    )
    if fresh:
        await _announce(ws, Event(EventName.CONVERSATION_UPDATED, ev.Updated(conversation_id=cid)))
    return _ok(**answer)


async def resolve(request: web.Request) -> web.Response:
    ws = request.app[WS_KEY]
    session = await require_session(request)
    cid = int_param(request, "id")
    await _visible(ws, session, cid)
    # as the status control's "solved" (issue 17): the activity log, the version, auto-close
    done: list[tuple[Change, datetime]] = []

    def answer(written: tuple[Change, datetime]) -> dict[str, Any]:
        done.append(written)
        return {}

    _answer, fresh = await write_once(
        ws,
        request,
        session.agent.id,
        apply_case_op,
        *(cid, functools.partial(set_status, to=CaseStatus.SOLVED)),
        *(Actor.agent(session.agent.id), request.app[POLICIES_KEY]),
        answer=answer,
    )
    if fresh and done:
        await _announce(ws, *events_for(*done[0]))
    return _ok()


async def reopen(request: web.Request) -> web.Response:
    ws = request.app[WS_KEY]
    session = await require_session(request)
    cid = int_param(request, "id")
    await _visible(ws, session, cid)
    answer, fresh = await write_once(
        ws,
        request,
        session.agent.id,
        conversations.reopen,
        cid,
        answer=lambda priority: {"priority": priority},
    )
    if fresh:
        await _announce(
            ws,
            Event(EventName.CONVERSATION_REOPENED, ev.Arrived(conversation_id=cid)),
            Event(
                EventName.CONVERSATION_QUEUED,
                ev.Queued(conversation_id=cid, priority=answer["priority"], channel=None),
            ),
        )
    return _ok()


# -- transfer ----------------------------------------------------------------------------

ROUTER_KEY: web.AppKey[RoutingClient] = web.AppKey("agent_router_client", RoutingClient)


async def transfer(request: web.Request) -> web.Response:
    """To an agent ({"agent_id": n}) or back to the queue for a skill set ({"skills": [...]}).
    Agents transfer what they can see, to an agent allowed on the inbox. The move itself is
    the router's (a bus command answered after it committed): it checks capacity and skills
    and announces conversation.unassigned/assigned, which move the conversation live."""
    ws = request.app[WS_KEY]
    session = await require_session(request)
    cid = int_param(request, "id")
    conv = await _visible(ws, session, cid)
    body = await _body(request)
    if transfer_api.names_a_queue(body):  # to an inbox or a team: the case core's move
        await transfer_api.by_agent(request, session, cid, body)
        return _ok()
    target_id = body.get("agent_id")
    if target_id is not None:
        if not is_id(target_id):
            raise ValidationError("'agent_id' must be an agent's id", field="agent_id")
        try:
            target = await ws.store.read(lambda conn: get_agent(conn, target_id))
        except NotFound:
            raise ValidationError("no such agent", field="agent_id") from None
        if not access.can_take(target, conv.inbox):
            raise ValidationError(f"{target.name} does not work on this inbox", field="agent_id")
        move: dict[str, Any] = {"agent_id": target_id}
    else:
        move = {"skills": actions.clean_skills(body.get("skills"))}

    async def act() -> dict[str, Any]:
        await request.app[ROUTER_KEY].command(TRANSFER, cid, **move)
        return {}

    await call_once(ws, request, session.agent.id, act)
    return _ok()


# -- presence, SMS segments --------------------------------------------------------------


async def presence(request: web.Request) -> web.Response:
    ws = request.app[WS_KEY]
    session = await require_session(request)
    presence = actions.clean_presence((await _body(request)).get("presence"))
    value = presence.value
    agent_id = session.agent.id
    answer, fresh = await write_once(
        ws,
        request,
        agent_id,
        agents.set_presence,
        *(agent_id, presence),
        answer=lambda changed: {"changed": changed},
    )
    if fresh and answer["changed"]:
        await _announce(
            ws,
            Event(EventName.AGENT_PRESENCE, ev.PresenceChanged(agent_id=agent_id, presence=value)),
        )
    return _ok(presence=value)


async def sms_segments(request: web.Request) -> web.Response:
    await require_session(request)
    text = (await _body(request)).get("text")
    if not isinstance(text, str) or len(text) > 20_000:
        raise ValidationError("'text' must be a string", field="text")
    encoding, count, left = segments(text)
    return web.json_response({"encoding": encoding, "segments": count, "left": left})


# -- contacts ----------------------------------------------------------------------------


async def _visible_contact(ws: Workspace, session: Session, contact_id: int) -> None:
    inboxes, me = access.visible_inboxes(session.agent), session.agent.id
    await ws.store.read(lambda conn: pages.contact_page(conn, contact_id, inboxes, me))


async def contact_notes(request: web.Request) -> web.Response:
    ws = request.app[WS_KEY]
    session = await require_session(request)
    contact_id = int_param(request, "id")
    await _visible_contact(ws, session, contact_id)
    notes = actions.clean_notes((await _body(request)).get("notes"))
    await write_once(
        ws,
        request,
        session.agent.id,
        contacts.set_notes,
        *(contact_id, notes),
        answer=lambda _: {},
    )
    return _ok()


async def merge_contacts(request: web.Request) -> web.Response:
    """Supervisor: fold this contact into another ({"into": id})."""
    ws = request.app[WS_KEY]
    session = await require_session(request)
    if not access.can_supervise(session.agent):
        raise Forbidden("only supervisors merge contacts")
    source = int_param(request, "id")
    into = (await _body(request)).get("into")
    if not is_id(into):
        raise ValidationError("'into' must be a contact id", field="into")
    answer, fresh = await write_once(
        ws,
        request,
        session.agent.id,
        contacts.merge,
        *(source, into),
        answer=lambda moved: {"into": into, "conversations": moved},
    )
    if fresh:
        await _announce(
            ws,
            *(
                Event(EventName.CONVERSATION_UPDATED, ev.Updated(conversation_id=cid))
                for cid in answer["conversations"]
            ),
        )
    return _ok(**answer)


async def end_agent_sessions(request: web.Request) -> web.Response:
    """Admin: sign an agent out everywhere (a lost laptop)."""
    ws = request.app[WS_KEY]
    session = await require_session(request)
    if not access.is_admin(session.agent):
        raise Forbidden("only admins end other agents' sessions")
    agent_id = int_param(request, "id")
    answer, _fresh = await write_once(
        ws,
        request,
        session.agent.id,
        sessions.end_all_sessions,
        agent_id,
        answer=lambda ended: {"ended": ended},
    )
    if ws.live is not None:
        await ws.live.disconnect_agent(agent_id)
    return _ok(**answer)
