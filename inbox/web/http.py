"""aiohttp edge helpers shared by every HTTP surface: one JSON error shape, bounded body
reading, API-token auth. Errors inside the core are `OmnideskError`s; they become HTTP
answers here and nowhere else.

Error shape: ``{"error": {"code": "invalid_request", "message": "...", "field": "text"}}``
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from inbox.accounts.token_cache import TokenCache
from inbox.accounts.tokens import Scope
from inbox.errors import (
    AddressInUse,
    AuthError,
    Forbidden,
    OmnideskError,
    PayloadTooLarge,
    ValidationError,
)
from inbox.store.backends import Store
from inbox.web.untrusted import MAX_ID, loads

log = logging.getLogger("omnidesk.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STORE_KEY: web.AppKey[Store] = web.AppKey("store", Store)
MAX_BODY_KEY: web.AppKey[int] = web.AppKey("max_body", int)
TOKENS_KEY: web.AppKey[TokenCache] = web.AppKey("api_tokens", TokenCache)


def error_response(
    status: int, code: str, message: str, field: str | None = None, **extra: Any
) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    body.update(extra)
    return web.json_response({"error": body}, status=status)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except OmnideskError as exc:
        if exc.status >= 500:
            log.error("%s %s failed: %s", request.method, request.path, exc)
        return error_response(exc.status, exc.code, exc.message, exc.field)
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith("/api/"):
            raise
        return error_response(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, refusing with 413 before reading past `limit` bytes."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {limit}")
    if declared is not None:
        # the common case: a declared length within the limit, read in one call
        try:
            return await request.content.readexactly(declared)
        except asyncio.IncompleteReadError:
            raise ValidationError("the request body ended before its Content-Length") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: web.Request, limit: int) -> dict[str, Any]:
    ctype = request.content_type
    if ctype not in {"application/json", "application/merge-patch+json"}:
        raise ValidationError(f"expected Content-Type application/json, got {ctype!r}")
    data = loads(await read_body(request, limit))
    if not isinstance(data, dict):
        raise ValidationError("the JSON body must be an object")
    return data


async def require_token(request: web.Request, *, write: bool = False) -> Scope:
    """The API token's scope, or AuthError (401). Accepts `Authorization: Bearer <token>`.
    `write`: the call changes something, which a read-only token may not (403). Which
    inboxes the scope reaches is the handler's to check (see `Scope.sees`)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("missing API token: send Authorization: Bearer <token>")
    scope = await request.app[TOKENS_KEY].check(token.strip())
    if write and scope.read_only:
        raise Forbidden("this API token is read-only: changes need a read-write token")
    return scope


def require_inbox(scope: Scope, inbox: str) -> None:
    """403 unless the token may write into `inbox` (a name the caller gave)."""
    if not scope.sees(inbox):
        allowed = ", ".join(sorted(scope.inboxes or ()))
        raise Forbidden(
            f"this API token is limited to inboxes {allowed}; {inbox[:100]!r} is not one of them",
            field="inbox",
        )


def field(
    data: dict[str, Any],
    key: str,
    kind: type | tuple[type, ...],
    *,
    required: bool = False,
    max_len: int | None = None,
) -> Any:
    """A typed field of a JSON body, with a clear error naming it."""
    value = data.get(key)
    if value is None:
        if required:
            raise ValidationError(f"'{key}' is required", field=key)
        return None
    # (a parsed JSON value is exactly str, list, dict...: one type test for the usual case)
    if type(value) is not kind and (
        not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)
    ):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ValidationError(f"'{key}' must be {names}", field=key)
    if max_len is not None and isinstance(value, str | list) and len(value) > max_len:
        raise ValidationError(f"'{key}' is longer than {max_len}", field=key)
    if type(value) is int and not -MAX_ID <= value <= MAX_ID:
        raise ValidationError(f"'{key}' is out of range (a 64-bit integer)", field=key)
    return value


class BadRequestLogFilter(logging.Filter):
    """aiohttp answers a request it cannot parse (NUL in a header, an over-long request
    line, a bad method) with 400 itself and logs it on `aiohttp.server` as an ERROR with a
    traceback. That is a client's mistake, not ours: one WARNING line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and 400 <= (exc.code or 0) < 500:
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            reason = " ".join(str(exc.message).split())[:200]  # one line, whatever was sent
            record.msg = "bad HTTP request from %s: %s: %s"
            record.args = (remote, type(exc).__name__, reason)
            record.exc_info, record.exc_text = None, None
        return True


def log_bad_requests_as_warnings() -> None:
    """Install `BadRequestLogFilter` on aiohttp's server logger (once)."""
    logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, BadRequestLogFilter) for f in logger.filters):
        logger.addFilter(BadRequestLogFilter())


async def listen(
    runner: web.AppRunner, host: str, port: int, *, what: str, key: str
) -> web.TCPSite:
    """Start a set-up runner's site on host:port; an address in use is one AddressInUse
    naming `what` and the config `key` to change (the caller cleans its runner up)."""
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        AddressInUse.check(exc, what, host, port, key)
        raise
    return site
