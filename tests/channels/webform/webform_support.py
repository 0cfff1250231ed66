"""Helpers for the web-form tests: a config with every field type, a recording ingest."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace
from typing import Any

from channels.webform.settings import FormsSettings, read_forms_settings
from inbox.config import load
from inbox.types import InboundMessage, IngestResult

CONFIG = """
secret_key = "0123456789abcdef0123"
inboxes = ["default", "support"]

[forms]
trusted_proxies = ["127.0.0.1"]

[forms.contact]
title = "Contact us"
inbox = "support"
priority = "high"
skills = ["billing"]
confirmation_email = true
name_field = "name"
subject_field = "topic"
rate_limit = 50
max_files = 2
max_file_bytes = 1000
allowed_file_types = ["image/png", "application/pdf", "text/plain"]

[[forms.contact.fields]]
name = "name"
type = "text"
label = "Your name"
max_length = 50

[[forms.contact.fields]]
name = "email"
type = "email"
required = true

[[forms.contact.fields]]
name = "phone"
type = "phone"

[[forms.contact.fields]]
name = "topic"
type = "select"
options = ["Billing", "Shipping", "Other"]
required = true

[[forms.contact.fields]]
name = "message"
type = "textarea"
required = true
max_length = 500

[[forms.contact.fields]]
name = "consent"
type = "checkbox"
label = "I agree to be contacted"
required = true

[[forms.contact.fields]]
name = "quantity"
type = "number"
min = 1
max = 10

[[forms.contact.fields]]
name = "attachment"
type = "file"

[forms.simple]
redirect_url = "https://www.example.com/thanks"
rate_limit = 2
rate_window_seconds = 60
allowed_origins = ["https://www.example.com"]

[[forms.simple.fields]]
name = "email"
type = "email"
required = true

[[forms.simple.fields]]
name = "message"
type = "textarea"
"""


def forms_settings(text: str = CONFIG) -> FormsSettings:
    config = load("config.toml", text=text, environ={})
    return read_forms_settings(
        config.section("forms"), priorities=config.priorities, inboxes=config.inboxes
    )


def valid_contact(**overrides: Any) -> dict[str, str]:
    values = {
        "name": "Ada Lovelace",
        "email": "Ada@Example.COM",
        "phone": "(415) 555-0123",
        "topic": "Billing",
        "message": "My invoice is wrong.\r\nPlease help.",
        "consent": "on",
        "quantity": "3",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


class RecordingIngest:
    """Dedupes on (channel, external_id) under a lock, like the real store."""

    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []
        self._by_key: dict[tuple[str, str], IngestResult] = {}
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)

    async def __call__(self, msg: InboundMessage, *, cursor: Any = None) -> IngestResult:
        async with self._lock:
            key = (str(msg.channel), msg.external_id)
            await asyncio.sleep(0.002)
            if key in self._by_key:
                return replace(self._by_key[key], duplicate=True)
            result = IngestResult(message_id=next(self._ids), conversation_id=1, contact_id=1)
            self._by_key[key] = result
            self.messages.append(msg)
            return result
