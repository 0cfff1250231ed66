"""The agent workspace behind one call: `setup(app, ...)` adds its routes, static files
and the socket.io `/agent` namespace to the web app.

It is given the core services it uses: the config, the store, the bus, the outbox (poked
after a reply), the one socket.io server, presence (agents' sockets over every web
process) and the auto-answer engine (FAQ suggestions; None when auto-answers are off).
Transfers are commands to the active router over the bus
(`agent_ui.routing_api.RoutingClient`), wherever it runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import socketio
from aiohttp import web

from agent_ui import (
    activity_api,
    auth,
    bulk_api,
    captured_mail,
    cases_api,
    commands,
    escalations,
    ownership_api,
    priority_api,
    views,
)
from agent_ui.live import AgentNamespace
from agent_ui.passwords import PasswordWorker
from agent_ui.routing_api import RoutingClient
from agent_ui.settings import read_ui_settings
from agent_ui.workspace import HERE, WS_KEY, Workspace
from channels.email.capture import MailFolder, captured_mail_dir
from inbox.bus.backends import EventBus
from inbox.bus.presence import SocketPresence
from inbox.cases import CasePolicies
from inbox.config import Config
from inbox.outbox.durable import OutboxWorker
from inbox.store.backends import Store
from inbox.store.files import FileStore

if TYPE_CHECKING:
    from autoreply import Engine

# (method, path, handler): the whole surface, used by the authorization matrix test
ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/login", auth.login_form),
    ("POST", "/login", auth.login),
    ("POST", "/logout", auth.logout),
    ("GET", "/account/password", auth.password_form),
    ("POST", "/account/password", auth.change_password),
    ("GET", "/queue", views.queue_page),
    ("GET", "/conversations/{id}", views.conversation_page),
    ("GET", "/contacts/{id}", views.contact_page),
    ("GET", "/agent/files/{message_id}/{index}", views.download),
    ("GET", "/agent/api/queue", views.queue_json),
    ("GET", "/agent/api/conversations/{id}", views.conversation_json),
    ("POST", "/agent/api/conversations/{id}/reply", commands.reply),
    ("POST", "/agent/api/conversations/{id}/note", commands.note),
    ("POST", "/agent/api/conversations/{id}/tags", commands.tags),
    ("POST", "/agent/api/conversations/{id}/resolve", commands.resolve),
    ("POST", "/agent/api/conversations/{id}/reopen", commands.reopen),
    ("POST", "/agent/api/conversations/{id}/status", cases_api.agent_status),
    ("POST", "/agent/api/conversations/{id}/escalate", cases_api.agent_escalate),
    ("POST", "/agent/api/conversations/{id}/transfer", commands.transfer),
    ("POST", "/agent/api/conversations/{id}/priority", priority_api.set_priority),
    ("GET", "/agent/api/conversations/{id}/activity", activity_api.conversation_activity),
    ("POST", "/agent/api/conversations/bulk", bulk_api.browser_bulk),
    ("POST", "/agent/api/presence", commands.presence),
    ("POST", "/agent/api/sms-segments", commands.sms_segments),
    ("POST", "/agent/api/contacts/{id}/notes", commands.contact_notes),
    ("POST", "/agent/api/contacts/{id}/merge", commands.merge_contacts),
    ("POST", "/agent/api/agents/{id}/end-sessions", commands.end_agent_sessions),
    ("GET", "/escalations", escalations.escalations_page),
    ("GET", "/admin/mail", captured_mail.mail_page),
    ("GET", "/admin/mail/{key}", captured_mail.mail_message_page),
    *ownership_api.ROUTES,
]


async def static_headers(request: web.Request, response: web.StreamResponse) -> None:
    """(on_response_prepare: a signal costs every request less than a middleware)"""
    if request.path.startswith("/agent/static/"):
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "public, max-age=300"


def setup(
    app: web.Application,
    *,
    config: Config,
    store: Store,
    bus: EventBus,
    outbox: OutboxWorker | None = None,
    triage: Engine | None = None,
    sio: socketio.AsyncServer | None = None,
    presence: SocketPresence | None = None,
    policies: CasePolicies | None = None,
    accept_timeout: float = 0.0,
) -> Workspace:
    """Add the agent workspace to `app` (call before the app starts)."""
    settings = read_ui_settings(config)
    ws = Workspace(
        store=store,
        bus=bus,
        settings=settings,
        passwords=PasswordWorker(settings.password_threads, settings.password_queue),
        outbox=outbox,
        triage=triage,
        sio=sio,
    )
    app[WS_KEY] = ws
    app[views.FILES_KEY] = FileStore(config.data_dir / "attachments")
    app[captured_mail.MAIL_KEY] = MailFolder(captured_mail_dir(config.data_dir))
    app[commands.ROUTER_KEY] = RoutingClient(ws.bus)
    ownership_api.setup(app, policies or CasePolicies(), app[commands.ROUTER_KEY], accept_timeout)
    app.on_response_prepare.append(static_headers)

    async def close_passwords(_app: web.Application) -> None:
        ws.passwords.close()

    app.on_cleanup.append(close_passwords)
    app.router.add_get("/", views.index, name="agent_index")
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
    app.router.add_static("/agent/static/", HERE / "static", append_version=False)
    if ws.sio is not None:
        ws.live = AgentNamespace(ws, presence=presence)
        ws.live.attach()
        ws.sio.register_namespace(ws.live)
    return ws
