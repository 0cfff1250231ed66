"""Signed per-conversation reply addresses: ``support+TOKEN@domain``.

TOKEN carries the conversation token and a truncated HMAC of it, so a reply lands in its
conversation and nobody can guess or forge another conversation's address. Mail systems
may lower-case local parts, so TOKEN uses only ``[a-z0-9._]`` and is compared
case-insensitively:

    support+<token>.<mac>@domain        token already lower-case [a-z0-9-], short
    support+_<base32(token)>.<mac>@domain   any other token (base32 is case-free)

mac = base32(HMAC-SHA256(key, token))[:16] (80 bits), key derived from the secret so the
same secret_key can sign cookies elsewhere without this being an oracle for them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

_CONTEXT = b"omnidesk.email.reply-token.v1"
_MAC_CHARS = 16  # base32 characters: 80 bits
_PLAIN_TOKEN = re.compile(r"[a-z0-9-]{1,40}")
_LOCAL_MAX = 64  # RFC 5321 4.5.3.1.1


def _key(secret: str | bytes) -> bytes:
    raw = secret.encode() if isinstance(secret, str) else secret
    if not raw:
        raise ValueError("reply-token secret is empty")
    return hmac.new(raw, _CONTEXT, hashlib.sha256).digest()


def _mac(secret: str | bytes, token: str) -> str:
    digest = hmac.new(_key(secret), token.encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode().lower()[:_MAC_CHARS]


def _encode(token: str) -> str:
    if _PLAIN_TOKEN.fullmatch(token):
        return token
    return "_" + base64.b32encode(token.encode()).decode().rstrip("=").lower()


def _decode(payload: str) -> str | None:
    if not payload.startswith("_"):
        return payload if _PLAIN_TOKEN.fullmatch(payload) else None
    body = payload[1:].upper()
    if not re.fullmatch(r"[A-Z2-7]+", body):
        return None
    try:
        return base64.b32decode(body + "=" * (-len(body) % 8)).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def make_tag(conversation_token: str, secret: str | bytes) -> str:
    """The part after ``+``: encoded token, a dot, the MAC."""
    if not conversation_token or any(ord(c) < 33 for c in conversation_token):
        raise ValueError("conversation token must be non-empty printable text")
    return f"{_encode(conversation_token)}.{_mac(secret, conversation_token)}"


def make_reply_address(
    conversation_token: str, secret: str | bytes, local: str = "support", *, domain: str
) -> str:
    """``local+TAG@domain``; raises ValueError if the local part would exceed 64 octets."""
    local_part = f"{local}+{make_tag(conversation_token, secret)}"
    if len(local_part) > _LOCAL_MAX:
        raise ValueError(
            f"reply address local part is {len(local_part)} characters (max {_LOCAL_MAX}): "
            "use shorter conversation tokens (lower-case [a-z0-9-], up to ~38 characters)"
        )
    return f"{local_part}@{domain}"


def verify_tag(tag: str, secret: str | bytes) -> str | None:
    """The conversation token a tag stands for, or None when it does not verify."""
    payload, dot, mac = tag.strip().lower().rpartition(".")
    if not dot or len(mac) != _MAC_CHARS:
        return None
    token = _decode(payload)
    if token is None:
        return None
    if not hmac.compare_digest(_mac(secret, token), mac):
        return None
    return token


def verify(
    address: str, secret: str | bytes, local: str = "support", *, domain: str | None = None
) -> str | None:
    """The verified conversation token of ``local+TAG@domain``, else None (never raises).

    `domain` None accepts any domain (an IMAP mailbox may receive through aliases).
    """
    address = address.strip().strip("<>").strip()
    local_part, at, addr_domain = address.rpartition("@")
    if not at or len(local_part) > _LOCAL_MAX:
        return None
    if domain is not None and addr_domain.lower() != domain.lower():
        return None
    base, plus, tag = local_part.partition("+")
    if not plus or base.lower() != local.lower():
        return None
    return verify_tag(tag, secret)
