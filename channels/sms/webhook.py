"""Twilio-compatible SMS webhooks: `POST /sms/twilio/inbound` and `POST /sms/twilio/status`.

Inbound: body capped (413 before reading past the limit), X-Twilio-Signature checked over
the configured public URL (403, nothing stored, when wrong or missing), media fetched
through `MediaFetcher`, STOP/START/HELP recorded in the `OptOutStore`, then `ingest`;
only after ingest returned do we answer an empty TwiML `<Response/>`. MessageSid is the
idempotency key: a redelivery reaches ingest with the same external id and stores nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from channels.sms.media import MediaFetcher, MediaRefused, MediaStore, media_filename
from channels.sms.optout import Keyword, OptOutStore, keyword_of
from channels.sms.settings import SmsSettings
from channels.sms.signature import SIGNATURE_HEADER, is_valid_signature
from inbox.errors import OmnideskError, PayloadTooLarge, ValidationError
from inbox.identity import normalize_phone
from inbox.ports import IngestFn
from inbox.types import Attachment, Channel, DeliveryStatus, InboundMessage

log = logging.getLogger(__name__)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

# Twilio MessageStatus -> our delivery status. "receiving"/"received" are inbound-only.
STATUS_MAP: dict[str, DeliveryStatus] = {
    "accepted": DeliveryStatus.QUEUED,
    "scheduled": DeliveryStatus.QUEUED,
    "queued": DeliveryStatus.QUEUED,
    "sending": DeliveryStatus.SENDING,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "failed": DeliveryStatus.FAILED,
    "undelivered": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}

OnStatus = Callable[[str, DeliveryStatus, str | None], Awaitable[None]]
"""`async def on_status(provider_id, status, error_code)`, e.g. the store's delivery update."""


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, refusing (413) as soon as it is known to exceed `limit`."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"body of {request.content_length} bytes over {limit}")
    data = bytearray()
    while chunk := await request.content.readany():
        data += chunk
        if len(data) > limit:
            raise PayloadTooLarge(f"body over {limit} bytes")
    return bytes(data)


def _error_response(exc: OmnideskError) -> web.Response:
    return web.Response(status=exc.status, text=f"{exc.code}: {exc.message}\n")


