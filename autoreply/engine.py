"""The auto-answer decision: pure `decide(...)` and the `Engine` the pipeline holds.

`decide` evaluates the rules in order over one inbound message and returns an
`inbox.ports.TriageDecision` that says what to do and why (or why the reply was
suppressed). It does no I/O and changes nothing; the rate limiter is only read.
`Engine` holds the current ruleset + FAQ index in one reference (swapped atomically on
reload) and records each reply it lets through in the limiter.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from jinja2 import TemplateError

from autoreply.faq import FaqIndex, FaqMatch
from autoreply.limiter import Limiter, ReplyLimiter
from autoreply.loops import auto_reply_headers, loop_reason
from autoreply.rules import Rule, Ruleset
from autoreply.settings import AutoreplySettings
from autoreply.text import PhraseIndex
from autoreply.view import MessageView
from inbox.ports import Reply, TriageDecision
from inbox.types import Contact, Conversation, IdentityKind, InboundMessage, Message


@dataclass
class Trace:
    """Per-rule outcome for `omnidesk rules test`: (rule, fired, lines)."""

    rules: list[tuple[str, bool, list[str]]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class State:
    """Everything reloadable, replaced as one object: a decision sees old or new, never a mix."""

    ruleset: Ruleset
    faq: FaqIndex | None
    handoff: PhraseIndex


def handoff_index(keywords: Sequence[str]) -> PhraseIndex:
    index = PhraseIndex()
    for word in keywords:
        index.add(word)
    return index


def raise_priority(current: str | None, priorities: Sequence[str], floor: str | None = None) -> str:
    """One level more urgent than `current` (priorities are listed most urgent first)."""
    levels = list(priorities)
    position = levels.index(current) if current in levels else len(levels) - 1
    raised = levels[max(0, position - 1)]
    if floor in levels and levels.index(floor) < levels.index(raised):
        return floor
    return raised


_SAME_MOMENT = timedelta(seconds=5)


def is_first_message(message: Message, conversation: Conversation) -> bool:
    """Best guess when the caller does not say: the conversation started with this message."""
    return (
        conversation.first_response_at is None
        and abs(conversation.created_at - message.created_at) <= _SAME_MOMENT
    )


def template_context(
    *,
    uses: frozenset[str],
    message: Message,
    conversation: Conversation,
    contact: Contact,
    view: MessageView,
    settings: AutoreplySettings,
    rule: str,
    faq: FaqMatch | None,
    agents_available: int | None,
    sender: str,
) -> dict[str, Any]:
    """The documented template variables (only those the template uses are computed)."""
    out: dict[str, Any] = {
        "agents_available": agents_available,
        "rule": {"name": rule},
        "brand": settings.brand,
        "handoff_hint": settings.handoff_hint,
        "faq": {
            "id": faq.entry.id,
            "question": faq.question,
            "answer": faq.entry.answer,
            "score": round(faq.score, 1),
        }
        if faq
        else None,
    }
    if "contact" in uses:
        out["contact"] = {
            "id": contact.id,
            "name": contact.name or "",
            "tags": list(contact.tags),
            "email": contact.identity(IdentityKind.EMAIL) or "",
            "phone": contact.identity(IdentityKind.PHONE) or "",
            "attributes": dict(contact.attributes),
        }
    if "conversation" in uses:
        out["conversation"] = {
            "id": conversation.id,
            "subject": conversation.subject or "",
            "channel": str(conversation.channel),
            "inbox": conversation.inbox,
            "priority": conversation.priority,
            "status": str(conversation.status),
            "tags": list(conversation.tags),
            "token": conversation.token,
        }
    if "message" in uses:
        out["message"] = {
            "text": message.text,
            "subject": message.subject or conversation.subject or "",
            "channel": str(message.channel),
            "sender": sender,
        }
    if "business_hours" in uses:
        hours = settings.business_hours
        out["business_hours"] = (
            hours.describe(view.now)
            if hours
            else {"open": True, "next_open": "", "timezone": "UTC", "today": "always open"}
        )
    return out


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
    extra: dict[str, Any] = {"ruleset_version": ruleset.version}
    if not settings.enabled:
        return TriageDecision(reasons=("auto-reply is disabled",), extra=extra)
    if first_message is None:
        first_message = is_first_message(message, conversation)
    view = MessageView(
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
    reasons: list[str] = []

    # 1. the customer asks for a person
    words = view.body_words
    if len(words) <= settings.handoff_max_words:
        asked = state.handoff.find(words)
        if asked:
            raised = raise_priority(
                conversation.priority, settings.priorities, settings.handoff_priority
            )
            said = state.handoff.names(asked)[0]
            if trace is not None:
                trace.rules.append(("handoff", True, [f"customer wrote {said!r}"]))
            return TriageDecision(
                rule="handoff",
                reasons=(f"customer asked for a person ({said!r}): handoff at {raised} priority",),
                priority=raised,
                tags=("handoff",),
                handoff=True,
                extra=extra,
            )

    # 2. rules, in order
    matched: list[str] = []
    reply_rule: Rule | None = None
    priority: str | None = None
    skills: list[str] = []
    tags: list[str] = []
    queue: str | None = None
    assign_to: str | None = None
    resolve = False
    numbers = range(len(ruleset.rules)) if trace is not None else ruleset.candidates(view.all_hits)
    stopped_by: str | None = None
    for number in numbers:
        rule = ruleset.rules[number]
        if stopped_by is not None:
            if trace is not None:
                trace.rules.append(
                    (rule.name, False, [f"not evaluated: {stopped_by!r} stopped evaluation"])
                )
            continue
        why = _holds(rule, view, trace)
        if why is None:
            continue
        matched.append(rule.name)
        act = rule.actions
        reasons.append(f"rule {rule.name!r} ({rule.where}) fired: " + "; ".join(why))
        if act.reply is not None:
            if reply_rule is None:
                reply_rule = rule
            else:
                reasons.append(
                    f"rule {rule.name!r}: reply skipped, already answering with {reply_rule.name!r}"
                )
        if act.priority is not None and (
            priority is None
            or settings.priorities.index(act.priority) < settings.priorities.index(priority)
        ):
            priority = act.priority
        for skill in act.skills:
            if skill not in skills:
                skills.append(skill)
        for tag in act.tags:
            if tag not in tags:
                tags.append(tag)
        queue = queue or act.queue
        assign_to = assign_to or act.assign_to
        resolve = resolve or act.resolve
        if act.stop:
            stopped_by = rule.name
    if not matched:
        reasons.append("no rule matched")

    # 3. FAQ fallback
    faq: FaqMatch | None = None
    template_name: str | None = None
    rule_name = reply_rule.name if reply_rule else (matched[0] if matched else None)
    if reply_rule is not None:
        template_name = reply_rule.actions.reply
        if template_name == "faq":
            faq = view.faq(_faq_min(reply_rule))
    elif settings.faq_fallback and state.faq is not None and stopped_by is None:
        faq = view.faq()
        if faq is not None:
            template_name = "faq"
            rule_name = f"faq:{faq.entry.id}"
            reasons.append(
                f"FAQ {faq.entry.id!r} matched ({faq.score:.0f} >= "
                f"{state.faq.threshold:.0f}): {faq.question!r}"
            )
            tags.append("faq")
        if trace is not None:
            trace.rules.append(
                (
                    "faq fallback",
                    faq is not None,
                    [reasons[-1]] if faq else ["no FAQ entry above threshold"],
                )
            )
    if faq is not None:
        extra["faq"] = {"id": faq.entry.id, "score": round(faq.score, 1), "question": faq.question}
    if matched:
        extra["matched"] = tuple(matched)
    if queue:
        extra["queue"] = queue

    # 4. may we answer?
    reply: Reply | None = None
    suppressed: str | None = None
    if template_name is not None:
        suppressed = loop_reason(
            inbound, instance_id=settings.instance_id, own_domains=settings.own_domains
        )
        from_machine = suppressed is not None
        if suppressed is None and limiter is not None:
            suppressed = limiter.check(str(contact.id), now)
        if suppressed is None:
            template = ruleset.templates[template_name]
            context = template_context(
                uses=template.uses,
                message=message,
                conversation=conversation,
                contact=contact,
                view=view,
                settings=settings,
                rule=rule_name or "",
                faq=faq,
                agents_available=agents_available,
                sender=inbound.sender if inbound is not None else "",
            )
            try:
                reply = template.render(context)
            except TemplateError as exc:
                suppressed = f"template {template_name!r} failed: {exc}"
        if suppressed is not None:
            reasons.append(f"auto-reply suppressed: {suppressed}")
            if resolve and not from_machine:
                resolve = False
                reasons.append("not resolved: the customer got no answer")
        else:
            reasons.append(f"auto-reply with template {template_name!r}")
            extra["headers"] = auto_reply_headers(settings.instance_id)
    return TriageDecision(
        rule=rule_name,
        reasons=tuple(reasons),
        reply=reply,
        priority=priority,
        skills=tuple(skills),
        tags=tuple(tags),
        assign_to=assign_to,
        resolve=resolve,
        suppressed=suppressed,
        extra=extra,
    )


def _faq_min(rule: Rule) -> float | None:
    from autoreply.rules import FaqHit

    for cond in rule.conditions:
        if isinstance(cond, FaqHit):
            return cond.min_score
    return None


def _holds(rule: Rule, view: MessageView, trace: Trace | None) -> list[str] | None:
    why: list[str] = []
    for cond in rule.conditions:
        reason = cond.check(view)
        if reason is None:
            if trace is not None:
                trace.rules.append((rule.name, False, [f"no: {cond.miss(view)}"]))
            return None
        why.append(reason)
    if not why:
        why.append("no conditions")
    if trace is not None:
        trace.rules.append((rule.name, True, [*why, "then: " + ", ".join(rule.actions.describe())]))
    return why


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
