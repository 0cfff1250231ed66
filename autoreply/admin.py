"""Admin commands as plain functions, for the CLI to call:

    omnidesk rules check FILE...     -> check_files(paths)   (prints each error, exit 1 if any)
    omnidesk rules test --channel email --subject ... --body ...
                                     -> explain(engine, channel=..., subject=..., body=...)

Nothing here sends anything or touches the rate limiter.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from autoreply.engine import Engine, decide
from autoreply.evaluate import Trace
from autoreply.faq import load_faq_text
from autoreply.loader import LoadOptions, load_rules_texts, queue_options
from autoreply.settings import AutoreplySettings
from inbox.errors import ConfigError
from inbox.ports import TriageDecision
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


def _is_faq(text: str) -> bool:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return False
    return "faq" in data and "rule" not in data and "templates" not in data


def check_files(
    paths: Sequence[str | Path], settings: AutoreplySettings | None = None
) -> list[str]:
    """Validate rule and FAQ files (told apart by content); one line per error, [] if fine.

    Rule files are checked together (templates are shared between them), so a broken rule
    file reports its first error. Without `settings`, conditions on business hours and the
    FAQ are accepted as if both were configured.
    """
    errors: list[str] = []
    rule_files: list[tuple[str, str]] = []
    faq_files: list[tuple[str, str]] = []
    for path in paths:
        name = str(path)
        try:
            text = Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(str(ConfigError(f"cannot read: {exc}", file=name)))
            continue
        (faq_files if _is_faq(text) else rule_files).append((name, text))
    for name, text in faq_files:
        try:
            load_faq_text(name, text)
        except ConfigError as exc:
            errors.append(str(exc))
    options = LoadOptions(
        priorities=settings.priorities if settings else LoadOptions().priorities,
        has_business_hours=settings is None or settings.business_hours is not None,
        has_faq=settings is None or bool(settings.faq) or bool(faq_files),
        **queue_options(settings),
    )
    if rule_files:
        try:
            load_rules_texts(rule_files, options)
        except ConfigError as exc:
            errors.append(str(exc))
    return errors


@dataclass(frozen=True)
class Explanation:
    decision: TriageDecision
    trace: Trace

    def lines(self) -> list[str]:
        d = self.decision
        out = []
        for name, fired, why in self.trace.rules:
            out.append(f"{'FIRES' if fired else 'no   '} {name}")
            out.extend(f"      {line}" for line in why)
        out.append("")
        out.append(f"decision: rule={d.rule or '-'}")
        for reason in d.reasons:
            out.append(f"  - {reason}")
        for label, value in (
            ("priority", d.priority),
            ("skills", list(d.skills) or None),
            ("tags", list(d.tags) or None),
            ("assign_to", d.assign_to),
            ("queue", d.extra.get("queue")),
            ("resolve", d.resolve or None),
            ("handoff", d.handoff or None),
            ("suppressed", d.suppressed),
        ):
            if value is not None:
                out.append(f"  {label}: {value}")
        if d.reply is not None:
            out.append("reply (not sent):")
            if d.reply.subject:
                out.append(f"  Subject: {d.reply.subject}")
            out.extend(f"  | {line}" for line in d.reply.text.splitlines())
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def explain(
    engine: Engine,
    *,
    channel: str = "email",
    subject: str = "",
    body: str = "",
    sender: str = "customer@example.com",
    inbox: str = "default",
    contact_name: str | None = None,
    contact_tags: Sequence[str] = (),
    contact_attributes: Mapping[str, Any] | None = None,
    first_message: bool = True,
    headers: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> Explanation:
    """Which rule fires for this message and why; every rule's outcome is listed."""
    when = now or datetime.now(UTC)
    chan = Channel(channel)
    kind = (
        IdentityKind.EMAIL
        if chan == Channel.EMAIL
        else IdentityKind.PHONE
        if chan == Channel.SMS
        else IdentityKind.VISITOR
    )
    contact = Contact(
        id=0,
        name=contact_name,
        identities=(Identity(kind, sender),),
        created_at=when,
        attributes=dict(contact_attributes or {}),
        tags=tuple(contact_tags),
    )
    conversation = Conversation(
        id=0,
        contact_id=0,
        channel=chan,
        inbox=inbox,
        status=ConversationStatus.OPEN,
        priority="normal",
        subject=subject or None,
        required_skills=(),
        assignee_id=None,
        token="test",  # noqa: S106 - not a secret: a dry-run conversation token
        created_at=when,
        last_message_at=when,
    )
    message = Message(
        id=0,
        conversation_id=0,
        direction=Direction.INBOUND,
        author_kind=AuthorKind.CONTACT,
        author_id=0,
        channel=chan,
        text=body,
        created_at=when,
        delivery_status=DeliveryStatus.RECEIVED,
        subject=subject or None,
    )
    inbound = InboundMessage(
        channel=chan,
        external_id="<test@rules-test>",
        sender=sender,
        text=body,
        received_at=when,
        subject=subject or None,
        inbox=inbox,
        metadata={"headers": {k.lower(): v for k, v in (headers or {}).items()}},
    )
    trace = Trace()
    decision = decide(
        engine.state,
        message,
        conversation,
        contact,
        when,
        settings=engine.settings,
        inbound=inbound,
        limiter=None,
        first_message=first_message,
        trace=trace,
    )
    return Explanation(decision, trace)
