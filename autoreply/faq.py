"""FAQ / knowledge base: entries with several phrasings and one answer, matched fuzzily.

The reference is a bare `rapidfuzz.process.extractOne(query, questions,
scorer=fuzz.token_set_ratio, score_cutoff=threshold)` over every phrasing; it costs
milliseconds at 2,000 entries. `FaqIndex` returns the same answer in microseconds by
narrowing first:

1. an inverted index from word -> entries, IDF-weighted, with one-edit typo tolerance
   (SymSpell-style deletion keys), picks the `shortlist` best-scoring entries;
2. rapidfuzz scores only their phrasings with the same scorer and cut-off, in the same
   order as the full list, so ties break the same way.

Words in more than `common_df` of the entries ("how", "my", "the") do not nominate
candidates on their own; they still count in the rapidfuzz score.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain, combinations
from operator import itemgetter
from pathlib import Path

from rapidfuzz import fuzz, process

from autoreply.fields import Table
from autoreply.text import normalize
from autoreply.tomlpos import TomlSource


@dataclass(frozen=True, slots=True)
class FaqEntry:
    id: str
    questions: tuple[str, ...]
    answer: str
    tags: tuple[str, ...] = ()
    file: str = ""
    line: int | None = None


@dataclass(frozen=True, slots=True)
class FaqMatch:
    entry: FaqEntry
    question: str  # the phrasing that matched best
    score: float


def _deletes(word: str) -> list[str]:
    return [word[:i] + word[i + 1 :] for i in range(len(word))] if len(word) > 3 else []


@dataclass
class FaqIndex:
    """Fuzzy FAQ matcher; see the module docstring for how it narrows before scoring."""

    entries: Sequence[FaqEntry]
    threshold: float = 85.0
    shortlist: int = 12  # entries whose phrasings rapidfuzz scores
    common_df: float = 0.12  # words in more entries than this share never nominate
    pair_df: float = 0.03  # word pairs in more entries than this share are not indexed
    _questions: list[str] = field(default_factory=list, repr=False)
    _owner: list[int] = field(default_factory=list, repr=False)
    _by_entry: list[list[int]] = field(default_factory=list, repr=False)
    _postings: dict[str, tuple[int, ...]] = field(default_factory=dict, repr=False)
    _pairs: dict[tuple[str, str], tuple[int, ...]] = field(default_factory=dict, repr=False)
    _typo: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    _common: frozenset[str] = field(default_factory=frozenset, repr=False)

    def __post_init__(self) -> None:
        words_of: list[set[str]] = []
        for number, entry in enumerate(self.entries):
            own: list[int] = []
            words: set[str] = set()
            for question in entry.questions:
                norm = normalize(question)
                own.append(len(self._questions))
                self._questions.append(norm)
                self._owner.append(number)
                words.update(norm.split())
            self._by_entry.append(own)
            words_of.append(words)
        postings: dict[str, list[int]] = {}
        for number, words in enumerate(words_of):
            for word in words:
                postings.setdefault(word, []).append(number)
        total = max(1, len(self.entries))
        self._common = frozenset(
            w for w, ids in postings.items() if len(ids) > max(2, self.common_df * total)
        )
        pairs: dict[tuple[str, str], list[int]] = {}
        for number, words in enumerate(words_of):
            for pair in combinations(sorted(words - self._common), 2):
                pairs.setdefault(pair, []).append(number)
        pair_limit = max(2, self.pair_df * total)
        self._pairs = {pair: tuple(ids) for pair, ids in pairs.items() if len(ids) <= pair_limit}
        typo: dict[str, set[str]] = {}
        for word, ids in postings.items():
            self._postings[word] = tuple(ids)
            for key in _deletes(word):
                typo.setdefault(key, set()).add(word)
        self._typo = {key: tuple(sorted(words)) for key, words in typo.items()}

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def questions(self) -> list[str]:
        """Normalized phrasings, in entry order (what the bare scan compares against)."""
        return self._questions

    def owner(self, question_index: int) -> FaqEntry:
        return self.entries[self._owner[question_index]]

    # -- candidates ---------------------------------------------------------------------
    def _known(self, word: str) -> tuple[str, ...]:
        """Index words a query word stands for: itself, or its one-edit neighbours."""
        if word in self._postings:
            return (word,)
        found: dict[str, None] = {}
        for key in (word, *_deletes(word)):
            if key in self._postings:
                found[key] = None
            for near in self._typo.get(key, ()):
                found[near] = None
        return tuple(found)

    def _candidates(self, query: str, count: int) -> list[int]:
        """Entry numbers (ascending) sharing the most indexed word pairs with the query."""
        rare: set[str] = set()
        common: set[str] = set()
        for word in set(query.split()):
            for known in self._known(word):
                (common if known in self._common else rare).add(known)
        ordered = sorted(rare)
        pairs = self._pairs
        lists = [pairs[p] for p in combinations(ordered, 2) if p in pairs]
        if not lists:
            lists = [self._postings[w] for w in ordered]
        if not lists and common:
            lists = [self._postings[min(common, key=lambda w: len(self._postings[w]))]]
        counts = Counter(chain.from_iterable(lists))
        if len(counts) <= count:
            return sorted(counts)
        return sorted(n for n, _ in heapq.nlargest(count, counts.items(), key=itemgetter(1)))

    # -- matching -----------------------------------------------------------------------
    def _score(self, query: str, entries: list[int], cutoff: float) -> list[tuple[str, float, int]]:
        choices: dict[int, str] = {}
        for number in entries:
            for q in self._by_entry[number]:
                choices[q] = self._questions[q]
        return process.extract(
            query, choices, scorer=fuzz.token_set_ratio, score_cutoff=cutoff, limit=None
        )

    def match(self, text: str, threshold: float | None = None) -> FaqMatch | None:
        """The best entry scoring at least `threshold` (default: the index's), or None."""
        query = normalize(text)
        if not query:
            return None
        cutoff = self.threshold if threshold is None else threshold
        ids = [q for n in self._candidates(query, self.shortlist) for q in self._by_entry[n]]
        questions = self._questions
        best = process.extractOne(
            query,
            [questions[q] for q in ids],
            scorer=fuzz.token_set_ratio,
            processor=None,
            score_cutoff=cutoff,
        )
        if best is None:
            return None
        _, score, position = best
        q = ids[position]
        return FaqMatch(self.owner(q), self._questions[q], float(score))

    def suggest(self, text: str, k: int = 3, min_score: float = 50.0) -> list[FaqMatch]:
        """Up to `k` distinct entries for an agent to pick from, best first."""
        query = normalize(text)
        if not query:
            return []
        ranked = self._score(query, self._candidates(query, max(self.shortlist, 4 * k)), min_score)
        ranked.sort(key=lambda item: (-item[1], item[2]))
        out: list[FaqMatch] = []
        seen: set[int] = set()
        for _, score, q in ranked:
            owner = self._owner[q]
            if owner in seen:
                continue
            seen.add(owner)
            out.append(FaqMatch(self.entries[owner], self._questions[q], float(score)))
            if len(out) == k:
                break
        return out


# -- files --------------------------------------------------------------------------------

FAQ_KEYS = {"id", "questions", "answer", "tags"}


def load_faq_text(name: str, text: str) -> list[FaqEntry]:
    """Entries of one FAQ file:

    [[faq]]
    id = "shipping-time"
    questions = ["How long does shipping take?", "When will my order arrive?"]
    answer = "Orders ship within 24 hours and arrive in 2-5 business days."
    """
    source = TomlSource(name, text)
    data = source.parse()
    root = Table(data, (), source)
    root.reject_unknown({"faq"})
    raw = data.get("faq", [])
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise root.error("faq", "expected an array of tables", fix="write each entry under [[faq]]")
    entries: list[FaqEntry] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        table = Table(item, ("faq", index), source)
        entry_id = table.str("id")
        table.label = f"faq {entry_id!r}: "
        table.reject_unknown(FAQ_KEYS)
        questions = table.str_list("questions")
        if not questions or not all(normalize(q) for q in questions):
            raise table.error(
                "questions",
                "needs at least one question with words in it",
                fix='questions = ["How do I ...?"]',
            )
        answer = table.str("answer").strip()
        if not answer:
            raise table.error("answer", "is empty", fix='answer = "..."')
        if entry_id in seen:
            raise table.error(
                "id",
                f"duplicate id (first used by entry {seen[entry_id] + 1})",
                fix="give each entry its own id",
            )
        seen[entry_id] = index
        entries.append(
            FaqEntry(
                entry_id,
                tuple(questions),
                answer,
                tuple(table.str_list("tags", [])),
                name,
                source.line_of(("faq", index)),
            )
        )
    return entries


def load_faq_files(paths: Sequence[str | Path]) -> list[FaqEntry]:
    from inbox.errors import ConfigError

    entries: list[FaqEntry] = []
    ids: dict[str, str] = {}
    for path in paths:
        name = str(path)
        try:
            text = Path(name).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"cannot read FAQ file: {exc.strerror}",
                file=name,
                fix="check the path in [autoreply] faq",
            ) from None
        for entry in load_faq_text(name, text):
            if entry.id in ids:
                raise ConfigError(
                    f"faq {entry.id!r}: id already used in {ids[entry.id]}",
                    file=name,
                    line=entry.line,
                    key="faq.id",
                    fix="give each entry its own id",
                )
            ids[entry.id] = name
            entries.append(entry)
    return entries
