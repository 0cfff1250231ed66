"""Signed values the widget carries: visitor tokens, host-site identity hashes, upload
references. HMAC-SHA256 throughout; comparisons in constant time (pure functions)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from typing import Any

VISITOR_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def _mac(secret: str, purpose: str, payload: str) -> str:
    digest = hmac.new(secret.encode(), f"{purpose}\0{payload}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=")


def new_visitor_id() -> str:
    return secrets.token_urlsafe(16)  # 22 characters of [A-Za-z0-9_-]


def visitor_token(secret: str, widget: str, visitor_id: str, *, issued: int | None = None) -> str:
    """`visitor_id.issued.mac`: kept in the browser's localStorage."""
    issued = int(time.time()) if issued is None else issued
    payload = f"{widget}:{visitor_id}:{issued}"
    return f"{visitor_id}.{issued}.{_mac(secret, 'webchat-visitor', payload)}"


def check_visitor_token(secret: str, widget: str, token: Any, *, max_age: float) -> str | None:
    """The visitor id a token was issued for, or None if it is forged, foreign or expired."""
    if not isinstance(token, str) or len(token) > 200:
        return None
    parts = token.split(".")
    if len(parts) != 3 or not VISITOR_RE.match(parts[0]) or not parts[1].isdigit():
        return None
    visitor_id, issued, mac = parts
    want = _mac(secret, "webchat-visitor", f"{widget}:{visitor_id}:{issued}")
    if not hmac.compare_digest(want, mac):
        return None
    if time.time() - int(issued) > max_age:
        return None
    return visitor_id


def identity_hash(identity_secret: str, user_id: str) -> str:
    """What the host site computes server-side: hex HMAC-SHA256(secret, user id)."""
    return hmac.new(identity_secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def check_identity(identity_secret: str, user_id: str, user_hash: Any) -> bool:
    if not isinstance(user_hash, str):
        return False
    return hmac.compare_digest(identity_hash(identity_secret, user_id), user_hash.strip().lower())


def file_ref(secret: str, visitor_id: str, meta: dict[str, Any]) -> str:
    """An upload reference the visitor may put in a message: bound to that visitor."""
    body = (
        base64.urlsafe_b64encode(json.dumps(meta, separators=(",", ":")).encode())
        .decode()
        .rstrip("=")
    )
    return f"{body}.{_mac(secret, 'webchat-file', visitor_id + ':' + body)}"


def check_file_ref(secret: str, visitor_id: str, ref: Any) -> dict[str, Any] | None:
    if not isinstance(ref, str) or len(ref) > 2000 or not ref.isascii() or "." not in ref:
        return None
    body, mac = ref.rsplit(".", 1)
    if not hmac.compare_digest(_mac(secret, "webchat-file", visitor_id + ":" + body), mac):
        return None
    try:
        meta = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except ValueError:
        return None
    return meta if isinstance(meta, dict) else None


def file_sig(secret: str, key: str, content_type: str) -> str:
    """The signature in a file URL: whoever was shown the link may fetch the file."""
    return _mac(secret, "webchat-download", f"{key}:{content_type}")
