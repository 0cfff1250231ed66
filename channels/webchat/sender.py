"""The chat channel's outbound half: the outbox worker hands it agent and bot replies.

A reply is emitted to the conversation's room on `/widget` with its sequence number (the
message id). A visitor who is offline simply is not in the room: the message stays in the
database and reaches them by resync when the widget reconnects, so this never fails for
an absent visitor. With Redis configured, python-socketio's manager carries the emit to
whichever web process holds the visitor's socket.
"""

from __future__ import annotations

from datetime import UTC, datetime

import socketio

from channels.webchat.history import wire_message
from channels.webchat.namespace import NAMESPACE, room
from inbox.errors import DeliveryError, RecipientAway
from inbox.ports import Outbound
from inbox.types import DeliveryStatus


class WebchatSender:
    channel = "chat"

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self._sio = sio

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
        if not self.visitor_present(target):
            # stored for resync either way; the outbox may also follow up by email
            raise RecipientAway("the visitor is not connected", held_id=held)
        return held

    def visitor_present(self, target: str) -> bool:
        """Whether a socket of the visitor is in the room. python-socketio knows only this
        process's sockets: with several web processes a visitor connected elsewhere counts
        as away (an email follow-up too many, never one too few)."""
        return any(True for _ in self._sio.manager.get_participants(NAMESPACE, target))
