"""Twilio webhook signatures (X-Twilio-Signature), computed the way Twilio does.

HMAC-SHA1 keyed with the account auth token over the full public URL followed by every
POST parameter, sorted by name, as name + value (repeated names: each distinct value,
sorted). Base64 of the digest is the header. Twilio's own servers are inconsistent about
an explicit default port in the URL, so both forms are accepted, as Twilio's SDKs do.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

SIGNATURE_HEADER = "X-Twilio-Signature"


def compute_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    payload = url + "".join(
        name + value for name in sorted(values) for value in sorted(values[name])
    )
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _port_variants(url: str) -> list[str]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    default_port = 443 if parts.scheme == "https" else 80
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    without = urlunsplit(parts._replace(netloc=prefix + host))
    with_port = urlunsplit(parts._replace(netloc=f"{prefix}{host}:{parts.port or default_port}"))
    return list(dict.fromkeys([url, without, with_port]))


def is_valid_signature(
    auth_token: str, url: str, params: Iterable[tuple[str, str]], signature: str | None
) -> bool:
    """Constant-time check of `signature` against the URL (with and without its port)."""
    if not signature:
        return False
    pairs = list(params)
    given = signature.strip().encode("ascii", "replace")
    ok = False
    for candidate in _port_variants(url):
        expected = compute_signature(auth_token, candidate, pairs).encode("ascii")
        ok |= hmac.compare_digest(expected, given)
    return ok
