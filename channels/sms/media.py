"""Fetching MMS media from the provider without becoming an SSRF proxy.

Only URLs on configured provider hosts are fetched (`api.twilio.com`, `*.twilio.com` by
default). Every hop, the first and each redirect (followed by hand, never by the HTTP
client), must use an allowed scheme and resolve only to public addresses: private,
loopback, link-local, multicast, reserved and unspecified addresses are refused, and the
connection goes through a resolver that re-checks, so a DNS answer that changes between
the check and the connect cannot slip through. Credentials go to the first (allowed)
host only. Size is capped while streaming and the content type must be allowed.

`allow_loopback_for_tests` exists only so tests can serve media from 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import ipaddress
import logging
import mimetypes
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from inbox.errors import ValidationError
from inbox.ports import FileStore

log = logging.getLogger(__name__)

_REDIRECTS = {301, 302, 303, 307, 308}
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class MediaRefused(ValidationError):
    """A media URL we will not fetch, or a response we will not keep."""

    code = "media_refused"


MediaStore = FileStore  # the core's attachment-store port


class MemoryMediaStore:
    """Attachment bytes kept in this process (tests, single-process demos)."""

    def __init__(self) -> None:
        self.blobs: dict[str, tuple[str, str, bytes]] = {}

    async def put(self, data: bytes, *, filename: str, content_type: str) -> str:
        key = f"media/{uuid.uuid4().hex}"
        self.blobs[key] = (filename, content_type, data)
        return key


def _basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def host_allowed(host: str, patterns: Sequence[str]) -> bool:
    """Exact host, or `*.domain` for any subdomain of domain (not domain itself)."""
    host = host.lower().rstrip(".")
    for pattern in patterns:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and host != pattern[2:]:
                return True
        elif host == pattern:
            return True
    return False


def type_allowed(content_type: str, patterns: Sequence[str]) -> bool:
    content_type = content_type.split(";", 1)[0].strip().lower()
    return any(fnmatch.fnmatchcase(content_type, p) for p in patterns)


def refusal_reason(address: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why an address may not be fetched from, or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return refusal_reason(mapped, allow_loopback=allow_loopback)
    if address.is_loopback:
        return None if allow_loopback else "loopback"
    for name in ("unspecified", "link_local", "multicast", "reserved", "private"):
        if getattr(address, f"is_{name}"):
            return name.replace("_", "-")
    if not address.is_global:
        return "not globally routable"
    return None


class _GuardedResolver(AbstractResolver):
    """Resolves like the default resolver, refusing any non-public answer."""

    def __init__(self, allow_loopback: bool) -> None:
        self._inner = ThreadedResolver()
        self._allow_loopback = allow_loopback

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        for answer in answers:
            reason = refusal_reason(
                ipaddress.ip_address(answer["host"]), allow_loopback=self._allow_loopback
            )
            if reason:
                raise OSError(f"{host} resolves to a {reason} address")
        return answers

    async def close(self) -> None:
        await self._inner.close()


@dataclass(frozen=True, slots=True)
class FetchedMedia:
    data: bytes
    content_type: str
    url: str  # the last hop


class MediaFetcher:
    def __init__(
        self,
        *,
        allowed_hosts: Sequence[str],
        allowed_types: Sequence[str],
        max_bytes: int,
        timeout_seconds: float = 15.0,
        auth: tuple[str, str] | None = None,
        schemes: Sequence[str] = ("https",),
        max_redirects: int = 5,
        allow_loopback_for_tests: bool = False,
    ) -> None:
        self.allowed_hosts = tuple(allowed_hosts)
        self.allowed_types = tuple(allowed_types)
        self.max_bytes = max_bytes
        self.timeout_seconds = timeout_seconds
        self._auth = _basic_auth(*auth) if auth else None
        self.schemes = tuple(schemes)
        self.max_redirects = max_redirects
        self._allow_loopback = allow_loopback_for_tests
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                resolver=_GuardedResolver(self._allow_loopback), use_dns_cache=False
            )
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        return self._session

    async def _check_hop(self, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in self.schemes:
            raise MediaRefused(f"scheme {parts.scheme!r} not allowed for media")
        host = parts.hostname
        if not host:
            raise MediaRefused("media URL without a host")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise MediaRefused("media URL with a bad port") from None
        try:
            addresses: list[IPAddress] = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM
                )
            except OSError as exc:
                raise MediaRefused(f"cannot resolve media host {host!r}: {exc}") from None
            addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        for address in addresses:
            reason = refusal_reason(address, allow_loopback=self._allow_loopback)
            if reason:
                raise MediaRefused(f"media host {host!r} is a {reason} address ({address})")
        return host.lower()

    async def fetch(self, url: str) -> FetchedMedia:
        """The bytes behind a provider media URL; `MediaRefused` for anything unsafe."""
        first = urlsplit(url).hostname or ""
        if not host_allowed(first, self.allowed_hosts):
            raise MediaRefused(f"media host {first!r} is not an allowed provider host")
        try:
            async with asyncio.timeout(self.timeout_seconds):
                return await self._follow(url, first.lower())
        except TimeoutError:
            raise MediaRefused(f"media fetch timed out after {self.timeout_seconds}s") from None
        except aiohttp.ClientError as exc:
            raise MediaRefused(f"media fetch failed: {exc}") from None

    async def _follow(self, url: str, first_host: str) -> FetchedMedia:
        current = url
        for _hop in range(self.max_redirects + 1):
            host = await self._check_hop(current)
            # credentials go to the first (allowed) host only, never across a redirect
            headers = {"Authorization": self._auth} if self._auth and host == first_host else {}
            async with self._client().get(current, allow_redirects=False, headers=headers) as resp:
                if resp.status in _REDIRECTS:
                    location = resp.headers.get("Location")
                    if not location:
                        raise MediaRefused(f"redirect {resp.status} without Location")
                    current = urljoin(current, location)
                    continue
                if resp.status != 200:
                    raise MediaRefused(f"media host answered HTTP {resp.status}")
                content_type = resp.content_type.lower()
                if not type_allowed(content_type, self.allowed_types):
                    raise MediaRefused(f"media type {content_type!r} not allowed")
                if resp.content_length is not None and resp.content_length > self.max_bytes:
                    raise MediaRefused(f"media of {resp.content_length} bytes over the limit")
                data = bytearray()
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    data += chunk
                    if len(data) > self.max_bytes:
                        raise MediaRefused(f"media over the limit of {self.max_bytes} bytes")
                return FetchedMedia(bytes(data), content_type, current)
        raise MediaRefused(f"more than {self.max_redirects} redirects")


def media_filename(index: int, content_type: str) -> str:
    ext = mimetypes.guess_extension(content_type.split(";", 1)[0].strip()) or ".bin"
    return f"media-{index}{ext}"
