"""Mail-loop protection for the auto-reply engine, over the core's one classifier
(`inbox.mail_loops`).

`loop_reason(inbound, ...)` says why a message must never get an automatic answer, or
None. Headers come from `inbound.metadata["headers"]` (lower-cased name -> value, as the
email adapter provides them) and `inbound.metadata["return_path"]`.

Our own automatic answers carry `auto_reply_headers(instance_id)`; the email sender stamps
them when `Outbound.auto_reply` is true, so another system (or another omnidesk) sees
`Auto-Submitted: auto-replied` and does not answer back, and we recognise our own echo.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from inbox.mail_loops import INSTANCE_HEADER, auto_reply_headers, loop_reasons
from inbox.types import Channel, InboundMessage

__all__ = ["INSTANCE_HEADER", "auto_reply_headers", "headers_of", "loop_reason"]


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def headers_of(inbound: InboundMessage) -> dict[str, str]:
    raw = inbound.metadata.get("headers") or {}
    if not isinstance(raw, Mapping):
        return {}
    return {str(k).lower(): _text(v) for k, v in raw.items()}


def loop_reason(
    inbound: InboundMessage | None,
    *,
    instance_id: str | None = None,
    own_domains: Collection[str] = (),
) -> str | None:
    """Why `inbound` must not be auto-answered, or None when answering is safe."""
    if inbound is None:
        return None
    if inbound.auto_submitted:
        return "the channel marked the message as automatic (auto_submitted)"
    headers = headers_of(inbound)
    email = inbound.channel == Channel.EMAIL
    return_path = inbound.metadata.get("return_path")
    reasons = loop_reasons(
        headers,
        sender=inbound.sender if email else None,
        return_path=return_path if isinstance(return_path, str) else None,
        message_id=headers.get("message-id") or (inbound.external_id if email else None),
        instance_id=instance_id,
        own_domains=own_domains,
    )
    return reasons[0] if reasons else None
