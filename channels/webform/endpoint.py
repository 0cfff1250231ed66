"""`POST /forms/{name}`: one submission becomes one `InboundMessage(channel=FORM)`.

Accepts form-encoded, multipart (uploads capped in count, size and type while streaming)
and JSON. Per-address rate limit (429 + Retry-After) before reading the body; honeypot
submissions look accepted and store nothing; validation errors come back per field (422
JSON for JSON/XHR clients, an escaped HTML page otherwise); the customer's email is the
sender so later email replies thread into the same contact. A `submission_id` (set by
the snippet) or a content hash is the idempotency key: a double submit stores one message.
"""

from __future__ import annotations

import fnmatch
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from aiohttp import BodyPartReader, MultipartReader, web

from channels.webform.render import Filled, form_page, message_page
from channels.webform.settings import FormSettings, FormsSettings
from channels.webform.validate import Cleaned, Upload, idempotency_key, message_text, validate
from inbox.errors import ValidationError
from inbox.ports import FileStore, IngestFn
from inbox.types import Attachment, Channel, InboundMessage, IngestResult
from inbox.web.client_address import request_client_address
from inbox.web.ratelimit import Limiter, RateLimiter
from inbox.web.untrusted import loads

log = logging.getLogger(__name__)

FIELD_PART_LIMIT = 64 * 1024
Confirm = Callable[[str, FormSettings, IngestResult], Awaitable[None]]
"""`async def confirm(email, form, result)`: queue a confirmation mail to the customer."""


AttachmentStore = FileStore  # the core's attachment-store port


class _BodyError(Exception):
    """A refusal while reading the body, pinned to a field when there is one."""

    def __init__(self, field: str | None, message: str, status: int = 413) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.status = status
        self.values: dict[str, list[Any]] = {}  # the fields read before it: shown again


