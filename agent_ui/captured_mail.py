"""The admin page of captured outbound mail (`channels.email.capture`): what a desk without
a relay would have sent, as MailHog or letter_opener show a developer. Admins only; an
agent or supervisor gets 403, someone signed out the sign-in page.

Everything a message holds is shown as text (jinja2 escapes it); an HTML body goes into
an iframe with an empty `sandbox` (no scripts, forms, popups or same-origin access), under
the page's own Content-Security-Policy and one of its own that loads nothing, so it is
looked at and never run.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from agent_ui import access
from agent_ui.views import page_context, page_session
from agent_ui.workspace import WS_KEY, Workspace
from channels.email.capture import MailFolder
from inbox.store import agents
from inbox.store.sessions import Session

MAIL_KEY: web.AppKey[MailFolder] = web.AppKey("captured_mail", MailFolder)
# first in the sandboxed body: it loads nothing either (no tracking pixel, no stylesheet of
# ours), on top of the page's own policy, which the srcdoc document inherits
FRAME_HEAD = (
    '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:">'
)
LIST_LIMIT = 200


FORBIDDEN = "Only admins see captured outbound mail"


async def _admin(request: web.Request) -> Session:
    session = await page_session(request)
    if not access.is_admin(session.agent):
        ws = request.app[WS_KEY]
        # a page, not the API's JSON: this is where a browser lands
        raise web.HTTPForbidden(
            text=ws.render(
                "forbidden.html", status=403, **await _context(ws, session), reason=FORBIDDEN
            ).text,
            content_type="text/html",
        )
    return session


async def _context(ws: Workspace, session: Session) -> dict[str, Any]:
    presence = await ws.store.read(lambda conn: agents.presence_of(conn, session.agent.id))
    return page_context(ws, session, presence)


async def mail_page(request: web.Request) -> web.Response:
    ws = request.app[WS_KEY]
    session = await _admin(request)
    folder = request.app[MAIL_KEY]
    messages, total = await asyncio.to_thread(folder.list, LIST_LIMIT)
    return ws.render(
        "mail.html",
        **await _context(ws, session),
        messages=messages,
        total=total,
        folder=str(folder.path),
    )


async def mail_message_page(request: web.Request) -> web.Response:
    ws = request.app[WS_KEY]
    session = await _admin(request)
    message = await asyncio.to_thread(request.app[MAIL_KEY].read, request.match_info["key"])
    if message is None:
        return ws.render("not_found.html", status=404, **await _context(ws, session))
    frame = None if message.html is None else FRAME_HEAD + message.html
    return ws.render(
        "mail_message.html", **await _context(ws, session), message=message, frame=frame
    )
