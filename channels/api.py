"""The generic inbound channel for integrations: `POST /api/v1/messages`.

JSON in, one `InboundMessage` out to `ingest`; answered only after the commit. The
`Idempotency-Key` header (or `external_id`) makes a retried request for the same sender
return the first result: 201 the first time, 200 with `duplicate: true` after.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import nh3
import orjson
from aiohttp import web

from inbox.accounts.tokens import Scope
from inbox.errors import Conflict, Forbidden, UnknownChannel, ValidationError
from inbox.ports import IngestFn
from inbox.store import conversations
from inbox.types import Channel, InboundMessage
from inbox.web.http import MAX_BODY_KEY, STORE_KEY, field, read_json, require_inbox, require_token

INGEST_KEY: web.AppKey[IngestFn] = web.AppKey("ingest", object)  # type: ignore[arg-type]

# a channel's name -> the member (a dict lookup: calling the enum costs microseconds a request)
CHANNELS = {c.value: c for c in Channel}


def parse_message(data: dict[str, object], idempotency_key: str | None) -> InboundMessage:
    channel_name = field(data, "channel", str) or "api"
    channel = CHANNELS.get(channel_name)
    if channel is None:
        raise UnknownChannel(
            f"unknown channel {channel_name[:40]!r}; use one of {sorted(CHANNELS)}",
            field="channel",
        )
    external_id = idempotency_key or field(data, "external_id", str, max_len=500)
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 255:
        raise ValidationError("Idempotency-Key must be 1-255 characters", field="Idempotency-Key")
    sender = field(data, "sender", str, required=True, max_len=320)
    text = field(data, "text", str, required=True, max_len=256 * 1024)
    html = field(data, "html", str, max_len=1024 * 1024)
    skills = field(data, "skills", list, max_len=20) or []
    if not all(isinstance(s, str) and 0 < len(s) <= 64 for s in skills):
        raise ValidationError("'skills' must be a list of short strings", field="skills")
    metadata = field(data, "metadata", dict) or {}
    received = field(data, "received_at", str)
    try:
        received_at = datetime.fromisoformat(received) if received else datetime.now(UTC)
        if received_at.tzinfo is not None:
            received_at = received_at.astimezone(UTC)  # (an offset can push it past year 9999)
    except (ValueError, OverflowError):
        raise ValidationError(
            "'received_at' must be an ISO 8601 time", field="received_at"
        ) from None
    if received_at.tzinfo is None:
        raise ValidationError("'received_at' must carry a timezone", field="received_at")
    if not text.strip() and not html:
        raise ValidationError("'text' is empty", field="text")
    return InboundMessage(
        channel=channel,
        external_id=external_id or f"api-{uuid.uuid4()}",
        sender=sender,
        display_name=field(data, "name", str, max_len=200),
        subject=field(data, "subject", str, max_len=998),
        text=text,
        html=nh3.clean(html) if html else None,
        received_at=received_at,
        inbox=field(data, "inbox", str, max_len=100) or "default",
        priority=field(data, "priority", str, max_len=32),
        skills=tuple(skills),
        in_reply_to=field(data, "in_reply_to", str, max_len=500),
        metadata={"api": metadata},
    )


async def post_message(request: web.Request) -> web.Response:
    scope = await require_token(request, write=True)
    data = await read_json(request, request.app[MAX_BODY_KEY])
    msg = parse_message(data, request.headers.get("Idempotency-Key"))
    if scope.inboxes is not None:
        if data.get("inbox") is None:
            raise Forbidden(
                "this API token is limited to some inboxes: name one in 'inbox'", field="inbox"
            )
        require_inbox(scope, msg.inbox)
    result = await request.app[INGEST_KEY](msg)
    if result.duplicate and scope.inboxes is not None:
        await _replay_in_scope(request, scope, result.conversation_id)
    body = {
        "message_id": result.message_id,
        "conversation_id": result.conversation_id,
        "contact_id": result.contact_id,
        "duplicate": result.duplicate,
    }
    # orjson: the same compact JSON as json_response would send, a third of its cost
    return web.Response(
        body=orjson.dumps(body),
        status=200 if result.duplicate else 201,
        content_type="application/json",
    )


async def _replay_in_scope(request: web.Request, scope: Scope, conversation_id: int) -> None:
    """A replayed key answers with the first message's ids: only to a token that may see
    its conversation (another inbox's key is a conflict, and its ids stay unknown)."""
    inbox = await request.app[STORE_KEY].read(
        lambda conn: conversations.get(conn, conversation_id).inbox
    )
    if not scope.sees(inbox):
        raise Conflict(
            "this Idempotency-Key (or external_id) was used for a message in an inbox this "
            "token does not reach; use another key",
            field="Idempotency-Key",
        )


def routes() -> list[web.RouteDef]:
    return [web.post("/api/v1/messages", post_message)]
