"""What the agent workspace's handlers share: the core services it talks to, its settings,
and the jinja2 environment. One instance per web app (`agent_ui.web.setup`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from agent_ui.passwords import PasswordWorker
from agent_ui.settings import UiSettings
from inbox.bus.backends import EventBus
from inbox.store.backends import Store

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
    outbox: Any = None  # inbox.outbox.durable.OutboxWorker: poke() after an agent reply
    triage: Any = None  # the auto-answer engine (FAQ suggestions), or None when off
    sio: Any = None  # the one socketio.AsyncServer
    live: Any = None  # agent_ui.live.AgentNamespace

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
