"""Factories for auto-reply tests (plain functions, imported by the test modules): real engines over rule text, real message types."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from autoreply.engine import Engine
from autoreply.faq import FaqIndex, load_faq_text
from autoreply.hours import BusinessHours
from autoreply.loader import LoadOptions, load_rules_texts
from autoreply.settings import AutoreplySettings
from inbox.types import (
    AuthorKind,
    Channel,
    Contact,
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    Identity,
    IdentityKind,
    InboundMessage,
    Message,
)

# A Wednesday, 10:00 UTC
NOON = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

FAQ_TEXT = """
[[faq]]
id = "shipping-time"
questions = ["How long does shipping take?", "When will my order arrive?"]
answer = "Orders arrive in 2-5 business days."

[[faq]]
id = "password-reset"
questions = ["How do I reset my password?", "I forgot my password"]
answer = "Use Forgot password on the sign-in page."

[[faq]]
id = "gift-card"
questions = ["Do you sell gift cards?", "How do I use a gift card?"]
answer = "Gift cards are sold on our website."
"""


@dataclass
class Incoming:
    message: Message
    conversation: Conversation
    contact: Contact
    inbound: InboundMessage

    def decide(self, engine: Engine, now: datetime = NOON, **kw: Any) -> Any:
        return engine.decide(
            self.message, self.conversation, self.contact, now, inbound=self.inbound, **kw
        )


def incoming(
    body: str = "Hello",
    *,
    subject: str | None = None,
    channel: str = "email",
    sender: str = "ada@example.com",
    inbox: str = "support",
    headers: dict[str, str] | None = None,
    metadata: dict[str, Any] | None = None,
    contact_id: int = 1,
    tags: tuple[str, ...] = (),
    attributes: dict[str, Any] | None = None,
    priority: str = "normal",
    first: bool = True,
    auto_submitted: bool = False,
    external_id: str = "<m1@example.com>",
    name: str | None = "Ada",
) -> Incoming:
    chan = Channel(channel)
    created = NOON
    conversation = Conversation(
        id=10,
        contact_id=contact_id,
        channel=chan,
        inbox=inbox,
        status=ConversationStatus.OPEN,
        priority=priority,
        subject=subject,
        required_skills=(),
        assignee_id=None,
        token="tok123",
        created_at=created if first else datetime(2026, 11, 1, tzinfo=UTC),
        last_message_at=created,
    )
    message = Message(
        id=100,
        conversation_id=10,
        direction=Direction.INBOUND,
        author_kind=AuthorKind.CONTACT,
        author_id=contact_id,
        channel=chan,
        text=body,
        created_at=created,
        delivery_status=DeliveryStatus.RECEIVED,
        subject=subject,
    )
    contact = Contact(
        id=contact_id,
        name=name,
        identities=(Identity(IdentityKind.EMAIL, sender),),
        created_at=created,
        attributes=attributes or {},
        tags=tags,
    )
    meta: dict[str, Any] = {"headers": headers or {}}
    meta.update(metadata or {})
    inbound = InboundMessage(
        channel=chan,
        external_id=external_id,
        sender=sender,
        text=body,
        received_at=created,
        subject=subject,
        inbox=inbox,
        auto_submitted=auto_submitted,
        metadata=meta,
    )
    return Incoming(message, conversation, contact, inbound)


def make_engine(
    rules: str,
    *,
    faq: str | None = None,
    hours: BusinessHours | None = None,
    **settings: Any,
) -> Engine:
    index = FaqIndex(load_faq_text("faq.toml", faq)) if faq is not None else None
    s = AutoreplySettings(business_hours=hours, **settings)
    options = LoadOptions(has_business_hours=hours is not None, has_faq=index is not None)
    ruleset = load_rules_texts([("rules.toml", rules)], options, version=1)
    return Engine(s, ruleset, index)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


__all__ = ["FAQ_TEXT", "NOON", "Incoming", "incoming", "make_engine", "replace", "write"]