class FormEndpoint:
    def __init__(
        self,
        *,
        ingest: IngestFn,
        settings: FormsSettings,
        public_url: str,
        attachment_store: AttachmentStore | None = None,
        confirm: Confirm | None = None,
        default_country: str = "US",
        limiter: Limiter | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._ingest = ingest
        self.settings = settings
        self.public_url = public_url.rstrip("/")
        self._store = attachment_store
        self._confirm = confirm
        self._country = default_country
        self._limiter: Limiter = limiter or RateLimiter()
        self._clock = clock
        if attachment_store is None and any(f.has_files for f in settings.forms.values()):
            raise ValueError("a form has file fields: FormEndpoint needs an attachment_store")

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/forms/{name}", self.show),
            web.post("/forms/{name}", self.submit),
            web.options("/forms/{name}", self.preflight),
            web.get("/forms/{name}/thanks", self.thanks),
        ]

    # -- helpers ---------------------------------------------------------------------------
    def action(self, form: FormSettings) -> str:
        return f"{self.public_url}/forms/{form.name}"

    def client_address(self, request: web.Request) -> str:
        """The peer, or the first untrusted hop of X-Forwarded-For behind a trusted proxy."""
        return request_client_address(request, self.settings.trusted_proxies)

    def _cors(self, form: FormSettings, request: web.Request) -> dict[str, str]:
        origin = request.headers.get("Origin")
        if not origin or not form.allowed_origins:
            return {}
        if "*" in form.allowed_origins:
            return {"Access-Control-Allow-Origin": "*"}
        if origin.rstrip("/") in form.allowed_origins:
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        return {}

    @staticmethod
    def wants_json(request: web.Request) -> bool:
        if request.content_type == "application/json":
            return True
        if request.headers.get("X-Requested-With", "").lower() == "xmlhttprequest":
            return True
        accept = request.headers.get("Accept", "")
        return "application/json" in accept and "text/html" not in accept

    def _form(self, request: web.Request) -> FormSettings:
        form = self.settings.forms.get(request.match_info["name"])
        if form is None:
            raise web.HTTPNotFound(text="no such form\n")
        return form

    # -- handlers --------------------------------------------------------------------------
    async def show(self, request: web.Request) -> web.Response:
        form = self._form(request)
        return web.Response(text=form_page(form, self.action(form)), content_type="text/html")

    async def thanks(self, request: web.Request) -> web.Response:
        form = self._form(request)
        return web.Response(
            text=message_page(form.title, "Thank you, we received your message."),
            content_type="text/html",
        )

    async def preflight(self, request: web.Request) -> web.Response:
        form = self._form(request)
        headers = self._cors(form, request)
        if headers:
            headers.update(
                {
                    "Access-Control-Allow-Methods": "POST",
                    "Access-Control-Allow-Headers": "Content-Type, X-Requested-With",
                    "Access-Control-Max-Age": "600",
                }
            )
        return web.Response(status=204, headers=headers)

    async def submit(self, request: web.Request) -> web.StreamResponse:
        form = self._form(request)
        as_json = self.wants_json(request)
        cors = self._cors(form, request)
        retry = await self._limiter.hit(
            (form.name, self.client_address(request)), form.rate_limit, form.rate_window_seconds
        )
        if retry is not None:
            seconds = str(math.ceil(retry))
            headers = {**cors, "Retry-After": seconds}
            if as_json:
                return web.json_response(
                    {"error": "rate_limited", "retry_after": int(seconds)},
                    status=429,
                    headers=headers,
                )
            return web.Response(
                status=429,
                headers=headers,
                content_type="text/html",
                text=message_page(
                    "Too many submissions", f"Please try again in {seconds} seconds."
                ),
            )
        try:
            values, uploads, files_possible = await self._read(request, form)
        except _BodyError as exc:
            shown_at = exc.field if exc.field and form.field(exc.field) else "_form"
            errors = {shown_at: [exc.message]}
            return self._invalid(
                form, request, as_json, cors, exc.values, errors, status=exc.status
            )
        except ValidationError as exc:
            shown_at = exc.field if exc.field and form.field(exc.field) else "_form"
            errors = {shown_at: [exc.message]}
            return self._invalid(form, request, as_json, cors, {}, errors, status=exc.status)
        submission_id = _single(values.get("submission_id"))
        if _single(values.get(form.honeypot_field)):
            log.info(
                "form %s: honeypot filled; answering as if accepted, storing nothing", form.name
            )
            return self._accepted(form, as_json, cors, duplicate=False)
        cleaned = validate(
            form, values, uploads, default_country=self._country, files_possible=files_possible
        )
        if cleaned.errors:
            return self._invalid(
                form, request, as_json, cors, values, cleaned.errors, submission_id=submission_id
            )
        message = await self._message(form, cleaned, submission_id)
        result = await self._ingest(message)
        if form.confirmation_email and self._confirm is not None and not result.duplicate:
            try:
                await self._confirm(message.sender, form, result)
            except Exception:  # the message is committed; a lost confirmation is not fatal
                log.exception("form %s: confirmation hook failed", form.name)
        return self._accepted(form, as_json, cors, duplicate=result.duplicate)

    # -- reading the body ------------------------------------------------------------------
    async def _read(
        self, request: web.Request, form: FormSettings
    ) -> tuple[dict[str, list[Any]], list[Upload], bool]:
        limit = form.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise _BodyError(None, f"the submission is larger than {limit} bytes")
        ctype = request.content_type
        if ctype == "multipart/form-data":
            values, uploads = await self._read_multipart(request, form)
            return values, uploads, True
        body = await _read_limited(request, limit)
        if ctype == "application/json":
            data = loads(body or b"{}")
            if not isinstance(data, dict):
                raise ValidationError("expected a JSON object of field names to values")
            return {str(k): v if isinstance(v, list) else [v] for k, v in data.items()}, [], False
        if ctype in ("application/x-www-form-urlencoded", ""):
            try:
                pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
            except UnicodeDecodeError:
                raise ValidationError("form data is not UTF-8") from None
            fields: dict[str, list[Any]] = {}
            for key, value in pairs:
                fields.setdefault(key, []).append(value)
            return fields, [], False
        raise ValidationError(f"unsupported content type {ctype!r}")

    async def _read_multipart(
        self, request: web.Request, form: FormSettings
    ) -> tuple[dict[str, list[Any]], list[Upload]]:
        values: dict[str, list[Any]] = {}
        uploads: list[Upload] = []
        reader = await request.multipart()
        try:
            await self._read_parts(reader, form, values, uploads)
        except _BodyError as exc:
            exc.values = values
            raise
        return values, uploads

    async def _read_parts(
        self,
        reader: MultipartReader,
        form: FormSettings,
        values: dict[str, list[Any]],
        uploads: list[Upload],
    ) -> None:
        total = 0
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise ValidationError("nested multipart is not accepted")
            name = part.name or ""
            spec = form.field(name)
            if part.filename is not None:
                if spec is None or spec.type != "file":
                    raise ValidationError(f"unexpected file in field {name!r}")
                if len(uploads) >= form.max_files:
                    raise _BodyError(name, f"at most {form.max_files} files")
                cap = form.max_file_bytes
                data = await _read_part(part, cap, name, f"a file is larger than {cap} bytes")
                total += len(data)
                if not data and not part.filename:
                    continue  # browsers send an empty part for an unused file input
                content_type = part.headers.get("Content-Type") or "application/octet-stream"
                content_type = content_type.split(";", 1)[0].strip().lower()
                if not _type_allowed(content_type, form.allowed_file_types):
                    raise _BodyError(name, f"files of type {content_type} are not accepted", 422)
                uploads.append(Upload(name, _safe_filename(part.filename), content_type, data))
            else:
                longest = spec.max_length if spec is not None and spec.max_length else None
                too_long = (
                    f"too long: at most {longest} characters"
                    if longest
                    else f"too long: at most {FIELD_PART_LIMIT} bytes"
                )
                data = await _read_part(part, FIELD_PART_LIMIT, name, too_long)
                total += len(data)
                try:
                    values.setdefault(name, []).append(data.decode("utf-8"))
                except UnicodeDecodeError:
                    raise ValidationError(f"{name}: not UTF-8 text") from None
            if total > form.max_body_bytes:
                raise _BodyError(None, f"the submission is larger than {form.max_body_bytes} bytes")

    # -- building the message --------------------------------------------------------------
    async def _message(
        self, form: FormSettings, cleaned: Cleaned, submission_id: Any
    ) -> InboundMessage:
        attachments: list[Attachment] = []
        for upload in cleaned.uploads:
            assert self._store is not None
            key = await self._store.put(
                upload.data, filename=upload.filename, content_type=upload.content_type
            )
            attachments.append(
                Attachment(upload.filename, upload.content_type, len(upload.data), storage_key=key)
            )
        sender = cleaned.values[form.sender_field]
        display = cleaned.values.get(form.name_field) if form.name_field else None
        subject = cleaned.values.get(form.subject_field) if form.subject_field else None
        subject = subject or form.subject or f"{form.title} form"
        return InboundMessage(
            channel=Channel.FORM,
            external_id=idempotency_key(form, submission_id, cleaned),
            sender=sender,
            display_name=display,
            subject=str(subject),
            text=message_text(form, cleaned),
            received_at=self._clock(),
            inbox=form.inbox,
            priority=form.priority,
            skills=form.skills,
            attachments=tuple(attachments),
            metadata={"form": form.name, "fields": dict(cleaned.values)},
        )

    # -- responses ---------------------------------------------------------------------------
    def _accepted(
        self, form: FormSettings, as_json: bool, cors: dict[str, str], *, duplicate: bool
    ) -> web.StreamResponse:
        target = form.redirect_url or f"{self.action(form)}/thanks"
        if as_json:
            return web.json_response(
                {"ok": True, "redirect": target, "duplicate": duplicate}, headers=cors
            )
        return web.Response(status=303, headers={**cors, "Location": target})

    def _invalid(
        self,
        form: FormSettings,
        request: web.Request,
        as_json: bool,
        cors: dict[str, str],
        values: dict[str, list[Any]],
        errors: dict[str, list[str]],
        *,
        status: int = 422,
        submission_id: Any = None,
    ) -> web.Response:
        if as_json:
            return web.json_response(
                {"error": "invalid", "fields": errors}, status=status, headers=cors
            )
        shown = {k: _single(v) for k, v in values.items()}
        shown = {
            k: (v in ("on", "true", "1", True)) if _is_checkbox(form, k) else v
            for k, v in shown.items()
        }
        sid = submission_id if isinstance(submission_id, str) else ""
        html = form_page(form, self.action(form), Filled(shown, errors, sid))
        return web.Response(status=status, text=html, content_type="text/html", headers=cors)


def _is_checkbox(form: FormSettings, name: str) -> bool:
    spec = form.field(name)
    return spec is not None and spec.type == "checkbox"


def _single(values: list[Any] | None) -> Any:
    return values[0] if values else None


async def _read_limited(request: web.Request, limit: int) -> bytes:
    data = bytearray()
    while chunk := await request.content.readany():
        data += chunk
        if len(data) > limit:
            raise _BodyError(None, f"the submission is larger than {limit} bytes")
    return bytes(data)


async def _read_part(part: BodyPartReader, cap: int, field: str, message: str) -> bytes:
    data = bytearray()
    while chunk := await part.read_chunk(64 * 1024):
        data += chunk
        if len(data) > cap:
            raise _BodyError(field, message)
    return bytes(data)


def _type_allowed(content_type: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(content_type, p.lower()) for p in patterns)


def _safe_filename(name: str) -> str:
    name = unquote(name).replace("\\", "/").rsplit("/", 1)[-1]  # clients may %-encode
    name = "".join(c for c in name if c.isprintable() and c not in '<>:"|?*').strip(". ")
    return (name or "upload")[:120]
