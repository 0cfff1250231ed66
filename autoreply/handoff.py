"""Step 1 of a decision: a customer who asks for a person is handed off at once.

A short message (at most `handoff_max_words` words) containing one of the configured
`handoff_keywords` ("agent", "human", ...) skips the rules and the FAQ: the conversation
is queued one priority level more urgent, and at least at `handoff_priority` when set.
A long message that happens to contain such a word goes through the rules as usual.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from autoreply.evaluate import Trace
from autoreply.settings import AutoreplySettings
from autoreply.text import PhraseIndex
from inbox.ports import TriageDecision


def handoff_index(keywords: Sequence[str]) -> PhraseIndex:
    """The handoff keywords, indexed for `asked_for_person`."""
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


def asked_for_person(index: PhraseIndex, words: Sequence[str], max_words: int) -> str | None:
    """The first handoff keyword a short message contains, or None."""
    if len(words) > max_words:
        return None
    asked = index.find(words)
    return index.names(asked)[0] if asked else None


def handoff_decision(
    said: str,
    current_priority: str | None,
    settings: AutoreplySettings,
    extra: Mapping[str, Any],
    trace: Trace | None = None,
) -> TriageDecision:
    """Queue for a person at raised priority, without a reply; `said` is the keyword."""
    raised = raise_priority(current_priority, settings.priorities, settings.handoff_priority)
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
