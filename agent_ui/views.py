"""The workspace's pages (server-rendered jinja2) and the JSON reads their scripts use for
live updates. Every handler starts from the session and filters by what the agent may
see; a conversation or contact outside the agent's inboxes answers 404."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from agent_ui import access, cases_api, transfer_api
from agent_ui.auth import current, require_session
from agent_ui.settings import fill_canned
from agent_ui.workspace import WS_KEY, Workspace
from inbox.errors import NotFound, ValidationError
from inbox.store import agents, messages, pages
from inbox.store.files import FileStore
from inbox.store.sessions import Session
from inbox.types import Message
from inbox.web.untrusted import parse_id

FILES_KEY: web.AppKey[FileStore] = web.AppKey("agent_files", FileStore)


def int_param(request: web.Request, name: str) -> int:
    try:
        return parse_id(request.match_info[name], name, minimum=0)
    except ValidationError:
        raise NotFound("not found") from None


async def page_session(request: web.Request) -> Session:
    """For HTML pages: a session, or a redirect to the sign-in page."""
    session = await current(request)
    if session is None:
        raise web.HTTPSeeOther(f"/login?next={request.path}")
    return session


def page_context(ws: Workspace, session: Session, presence: str) -> dict[str, Any]:
    """What every workspace page's layout reads (the agent, CSRF token, presence, role)."""
    return {
        "me": session.agent,
        "csrf": session.csrf_token,
        "presence": presence,
        "supervising": access.can_supervise(session.agent),
        "sla_seconds": ws.settings.sla_seconds,
    }


# -- queue -------------------------------------------------------------------------------


async def _queue_data(ws: Workspace, session: Session) -> pages.QueuePage:
    agent = session.agent
    inboxes = access.visible_inboxes(agent)
    supervising = access.can_supervise(agent)
    return await ws.store.read(
        lambda conn: pages.queue_page(
            conn, agent.id, inboxes, ws.settings.priorities, with_agents=supervising
        )
    )


async def queue_page(request: web.Request) -> web.Response:
    ws = request.app[WS_KEY]
    session = await page_session(request)
    data = await _queue_data(ws, session)
    return ws.render(
        "queue.html",
        **page_context(ws, session, data.presence),
        now=datetime.now(UTC),
        mine=data.mine,
        waiting=data.waiting,
        agents=data.agents,
    )


async def queue_json(request: web.Request) -> web.Response:
    ws = request.app[WS_KEY]
    session = await require_session(request)
    data = await _queue_data(ws, session)
    response = web.json_response(
        {
            "mine": [r.json() for r in data.mine],
            "waiting": [r.json() for r in data.waiting],
            "agents": None if data.agents is None else [a.json() for a in data.agents],
            "presence": data.presence,
            "now": datetime.now(UTC).isoformat(),
        }
    )
    response.enable_compression()
    return response


# -- conversation ------------------------------------------------------------------------


def message_json(m: Message, authors: dict[int, str]) -> dict[str, Any]:
    return {
        "id": m.id,
        "conversation_id": m.conversation_id,
        "direction": m.direction.value,
        "author_kind": m.author_kind.value,
        "author": authors.get(m.author_id or 0) if m.author_kind.value == "agent" else None,
        "channel": m.channel.value,
        "subject": m.subject,
        "text": m.text,
        "status": m.delivery_status.value,
        "failure_reason": m.failure_reason,
        "refers_to": m.refers_to,
        "created_at": m.created_at.isoformat(),
        "attachments": [
            {"filename": a.filename, "size": a.size, "url": f"/agent/files/{m.id}/{i}"}
            for i, a in enumerate(m.attachments)
        ],
    }


async def _conversation(ws: Workspace, session: Session, cid: int) -> pages.ConversationPage:
    inboxes, me = access.visible_inboxes(session.agent), session.agent.id
    return await ws.store.read(lambda conn: pages.conversation_page(conn, cid, inboxes, me))


