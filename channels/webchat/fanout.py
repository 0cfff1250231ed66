"""Fan-out to visitors: which of this process's visitor sockets are in which conversation
room, and what reaches them from the rest of the service.

Several web processes (Redis configured): agent typing and agent presence are bus events
every process hears, so each emits them to its own sockets only (`ignore_queue=True`); a
visitor's own message, shown on their other tabs, goes through python-socketio's Redis
manager. Which rooms have a visitor socket is kept in `inbox.bus.presence` (the chat
sender asks it whether the visitor is away).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import socketio

from channels.webchat import history
from channels.webchat.links import FileLinks
from channels.webchat.settings import WidgetSettings
from channels.webchat.visitors import NAMESPACE, Visitor, Visitors, room
from inbox.bus.backends import EventBus
from inbox.bus.presence import SocketPresence
from inbox.errors import BusError
from inbox.events import Event, EventName
from inbox.store.backends import Store
from inbox.types import Attachment, DeliveryStatus, IngestResult

log = logging.getLogger(__name__)

ONLINE_TTL = 10.0  # seconds the count of online agents is reused between presence events


class FanOut:
    def __init__(
        self,
        sio: socketio.AsyncServer,
        store: Store,
        visitors: Visitors,
        presence: SocketPresence,
        links: FileLinks,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sio = sio
        self._store = store
        self._visitors = visitors
        self._presence = presence
        self.links = links
        self._clock = clock
        self._tokens: dict[int, str] = {}  # conversation id -> token
        self._online: tuple[float, int] | None = None  # (read at, agents online)

    def attach(self, bus: EventBus) -> None:
        """Follow the events visitors see (processes that serve sockets only)."""
        bus.subscribe(EventName.AGENT_TYPING, self._on_agent_typing)
        bus.subscribe(EventName.AGENT_PRESENCE, self._on_presence)

    # -- rooms ----------------------------------------------------------------------------
    async def join(self, visitor: Visitor, conversation_id: int, token: str) -> None:
        """Every tab of the visitor enters the conversation's room."""
        self._tokens[conversation_id] = token
        for sid in self._visitors.tabs(visitor.visitor_id):
            other = self._visitors.get(sid)
            if other is not None and conversation_id not in other.conversations:
                other.conversations[conversation_id] = token
                await self._sio.enter_room(sid, room(token), namespace=NAMESPACE)
                try:
                    await self._presence.room_joined(room(token))
                except BusError as exc:  # joined locally; the next heartbeat publishes it
                    log.warning("visitor presence not updated: %s", exc.message)

    async def leave(self, visitor: Visitor) -> None:
        """A tab is gone: its rooms have one visitor socket less."""
        for token in visitor.conversations.values():
            try:
                await self._presence.room_left(room(token))
            except BusError as exc:  # left locally; the next heartbeat publishes it
                log.warning("visitor presence not updated: %s", exc.message)

    async def token(self, conversation_id: Any) -> str | None:
        """The token (room) of a conversation, remembered once read."""
        if not isinstance(conversation_id, int):
            return None
        if conversation_id not in self._tokens:
            token = await self._store.read(lambda conn: history.token_of(conn, conversation_id))
            if token is None:
                return None
            self._tokens[conversation_id] = token
        return self._tokens[conversation_id]

    async def echo(
        self,
        visitor: Visitor,
        result: IngestResult,
        text: str,
        attachments: tuple[Attachment, ...],
        at: datetime,
    ) -> None:
        """A visitor's message is stored: its tabs join the conversation, and the others
        show the message (a duplicate was shown the first time)."""
        token = await self.token(result.conversation_id)
        if token is None:
            return
        await self.join(visitor, result.conversation_id, token)
        if result.duplicate:
            return
        wire = history.wire_message(
            seq=result.message_id,
            author="visitor",
            name=visitor.name,
            text=text,
            at=at,
            attachments=[
                {
                    "filename": a.filename,
                    "content_type": a.content_type,
                    "size": a.size,
                    "storage_key": a.storage_key,
                }
                for a in attachments
            ],
            status=DeliveryStatus.RECEIVED.value,
        )
        await self._sio.emit(
            "message",
            self.links.with_urls(wire),
            room=room(token),
            skip_sid=visitor.sid,
            namespace=NAMESPACE,
        )

    # -- availability ---------------------------------------------------------------------
    async def availability(self, widget: WidgetSettings) -> dict[str, Any]:
        now = self._clock()
        if self._online is None or now - self._online[0] > ONLINE_TTL:
            self._online = (now, await self._store.read(history.agents_online))
        is_open = widget.hours.open_at(datetime.now(UTC)) if widget.hours else True
        online = self._online[1]
        return {"open": is_open, "agents_online": online, "available": is_open and online > 0}

    # -- events from the rest of the service (each process emits to its own visitors) -----
    async def _on_agent_typing(self, event: Event) -> None:
        if not self._visitors:
            return
        token = await self.token(event.data.get("conversation_id"))
        if token is not None:
            payload = {"typing": bool(event.data.get("typing")), "name": event.data.get("name")}
            await self._sio.emit(
                "typing", payload, room=room(token), namespace=NAMESPACE, ignore_queue=True
            )

    async def _on_presence(self, event: Event) -> None:
        self._online = None
        if not self._visitors:
            return  # re-read at the next hello
        online = await self._store.read(history.agents_online)
        self._online = (self._clock(), online)
        await self._sio.emit(
            "availability", {"agents_online": online}, namespace=NAMESPACE, ignore_queue=True
        )
