"""Helpers for the SMS adapter tests: a recording ingest, signing, a local Twilio-format server."""

from __future__ import annotations

import asyncio
import base64
import itertools
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web
from twilio.request_validator import RequestValidator

from channels.sms.settings import SmsSettings
from inbox.types import InboundMessage, IngestResult

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
PUBLIC_BASE = "https://desk.example.com"


class RecordingIngest:
    """An ingest that dedupes on (channel, external_id) under a lock, like the real store."""

    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []
        self.calls = 0
        self._by_key: dict[tuple[str, str], IngestResult] = {}
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)
        self.gate: asyncio.Event | None = None  # when set, ingest waits for it
        self.entered = asyncio.Event()

    async def __call__(self, msg: InboundMessage, *, cursor: Any = None) -> IngestResult:
        self.calls += 1
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        async with self._lock:
            key = (str(msg.channel), msg.external_id)
            await asyncio.sleep(0.005)  # a commit takes time: let racers pile up
            if key in self._by_key:
                return replace(self._by_key[key], duplicate=True)
            result = IngestResult(message_id=next(self._ids), conversation_id=1, contact_id=1)
            self._by_key[key] = result
            self.messages.append(msg)
            return result


def make_settings(**overrides: Any) -> SmsSettings:
    values: dict[str, Any] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "from_number": "+15550001111",
        "public_base_url": PUBLIC_BASE,
        "send_backoff_seconds": 0.0,
    }
    values.update(overrides)
    return SmsSettings(**values)


def sign(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    """X-Twilio-Signature as Twilio's own SDK computes it."""
    return RequestValidator(token).compute_signature(url, params)


def inbound_params(sid: str = "SM" + "a" * 32, body: str = "Hello", **extra: str) -> dict[str, str]:
    params = {
        "MessageSid": sid,
        "SmsMessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": "+14155550123",
        "To": "+15550001111",
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
    }
    params.update(extra)
    return params


@dataclass
class FakeTwilio:
    """A local server speaking Twilio's Messages API format (the one permitted stand-in).

    `fail_before_create`: answer 500 that many times without creating anything.
    `fail_after_create`: create the message, then answer 500 anyway (a lost response).
    Honours I-Twilio-Idempotency-Token: a repeated token returns the first message.
    """

    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    fail_before_create: int = 0
    fail_after_create: int = 0
    status_override: int | None = None  # e.g. 429
    requests: list[dict[str, str]] = field(default_factory=list)
    tokens: list[str | None] = field(default_factory=list)
    created: dict[str, dict[str, str]] = field(default_factory=dict)  # sid -> form
    by_token: dict[str, str] = field(default_factory=dict)
    base_url: str = ""

    async def messages(self, request: web.Request) -> web.Response:
        if request.match_info["sid"] != self.account_sid:
            return web.json_response(
                {"code": 20404, "message": "not found", "status": 404}, status=404
            )
        expected = (
            "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        )
        if request.headers.get("Authorization") != expected:
            return web.json_response(
                {"code": 20003, "message": "Authenticate", "status": 401}, status=401
            )
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        token = request.headers.get("I-Twilio-Idempotency-Token")
        self.requests.append(form)
        self.tokens.append(token)
        if self.status_override is not None:
            status, self.status_override = self.status_override, None
            return web.json_response(
                {"code": 20429, "message": "Too Many Requests", "status": status},
                status=status,
                headers={"Retry-After": "0"},
            )
        if self.fail_before_create > 0:
            self.fail_before_create -= 1
            return web.json_response(
                {"code": 20500, "message": "Internal", "status": 500}, status=500
            )
        if form.get("To") == "+15005550001":  # Twilio's magic "invalid number"
            return web.json_response(
                {
                    "code": 21211,
                    "message": "The 'To' number +15005550001 is not a valid phone number.",
                    "status": 400,
                    "more_info": "https://www.twilio.com/docs/errors/21211",
                },
                status=400,
            )
        if token is not None and token in self.by_token:
            sid = self.by_token[token]
        else:
            sid = f"SM{len(self.created) + 1:032x}"
            self.created[sid] = form
            if token is not None:
                self.by_token[token] = sid
        if self.fail_after_create > 0:
            self.fail_after_create -= 1
            return web.json_response(
                {"code": 20500, "message": "Internal", "status": 500}, status=500
            )
        return web.json_response(
            {
                "sid": sid,
                "status": "queued",
                "to": form.get("To"),
                "from": form.get("From"),
                "body": form.get("Body"),
                "account_sid": self.account_sid,
            },
            status=201,
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self.messages)
        return app
