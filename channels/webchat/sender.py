"""The chat channel's outbound half: the outbox worker hands it agent and bot replies.

A reply is emitted to the conversation's room on `/widget` with its sequence number (the
message id). A visitor who is offline simply is not in the room: the message stays in the
database and reaches them by resync when the widget reconnects, so this never fails for
an absent visitor. With Redis configured, python-socketio's manager carries the emit to
whichever web process holds the visitor's socket (from a worker, through its write-only
manager), and whether the visitor is away is asked of `inbox.bus.presence`, which knows the
visitor sockets of every live web process.
"""

from __future__ import annotations

from datetime import UTC, datetime

import socketio

from channels.webchat.history import wire_message
from channels.webchat.visitors import NAMESPACE, room
from inbox.bus.presence import MemoryPresence, SocketPresence
from inbox.errors import DeliveryError, OmnideskError, RecipientAway
from inbox.ports import Outbound
from inbox.types import DeliveryStatus


class WebchatSender:
    channel = "chat"

    def __init__(self, sio: socketio.AsyncServer, presence: SocketPresence | None = None) -> None:
        self._sio = sio
        self._presence = presence or MemoryPresence()

    async def send(self, item: Outbound) -> str:
        author = "bot" if item.auto_reply else "agent"
        payload = wire_message(
            seq=item.message_id,
            author=author,
            name=item.from_name if author == "agent" else None,
            text=item.text,
            at=datetime.now(UTC),
            status=DeliveryStatus.SENT.value,
        )
        target = room(item.conversation_token)
        try:
            await self._sio.emit("message", payload, room=target, namespace=NAMESPACE)
        except Exception as exc:  # a Redis manager that cannot publish: retry later
            raise DeliveryError(f"cannot emit to the widget: {exc}") from exc
        held = f"webchat:{item.message_id}"
        try:
            present = await self.visitor_present(target)
        except OmnideskError as exc:  # presence unknown: retry rather than guess
            raise DeliveryError(f"cannot tell whether the visitor is here: {exc}") from exc
        if not present:
            # stored for resync either way; the outbox may also follow up by email
            raise RecipientAway("the visitor is not connected", held_id=held)
        return held

    async def visitor_present(self, target: str) -> bool:
        """Whether a socket of the visitor is in the room, in any live web process."""
        return await self._presence.room_occupied(target)
