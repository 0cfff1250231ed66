"""The rule model: conditions (`when`), actions (`then`), and the compiled `Ruleset`.

Each condition answers `check(view)` with a reason string when it holds and None when it
does not; `miss(view)` says why not (for `omnidesk rules test`). A rule holds when all
its conditions hold; they are tried cheapest first.

The `Ruleset` is immutable and compiled once at load: every keyword and phrase of every
rule lives in one `PhraseIndex`, so a message is scanned once, and only rules whose
keywords occur (plus rules without keyword conditions) are evaluated at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from autoreply.text import PhraseIndex

if TYPE_CHECKING:
    from autoreply.templates import ReplyTemplate
    from autoreply.view import MessageView


# -- conditions ----------------------------------------------------------------------------


class Condition:
    cost = 1

    def check(self, view: MessageView) -> str | None:
        raise NotImplementedError

    def miss(self, view: MessageView) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class InSet(Condition):
    """channel / inbox / recipient is one of `values`."""

    what: str  # "channel", "inbox", "recipient"
    values: frozenset[str]
    cost = 0

    def _actual(self, view: MessageView) -> frozenset[str]:
        if self.what == "channel":
            return frozenset({view.channel})
        if self.what == "inbox":
            return frozenset({view.inbox})
        return view.recipients

    def check(self, view: MessageView) -> str | None:
        found = self._actual(view) & self.values
        return f"{self.what} is {sorted(found)[0]}" if found else None

    def miss(self, view: MessageView) -> str:
        actual = ", ".join(sorted(self._actual(view))) or "none"
        return f"{self.what} is {actual}, rule wants {', '.join(sorted(self.values))}"


@dataclass(frozen=True)
class Phrases(Condition):
    """subject/body/text contains any / all / none of the phrases (whole words, folded)."""

    where: str  # "subject", "body", "text"
    mode: str  # "any", "all", "none"
    ids: frozenset[int]
    phrases: tuple[str, ...]
    cost = 1

    def check(self, view: MessageView) -> str | None:
        hits = view.hits(self.where) & self.ids
        if self.mode == "any" and hits:
            return view.contains(self.where, hits)
        if self.mode == "all" and len(hits) == len(self.ids):
            return view.contains(self.where, hits, "all of ")
        if self.mode == "none" and not hits:
            return f"{self.where} contains none of {list(self.phrases)}"
        return None

    def miss(self, view: MessageView) -> str:
        hits = view.hits(self.where) & self.ids
        if self.mode == "none":
            return f"{self.where} contains {view.phrase_names(hits)}"
        if self.mode == "all":
            missing = sorted(set(view.phrase_names(self.ids)) - set(view.phrase_names(hits)))
            return f"{self.where} lacks {missing}"
        return f"{self.where} contains none of {list(self.phrases)}"


@dataclass(frozen=True)
class Regex(Condition):
    """google-re2 search in subject/body/text (linear time whatever the pattern)."""

    where: str
    pattern: str
    compiled: Any = field(compare=False)
    cost = 3

    def check(self, view: MessageView) -> str | None:
        match = self.compiled.search(view.raw(self.where))
        return f"{self.where} matches /{self.pattern}/ ({match.group(0)[:40]!r})" if match else None

    def miss(self, view: MessageView) -> str:
        return f"{self.where} does not match /{self.pattern}/"


@dataclass(frozen=True)
class FaqHit(Condition):
    min_score: float | None
    cost = 5

    def check(self, view: MessageView) -> str | None:
        match = view.faq(self.min_score)
        return f"FAQ {match.entry.id!r} matches ({match.score:.0f})" if match else None

    def miss(self, view: MessageView) -> str:
        best = view.faq_suggestion()
        if best is None:
            return "no FAQ entry is close"
        below = view.faq_threshold(self.min_score)
        return f"best FAQ {best.entry.id!r} scores {best.score:.0f}, below {below:.0f}"


@dataclass(frozen=True)
class Hours(Condition):
    inside: bool
    cost = 2

    def check(self, view: MessageView) -> str | None:
        open_now = view.is_open()
        if open_now == self.inside:
            return "inside business hours" if open_now else "outside business hours"
        return None

    def miss(self, view: MessageView) -> str:
        return "inside business hours" if view.is_open() else "outside business hours"


@dataclass(frozen=True)
class FirstMessage(Condition):
    value: bool
    cost = 0

    def check(self, view: MessageView) -> str | None:
        if view.first_message == self.value:
            return "first message of the conversation" if self.value else "not the first message"
        return None

    def miss(self, view: MessageView) -> str:
        return "not the first message" if self.value else "first message of the conversation"


@dataclass(frozen=True)
class ContactTags(Condition):
    mode: str  # "any", "all"
    tags: frozenset[str]
    cost = 0

    def check(self, view: MessageView) -> str | None:
        found = view.contact_tags & self.tags
        if (self.mode == "any" and found) or (self.mode == "all" and found == self.tags):
            return f"contact tagged {sorted(found)}"
        return None

    def miss(self, view: MessageView) -> str:
        wants = f"{self.mode} of {sorted(self.tags)}"
        return f"contact tags {sorted(view.contact_tags)}, rule wants {wants}"


@dataclass(frozen=True)
class ContactAttribute(Condition):
    key: str
    values: frozenset[str]
    cost = 0

    def check(self, view: MessageView) -> str | None:
        value = view.contact_attribute(self.key)
        return f"contact {self.key} is {value}" if value in self.values else None

    def miss(self, view: MessageView) -> str:
        actual = view.contact_attribute(self.key)
        return f"contact {self.key} is {actual}, rule wants {sorted(self.values)}"


@dataclass(frozen=True)
class Language(Condition):
    languages: frozenset[str]
    cost = 2

    def check(self, view: MessageView) -> str | None:
        lang = view.language()
        return f"language looks like {lang}" if lang in self.languages else None

    def miss(self, view: MessageView) -> str:
        lang = view.language()
        return "language not detected" if lang is None else f"language looks like {lang}"


# -- actions, rules, ruleset ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Actions:
    reply: str | None = None  # template name
    priority: str | None = None
    skills: tuple[str, ...] = ()
    queue: str | None = None
    tags: tuple[str, ...] = ()
    assign_to: str | None = None
    resolve: bool = False
    stop: bool = True

    def describe(self) -> list[str]:
        out = []
        if self.reply:
            out.append(f"reply with {self.reply!r}")
        if self.priority:
            out.append(f"priority {self.priority}")
        if self.skills:
            out.append(f"skills {list(self.skills)}")
        if self.queue:
            out.append(f"queue {self.queue}")
        if self.tags:
            out.append(f"tags {list(self.tags)}")
        if self.assign_to:
            out.append(f"assign to {self.assign_to}")
        if self.resolve:
            out.append("resolve")
        out.append("stop" if self.stop else "continue")
        return out


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    conditions: tuple[Condition, ...]
    actions: Actions
    file: str = ""
    line: int | None = None
    description: str = ""
    keyword_ids: frozenset[int] = frozenset()  # any of these must occur (prefilter), or empty

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class Ruleset:
    rules: tuple[Rule, ...]
    phrases: PhraseIndex
    templates: Mapping[str, ReplyTemplate]
    files: tuple[str, ...] = ()
    version: int = 0
    _always: tuple[int, ...] = field(default=(), repr=False)
    _by_phrase: Mapping[int, tuple[int, ...]] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls,
        rules: list[Rule],
        phrases: PhraseIndex,
        templates: Mapping[str, ReplyTemplate],
        files: tuple[str, ...] = (),
        version: int = 0,
    ) -> Ruleset:
        always: list[int] = []
        by_phrase: dict[int, list[int]] = {}
        for number, rule in enumerate(rules):
            if not rule.keyword_ids:
                always.append(number)
            for pid in rule.keyword_ids:
                by_phrase.setdefault(pid, []).append(number)
        return cls(
            tuple(rules),
            phrases,
            dict(templates),
            files,
            version,
            tuple(always),
            {pid: tuple(ids) for pid, ids in by_phrase.items()},
        )

    def candidates(self, hits: set[int]) -> list[int]:
        """Rule numbers worth evaluating for a message whose phrases `hits` occur, in order."""
        if not hits:
            return list(self._always)
        found = set(self._always)
        by_phrase = self._by_phrase
        for pid in hits:
            found.update(by_phrase.get(pid, ()))
        return sorted(found)
