"""The `/widget` socket.io namespace: visitors connect, send and resync here.

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
  committed; the idempotency key is visitor id + client id, so a retry stores nothing
  twice. Refusals: {ok: false, error: too_long | rate_limited | invalid | unavailable}.
* `typing` {typing}, `read` {seq}, `profile` {name?, email?, consent?}.
* server -> visitor: `message` (same shape as resync items, with `seq`), `typing`,
  `availability`.

Several web processes (Redis configured): typing and availability follow
bus events that every process hears, so each emits them to its own sockets only
(`ignore_queue=True`); a visitor's message, shown on their other tabs, goes through the
Redis manager. Which conversation rooms have a visitor socket is kept in `inbox.bus.presence`
(the chat sender asks it whether the visitor is away).
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import socketio

from channels.webchat import history, signing
from channels.webchat.limits import ConnectionCounter
from channels.webchat.settings import WebchatSettings, WidgetSettings
from inbox.bus.backends import EventBus
from inbox.bus.presence import MemoryPresence, SocketPresence
from inbox.errors import BusError, OmnideskError, ValidationError
from inbox.events import DeliveryChanged, Event, EventName, VisitorTyping
from inbox.identity import normalize_email, normalize_external
from inbox.ports import IngestFn
from inbox.store.backends import Store
from inbox.types import Attachment, Channel, DeliveryStatus, IdentityKind, InboundMessage
from inbox.web.client_address import client_address
from inbox.web.ratelimit import Limiter, RateLimiter
from inbox.web.untrusted import Refused, is_id, surrogate_path

log = logging.getLogger(__name__)

NAMESPACE = "/widget"
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9-]{8,64}$")
MAX_FILES = 5


def room(token: str) -> str:
    return f"c:{token}"


@dataclass(slots=True)
class Visitor:
    sid: str
    widget: WidgetSettings
    visitor_id: str
    token: str
    address: str
    external_id: str | None = None  # verified host-site user id
    name: str | None = None
    email: str | None = None
    consent: bool | None = None
    email_saved: bool = False
    conversations: dict[int, str] = field(default_factory=dict)
    acked: OrderedDict[str, None] = field(default_factory=OrderedDict)
    typing_sent: float = 0.0


class WidgetNamespace(socketio.AsyncNamespace):  # type: ignore[misc]  # socketio is untyped
    def __init__(
        self,
        settings: WebchatSettings,
        *,
        secret: str,
        ingest: IngestFn,
        store: Store,
        bus: EventBus,
        file_url: Callable[[dict[str, Any]], str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        presence: SocketPresence | None = None,
        limiter: Limiter | None = None,
    ) -> None:
        super().__init__(NAMESPACE)
        self.settings = settings
        self._secret = secret
        self._ingest = ingest
        self._store = store
        self._bus = bus
        self.file_url = file_url
        self._clock = clock
        self._limiter: Limiter = limiter or RateLimiter(clock=clock)
        self.connections = ConnectionCounter()
        self.visitors: dict[str, Visitor] = {}
        self._sids: dict[str, set[str]] = {}  # visitor id -> connected sids
        self._tokens: dict[int, str] = {}  # conversation id -> token
        self._online: tuple[float, int] | None = None
        self.presence = presence or MemoryPresence()

    def attach(self, bus: EventBus) -> None:
        bus.subscribe(EventName.AGENT_TYPING, self._on_agent_typing)
        bus.subscribe(EventName.AGENT_PRESENCE, self._on_presence)

    # -- connection -----------------------------------------------------------------------
    def _address(self, environ: dict[str, Any]) -> str:
        request = environ.get("aiohttp.request")
        return client_address(
            getattr(request, "remote", None),
            environ.get("HTTP_X_FORWARDED_FOR"),
            self.settings.trusted_proxies,
        )

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if isinstance(auth, Refused):  # (unreadable JSON: the reason, not an anonymous visit)
            raise socketio.exceptions.ConnectionRefusedError(auth.message)
        auth = auth if isinstance(auth, dict) else {}
        widget = self.settings.widgets.get(str(auth.get("widget", "")))
        if widget is None:
            raise socketio.exceptions.ConnectionRefusedError("unknown widget")
        origin = environ.get("HTTP_ORIGIN")
        if not widget.origin_allowed(origin):
            log.info("widget %s: refused origin %r", widget.key, origin)
            raise socketio.exceptions.ConnectionRefusedError("origin not allowed")
        external_id = None
        if auth.get("user_id") is not None:
            external_id = self._verified_user(widget, auth.get("user_id"), auth.get("user_hash"))
        address = self._address(environ)
        if not self.connections.acquire(address, self.settings.max_connections_per_ip):
            raise socketio.exceptions.ConnectionRefusedError(
                "too many connections from your address"
            )
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
        self.visitors[sid] = visitor
        self._sids.setdefault(visitor_id, set()).add(sid)
        self._apply_profile(visitor, auth)

    def _verified_user(self, widget: WidgetSettings, user_id: Any, user_hash: Any) -> str:
        if widget.identity_secret is None:
            raise socketio.exceptions.ConnectionRefusedError(
                "identity verification is not enabled for this widget"
            )
        try:
            user = normalize_external(str(user_id))
        except ValidationError:
            raise socketio.exceptions.ConnectionRefusedError("bad user id") from None
        if not signing.check_identity(widget.identity_secret, user, user_hash):
            log.warning("widget %s: identity verification failed", widget.key)
            raise socketio.exceptions.ConnectionRefusedError("identity verification failed")
        return user

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        visitor = self.visitors.pop(sid, None)
        if visitor is None:
            return
        self.connections.release(visitor.address)
        sids = self._sids.get(visitor.visitor_id)
        if sids is not None:
            sids.discard(sid)
            if not sids:
                del self._sids[visitor.visitor_id]
        for token in visitor.conversations.values():
            try:
                await self.presence.room_left(room(token))
            except BusError as exc:  # left locally; the next heartbeat publishes it
                log.warning("visitor presence not updated: %s", exc.message)

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
            await self._join(visitor, conversation_id, token)
        messages, more = await self._store.read(
            lambda conn: history.messages_after(conn, list(found.tokens), after)
        )
        if found.contact_id is not None and visitor.email and not visitor.email_saved:
            await self._save_followup(visitor, found.contact_id)
        return {
            "ok": True,
            "visitor_id": visitor.visitor_id,
            "token": visitor.token,
            "verified": visitor.external_id is not None,
            "config": self._public_config(visitor.widget),
            "availability": await self.availability(visitor.widget),
            "messages": [self._with_urls(m) for m in messages],
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

    async def availability(self, widget: WidgetSettings) -> dict[str, Any]:
        now = self._clock()
        if self._online is None or now - self._online[0] > 10:
            self._online = (now, await self._store.read(history.agents_online))
        is_open = widget.hours.open_at(datetime.now(UTC)) if widget.hours else True
        online = self._online[1]
        return {"open": is_open, "agents_online": online, "available": is_open and online > 0}

    async def _join(self, visitor: Visitor, conversation_id: int, token: str) -> None:
        self._tokens[conversation_id] = token
        for sid in list(self._sids.get(visitor.visitor_id, ())):
            other = self.visitors.get(sid)
            if other is not None and conversation_id not in other.conversations:
                other.conversations[conversation_id] = token
                await self.enter_room(sid, room(token))
                try:
                    await self.presence.room_joined(room(token))
                except BusError as exc:  # joined locally; the next heartbeat publishes it
                    log.warning("visitor presence not updated: %s", exc.message)

    def _with_urls(self, message: dict[str, Any]) -> dict[str, Any]:
        files = []
        for item in message.get("files", ()):
            entry = {k: item.get(k) for k in ("filename", "content_type", "size")}
            if self.file_url is not None and item.get("storage_key"):
                entry["url"] = self.file_url(item)
            files.append(entry)
        return {**message, "files": files}

    # -- visitor messages -----------------------------------------------------------------
    async def on_message(self, sid: str, data: Any = None) -> dict[str, Any]:
        visitor = self.visitors.get(sid)
        if visitor is None:
            return {"ok": False, "error": "not_connected"}
        if isinstance(data, Refused):  # not retried by the widget: it says why instead
            return {"ok": False, "error": "invalid", "message": data.message, "field": data.field}
        if not isinstance(data, dict):
            return {"ok": False, "error": "invalid", "message": "expected an object"}
        client_id, text, refs = data.get("client_id"), data.get("text", ""), data.get("files") or []
        if not isinstance(client_id, str) or not CLIENT_ID_RE.match(client_id):
            return {
                "ok": False,
                "error": "invalid",
                "message": "client_id must be 8-64 of [A-Za-z0-9-]",
            }
        if not isinstance(text, str) or not isinstance(refs, list) or len(refs) > MAX_FILES:
            return {
                "ok": False,
                "error": "invalid",
                "message": f"text must be a string, at most {MAX_FILES} files",
            }
        if not text.isascii() and surrogate_path(text) is not None:
            return {
                "ok": False,
                "error": "invalid",
                "field": "text",
                "message": "the text contains a lone surrogate; send valid Unicode text",
            }
        limit = self.settings.max_message_chars
        if len(text) > limit:
            return {
                "ok": False,
                "error": "too_long",
                "limit": limit,
                "message": f"Your message is too long: at most {limit} characters.",
            }
        attachments = []
        for ref in refs:
            meta = signing.check_file_ref(self._secret, visitor.visitor_id, ref)
            if meta is None:
                return {"ok": False, "error": "invalid", "message": "unknown file"}
            attachments.append(
                Attachment(
                    filename=str(meta["filename"]),
                    content_type=str(meta["content_type"]),
                    size=int(meta["size"]),
                    storage_key=str(meta["key"]),
                )
            )
        if not text.strip() and not attachments:
            return {"ok": False, "error": "invalid", "message": "the message is empty"}
        if client_id not in visitor.acked:  # a retry of an acked message is never refused
            wait = await self._limiter.hit(
                ("msg", visitor.visitor_id),
                self.settings.rate_limit,
                self.settings.rate_window_seconds,
            )
            if wait is not None:
                seconds = max(1, math.ceil(wait))
                return {
                    "ok": False,
                    "error": "rate_limited",
                    "retry_after": seconds,
                    "message": f"You are sending messages too quickly. Please wait {seconds} s; "
                    "your message will be sent then.",
                }
        now = datetime.now(UTC)
        extra = ((IdentityKind.EXTERNAL, visitor.external_id),) if visitor.external_id else ()
        msg = InboundMessage(
            channel=Channel.CHAT,
            external_id=f"{visitor.visitor_id}:{client_id}",
            sender=visitor.visitor_id,
            text=text,
            received_at=now,
            display_name=visitor.name,
            attachments=tuple(attachments),
            inbox=visitor.widget.inbox,
            extra_identities=extra,
            metadata={"widget": visitor.widget.key, "client_id": client_id},
        )
        try:
            result = await self._ingest(msg)
        except ValidationError as exc:
            return {"ok": False, "error": "invalid", "message": exc.message}
        except OmnideskError as exc:
            log.warning("widget message not stored, the visitor will retry: %s", exc)
            return {"ok": False, "error": "unavailable"}
        visitor.acked[client_id] = None
        if len(visitor.acked) > 200:
            visitor.acked.popitem(last=False)
        token = self._tokens.get(result.conversation_id) or await self._store.read(
            lambda conn: history.token_of(conn, result.conversation_id)
        )
        if token is not None:
            await self._join(visitor, result.conversation_id, token)
            if not result.duplicate:  # the visitor's other tabs show it too
                wire = history.wire_message(
                    seq=result.message_id,
                    author="visitor",
                    name=visitor.name,
                    text=text,
                    at=now,
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
                await self.emit("message", self._with_urls(wire), room=room(token), skip_sid=sid)
        if visitor.email and not visitor.email_saved:
            await self._save_followup(visitor, result.contact_id)
        return {"ok": True, "seq": result.message_id, "duplicate": result.duplicate}

    # -- profile, typing, read receipts ---------------------------------------------------
    def _apply_profile(self, visitor: Visitor, data: dict[str, Any]) -> str | None:
        name, email, consent = data.get("name"), data.get("email"), data.get("consent")
        for value in (name, email):
            if isinstance(value, str) and surrogate_path(value) is not None:
                return "The name or email contains characters that are not valid text."
        if isinstance(name, str) and name.strip():
            visitor.name = name.strip()[:200]
        if isinstance(consent, bool):
            visitor.consent = consent
        if isinstance(email, str) and email.strip():
            try:
                address = normalize_email(email)
            except ValidationError:
                return "That does not look like an email address."
            if address != visitor.email:
                visitor.email, visitor.email_saved = address, False
        return None

    async def on_profile(self, sid: str, data: Any = None) -> dict[str, Any]:
        visitor = self.visitors.get(sid)
        if isinstance(data, Refused):
            return {"ok": False, "error": "invalid", "message": data.message, "field": data.field}
        if visitor is None or not isinstance(data, dict):
            return {"ok": False, "error": "invalid"}
        problem = self._apply_profile(visitor, data)
        if problem:
            return {"ok": False, "error": "invalid", "message": problem}
        if visitor.email and not visitor.email_saved:
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
        if typing and now - visitor.typing_sent < 2:
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
            await self._bus.publish(
                Event(
                    EventName.MESSAGE_DELIVERY_CHANGED,
                    DeliveryChanged(
                        message_id=message_id,
                        conversation_id=conversation_id,
                        status=DeliveryStatus.READ.value,
                    ),
                )
            )

    # -- events from the rest of the service ----------------------------------------------
    async def _token(self, conversation_id: Any) -> str | None:
        if not isinstance(conversation_id, int):
            return None
        if conversation_id not in self._tokens:
            token = await self._store.read(lambda conn: history.token_of(conn, conversation_id))
            if token is None:
                return None
            self._tokens[conversation_id] = token
        return self._tokens[conversation_id]

    # every process hears these events: each emits to its own visitors only
    async def _on_agent_typing(self, event: Event) -> None:
        if not self.visitors:
            return
        token = await self._token(event.data.get("conversation_id"))
        if token is not None:
            payload = {"typing": bool(event.data.get("typing")), "name": event.data.get("name")}
            await self.emit("typing", payload, room=room(token), ignore_queue=True)

    async def _on_presence(self, event: Event) -> None:
        self._online = None
        if not self.visitors:
            return  # re-read at the next hello
        online = await self._store.read(history.agents_online)
        self._online = (self._clock(), online)
        await self.emit("availability", {"agents_online": online}, ignore_queue=True)