class SmsWebhook:
    """aiohttp handlers for Twilio's inbound-message and status-callback webhooks."""

    def __init__(
        self,
        *,
        ingest: IngestFn,
        settings: SmsSettings,
        optouts: OptOutStore,
        media_store: MediaStore | None = None,
        media_fetcher: MediaFetcher | None = None,
        on_status: OnStatus | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._ingest = ingest
        self.settings = settings
        self._optouts = optouts
        self._media_store = media_store
        if media_fetcher is None and media_store is not None:
            media_fetcher = MediaFetcher(
                allowed_hosts=settings.media_allowed_hosts,
                allowed_types=settings.media_allowed_types,
                max_bytes=settings.media_max_bytes,
                timeout_seconds=settings.media_timeout_seconds,
                auth=(settings.account_sid, settings.auth_token) if settings.media_auth else None,
            )
        self._fetcher = media_fetcher
        self._on_status = on_status
        self._clock = clock
        if not settings.validate_signatures:
            log.warning(
                "sms.validate_signatures = false: Twilio webhook signatures are NOT checked; "
                "anyone who can reach %s can inject SMS. Use only for local testing.",
                settings.inbound_path,
            )

    def routes(self) -> list[web.RouteDef]:
        routes = [web.post(self.settings.inbound_path, self.inbound)]
        if self._on_status is not None:
            routes.append(web.post(self.settings.status_path, self.status))
        return routes

    async def close(self) -> None:
        if self._fetcher is not None:
            await self._fetcher.close()

    # -- request checks ------------------------------------------------------------------
    def public_url(self, request: web.Request) -> str:
        """The URL Twilio signed: configured public base + the path (and query) as received."""
        if self.settings.trust_forwarded_headers:
            proto = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip()
            host = request.headers.get("X-Forwarded-Host", request.host).split(",")[0].strip()
            return f"{proto}://{host}{request.raw_path}"
        return self.settings.public_base_url + request.raw_path

    async def _signed_params(self, request: web.Request) -> list[tuple[str, str]]:
        body = await read_body(request, self.settings.max_body_bytes)
        if request.content_type != "application/x-www-form-urlencoded":
            raise ValidationError("expected application/x-www-form-urlencoded")
        try:
            params = parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
        except (UnicodeDecodeError, ValueError):
            raise ValidationError("body is not valid form data") from None
        if self.settings.validate_signatures:
            url = self.public_url(request)
            if not is_valid_signature(
                self.settings.auth_token, url, params, request.headers.get(SIGNATURE_HEADER)
            ):
                log.warning("sms webhook: bad or missing %s for %s", SIGNATURE_HEADER, url)
                raise _Forbidden
        account = _first(params, "AccountSid")
        if account is not None and account != self.settings.account_sid:
            log.warning("sms webhook: AccountSid %s is not ours", account)
            raise _Forbidden
        return params

    # -- handlers ------------------------------------------------------------------------
    async def inbound(self, request: web.Request) -> web.Response:
        try:
            params = await self._signed_params(request)
            message = await self._message(params)
            await self._ingest(message)
            keyword = message.metadata.get("keyword")
            if keyword in (Keyword.STOP, Keyword.START):
                await self._optouts.set(message.sender, keyword == Keyword.STOP)
        except _Forbidden:
            return web.Response(status=403, text="invalid signature\n")
        except OmnideskError as exc:
            return _error_response(exc)
        return web.Response(text=EMPTY_TWIML, content_type="text/xml")

    async def status(self, request: web.Request) -> web.Response:
        try:
            params = await self._signed_params(request)
        except _Forbidden:
            return web.Response(status=403, text="invalid signature\n")
        except OmnideskError as exc:
            return _error_response(exc)
        sid = _first(params, "MessageSid") or _first(params, "SmsSid")
        raw = (_first(params, "MessageStatus") or _first(params, "SmsStatus") or "").lower()
        if not sid:
            return _error_response(ValidationError("MessageSid is required"))
        status = STATUS_MAP.get(raw)
        if status is None:
            log.info("sms status callback for %s: ignoring status %r", sid, raw)
            return web.Response(status=204)
        error_code = _first(params, "ErrorCode") or None
        assert self._on_status is not None  # the route exists only with a callback
        try:
            await self._on_status(sid, status, error_code)
        except OmnideskError as exc:
            return _error_response(exc)
        return web.Response(status=204)

    # -- building the message ------------------------------------------------------------
    async def _message(self, params: list[tuple[str, str]]) -> InboundMessage:
        sid = _first(params, "MessageSid") or _first(params, "SmsMessageSid")
        raw_from = _first(params, "From")
        if not sid or not raw_from:
            raise ValidationError("MessageSid and From are required")
        sender = normalize_phone(raw_from, self.settings.default_country)
        body = _first(params, "Body") or ""
        keyword = keyword_of(body, _first(params, "OptOutType"))
        attachments, media_errors = await self._media(params)
        metadata: dict[str, Any] = {"provider": "twilio", "to": _first(params, "To")}
        if keyword is not None:
            metadata["keyword"] = keyword
        if media_errors:
            metadata["media_errors"] = media_errors
        for name, key in (("NumSegments", "num_segments"), ("NumMedia", "num_media")):
            if (value := _first(params, name)) is not None:
                metadata[key] = value
        return InboundMessage(
            channel=Channel.SMS,
            external_id=sid,
            sender=sender,
            text=body,
            received_at=self._clock(),
            inbox=self.settings.inbox,
            attachments=tuple(attachments),
            # carrier keywords are answered by the provider; never auto-answer them
            auto_submitted=keyword is not None,
            metadata=metadata,
        )

    async def _media(self, params: list[tuple[str, str]]) -> tuple[list[Attachment], list[str]]:
        try:
            count = int(_first(params, "NumMedia") or "0")
        except ValueError:
            raise ValidationError("NumMedia is not a number") from None
        if count <= 0:
            return [], []
        errors: list[str] = []
        if self._fetcher is None or self._media_store is None:
            return [], [f"{count} media item(s) not fetched: no media store configured"]
        if count > self.settings.media_max_count:
            errors.append(f"{count - self.settings.media_max_count} media item(s) over the limit")
        attachments: list[Attachment] = []
        for index in range(min(count, self.settings.media_max_count)):
            url = _first(params, f"MediaUrl{index}")
            if not url:
                errors.append(f"MediaUrl{index} missing")
                continue
            try:
                fetched = await self._fetcher.fetch(url)
            except MediaRefused as exc:
                log.warning("sms media %d refused: %s", index, exc.message)
                errors.append(f"media {index}: {exc.message}")
                continue
            filename = media_filename(index, fetched.content_type)
            key = await self._media_store.put(
                fetched.data, filename=filename, content_type=fetched.content_type
            )
            attachments.append(
                Attachment(filename, fetched.content_type, len(fetched.data), storage_key=key)
            )
        return attachments, errors


class _Forbidden(Exception):
    pass


def _first(params: list[tuple[str, str]], name: str) -> str | None:
    for key, value in params:
        if key == name:
            return value
    return None
