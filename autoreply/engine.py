"""The auto-answer decision: pure `decide(...)` and the `Engine` the pipeline holds.

`decide` runs the engine's steps over one inbound message and returns an
`inbox.ports.TriageDecision` that says what to do and why (or why the reply was
suppressed):

1. a customer asking for a person is handed off at once (`autoreply.handoff`);
2. the rules are evaluated in order and what the fired ones ask for is merged
   (`autoreply.evaluate`);
3. the reply template is chosen: the fired rule's, or the FAQ fallback (`autoreply.reply`);
4. the reply is rendered unless it must be suppressed (`autoreply.reply`).

It does no I/O and changes nothing; the rate limiter is only read. `Engine` holds the
current ruleset + FAQ index in one reference (swapped atomically on reload) and records
each reply it lets through in the limiter.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from autoreply.evaluate import Trace, fire_rules
from autoreply.faq import FaqIndex, FaqMatch
from autoreply.handoff import asked_for_person, handoff_decision, handoff_index
from autoreply.limiter import Limiter, ReplyLimiter
from autoreply.reply import Case, answer, choose_template
from autoreply.rules import Ruleset
from autoreply.settings import AutoreplySettings
from autoreply.text import PhraseIndex
from autoreply.view import MessageView
from inbox.ports import TriageDecision
from inbox.types import Contact, Conversation, InboundMessage, Message

__all__ = ["Engine", "State", "Trace", "decide", "is_first_message"]


@dataclass(frozen=True, slots=True)
class State:
    """Everything reloadable, replaced as one object: a decision sees old or new, never a mix."""

    ruleset: Ruleset
    faq: FaqIndex | None
    handoff: PhraseIndex


_SAME_MOMENT = timedelta(seconds=5)


def is_first_message(message: Message, conversation: Conversation) -> bool:
    """Best guess when the caller does not say: the conversation started with this message."""
    return (
        conversation.first_response_at is None
        and abs(conversation.created_at - message.created_at) <= _SAME_MOMENT
    )


def decide(
    state: State,
    message: Message,
    conversation: Conversation,
    contact: Contact,
    now: datetime,
    *,
    settings: AutoreplySettings,
    inbound: InboundMessage | None = None,
    limiter: Limiter | None = None,
    first_message: bool | None = None,
    agents_available: int | None = None,
    trace: Trace | None = None,
) -> TriageDecision:
    """What to do with one inbound message, with the reasons. Pure: sends nothing."""
    ruleset = state.ruleset
    if not settings.enabled:
        return TriageDecision(
            reasons=("auto-reply is disabled",), extra={"ruleset_version": ruleset.version}
        )
    if first_message is None:
        first_message = is_first_message(message, conversation)
    view = MessageView(  # the message as the conditions see it: words and phrase hits found once
        phrases=ruleset.phrases,
        channel=str(message.channel),
        inbox=inbound.inbox if inbound is not None else conversation.inbox,
        recipients=_recipients(inbound),
        subject=message.subject or conversation.subject or "",
        body=message.text,
        now=now,
        first_message=first_message,
        contact_tags=contact.tags,
        contact_attributes=contact.attributes,
        faq=state.faq,
        hours=settings.business_hours,
    )
    said = asked_for_person(state.handoff, view.body_words, settings.handoff_max_words)
    if said is not None:
        extra = {"ruleset_version": ruleset.version}
        return handoff_decision(said, conversation.priority, settings, extra, trace)
    outcome = fire_rules(ruleset, view, settings.priorities, trace)
    choose_template(outcome, view, state.faq, settings, trace)
    case = Case(message, conversation, contact, inbound, view)
    answer(outcome, case, ruleset.templates, settings, limiter, agents_available)
    return outcome.decision(ruleset.version)


def _recipients(inbound: InboundMessage | None) -> list[str]:
    if inbound is None:
        return []
    raw = inbound.metadata.get("to") or inbound.metadata.get("recipients") or []
    out = [raw] if isinstance(raw, str) else [str(r) for r in raw]
    return [*out, inbound.inbox]


class Engine:
    """Implements `inbox.ports.Triage`: holds the current rules, FAQ index and limiter."""

    def __init__(
        self,
        settings: AutoreplySettings,
        ruleset: Ruleset,
        faq: FaqIndex | None = None,
        limiter: Limiter | None = None,
    ) -> None:
        self.settings = settings
        self.limiter: Limiter = limiter or ReplyLimiter(
            settings.per_contact_max,
            settings.per_contact_window_seconds,
            settings.global_max_per_minute,
            settings.breaker_cooldown_seconds,
        )
        self._handoff = handoff_index(settings.handoff_keywords)
        self._state = State(ruleset, faq, self._handoff)
        self._swap_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: AutoreplySettings, limiter: Limiter | None = None) -> Engine:
        """Load the configured rule and FAQ files; raises ConfigError naming the place."""
        from autoreply.reload import load_state

        ruleset, faq = load_state(settings, version=1)
        return cls(settings, ruleset, faq, limiter)

    @property
    def state(self) -> State:
        return self._state

    @property
    def ruleset(self) -> Ruleset:
        return self._state.ruleset

    @property
    def faq(self) -> FaqIndex | None:
        return self._state.faq

    def swap(self, ruleset: Ruleset, faq: FaqIndex | None) -> None:
        """Replace the rules and FAQ in one assignment."""
        with self._swap_lock:
            self._state = State(ruleset, faq, self._handoff)

    def decide(
        self,
        message: Message,
        conversation: Conversation,
        contact: Contact,
        now: datetime,
        *,
        inbound: InboundMessage | None = None,
        first_message: bool | None = None,
        agents_available: int | None = None,
    ) -> TriageDecision:
        state = self._state  # one read: this decision uses one ruleset throughout
        decision = decide(
            state,
            message,
            conversation,
            contact,
            now,
            settings=self.settings,
            inbound=inbound,
            limiter=self.limiter,
            first_message=first_message,
            agents_available=agents_available,
        )
        if decision.reply is None:
            return decision
        refused = self.limiter.acquire(str(contact.id), now)
        if refused is None:
            return decision
        return replace(
            decision,
            reply=None,
            suppressed=refused,
            reasons=(*decision.reasons, f"auto-reply suppressed: {refused}"),
            extra={k: v for k, v in decision.extra.items() if k != "headers"},
        )

    def suggest(self, text: str, k: int = 3) -> list[FaqMatch]:
        """FAQ entries for an agent composing a reply."""
        faq = self._state.faq
        return faq.suggest(text, k) if faq is not None else []
