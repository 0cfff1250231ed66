"""Step 2 of a decision: the rules, in order, and the `Outcome` every step adds to.

`fire_rules` checks the conditions of each candidate rule (`Ruleset.candidates`) against
the `MessageView` and merges the actions of the rules that hold:

* the first rule with a `reply` answers; a later one's reply is skipped, with a reason;
* the most urgent `priority` wins; `skills` and `tags` are collected once each, in order;
* the first `queue` and `assign_to` win; any `resolve` resolves;
* a rule with `stop` (the default) ends the evaluation.

The `Outcome` then goes to the reply steps (`autoreply.reply`), which name the template,
the reply or why it was suppressed, and becomes the `TriageDecision`. A `Trace` records
every rule's result for `omnidesk rules test`; with a trace every rule is evaluated, not
only the candidates, so the listing is complete.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from autoreply.faq import FaqMatch
from autoreply.rules import Rule, Ruleset
from autoreply.view import MessageView
from inbox.ports import Reply, TriageDecision


@dataclass
class Trace:
    """Per-rule outcome for `omnidesk rules test`: (rule, fired, lines)."""

    rules: list[tuple[str, bool, list[str]]] = field(default_factory=list)


@dataclass(slots=True)
class Outcome:
    """One decision as the steps build it: what the fired rules ask for, then the reply."""

    reasons: list[str] = field(default_factory=list)
    matched: list[str] = field(default_factory=list)
    reply_rule: Rule | None = None
    priority: str | None = None
    skills: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    queue: str | None = None
    assign_to: str | None = None
    moved_by: dict[str, str] = field(default_factory=dict)  # "queue"/"assign_to" -> rule
    resolve: bool = False
    stopped_by: str | None = None
    # set by the reply steps
    rule: str | None = None  # the rule named in the decision ("faq:<id>" for the fallback)
    template: str | None = None  # the template that answers; None: no reply
    faq: FaqMatch | None = None
    reply: Reply | None = None
    suppressed: str | None = None
    headers: Mapping[str, str] | None = None

    def add(self, rule: Rule, why: Sequence[str], priorities: Sequence[str]) -> None:
        """Merge the actions of a rule that fired, after the reason it fired."""
        act = rule.actions
        self.matched.append(rule.name)
        self.reasons.append(f"rule {rule.name!r} ({rule.where}) fired: " + "; ".join(why))
        if act.reply is not None:
            if self.reply_rule is None:
                self.reply_rule = rule
            else:
                self.reasons.append(
                    f"rule {rule.name!r}: reply skipped, "
                    f"already answering with {self.reply_rule.name!r}"
                )
        if act.priority is not None and (
            self.priority is None
            or priorities.index(act.priority) < priorities.index(self.priority)
        ):
            self.priority = act.priority
        _add_new(self.skills, act.skills)
        _add_new(self.tags, act.tags)
        if self.queue is None and act.queue:
            self.queue = act.queue
            self.moved_by["queue"] = rule.name
        if self.assign_to is None and act.assign_to:
            self.assign_to = act.assign_to
            self.moved_by["assign_to"] = rule.name
        self.resolve = self.resolve or act.resolve
        if act.stop:
            self.stopped_by = rule.name

    def suppress(self, reason: str, *, from_machine: bool) -> None:
        """No reply goes out; a resolve is dropped unless a machine wrote the message."""
        self.suppressed = reason
        self.reasons.append(f"auto-reply suppressed: {reason}")
        if self.resolve and not from_machine:
            self.resolve = False
            self.reasons.append("not resolved: the customer got no answer")

    def decision(self, ruleset_version: int) -> TriageDecision:
        extra: dict[str, Any] = {"ruleset_version": ruleset_version}
        if self.faq is not None:
            faq = self.faq
            extra["faq"] = {
                "id": faq.entry.id,
                "score": round(faq.score, 1),
                "question": faq.question,
            }
        if self.matched:
            extra["matched"] = tuple(self.matched)
        if self.queue:
            extra["queue"] = self.queue
        if self.moved_by:
            extra["moved_by"] = dict(self.moved_by)
        if self.headers is not None:
            extra["headers"] = self.headers
        return TriageDecision(
            rule=self.rule,
            reasons=tuple(self.reasons),
            reply=self.reply,
            priority=self.priority,
            skills=tuple(self.skills),
            tags=tuple(self.tags),
            assign_to=self.assign_to,
            resolve=self.resolve,
            suppressed=self.suppressed,
            extra=extra,
        )


def _add_new(into: list[str], values: Iterable[str]) -> None:
    for value in values:
        if value not in into:
            into.append(value)


def fire_rules(
    ruleset: Ruleset, view: MessageView, priorities: Sequence[str], trace: Trace | None = None
) -> Outcome:
    """Evaluate the rules in order and merge what the ones that hold ask for."""
    outcome = Outcome()
    numbers = range(len(ruleset.rules)) if trace is not None else ruleset.candidates(view.all_hits)
    for number in numbers:
        rule = ruleset.rules[number]
        stopped_by = outcome.stopped_by
        if stopped_by is not None:
            if trace is not None:
                trace.rules.append(
                    (rule.name, False, [f"not evaluated: {stopped_by!r} stopped evaluation"])
                )
            continue
        why = holds(rule, view, trace)
        if why is not None:
            outcome.add(rule, why, priorities)
    if not outcome.matched:
        outcome.reasons.append("no rule matched")
    return outcome


def holds(rule: Rule, view: MessageView, trace: Trace | None = None) -> list[str] | None:
    """Why every condition of `rule` holds for the message, or None at the first miss."""
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
