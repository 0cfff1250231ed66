"""Ingest of visitor messages: a `message` event from the widget, checked step by step,
becomes one `InboundMessage(channel=CHAT)`, acknowledged only after ingest committed it.

The idempotency key is visitor id + client id, so a retry stores nothing twice, and a
retry of a message already acknowledged is never refused by the rate limit. Each refusal
is the acknowledgement the widget gets: {ok: false, error: too_long | rate_limited |
invalid | unavailable, message, ...}.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from channels.webchat import signing
from channels.webchat.settings import WebchatSettings
from channels.webchat.visitors import Visitor
from inbox.errors import OmnideskError, ValidationError
from inbox.ports import IngestFn
from inbox.types import Attachment, Channel, IdentityKind, InboundMessage, IngestResult
from inbox.web.ratelimit import Limiter
from inbox.web.untrusted import Refused, surrogate_path

log = logging.getLogger(__name__)

CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9-]{8,64}$")
MAX_FILES = 5
ACKED_KEPT = 200  # client ids remembered per socket: their retries pass the rate limit

Refusal = dict[str, Any]


def invalid(message: str, **extra: Any) -> Refusal:
    return {"ok": False, "error": "invalid", **extra, "message": message}


@dataclass(frozen=True, slots=True)
class Taken:
    """A visitor message ingest committed (or had committed before: `result.duplicate`)."""

    result: IngestResult
    text: str
    attachments: tuple[Attachment, ...]
    at: datetime


@dataclass(frozen=True, slots=True)
class _Draft:
    client_id: str
    text: str
    refs: list[Any]


class VisitorMessages:
    def __init__(
        self,
        settings: WebchatSettings,
        *,
        secret: str,
        ingest: IngestFn,
        limiter: Limiter,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self._secret = secret
        self._ingest = ingest
        self._limiter = limiter
        self._now = now

    async def take(self, visitor: Visitor, data: Any) -> Taken | Refusal:
        """Check, rate-limit and ingest one `message` payload of `visitor`."""
        draft = self._read(data)
        if isinstance(draft, dict):
            return draft
        attachments = self._attachments(visitor, draft.refs)
        if isinstance(attachments, dict):
            return attachments
        if not draft.text.strip() and not attachments:
            return invalid("the message is empty")
        if draft.client_id not in visitor.acked:  # a retry of an acked message passes
            refused = await self._rate_limit(visitor)
            if refused is not None:
                return refused
        return await self._ingested(visitor, draft, attachments)

    def _read(self, data: Any) -> _Draft | Refusal:
        """The payload's shape, its client id and its text."""
        if isinstance(data, Refused):  # not retried by the widget: it says why instead
            return invalid(data.message, field=data.field)
        if not isinstance(data, dict):
            return invalid("expected an object")
        client_id, text, refs = data.get("client_id"), data.get("text", ""), data.get("files") or []
        if not isinstance(client_id, str) or not CLIENT_ID_RE.match(client_id):
            return invalid("client_id must be 8-64 of [A-Za-z0-9-]")
        if not isinstance(text, str) or not isinstance(refs, list) or len(refs) > MAX_FILES:
            return invalid(f"text must be a string, at most {MAX_FILES} files")
        if not text.isascii() and surrogate_path(text) is not None:
            return invalid(
                "the text contains a lone surrogate; send valid Unicode text", field="text"
            )
        limit = self.settings.max_message_chars
        if len(text) > limit:
            return {
                "ok": False,
                "error": "too_long",
                "limit": limit,
                "message": f"Your message is too long: at most {limit} characters.",
            }
        return _Draft(client_id, text, refs)

    def _attachments(self, visitor: Visitor, refs: list[Any]) -> tuple[Attachment, ...] | Refusal:
        """The uploads the message names, each a reference signed for this visitor."""
        attachments = []
        for ref in refs:
            meta = signing.check_file_ref(self._secret, visitor.visitor_id, ref)
            if meta is None:
                return invalid("unknown file")
            attachments.append(
                Attachment(
                    filename=str(meta["filename"]),
                    content_type=str(meta["content_type"]),
                    size=int(meta["size"]),
                    storage_key=str(meta["key"]),
                )
            )
        return tuple(attachments)

    async def _rate_limit(self, visitor: Visitor) -> Refusal | None:
        wait = await self._limiter.hit(
            ("msg", visitor.visitor_id),
            self.settings.rate_limit,
            self.settings.rate_window_seconds,
        )
        if wait is None:
            return None
        seconds = max(1, math.ceil(wait))
        return {
            "ok": False,
            "error": "rate_limited",
            "retry_after": seconds,
            "message": f"You are sending messages too quickly. Please wait {seconds} s; "
            "your message will be sent then.",
        }

    async def _ingested(
        self, visitor: Visitor, draft: _Draft, attachments: tuple[Attachment, ...]
    ) -> Taken | Refusal:
        now = self._now()
        extra = ((IdentityKind.EXTERNAL, visitor.external_id),) if visitor.external_id else ()
        msg = InboundMessage(
            channel=Channel.CHAT,
            external_id=f"{visitor.visitor_id}:{draft.client_id}",
            sender=visitor.visitor_id,
            text=draft.text,
            received_at=now,
            display_name=visitor.name,
            attachments=attachments,
            inbox=visitor.widget.inbox,
            extra_identities=extra,
            metadata={"widget": visitor.widget.key, "client_id": draft.client_id},
        )
        try:
            result = await self._ingest(msg)
        except ValidationError as exc:
            return invalid(exc.message)
        except OmnideskError as exc:
            log.warning("widget message not stored, the visitor will retry: %s", exc)
            return {"ok": False, "error": "unavailable"}
        visitor.acked[draft.client_id] = None
        if len(visitor.acked) > ACKED_KEPT:
            visitor.acked.popitem(last=False)
        return Taken(result, draft.text, attachments, now)
