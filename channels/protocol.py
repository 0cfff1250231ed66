"""The channel protocol: what a channel adapter declares, and what the core lends it.

Each channel (email, SMS, web chat, web forms) has one `ChannelAdapter` in its package,
listed in `channels.registry`. The composition root (`omnidesk`) walks that list and
knows no channel by name: for each adapter whose config table is present it reads the
settings (`omnidesk config check` stops there: a bad table is named before anything
starts) and opens the channel with `ChannelServices`. The `OpenChannel` it gets back says
everything the process runs for that channel:

* `sender`: its outbound half, which the outbox worker sends through (`inbox.ports.Sender`);
* `routes`: its HTTP endpoints (webhooks, the form endpoint, the widget script, uploads),
  including status callbacks of a provider (`channels.status.DeliveryReports`);
* `namespaces`: its socket.io namespaces (the chat widget's `/widget`);
* `listeners`: servers and pollers besides the web server (SMTP, IMAP, the chat demo
  page), started with the role and stopped first at shutdown;
* `closers`, `checks`, `duties`, `scrapes`: what it releases at shutdown, what /readyz asks
  it, scheduled work for one worker at a time, and gauges it sets for /metrics.

The adapter alone decides which of its parts a process role runs (`ChannelServices.role`):
an SMTP listener only where mail is taken, IMAP pollers only in workers, and so on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import socketio
from aiohttp import web

from inbox.bus.backends import EventBus
from inbox.bus.presence import SocketPresence
from inbox.config import Config
from inbox.health import Check
from inbox.ports import IngestFn, Sender
from inbox.store.backends import Store
from inbox.store.files import FileStore
from inbox.types import Attachment

S = TypeVar("S")

Closer = Callable[[], Awaitable[None]]
Duty = tuple[Closer, Closer]
"""(start, stop) of scheduled work one worker runs at a time: with Redis under the
worker-duties lease (`omnidesk.worker`), else started with the process."""
Scrape = Callable[[], Awaitable[None]]
"""Run at each /metrics scrape to set gauges (`omnidesk.metrics`)."""
CursorFn = Callable[[str], Awaitable[str | None]]
"""`await cursor(source)`: the position the store recorded with the last message ingested
from a polled source (an IMAP mailbox: `imap:<name>`), or None before the first."""


class Listener(Protocol):
    """A server or poller of a channel besides the web server."""

    async def start(self) -> None: ...

    async def stop_listening(self, grace: float) -> None:
        """At shutdown, all listeners at once: take nothing new; what is in flight may
        end within `grace` seconds."""
        ...

    async def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ChannelServices:
    """What the core lends a channel, built by the composition root before any channel."""

    config: Config
    role: str  # the process role: all, web, router, worker or smtp
    store: Store
    bus: EventBus
    ingest: IngestFn  # returns after the message is committed
    files: FileStore  # attachment bytes
    presence: SocketPresence  # who is connected where, over every web process
    sio: socketio.AsyncServer  # the process's one socket.io server
    poke: Callable[[int], None]  # the outbox: an outbound message was committed
    cursor: CursorFn

    def runs(self, *roles: str) -> bool:
        """Whether this process plays one of `roles` ("all" plays every role)."""
        return self.role == "all" or self.role in roles

    @property
    def scaled_out(self) -> bool:
        """Redis configured: several processes share the work (leases, shared limits)."""
        return bool(self.config.redis_url)


@dataclass
class OpenChannel:
    """What one channel runs in this process (see the module docstring)."""

    sender: Sender | None = None
    routes: list[web.RouteDef] = field(default_factory=list)
    namespaces: list[socketio.AsyncNamespace] = field(default_factory=list)
    listeners: list[Listener] = field(default_factory=list)
    # released at shutdown, last first, once the listeners have stopped
    closers: list[Closer] = field(default_factory=list)
    checks: dict[str, Check] = field(default_factory=dict)
    duties: list[Duty] = field(default_factory=list)
    scrapes: list[Scrape] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ReplyTarget:
    """Where an agent's reply would go, as the outbox will route it: the conversation, the
    channel it is sent through (a form is answered by email), the contact's address on
    it, and whether that address said STOP (SMS)."""

    conversation_id: int
    channel: str
    to: str
    opted_out: bool = False


class ChannelAdapter(ABC, Generic[S]):
    """One channel as the composition root sees it: its settings, then what it runs."""

    section: ClassVar[str]  # the config table that turns the channel on
    sends: ClassVar[frozenset[str]] = frozenset()  # the channels its sender delivers

    def check_reply(
        self,
        conversation: ReplyTarget,
        text: str,
        attachments: Sequence[Attachment] = (),
        *,
        subject: str | None = None,
    ) -> str | None:
        """Why this channel cannot send the reply (the reason an agent reads), or None.
        Asked when a reply is submitted, so it is refused then, not failed by the outbox."""
        return None

    def enabled(self, config: Config) -> bool:
        return self.section in config.root

    @abstractmethod
    def read_settings(self, config: Config) -> S:
        """The channel's settings, validated (errors name the file, the key and the fix)."""

    @abstractmethod
    def build(self, settings: S, services: ChannelServices) -> OpenChannel:
        """Build what this process runs for the channel (nothing is started yet)."""

    def open(self, services: ChannelServices) -> OpenChannel:
        return self.build(self.read_settings(services.config), services)


AnyAdapter = ChannelAdapter[Any]
