"""Steps 3 and 4 of a decision: which template answers, whether it may go out, its text.

3. `choose_template`: the template of the first fired rule with a `reply` (the built-in
   `faq` template answers with the entry its `faq = true` condition matched). When no
   rule replies, nothing stopped the evaluation and `faq_fallback` is on, the best FAQ
   entry above the index's threshold answers with the `faq` template.
4. `answer`: no reply goes to a message from a machine (`loops.loop_reason`: automatic
   mail, bounces, lists, our own answers), past the rate limit (only read here; `Engine`
   records the replies it lets through), or when the template fails to render. A rule's
   `resolve` is then dropped unless a machine wrote the message, so no customer is left
   resolved without an answer. The template sees the variables `autoreply.templates`
   documents; the large ones are computed only if the template uses them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateError

from autoreply.evaluate import Outcome, Trace
from autoreply.faq import FaqIndex, FaqMatch
from autoreply.limiter import Limiter
from autoreply.loops import auto_reply_headers, loop_reason
from autoreply.rules import FaqHit, Rule
from autoreply.settings import AutoreplySettings
from autoreply.templates import ReplyTemplate
from autoreply.view import MessageView
from inbox.types import Contact, Conversation, IdentityKind, InboundMessage, Message


@dataclass(frozen=True, slots=True)
class Case:
    """The message being decided, with what it belongs to (the templates show them)."""

    message: Message
    conversation: Conversation
    contact: Contact
    inbound: InboundMessage | None
    view: MessageView


def choose_template(
    outcome: Outcome,
    view: MessageView,
    faq_index: FaqIndex | None,
    settings: AutoreplySettings,
    trace: Trace | None = None,
) -> None:
    """Step 3: set the template that answers (if any) and the rule the decision names."""
    reply_rule = outcome.reply_rule
    if reply_rule is not None:
        outcome.rule = reply_rule.name
        outcome.template = reply_rule.actions.reply
        if outcome.template == "faq":
            outcome.faq = view.faq(_faq_min_score(reply_rule))
        return
    outcome.rule = outcome.matched[0] if outcome.matched else None
    if settings.faq_fallback and faq_index is not None and outcome.stopped_by is None:
        _faq_fallback(outcome, view, faq_index.threshold, trace)


def _faq_fallback(
    outcome: Outcome, view: MessageView, threshold: float, trace: Trace | None
) -> None:
    faq = view.faq()
    if faq is not None:
        outcome.faq = faq
        outcome.template = "faq"
        outcome.rule = f"faq:{faq.entry.id}"
        outcome.reasons.append(
            f"FAQ {faq.entry.id!r} matched ({faq.score:.0f} >= {threshold:.0f}): {faq.question!r}"
        )
        outcome.tags.append("faq")
    if trace is not None:
        trace.rules.append(
            (
                "faq fallback",
                faq is not None,
                [outcome.reasons[-1]] if faq else ["no FAQ entry above threshold"],
            )
        )


def _faq_min_score(rule: Rule) -> float | None:
    for cond in rule.conditions:
        if isinstance(cond, FaqHit):
            return cond.min_score
    return None


def answer(
    outcome: Outcome,
    case: Case,
    templates: Mapping[str, ReplyTemplate],
    settings: AutoreplySettings,
    limiter: Limiter | None = None,
    agents_available: int | None = None,
) -> None:
    """Step 4: render the chosen template into `outcome`, or say why no reply goes out."""
    if outcome.template is None:
        return
    suppressed = loop_reason(
        case.inbound, instance_id=settings.instance_id, own_domains=settings.own_domains
    )
    from_machine = suppressed is not None
    if suppressed is None and limiter is not None:
        suppressed = limiter.check(str(case.contact.id), case.view.now)
    if suppressed is None:
        suppressed = _render(outcome, templates[outcome.template], case, settings, agents_available)
    if suppressed is not None:
        outcome.suppress(suppressed, from_machine=from_machine)
        return
    outcome.reasons.append(f"auto-reply with template {outcome.template!r}")
    outcome.headers = auto_reply_headers(settings.instance_id)


def _render(
    outcome: Outcome,
    template: ReplyTemplate,
    case: Case,
    settings: AutoreplySettings,
    agents_available: int | None,
) -> str | None:
    """Set `outcome.reply`; the reason no reply can go out when the template fails."""
    context = template_context(
        template.uses,
        case,
        settings,
        rule=outcome.rule or "",
        faq=outcome.faq,
        agents_available=agents_available,
    )
    try:
        outcome.reply = template.render(context)
    except TemplateError as exc:
        return f"template {outcome.template!r} failed: {exc}"
    return None


def template_context(
    uses: frozenset[str],
    case: Case,
    settings: AutoreplySettings,
    *,
    rule: str,
    faq: FaqMatch | None,
    agents_available: int | None,
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
        out["contact"] = _contact_variables(case.contact)
    if "conversation" in uses:
        out["conversation"] = _conversation_variables(case.conversation)
    if "message" in uses:
        out["message"] = _message_variables(case)
    if "business_hours" in uses:
        hours = settings.business_hours
        out["business_hours"] = (
            hours.describe(case.view.now)
            if hours
            else {"open": True, "next_open": "", "timezone": "UTC", "today": "always open"}
        )
    return out


def _contact_variables(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.id,
        "name": contact.name or "",
        "tags": list(contact.tags),
        "email": contact.identity(IdentityKind.EMAIL) or "",
        "phone": contact.identity(IdentityKind.PHONE) or "",
        "attributes": dict(contact.attributes),
    }


def _conversation_variables(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "subject": conversation.subject or "",
        "channel": str(conversation.channel),
        "inbox": conversation.inbox,
        "priority": conversation.priority,
        "status": str(conversation.status),
        "tags": list(conversation.tags),
        "token": conversation.token,
    }


def _message_variables(case: Case) -> dict[str, Any]:
    message = case.message
    return {
        "text": message.text,
        "subject": message.subject or case.conversation.subject or "",
        "channel": str(message.channel),
        "sender": case.inbound.sender if case.inbound is not None else "",
    }
