"""The `/widget` socket.io namespace: the protocol visitors speak. It checks who connects,
then hands messages to `ingest` (`VisitorMessages`) and rooms and live updates to
`fanout` (`FanOut`).

Protocol (every call that answers does so through the socket.io acknowledgement):

* connect, auth = {widget, token?, user_id?, user_hash?, name?, email?, consent?}
  refused when the Origin is not allowed for the widget, the address has too many
  connections, or `user_id` comes without a valid HMAC (an unverified visitor can never
  claim a verified identity). A missing, forged or expired token means a new anonymous
  visitor.
* `hello` {after} -> {visitor_id, token, config, availability, messages, more}: the
  messages with a sequence number above `after` (message ids: durable and monotonic, so
  a restart of the server resets nothing).
* `message` {client_id, text, files?} -> {ok, seq, duplicate} only after ingest
  committed (`channels.webchat.ingest`: the checks, the refusals and the idempotency key).
* `typing` {typing}, `read` {seq}, `profile` {name?, email?, consent?}.
* server -> visitor: `message` (same shape as resync items, with `seq`), `typing`,
  `availability` (`channels.webchat.fanout`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import socketio

from channels.status import announce_delivery
from channels.webchat import history, signing
from channels.webchat.fanout import FanOut
from channels.webchat.ingest import Taken, VisitorMessages, invalid
from channels.webchat.limits import ConnectionCounter
from channels.webchat.links import FileLinks
from channels.webchat.settings import WebchatSettings, WidgetSettings
from channels.webchat.visitors import NAMESPACE, Visitor, Visitors
from inbox.bus.backends import EventBus
from inbox.bus.presence import SocketPresence
from inbox.errors import ValidationError
from inbox.events import Event, EventName, VisitorTyping
from inbox.identity import normalize_external
from inbox.ports import IngestFn
from inbox.store.backends import Store
from inbox.types import DeliveryStatus
from inbox.web.client_address import client_address
from inbox.web.ratelimit import Limiter
from inbox.web.untrusted import Refused, is_id

log = logging.getLogger(__name__)

Refuse = socketio.exceptions.ConnectionRefusedError
TYPING_EVERY = 2.0  # seconds between two "still typing" of one tab


class WidgetNamespace(socketio.AsyncNamespace):  # type: ignore[misc]  # socketio is untyped
    def __init__(
        self,
        settings: WebchatSettings,
        *,
        secret: str,
        ingest: IngestFn,
        store: Store,
        bus: EventBus,
        sio: socketio.AsyncServer,
        presence: SocketPresence,
        limiter: Limiter,
        links: FileLinks,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(NAMESPACE)
        self.settings = settings
        self._secret = secret
        self._store = store
        self._bus = bus
        self._clock = clock
        self.connections = ConnectionCounter()
        self.visitors = Visitors()
        self.messages = VisitorMessages(settings, secret=secret, ingest=ingest, limiter=limiter)
        self.fanout = FanOut(sio, store, self.visitors, presence, links, clock)

    # -- connection -----------------------------------------------------------------------
    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if isinstance(auth, Refused):  # (unreadable JSON: the reason, not an anonymous visit)
            raise Refuse(auth.message)
        auth = auth if isinstance(auth, dict) else {}
        widget = self._widget(auth, environ.get("HTTP_ORIGIN"))
        external_id = None
        if auth.get("user_id") is not None:
            external_id = self._verified_user(widget, auth.get("user_id"), auth.get("user_hash"))
        address = self._address(environ)
        if not self.connections.acquire(address, self.settings.max_connections_per_ip):
            raise Refuse("too many connections from your address")
        max_age = self.settings.token_max_age_days * 86400
        visitor_id = signing.check_visitor_token(
            self._secret, widget.key, auth.get("token"), max_age=max_age
        )
        if visitor_id is None:
            visitor_id = signing.new_visitor_id()
        visitor = Visitor(
            sid=sid,
            widget=widget,
            visitor_id=visitor_id,
            token=signing.visitor_token(self._secret, widget.key, visitor_id),
            address=address,
            external_id=external_id,
        )
        self.visitors.add(visitor)
        visitor.apply_profile(auth)

    def _widget(self, auth: dict[str, Any], origin: str | None) -> WidgetSettings:
        widget = self.settings.widgets.get(str(auth.get("widget", "")))
        if widget is None:
            raise Refuse("unknown widget")
        if not widget.origin_allowed(origin):
            log.info("widget %s: refused origin %r", widget.key, origin)
            raise Refuse("origin not allowed")
        return widget

    def _address(self, environ: dict[str, Any]) -> str:
        request = environ.get("aiohttp.request")
        return client_address(
            getattr(request, "remote", None),
            environ.get("HTTP_X_FORWARDED_FOR"),
            self.settings.trusted_proxies,
        )

    def _verified_user(self, widget: WidgetSettings, user_id: Any, user_hash: Any) -> str:
        if widget.identity_secret is None:
            raise Refuse("identity verification is not enabled for this widget")
        try:
            user = normalize_external(str(user_id))
        except ValidationError:
            raise Refuse("bad user id") from None
        if not signing.check_identity(widget.identity_secret, user, user_hash):
            log.warning("widget %s: identity verification failed", widget.key)
            raise Refuse("identity verification failed")
        return user

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        visitor = self.visitors.remove(sid)
        if visitor is None:
            return
        self.connections.release(visitor.address)
        await self.fanout.leave(visitor)

    # -- hello / resync -------------------------------------------------------------------
    async def on_hello(self, sid: str, data: Any = None) -> dict[str, Any]:
        visitor = self.visitors.get(sid)
        if visitor is None:
            return {"ok": False, "error": "not_connected"}
        after = data.get("after", 0) if isinstance(data, dict) else 0
        after = after if is_id(after) else 0
        found = await self._store.read(
            lambda conn: history.conversations_of(conn, visitor.visitor_id, visitor.external_id)
        )
        for conversation_id, token in found.tokens.items():
            await self.fanout.join(visitor, conversation_id, token)
        messages, more = await self._store.read(
            lambda conn: history.messages_after(conn, list(found.tokens), after)
        )
        if found.contact_id is not None and visitor.followup_unsaved:
            await self._save_followup(visitor, found.contact_id)
        return {
            "ok": True,
            "visitor_id": visitor.visitor_id,
            "token": visitor.token,
            "verified": visitor.external_id is not None,
            "config": self._public_config(visitor.widget),
            "availability": await self.fanout.availability(visitor.widget),
            "messages": [self.fanout.links.with_urls(m) for m in messages],
            "more": more,
        }

    def _public_config(self, widget: WidgetSettings) -> dict[str, Any]:
        return {
            "title": widget.title,
            "greeting": widget.greeting,
            "color": widget.color,
            "text_color": widget.text_color,
            "prechat_fields": list(widget.prechat_fields),
            "prechat_required": widget.prechat_required,
            "consent_text": widget.consent_text,
            "offline_message": widget.offline_message,
            "sound": widget.sound,
            "max_message_chars": self.settings.max_message_chars,
            "max_file_bytes": self.settings.max_file_bytes,
            "allowed_file_types": list(self.settings.allowed_file_types),
        }

    # -- visitor messages -----------------------------------------------------------------
    async def on_message(self, sid: str, data: Any = None) -> dict[str, Any]:
        visitor = self.visitors.get(sid)
        if visitor is None:
            return {"ok": False, "error": "not_connected"}
        taken = await self.messages.take(visitor, data)
        if not isinstance(taken, Taken):
            return taken
        result = taken.result
        await self.fanout.echo(visitor, result, taken.text, taken.attachments, taken.at)
        if visitor.followup_unsaved:
            await self._save_followup(visitor, result.contact_id)
        return {"ok": True, "seq": result.message_id, "duplicate": result.duplicate}

    # -- profile, typing, read receipts ---------------------------------------------------
    async def on_profile(self, sid: str, data: Any = None) -> dict[str, Any]:
        visitor = self.visitors.get(sid)
        if isinstance(data, Refused):
            return invalid(data.message, field=data.field)
        if visitor is None or not isinstance(data, dict):
            return {"ok": False, "error": "invalid"}
        problem = visitor.apply_profile(data)
        if problem:
            return invalid(problem)
        if visitor.followup_unsaved:
            found = await self._store.read(
                lambda conn: history.conversations_of(conn, visitor.visitor_id, visitor.external_id)
            )
            if found.contact_id is not None:
                await self._save_followup(visitor, found.contact_id)
        return {"ok": True}

    async def _save_followup(self, visitor: Visitor, contact_id: int) -> None:
        email, consent = visitor.email, visitor.consent
        assert email is not None
        await self._store.write(
            lambda conn: history.save_followup(conn, contact_id, email, consent)
        )
        visitor.email_saved = True

    async def on_typing(self, sid: str, data: Any = None) -> None:
        visitor = self.visitors.get(sid)
        if visitor is None or not visitor.conversations or not isinstance(data, dict):
            return
        typing = bool(data.get("typing"))
        now = self._clock()
        if typing and now - visitor.typing_sent < TYPING_EVERY:
            return  # at most one "still typing" every 2 s per tab
        visitor.typing_sent = now if typing else 0.0
        conversation_id = max(visitor.conversations)
        await self._bus.publish(
            Event(
                EventName.VISITOR_TYPING,
                VisitorTyping(
                    conversation_id=conversation_id,
                    visitor_id=visitor.visitor_id,
                    typing=typing,
                ),
            )
        )

    async def on_read(self, sid: str, data: Any = None) -> None:
        visitor = self.visitors.get(sid)
        up_to = data.get("seq") if isinstance(data, dict) else None
        if visitor is None or not is_id(up_to) or not visitor.conversations:
            return
        ids = list(visitor.conversations)
        changed = await self._store.write(lambda conn: history.mark_read(conn, ids, up_to))
        for message_id, conversation_id in changed:
            await announce_delivery(self._bus, message_id, conversation_id, DeliveryStatus.READ)
