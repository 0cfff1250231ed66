"""What the agent workspace's handlers share: the core services it talks to, its settings,
and the jinja2 environment. One instance per web app (`agent_ui.web.setup`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import socketio
from aiohttp import web

from agent_ui.passwords import PasswordWorker
from agent_ui.settings import UiSettings
from inbox.bus.backends import EventBus
from inbox.outbox.durable import OutboxWorker
from inbox.store.backends import Store

if TYPE_CHECKING:
    from agent_ui.live import AgentNamespace
    from autoreply import Engine

HERE = Path(__file__).resolve().parent

# strict: no inline script or style anywhere; every asset is a static file of this origin
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; media-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


@dataclass
class Workspace:
    store: Store
    bus: EventBus
    settings: UiSettings
    passwords: PasswordWorker  # argon2 off the event loop
    outbox: OutboxWorker | None = None  # poke() after an agent reply
    triage: Engine | None = None  # the auto-answer engine (FAQ suggestions), or None when off
    sio: socketio.AsyncServer | None = None  # the one socket.io server
    live: AgentNamespace | None = None  # the /agent namespace, once registered on `sio`

    def __post_init__(self) -> None:
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,  # everything a customer wrote is escaped
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render(self, name: str, *, status: int = 200, **context: Any) -> web.Response:
        html = self.templates.get_template(name).render(**context)
        response = web.Response(text=html, content_type="text/html", status=status)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["Cache-Control"] = "no-store"
        response.enable_compression()
        return response


WS_KEY: web.AppKey[Workspace] = web.AppKey("agent_workspace", Workspace)