def _suggestions(ws: Workspace, page: pages.ConversationPage) -> list[dict[str, Any]]:
    if ws.triage is None:
        return []
    last = next(
        (
            m
            for m in reversed(page.timeline)
            if m.conversation_id == page.conversation.id and m.direction.value == "inbound"
        ),
        None,
    )
    if last is None:
        return []
    try:
        found = ws.triage.suggest(last.text[:2000], k=3)
    except Exception:  # suggestions are a help, never a reason for the page to fail
        return []
    return [
        {
            "id": s.entry.id,
            "question": s.question,
            "answer": s.entry.answer,
            "score": round(s.score),
        }
        for s in found
    ]


def _canned(ws: Workspace, session: Session, page: pages.ConversationPage) -> list[dict[str, str]]:
    values = {
        "contact_name": page.contact.name or "",
        "agent_name": session.agent.name,
        "conversation_id": str(page.conversation.id),
        "brand": ws.settings.brand,
    }
    return [
        {"key": k, "text": fill_canned(v, **values)} for k, v in sorted(ws.settings.canned.items())
    ]


async def conversation_page(request: web.Request) -> web.Response:
    ws = request.app[WS_KEY]
    session = await page_session(request)
    cid = int_param(request, "id")
    try:
        page = await _conversation(ws, session, cid)
    except NotFound:
        return ws.render("not_found.html", status=404, **page_context(ws, session, "online"))

    presence, others = await ws.store.read(lambda conn: pages.colleagues(conn, session.agent.id))
    inbox = page.conversation.inbox
    targets = [a for a in others if a.role != "agent" or inbox in a.teams]
    return ws.render(
        "conversation.html",
        **page_context(ws, session, presence),
        page=page,
        conv=page.conversation,
        contact=page.contact,
        suggestions=_suggestions(ws, page),
        canned=_canned(ws, session, page),
        targets=targets,
        queues=transfer_api.queue_choices(request.app),
        triage=page.triage,
        case=await cases_api.case_facts(request, cid),
    )


async def conversation_json(request: web.Request) -> web.Response:
    ws = request.app[WS_KEY]
    session = await require_session(request)
    page = await _conversation(ws, session, int_param(request, "id"))
    conv = page.conversation
    return web.json_response(
        {
            "id": conv.id,
            "status": conv.status.value,
            "assignee_id": conv.assignee_id,
            "assignee": page.assignee,
            "tags": list(conv.tags),
            "timeline": [message_json(m, page.authors) for m in page.timeline],
            "suggestions": _suggestions(ws, page),
            "case": await cases_api.case_facts(request, conv.id),
        }
    )


# -- contact -----------------------------------------------------------------------------


async def contact_page(request: web.Request) -> web.Response:
    ws = request.app[WS_KEY]
    session = await page_session(request)
    contact_id = int_param(request, "id")
    inboxes, me = access.visible_inboxes(session.agent), session.agent.id
    try:
        page = await ws.store.read(lambda conn: pages.contact_page(conn, contact_id, inboxes, me))
    except NotFound:
        return ws.render("not_found.html", status=404, **page_context(ws, session, "online"))
    presence = await ws.store.read(lambda conn: agents.presence_of(conn, session.agent.id))
    return ws.render(
        "contact.html", **page_context(ws, session, presence), page=page, contact=page.contact
    )


# -- attachments -------------------------------------------------------------------------


async def download(request: web.Request) -> web.StreamResponse:
    ws = request.app[WS_KEY]
    session = await current(request)
    if session is None:
        raise NotFound("no such attachment")  # nothing about it to someone signed out
    message_id, index = int_param(request, "message_id"), int_param(request, "index")
    inboxes, me = access.visible_inboxes(session.agent), session.agent.id
    filename, _ctype, key = await ws.store.read(
        lambda conn: messages.attachment(conn, message_id, index, inboxes, me)
    )
    if not key:
        raise NotFound("the attachment was not kept")
    path = request.app[FILES_KEY].path(key)
    safe = (
        "".join(ch if ch.isalnum() or ch in "._- " else "_" for ch in filename)[:150]
        or "attachment"
    )
    response = web.FileResponse(path)
    # always a download, never rendered by the browser in our origin
    response.headers["Content-Type"] = "application/octet-stream"
    response.headers["Content-Disposition"] = f'attachment; filename="{safe}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, no-store"
    return response


async def index(request: web.Request) -> web.StreamResponse:
    session = await current(request)
    raise web.HTTPSeeOther("/queue" if session is not None else "/login")
