"""`TwilioSender`: the SMS channel's outbound half, over Twilio's Messages REST API.

`POST {api_base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded, HTTP
basic auth. Retries with exponential backoff on 5xx, 429 (honouring Retry-After) and
connection errors, then raises `DeliveryError` so the outbox retries later; a 4xx raises
`PermanentDeliveryError` carrying Twilio's error code and message. Every attempt, and every
later outbox retry, carries the same `I-Twilio-Idempotency-Token` derived from the message
id, so retries create one message at the provider. Opted-out numbers are refused before
any request.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from channels.sms.optout import OptOutStore
from channels.sms.settings import SmsSettings
from inbox.errors import DeliveryError, PermanentDeliveryError, ValidationError
from inbox.identity import normalize_phone
from inbox.ports import Outbound

log = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
MAX_BODY_CHARS = 1600  # Twilio's limit for one Messages API body


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def idempotency_token(item: Outbound) -> str:
    """Stable per outbound message, distinct across deployments sharing an account."""
    return f"omnidesk-{item.conversation_token}-{item.message_id}"


class TwilioSender:
    channel = "sms"

    def __init__(
        self,
        settings: SmsSettings,
        optouts: OptOutStore,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self._optouts = optouts
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None

    @property
    def messages_url(self) -> str:
        return (
            f"{self.settings.api_base_url}/2010-04-01/Accounts/"
            f"{self.settings.account_sid}/Messages.json"
        )

    async def start(self) -> None:
        self._client()

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers={
                    "Authorization": basic_auth(self.settings.account_sid, self.settings.auth_token)
                },
                timeout=aiohttp.ClientTimeout(total=self.settings.send_timeout_seconds),
                trust_env=False,
            )
        return self._session

    def _form(self, item: Outbound, to: str) -> dict[str, str]:
        form = {"To": to, "Body": item.text}
        if self.settings.messaging_service_sid:
            form["MessagingServiceSid"] = self.settings.messaging_service_sid
        else:
            assert self.settings.from_number is not None
            form["From"] = self.settings.from_number
        if self.settings.status_callback_url:
            form["StatusCallback"] = self.settings.status_callback_url
        return form

    async def send(self, item: Outbound) -> str:
        """Send one SMS; returns Twilio's message SID (SM...)."""
        try:
            to = normalize_phone(item.to, self.settings.default_country)
        except ValidationError as exc:
            raise PermanentDeliveryError(f"cannot text {item.to!r}: {exc.message}") from exc
        if not item.text.strip():
            raise PermanentDeliveryError("empty SMS body")
        if len(item.text) > MAX_BODY_CHARS:
            raise PermanentDeliveryError(f"SMS body over {MAX_BODY_CHARS} characters")
        if await self._optouts.is_opted_out(to):
            raise PermanentDeliveryError(f"{to} opted out of SMS (texted STOP)")
        form = self._form(item, to)
        headers = {IDEMPOTENCY_HEADER: idempotency_token(item)}
        attempts = self.settings.send_attempts
        last = "no attempt made"
        for attempt in range(1, attempts + 1):
            retry_after: float | None = None
            try:
                async with self._client().post(
                    self.messages_url, data=form, headers=headers
                ) as resp:
                    payload = await _json(resp)
                    if 200 <= resp.status < 300:
                        sid = payload.get("sid")
                        if not isinstance(sid, str) or not sid:
                            raise DeliveryError("Twilio accepted the message without a sid")
                        return sid
                    code, message = payload.get("code"), payload.get("message") or resp.reason
                    last = f"HTTP {resp.status} (Twilio error {code}: {message})"
                    if resp.status != 429 and resp.status < 500:
                        raise PermanentDeliveryError(f"Twilio refused the SMS: {last}")
                    retry_after = _retry_after(resp.headers.get("Retry-After"))
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            if attempt < attempts:
                delay = self.settings.send_backoff_seconds * 2 ** (attempt - 1)
                delay = max(delay * random.uniform(0.8, 1.2), retry_after or 0)
                log.info(
                    "sms send of message %s failed (%s); retry %d in %.2fs",
                    item.message_id,
                    last,
                    attempt,
                    delay,
                )
                await self._sleep(delay)
        raise DeliveryError(f"Twilio send failed after {attempts} attempts: {last}")


async def _json(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        data = await resp.json(content_type=None)
    except (ValueError, aiohttp.ContentTypeError):
        return {}
    return data if isinstance(data, dict) else {}


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return min(max(float(value), 0.0), 60.0)
    except ValueError:
        return None
