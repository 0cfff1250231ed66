"""The services one process holds, built by `omnidesk.wiring.build_services`, and what
the enabled channels contribute to it (`Parts`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import socketio
from aiohttp import web

from channels.protocol import Closer, Duty, OpenChannel, Scrape
from inbox.bus.backends import EventBus
from inbox.bus.presence import SocketPresence
from inbox.config import Config
from inbox.health import Check
from inbox.ingest import Ingestor
from inbox.outbox.durable import OutboxWorker
from inbox.outbox.rq_relay import RqRelay
from inbox.pipeline import Pipeline
from inbox.ports import Sender
from inbox.store.backends import Store

if TYPE_CHECKING:
    from autoreply import Engine, Reloader

log = logging.getLogger("omnidesk")


@dataclass
class Parts:
    """What the enabled channels run in this process, gathered from their `OpenChannel`s
    in the order they were opened (`channels.registry`)."""

    routes: list[web.RouteDef] = field(default_factory=list)
    senders: dict[str, Sender] = field(default_factory=dict)
    startups: list[Closer] = field(default_factory=list)
    closers: list[Closer] = field(default_factory=list)
    # listeners besides the web server, `async (grace seconds) -> None`: at shutdown,
    # stopped first and together (no new connections; what is in flight may end within
    # the grace), before the closers
    drains: list[Callable[[float], Awaitable[None]]] = field(default_factory=list)
    # readiness checks for /readyz: name -> async () -> (ok, detail)
    checks: dict[str, Check] = field(default_factory=dict)
    # scheduled work one worker runs at a time: with Redis under the worker-duties lease
    # (omnidesk.worker), else started with the process
    duties: list[Duty] = field(default_factory=list)
    # run at each /metrics scrape to set gauges (omnidesk.metrics)
    scrapes: list[Scrape] = field(default_factory=list)

    def add(self, opened: OpenChannel) -> None:
        if opened.sender is not None:
            self.senders[opened.sender.channel] = opened.sender
        self.routes += opened.routes
        self.startups += [listener.start for listener in opened.listeners]
        self.drains += [listener.stop_listening for listener in opened.listeners]
        self.closers += [*opened.closers, *(listener.stop for listener in opened.listeners)]
        self.checks.update(opened.checks)
        self.duties += opened.duties
        self.scrapes += opened.scrapes


@dataclass
class Services:
    config: Config
    store: Store
    bus: EventBus
    ingest: Ingestor
    pipeline: Pipeline
    outbox: OutboxWorker
    # one socket.io server for every namespace (/widget for visitors, /agent for CSRs);
    # with Redis configured its emits reach clients connected to any web process
    sio: socketio.AsyncServer
    # who is connected where (agent sockets, visitors in rooms, viewers): in this process,
    # or with Redis configured over every web process (inbox.bus.presence)
    presence: SocketPresence
    senders: dict[str, Sender]  # the outbox sends through these, by channel
    parts: Parts
    triage: Engine | None = None  # the auto-answer engine, None when auto-answers are off
    reloader: Reloader | None = None  # reloads its rules on SIGHUP or a file change
    relay: RqRelay | None = None  # scaled out: outbound delivery jobs go to RQ
    closers: list[Closer] = field(default_factory=list)

    async def close(self, within: float | None = None) -> None:
        """Run the closers, last added first (see `close_all`)."""
        await close_all(self.closers, within)


async def close_all(closers: list[Closer], within: float | None = None) -> None:
    """Run `closers`, last added first; with `within`, each gets what is left of that many
    seconds (at least a moment) and one that overruns is abandoned."""
    loop = asyncio.get_running_loop()
    deadline = None if within is None else loop.time() + within
    for closer in reversed(closers):
        try:
            if deadline is None:
                await closer()
                continue
            began = loop.time()
            async with asyncio.timeout_at(max(deadline, loop.time() + 0.1)):
                await closer()
            log.debug("shutdown: %s stopped in %.2f s", name_of(closer), loop.time() - began)
        except TimeoutError:
            log.warning("shutdown: %s did not stop in time; left behind", name_of(closer))
        except Exception:
            log.exception("error while shutting down")


def name_of(fn: Callable[..., Any]) -> str:
    """`Class.method` of a bound method, else the function's qualified name (for logs)."""
    owner = getattr(fn, "__self__", None)
    name = getattr(fn, "__qualname__", repr(fn))
    return f"{type(owner).__name__}.{fn.__name__}" if owner is not None else name
