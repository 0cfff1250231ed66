"""Mail-loop protection (RFC 3834 and common practice), as pure functions.

`loop_reason(inbound, ...)` says why a message must never get an automatic answer, or
None. Headers come from `inbound.metadata["headers"]` (lower-cased name -> value, as the
email adapter provides them) and `inbound.metadata["return_path"]`.

Our own automatic answers carry `auto_reply_headers(instance_id)`; the email sender stamps
them when `Outbound.auto_reply` is true, so another system (or another omnidesk) sees
`Auto-Submitted: auto-replied` and does not answer back, and we recognise our own echo.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from inbox.types import Channel, InboundMessage

INSTANCE_HEADER = "X-Omnidesk-Instance"

_ROBOT_SENDER = re.compile(
    r"^(mailer-daemon|postmaster|no[-_.]?reply|do[-_.]?not[-_.]?reply|bounces?)([+.-][^@]*)?@",
    re.IGNORECASE,
)
_BULK_PRECEDENCE = {"bulk", "list", "junk", "auto_reply"}
_DOMAIN = re.compile(r"@([^>\s]+)>?\s*$")


def auto_reply_headers(instance_id: str) -> dict[str, str]:
    """Headers every automatic answer carries (RFC 3834 section 5, plus Microsoft's)."""
    return {
        "Auto-Submitted": "auto-replied",
        "X-Auto-Response-Suppress": "All",
        INSTANCE_HEADER: instance_id,
    }


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
    if headers:  # chat, SMS and form messages have none
        reason = _header_reason(headers)
        if reason is not None:
            return reason
    return_path = inbound.metadata.get("return_path")
    if return_path == "" or headers.get("return-path", "x").strip() == "<>":
        return "empty return path (a bounce or notification)"
    if instance_id and headers.get(INSTANCE_HEADER.lower(), "").strip() == instance_id:
        return "our own outbound message came back"
    if own_domains:
        message_id = headers.get("message-id") or (
            inbound.external_id if inbound.channel == Channel.EMAIL else ""
        )
        match = _DOMAIN.search(message_id.strip())
        if match and match.group(1).lower() in {d.lower() for d in own_domains}:
            return f"Message-ID {message_id.strip()} is ours"
    if inbound.channel == Channel.EMAIL and _ROBOT_SENDER.match(inbound.sender.strip("<> ")):
        return f"sender {inbound.sender} is a robot address"
    return None


def _header_reason(headers: Mapping[str, str]) -> str | None:
    """The RFC 3834 / auto-responder header checks, in order."""
    auto = headers.get("auto-submitted")
    if auto is not None and auto.split(";")[0].strip().lower() != "no":
        return f"Auto-Submitted: {auto.strip()} (RFC 3834: never answer automatic mail)"
    precedence = headers.get("precedence", "").strip().lower()
    if precedence in _BULK_PRECEDENCE:
        return f"Precedence: {precedence} (bulk or list mail)"
    list_headers = sorted(h for h in headers if h.startswith("list-"))
    if list_headers:
        return f"mailing-list header {list_headers[0]} present"
    suppress = headers.get("x-auto-response-suppress", "").lower()
    if any(word in suppress for word in ("all", "autoreply", "oof")):
        return f"X-Auto-Response-Suppress: {suppress}"
    if "x-autoreply" in headers or "x-autorespond" in headers:
        return "X-Autoreply header present (another auto-responder)"
    return None
