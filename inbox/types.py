"""The small vocabulary every layer speaks.

Plain frozen dataclasses over plain data. Adapters produce `InboundMessage`; the store
hands out `Contact`, `Conversation`, `Message`, `Agent` and `Assignment`. Nothing here does
I/O.
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, TypeVar

_C = TypeVar("_C", bound=type)


def pickled_by_fields(cls: _C) -> _C:
    """Pickle a slots dataclass as its constructor's arguments, read in C. (The dataclass
    default walks `fields()` in Python per object, about 3x slower; every ingest batch is
    pickled to the SQLite writer process.)"""
    names = [f.name for f in fields(cls)]
    get = operator.attrgetter(*names)
    one = len(names) == 1  # attrgetter of one name gives the value, not a 1-tuple

    def __reduce__(self: object) -> tuple[type, tuple[Any, ...]]:
        return (cls, (get(self),) if one else get(self))

    setattr(cls, "__reduce__", __reduce__)  # noqa: B010 (mypy refuses a method assignment)
    return cls


class Channel(enum.StrEnum):
    EMAIL = "email"
    CHAT = "chat"
    SMS = "sms"
    FORM = "form"
    API = "api"


class IdentityKind(enum.StrEnum):
    """How a contact is reached on a channel. Values are normalized (see inbox.identity)."""

    EMAIL = "email"  # case-folded address
    PHONE = "phone"  # E.164
    VISITOR = "visitor"  # widget visitor id
    EXTERNAL = "external"  # id in the host site's or an integration's user base


class ConversationStatus(enum.StrEnum):
    OPEN = "open"
    PENDING = "pending"  # waiting for the customer
    ON_HOLD = "on_hold"  # waiting on a third party
    SNOOZED = "snoozed"  # set aside until a time (`snoozed_until`)
    RESOLVED = "resolved"  # `inbox.cases.CaseStatus.SOLVED` (inbox.store.cases maps it)
    CLOSED = "closed"  # resolved and locked: a new message starts a new conversation


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class AuthorKind(enum.StrEnum):
    CONTACT = "contact"
    AGENT = "agent"
    BOT = "bot"
    SYSTEM = "system"


class DeliveryStatus(enum.StrEnum):
    RECEIVED = "received"  # inbound, stored
    QUEUED = "queued"  # outbound, in the outbox
    SENDING = "sending"
    SENT = "sent"  # accepted by the provider / relay
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"  # permanent failure, reason kept
    NOTE = "note"  # private note, never delivered


class Role(enum.StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class Presence(enum.StrEnum):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    size: int
    # where the bytes live in the file store (relative key), or None when not yet stored
    storage_key: str | None = None
    content_id: str | None = None  # for inline images in mail
    inline: bool = False


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class InboundMessage:
    """What every channel adapter produces. The only thing passed to `inbox.ingest`."""

    channel: Channel
    external_id: str  # idempotency key within the channel: Message-ID, provider id, ...
    sender: str  # address on that channel: email, phone, visitor id, ...
    text: str
    received_at: datetime
    display_name: str | None = None
    subject: str | None = None
    html: str | None = None  # already sanitized by the adapter
    attachments: tuple[Attachment, ...] = ()
    # threading hints, strongest first
    conversation_token: str | None = None  # verified token: reply+TOKEN@, widget session, ...
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    auto_submitted: bool = False  # RFC 3834 and friends: never auto-answer
    inbox: str = "default"  # which inbox/queue it arrived at (recipient address, widget key, ...)
    # Adapter-level hints for routing (a web form may set these from its config)
    priority: str | None = None
    skills: tuple[str, ...] = ()
    # Extra identities the adapter verified for this sender (e.g. widget visitor who left an
    # email address, or an HMAC-verified host-site user id): (kind, value) pairs
    extra_identities: tuple[tuple[IdentityKind, str], ...] = ()
    # raw provider metadata, kept apart from the normalized fields; never interpreted inward
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Identity:
    kind: IdentityKind
    value: str
    verified: bool = False


@dataclass(frozen=True, slots=True)
class Contact:
    id: int
    name: str | None
    identities: tuple[Identity, ...]
    created_at: datetime
    attributes: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    merged_into: int | None = None

    def identity(self, kind: IdentityKind) -> str | None:
        for ident in self.identities:
            if ident.kind == kind:
                return ident.value
        return None


@dataclass(frozen=True, slots=True)
class Conversation:
    id: int
    contact_id: int
    channel: Channel
    inbox: str
    status: ConversationStatus
    priority: str
    subject: str | None
    required_skills: tuple[str, ...]
    assignee_id: int | None
    token: str  # random per-conversation token used in reply addresses and widget sessions
    created_at: datetime
    last_message_at: datetime
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    waiting_since: datetime | None = None  # set while it waits in the queue
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    conversation_id: int
    direction: Direction
    author_kind: AuthorKind
    author_id: int | None  # contact id or agent id
    channel: Channel
    text: str
    created_at: datetime
    delivery_status: DeliveryStatus
    external_id: str | None = None
    subject: str | None = None
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()
    failure_reason: str | None = None
    # its headers named this conversation of another contact (threading refused to join it)
    refers_to: int | None = None


@dataclass(frozen=True, slots=True)
class Agent:
    id: int
    name: str
    email: str
    role: Role
    skills: Mapping[str, int]  # skill -> level (1..10)
    capacity: Mapping[str, int]  # channel -> concurrent conversations
    active: bool = True
    teams: tuple[str, ...] = ()  # inboxes/teams the agent may see


@dataclass(frozen=True, slots=True)
class Assignment:
    conversation_id: int
    agent_id: int
    assigned_at: datetime
    reason: str  # "routed", "transfer", "supervisor", "requeue", ...


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class IngestResult:
    """What `ingest` returns; a redelivery returns the first result with duplicate=True."""

    message_id: int
    conversation_id: int
    contact_id: int
    duplicate: bool = False
    conversation_created: bool = False
    conversation_reopened: bool = False
