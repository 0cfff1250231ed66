"""Interfaces the pipeline receives from the packages above `inbox`.

`inbox` imports nothing of ours, so the auto-reply engine and the router reach the
pipeline through these protocols; the composition root (`omnidesk`) plugs them in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from inbox.types import Contact, Conversation, InboundMessage, IngestResult, Message


@dataclass(frozen=True, slots=True)
class Reply:
    """An automatic answer to send through the conversation's channel."""

    text: str
    html: str | None = None
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class TriageDecision:
    """What the auto-answer engine decided for one inbound message, with its reasons.

    Stored with the conversation so an agent can see why it was answered or routed.
    """

    rule: str | None = None  # name of the rule (or "faq:<id>") that decided, if any
    reasons: tuple[str, ...] = ()  # human-readable, one line each
    reply: Reply | None = None
    priority: str | None = None
    skills: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    assign_to: str | None = None  # agent email or team name
    resolve: bool = False
    handoff: bool = False  # the customer asked for a person: queue at raised priority
    suppressed: str | None = None  # why no auto-reply was sent (loop guard, rate limit, ...)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def needs_human(self) -> bool:
        return not self.resolve


class Triage(Protocol):
    """The auto-answer engine as the pipeline sees it."""

    def decide(
        self,
        message: Message,
        conversation: Conversation,
        contact: Contact,
        now: datetime,
        *,
        inbound: InboundMessage | None = None,
        first_message: bool | None = None,
    ) -> TriageDecision: ...


IngestFn = Callable[..., Awaitable[IngestResult]]
"""`async def ingest(msg: InboundMessage, *, cursor: tuple[str, str] | None = None)`:
what channel adapters call. Returns only after the message is committed."""


@dataclass(frozen=True, slots=True)
class Outbound:
    """One outbound message as a channel sender sees it (built by the outbox worker)."""

    message_id: int
    conversation_id: int
    channel: str
    to: str  # the contact's address on that channel (email, E.164 phone, visitor id)
    text: str
    conversation_token: str  # per-conversation token, for reply addresses / widget rooms
    html: str | None = None
    subject: str | None = None
    from_name: str | None = None  # the agent's display name, or the bot's
    in_reply_to: str | None = None  # external id of the message being answered
    references: tuple[str, ...] = ()
    auto_reply: bool = False  # stamp Auto-Submitted: auto-replied
    inbox: str = "default"
    attachments: tuple[tuple[str, str, bytes], ...] = ()  # (filename, content type, bytes)
    # an address the customer left for answers while away (a chat visitor's email)
    followup_email: str | None = None


class Sender(Protocol):
    """A channel's outbound half. Returns the provider's id for the message.

    Raise `inbox.errors.DeliveryError` for a failure worth retrying and
    `PermanentDeliveryError` for one that is not (bad address, provider 4xx).
    """

    channel: str

    async def send(self, item: Outbound) -> str: ...


class FileStore(Protocol):
    """Where attachment bytes go (`inbox.store.files.FileStore` in production); returns the
    storage key kept on `Attachment.storage_key`."""

    async def put(self, data: bytes, *, filename: str, content_type: str) -> str: ...
