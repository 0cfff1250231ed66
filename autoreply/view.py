"""What the conditions look at: one message, normalized once, with lazy expensive parts.

Built by the engine per decision; FAQ matching, language detection and the business-hours
check run only if some candidate rule asks for them, and at most once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import cached_property
from typing import Any

from autoreply.faq import FaqIndex, FaqMatch
from autoreply.hours import BusinessHours
from autoreply.lang import detect
from autoreply.text import PhraseIndex, fold, tokens

_UNSET: Any = object()


class MessageView:
    def __init__(
        self,
        *,
        phrases: PhraseIndex,
        channel: str,
        inbox: str,
        subject: str,
        body: str,
        now: datetime,
        recipients: Iterable[str] = (),
        first_message: bool = False,
        contact_tags: Iterable[str] = (),
        contact_attributes: Mapping[str, Any] | None = None,
        faq: FaqIndex | None = None,
        hours: BusinessHours | None = None,
    ) -> None:
        self.channel = channel
        self.inbox = fold(inbox)
        self._recipients = recipients
        self.subject = subject
        self.body = body
        self.now = now
        self.first_message = first_message
        self._contact_tags = contact_tags
        self._attributes = contact_attributes or {}
        self._phrases = phrases
        self.subject_words = tokens(subject) if subject else []
        self.body_words = tokens(body)
        self.subject_hits = phrases.find(self.subject_words)
        self.body_hits = phrases.find(self.body_words)
        self.all_hits = self.subject_hits | self.body_hits
        self._faq_index = faq
        self._faq: dict[float | None, FaqMatch | None] = {}
        self._hours = hours
        self._open: bool | None = None
        self._lang: Any = _UNSET
        self._said: dict[tuple[str, str, frozenset[int]], str] = {}

    @cached_property
    def recipients(self) -> frozenset[str]:
        return frozenset(fold(r) for r in self._recipients) | {self.inbox}

    @cached_property
    def contact_tags(self) -> frozenset[str]:
        return frozenset(fold(t) for t in self._contact_tags)

    def hits(self, where: str) -> set[int]:
        if where == "subject":
            return self.subject_hits
        if where == "body":
            return self.body_hits
        return self.all_hits

    def phrase_names(self, ids: Iterable[int]) -> list[str]:
        return self._phrases.names(ids)

    def contains(self, where: str, ids: set[int], how: str = "") -> str:
        """The reason "text contains ['refund']"; rules sharing a keyword share the string."""
        key = (where, how, frozenset(ids))
        said = self._said.get(key)
        if said is None:
            said = self._said[key] = f"{where} contains {how}{self._phrases.names(ids)}"
        return said

    def raw(self, where: str) -> str:
        if where == "subject":
            return self.subject
        if where == "body":
            return self.body
        return f"{self.subject}\n{self.body}"

    @property
    def faq_text(self) -> str:
        """What is matched against the FAQ: the subject and the body, or just one of them."""
        if self.subject and self.body and fold(self.subject) not in fold(self.body):
            # a short subject often *is* the question; the body may be a greeting + details
            return self.body if len(self.body) <= 300 else self.subject
        return self.body or self.subject

    def faq_threshold(self, min_score: float | None) -> float:
        if min_score is not None:
            return min_score
        return self._faq_index.threshold if self._faq_index is not None else 100.0

    def faq(self, min_score: float | None = None) -> FaqMatch | None:
        if self._faq_index is None:
            return None
        if min_score not in self._faq:
            self._faq[min_score] = self._faq_index.match(self.faq_text, min_score)
        return self._faq[min_score]

    def faq_suggestion(self) -> FaqMatch | None:
        if self._faq_index is None:
            return None
        found = self._faq_index.suggest(self.faq_text, k=1, min_score=0)
        return found[0] if found else None

    def is_open(self) -> bool:
        if self._open is None:
            self._open = True if self._hours is None else self._hours.is_open(self.now)
        return self._open

    def language(self) -> str | None:
        if self._lang is _UNSET:
            self._lang = detect(self.subject_words + self.body_words)
        return self._lang  # type: ignore[no-any-return]

    def contact_attribute(self, key: str) -> str | None:
        value = self._attributes.get(key)
        return None if value is None else fold(str(value))
