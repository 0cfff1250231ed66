"""Every channel adapter, in the order the composition root opens them (see
`channels.protocol`). A new channel is one adapter here; nothing else names it."""

from __future__ import annotations

from channels.email.adapter import EmailAdapter
from channels.protocol import AnyAdapter
from channels.sms.adapter import SmsAdapter
from channels.webchat.adapter import WebchatAdapter
from channels.webform.adapter import FormsAdapter
from inbox.config import Config

CHANNELS: tuple[AnyAdapter, ...] = (SmsAdapter(), FormsAdapter(), EmailAdapter(), WebchatAdapter())


def enabled(config: Config) -> list[AnyAdapter]:
    """The adapters whose config table is present."""
    return [adapter for adapter in CHANNELS if adapter.enabled(config)]
